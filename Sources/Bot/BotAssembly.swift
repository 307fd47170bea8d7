import Broadcasts
import Conversations
import Localization

/// Settings of the owner features that come from configuration.
public struct OwnerSettings: Sendable {
    public var maximumChannelsPerOwner: Int
    public var draftLifetime: Duration
    public var offerPosts: OfferPostSettings

    public init(maximumChannelsPerOwner: Int = 10, draftLifetime: Duration = .seconds(24 * 3600), offerPosts: OfferPostSettings = OfferPostSettings())
    {
        self.maximumChannelsPerOwner = maximumChannelsPerOwner
        self.draftLifetime = draftLifetime
        self.offerPosts = offerPosts
    }
}

/// Builds the bot TelePay runs: the core commands, the conversation engine over `Conversations/` and the
/// owner's channel screens. Production and tests use the same assembly.
public enum BotAssembly {
    /// Loads and checks `Conversations/*.yaml` against the catalogs; throws with file and line on the
    /// first problem, so a malformed definition stops the start-up.
    public static func loadConversations(directory: String, localizer: Localizer) throws -> [ConversationDefinition] {
        try ConversationLoader.loadDirectory(directory, knownKeys: Set(localizer.catalogs[Localizer.fallbackLanguage]?.keys ?? [:].keys))
    }

    /// `subscriber`, when given, adds offers, purchases and closed-channel gating to the core commands;
    /// `broadcasts` adds `/admin`, the broadcast composer and its controls.
    public static func router(
        conversations: [ConversationDefinition], settings: OwnerSettings, subscriber: SubscriberCommands? = nil, broadcasts: BroadcastCommands? = nil
    ) throws -> BotRouter {
        let engine = try FormEngine(
            definitions: conversations,
            bindings: [ChannelFormBinding(maximumChannelsPerOwner: settings.maximumChannelsPerOwner)],
            draftLifetime: settings.draftLifetime
        )
        var router = BotRouter()
        if let subscriber {
            subscriber.register(into: &router)
        } else {
            CoreCommands.register(into: &router)
        }
        engine.register(into: &router)
        ChannelCommands(engine: engine, maximumChannelsPerOwner: settings.maximumChannelsPerOwner, offerPosts: settings.offerPosts).register(
            into: &router)
        broadcasts?.register(into: &router)
        return router
    }
}
