import Bot
import Broadcasts
import Conversations
import Foundation
import Jobs
import Localization
import Logging
import Storage
import TelegramBotAPI

/// The bot as TelePay runs it: checks the token, publishes the command menu, then long-polls.
struct TelegramBot: Sendable {
    let client: TelegramClient
    let dispatcher: Dispatcher
    let database: Database
    let localizer: Localizer
    let logger: Logger
    let mode: TelegramMode
    let webhook: (url: String, secret: Secret, wakeUps: WakeUpSignal)?
    /// Who the bot is, learnt at start; the process's one record of it.
    let identity: BotIdentity

    /// The Bot API client for the configured server and token.
    static func makeClient(configuration: Configuration, token: Secret, logger: Logger) -> TelegramClient {
        let transport = HTTPTelegramTransport(baseURL: configuration.telegramAPIURL.absoluteString, token: token.value, logger: logger)
        return TelegramClient(transport: transport, logger: logger)
    }

    /// `subscriber`, when given, adds offers, purchases and closed-channel gating to the core commands;
    /// `conversations` are the checked `Conversations/*.yaml` forms the owner screens run; the handlers read
    /// `identity`, which the bot fills in when it starts.
    init(
        configuration: Configuration, client: TelegramClient, database: Database, localizer: Localizer,
        conversations: [ConversationDefinition], subscriber: SubscriberCommands?, identity: BotIdentity,
        jobs: JobQueue, logger: Logger
    ) throws {
        let router = try BotAssembly.router(
            conversations: conversations, settings: configuration.owners, subscriber: subscriber,
            broadcasts: BroadcastCommands(admins: Set(configuration.adminTelegramIDs), settings: configuration.broadcasts)
        )
        let services = BotServices(client: client, database: database, localizer: localizer, logger: logger, jobs: jobs, botIdentity: identity)
        self.client = client
        self.dispatcher = Dispatcher(router: router, services: services, maxConcurrency: configuration.telegramConcurrency)
        self.database = database
        self.localizer = localizer
        self.logger = logger
        self.identity = identity
        self.mode = configuration.telegramMode
        if configuration.telegramMode == .webhook, let publicURL = configuration.publicURL, let secret = configuration.telegramWebhookSecret {
            webhook = (publicURL.absoluteString + "/" + TelegramWebhookRoute.path, secret, WakeUpSignal())
        } else {
            webhook = nil
        }
    }

    /// The webhook route to serve, in webhook mode.
    func webhookRoute(maxBodyBytes: Int) -> TelegramWebhookRoute? {
        webhook.map { TelegramWebhookRoute(secret: $0.secret, database: database, wakeUps: $0.wakeUps, maxBodyBytes: maxBodyBytes, logger: logger) }
    }

    func run() async throws {
        let me: User
        do {
            me = try await client.send(GetMe())
        } catch .unauthorized {
            throw LongPollingError.unauthorized
        }
        logger.notice("Telegram bot connected", metadata: ["bot": "@\(me.username ?? String(me.id))"])
        identity.remember(me)
        try await CoreCommands.publishCommandMenu(client: client, localizer: localizer)
        if let webhook {
            try await client.send(SetWebhook(url: webhook.url, allowedUpdates: LongPollingSource.allowedUpdates, secretToken: webhook.secret.value))
            logger.notice("Telegram webhook registered", metadata: ["url": "\(webhook.url)"])
            try await WebhookProcessor(dispatcher: dispatcher, database: database, wakeUps: webhook.wakeUps, logger: logger).run()
        } else {
            try await LongPollingSource(client: client, dispatcher: dispatcher, database: database, botID: me.id, logger: logger).run()
        }
    }
}
