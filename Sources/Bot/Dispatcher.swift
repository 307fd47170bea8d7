import Broadcasts
import Foundation
import Jobs
import Localization
import Logging
import Payouts
import Storage
import TelegramBotAPI

/// What handlers need from the rest of TelePay.
public struct BotServices: Sendable {
    public var client: TelegramClient
    public var database: Database
    public var localizer: Localizer
    public var logger: Logger
    /// Durable sends (owner notices that must not be lost); direct sends when absent.
    public var jobs: JobQueue?
    /// The bot's own id and username, fetched once (the process shares one).
    public let botIdentity: BotIdentity

    public init(
        client: TelegramClient, database: Database, localizer: Localizer, logger: Logger, jobs: JobQueue? = nil,
        botIdentity: BotIdentity = BotIdentity()
    ) {
        self.client = client
        self.database = database
        self.localizer = localizer
        self.logger = logger
        self.jobs = jobs
        self.botIdentity = botIdentity
    }

    /// The owner's channel screens' reads and changes.
    public var channels: ChannelDesk { ChannelDesk(database: database, jobs: jobs, logger: logger) }
    /// Writes and uploads owners' CSV exports (the `channels.export` job's handler, or directly without jobs).
    public var exporter: ChannelExporter { ChannelExporter(client: client, database: database, localizer: localizer) }
    /// The person's language, blocked state and conversations.
    public var users: UserDesk { UserDesk(database: database, logger: logger) }
    /// The admin commands' reads and changes.
    public var admin: AdminDesk { AdminDesk(database: database, logger: logger) }
    /// Owners' balances and payouts, and the admins' view of failed ones.
    public var payouts: PayoutDesk { PayoutDesk(database: database, logger: logger) }
    public var platformStats: PlatformStatsStore { PlatformStatsStore(database: database, logger: logger) }
    public var broadcasts: BroadcastStore { BroadcastStore(database: database, logger: logger) }
    /// The owner's open "how many days?" questions for a broadcast's audience.
    public var audiencePrompts: AudiencePromptStore { AudiencePromptStore(database: database, logger: logger) }
}

/// Everything a handler knows about the update it is handling.
public struct UpdateContext: Sendable {
    public let update: Update
    public let services: BotServices
    /// The chat to answer in, when the update has one.
    public let chatID: Int64?
    /// The person the update is from.
    public let user: User?
    public var language: String
    public var logger: Logger
    let callbackAnswer: CallbackAnswerState

    /// The message whose button was pressed, for a callback query that has one.
    public var callbackMessageID: Int64? {
        switch update.callbackQuery?.message {
        case .message(let message): message.messageId
        case .inaccessibleMessage(let message): message.messageId
        case nil: nil
        }
    }

    /// Localized text in the user's language.
    public func text(_ key: String, _ arguments: [String: String] = [:], count: Int? = nil) -> String {
        services.localizer.text(key, language: language, arguments, count: count)
    }

    /// Sends `key`, localized, to the update's chat.
    @discardableResult
    public func reply(_ key: String, _ arguments: [String: String] = [:], markup: ReplyMarkup? = nil) async throws -> Message? {
        guard let chatID else { return nil }
        return try await services.client.send(
            SendMessage(
                chatId: .id(chatID), text: text(key, arguments), parseMode: "HTML",
                linkPreviewOptions: LinkPreviewOptions(isDisabled: true), replyMarkup: markup
            ))
    }

    /// Answers the update's callback query (at most once; the dispatcher answers any left unanswered).
    public func answerCallback(text: String? = nil) async throws {
        guard let query = update.callbackQuery, await callbackAnswer.claim() else { return }
        try await services.client.send(AnswerCallbackQuery(callbackQueryId: query.id, text: text))
    }
}

/// Remembers whether a callback query was answered, so it is answered exactly once.
actor CallbackAnswerState {
    private var answered = false

    func claim() -> Bool {
        defer { answered = true }
        return !answered
    }
}

public typealias UpdateHandler = @Sendable (UpdateContext) async throws -> Void

/// Which handler an update goes to.
public struct BotRouter: Sendable {
    var commands: [String: UpdateHandler] = [:]
    var callbacks: [@Sendable (CallbackData, UpdateContext) async throws -> Bool] = []
    var messages: [@Sendable (UpdateContext) async throws -> Bool] = []
    var text: UpdateHandler?
    var unknownCommand: UpdateHandler?
    var myChatMember: [UpdateHandler] = []
    var chatMember: UpdateHandler?
    var joinRequest: UpdateHandler?

    public init() {}

    public mutating func command(_ name: String, _ handler: @escaping UpdateHandler) {
        commands[name] = handler
    }

    /// A callback handler returns `false` when the data is not for it.
    public mutating func callback(_ handler: @escaping @Sendable (CallbackData, UpdateContext) async throws -> Bool) {
        callbacks.append(handler)
    }

    /// A handler for messages that are not commands (answers to a form's question, shared chats); it
    /// returns `false` when the message is not for it, and the next one (finally `onText`) gets it.
    public mutating func onMessage(_ handler: @escaping @Sendable (UpdateContext) async throws -> Bool) {
        messages.append(handler)
    }

    public mutating func onText(_ handler: @escaping UpdateHandler) { text = handler }
    public mutating func onUnknownCommand(_ handler: @escaping UpdateHandler) { unknownCommand = handler }
    /// Every registered handler sees each change of the bot's own membership (private chats and channels).
    public mutating func onMyChatMember(_ handler: @escaping UpdateHandler) { myChatMember.append(handler) }
    public mutating func onChatMember(_ handler: @escaping UpdateHandler) { chatMember = handler }
    public mutating func onJoinRequest(_ handler: @escaping UpdateHandler) { joinRequest = handler }

    public var registeredCommands: Set<String> { Set(commands.keys) }

    /// `/name@bot args` → ("name", "args").
    static func parseCommand(_ text: String) -> (name: String, arguments: String)? {
        guard text.hasPrefix("/") else { return nil }
        let head = text.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        let command = head[0].dropFirst().split(separator: "@", maxSplits: 1).first.map(String.init) ?? ""
        guard !command.isEmpty else { return nil }
        return (command.lowercased(), head.count > 1 ? String(head[1]) : "")
    }

    func route(_ context: UpdateContext) async throws {
        let update = context.update
        if let message = update.message {
            if let text = message.text, let (name, _) = Self.parseCommand(text) {
                if let handler = commands[name] {
                    try await handler(context)
                } else {
                    try await unknownCommand?(context)
                }
            } else {
                for handler in messages where try await handler(context) { return }
                try await text?(context)
            }
        } else if let query = update.callbackQuery {
            if let data = query.data.flatMap(CallbackData.init) {
                for handler in callbacks where try await handler(data, context) { return }
            }
            // Data we cannot read comes from a menu drawn by an older version or for a finished flow.
            try await context.answerCallback(text: context.text(L10n.menuOutdated))
        } else if update.myChatMember != nil {
            for handler in myChatMember { try await handler(context) }
        } else if update.chatMember != nil {
            try await chatMember?(context)
        } else if update.chatJoinRequest != nil {
            try await joinRequest?(context)
        }
    }
}

/// Runs updates through the middleware and the router: updates of one (chat, user) strictly in order,
/// different ones in parallel up to `maxConcurrency`.
public actor Dispatcher {
    struct Key: Hashable {
        var chat: Int64
        var user: Int64
    }

    public let router: BotRouter
    public let services: BotServices
    private let semaphore: AsyncSemaphore
    private var tails: [Key: Task<Void, Never>] = [:]

    public init(router: BotRouter, services: BotServices, maxConcurrency: Int = 32) {
        self.router = router
        self.services = services
        self.semaphore = AsyncSemaphore(maxConcurrency)
    }

    /// Handles a batch (as `getUpdates` delivers it) and returns once every update is done — its effects
    /// committed or its failure logged — with the instant each finished. The batch's senders are recorded
    /// in one statement first, instead of one round trip per update.
    @discardableResult
    public func dispatch(_ updates: [Update]) async -> [ContinuousClock.Instant] {
        let known: [Int64: String?]
        do {
            known = try await TelegramUserStore.record(updates, on: services.database)
        } catch {
            services.logger.warning("could not record a batch's senders; recording one by one", metadata: ["error": "\(String(reflecting: error))"])
            known = [:]
        }
        var tasks: [Task<ContinuousClock.Instant, Never>] = []
        for update in updates {
            let chosen = Self.sender(of: update).flatMap { known[$0.id] }
            let handled = submit(update, chosenLanguage: chosen)
            tasks.append(
                Task {
                    await handled.value; return .now
                })
        }
        var finished: [ContinuousClock.Instant] = []
        for task in tasks { finished.append(await task.value) }
        return finished
    }

    /// Queues one update behind earlier ones of the same chat and user. `chosenLanguage` carries the
    /// sender's stored choice when the caller already recorded them (`.some(nil)`: recorded, no choice).
    public func submit(_ update: Update, chosenLanguage: String?? = nil) -> Task<Void, Never> {
        let key = Self.key(of: update)
        let previous = key.flatMap { tails[$0] }
        let task = Task { [semaphore] in
            await previous?.value
            await semaphore.acquire()
            await self.handle(update, chosenLanguage: chosenLanguage)
            await semaphore.release()
        }
        if let key {
            tails[key] = task
            Task {
                await task.value; self.forget(key, task)
            }
        }
        return task
    }

    private func forget(_ key: Key, _ task: Task<Void, Never>) {
        if tails[key] == task { tails[key] = nil }
    }

    static func key(of update: Update) -> Key? {
        if let message = update.message { return Key(chat: message.chat.id, user: message.from?.id ?? 0) }
        if let query = update.callbackQuery { return Key(chat: chat(of: query), user: query.from.id) }
        if let change = update.myChatMember { return Key(chat: change.chat.id, user: change.from.id) }
        if let change = update.chatMember { return Key(chat: change.chat.id, user: Self.user(of: change.newChatMember).id) }
        if let request = update.chatJoinRequest { return Key(chat: request.chat.id, user: request.from.id) }
        return nil
    }

    static func user(of member: ChatMember) -> User {
        switch member {
        case .owner(let value): return value.user
        case .administrator(let value): return value.user
        case .member(let value): return value.user
        case .restricted(let value): return value.user
        case .left(let value): return value.user
        case .banned(let value): return value.user
        }
    }

    static func sender(of update: Update) -> User? {
        update.message?.from ?? update.callbackQuery?.from ?? update.myChatMember?.from
            ?? update.chatJoinRequest?.from ?? update.chatMember.map { user(of: $0.newChatMember) }
    }

    static func chat(of update: Update) -> Int64? {
        if let message = update.message { return message.chat.id }
        if let query = update.callbackQuery { return chat(of: query) }
        // Membership updates and join requests have no conversation to answer in.
        return nil
    }

    /// The chat of the message a button was pressed on (the presser's private chat when none is given).
    static func chat(of query: CallbackQuery) -> Int64 {
        switch query.message {
        case .message(let message): return message.chat.id
        case .inaccessibleMessage(let message): return message.chat.id
        case nil: return query.from.id
        }
    }

    /// Join requests and member changes have nobody to apologise to, and their handlers only hand them to
    /// durable jobs (one insert). A hand-off that fails — the database briefly unreachable — is tried again
    /// a few times, doubling the wait, before the update is given up: the offset moves on after it.
    static let handOffAttempts = 5
    static let handOffFirstDelay = Duration.milliseconds(200)

    private func routeRetryingHandOff(_ context: UpdateContext) async throws {
        guard context.update.chatJoinRequest != nil || context.update.chatMember != nil else {
            return try await router.route(context)
        }
        var delay = Self.handOffFirstDelay
        for attempt in 1...Self.handOffAttempts {
            do {
                return try await router.route(context)
            } catch  where attempt < Self.handOffAttempts && !Task.isCancelled {
                context.logger.warning(
                    "handing a membership update to its job failed; trying again",
                    metadata: [
                        "attempt": "\(attempt)", "error": "\(String(reflecting: error))",
                    ])
                try await Task.sleep(for: delay)
                delay *= 2
            }
        }
    }

    /// Logging, error boundary, locale resolution, routing, and the answer every callback query must get.
    private func handle(_ update: Update, chosenLanguage: String??) async {
        var logger = services.logger
        logger[metadataKey: "update_id"] = "\(update.updateId)"
        let user = Self.sender(of: update)
        var context = UpdateContext(
            update: update, services: services, chatID: Self.chat(of: update), user: user,
            language: Localizer.fallbackLanguage, logger: logger, callbackAnswer: CallbackAnswerState()
        )
        do {
            let chosen: String?
            if let recorded = chosenLanguage {
                chosen = recorded
            } else {
                chosen = try await TelegramUserStore.record([update], on: services.database)[user?.id ?? 0] ?? nil
            }
            context.language = services.localizer.resolveLanguage(chosen: chosen, telegramCode: user?.languageCode)
            try await routeRetryingHandOff(context)
            try await context.answerCallback()
        } catch {
            logger.error("update handler failed", metadata: ["error": "\(String(reflecting: error))"])
            // The person gets a plain apology; the log line above has the detail.
            if update.callbackQuery != nil {
                try? await context.answerCallback(text: context.text(L10n.errorGeneric))
            } else if context.chatID.map({ $0 > 0 }) == true {
                _ = try? await context.reply(L10n.errorGeneric)
            }
        }
    }
}
