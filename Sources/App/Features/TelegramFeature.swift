import Bot
import Broadcasts
import Conversations
import Jobs
import Storage
import Subscriptions
import TelegramBotAPI

/// The bot and everything that talks to Telegram through it: closed-channel access, buyers' and owners'
/// notifications, offer posts and broadcasts.
struct TelegramFeature {
    let client: TelegramClient
    let bot: TelegramBot
    let access: AccessService

    init(
        token: Secret, context: AssemblyContext, purchases: PurchaseService, conversations: [ConversationDefinition], identity: BotIdentity
    ) throws {
        let configuration = context.configuration
        client = TelegramBot.makeClient(configuration: configuration, token: token, logger: context.logger)
        access = AccessService(
            database: context.database, queue: context.queue, access: TelegramChannelAccess(client: client), clock: context.clock,
            settings: configuration.subscriptions, logger: context.logger
        )
        bot = try TelegramBot(
            configuration: configuration, client: client, database: context.database, localizer: context.localizer,
            conversations: conversations, subscriber: SubscriberCommands(purchases: purchases, access: access),
            identity: identity, jobs: context.queue, logger: context.logger
        )
    }

    func contribution(_ context: AssemblyContext) throws -> FeatureContribution {
        let (client, access, database, queue, localizer) = (client, access, context.database, context.queue, context.localizer)
        let configuration = context.configuration
        let offerPosts = configuration.owners.offerPosts
        let identity = bot.identity
        let broadcasts = BroadcastStore(database: database, logger: context.logger)
        let logger = context.logger
        return FeatureContribution(
            registerJobs: { registry in
                registry.register(TelegramMessageSender(client: client))
                registry.register(ChannelExporter(client: client, database: database, localizer: localizer))
                registry.register(
                    OfferPostPublisher(
                        client: client, database: database, localizer: localizer, queue: queue, settings: offerPosts, identity: identity
                    ))
                registry.register(OfferPostScanner(database: database, queue: queue, clock: offerPosts.clock))
                registry.register(
                    BroadcastSender(
                        store: broadcasts, delivery: TelegramBroadcastDelivery(client: client, database: database, logger: logger),
                        display: TelegramBroadcastProgress(client: client, localizer: localizer, logger: logger),
                        settings: BroadcastSenderSettings()
                    ))
                registry.register(BroadcastResumeScan(store: broadcasts, queue: queue))
                registry.register(UserNotifier(client: client, database: database, localizer: localizer))
                registry.register(
                    OwnerNotifier(
                        client: client, database: database, localizer: localizer, feePercent: configuration.subscriptions.platformFeePercent
                    ))
                registry.register(InviteDeliverer(service: access))
                registry.register(JoinRequestDecider(service: access))
                registry.register(MemberJoinChecker(service: access))
                registry.register(ExpirySweeper(service: access))
                registry.register(ReminderSender(service: access))
            },
            periodicTasks: [
                try OfferPostScanner.periodicTask(), try BroadcastResumeScan.periodicTask(),
                try ExpirySweeper.periodicTask(), try ReminderSender.periodicTask(),
            ]
        )
    }
}
