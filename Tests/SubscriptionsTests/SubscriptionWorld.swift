import Bot
import Foundation
import Jobs
import Localization
import Logging
import NOWPaymentsFake
import Payments
import PostgresNIO
import Storage
import Subscriptions
import Synchronization
import TelegramBotAPI
import TelegramFake
import TestSupport
import Testing

/// A clock the test moves by hand.
final class TestClock: WallClock {
    private let current = Mutex(Date())

    func now() -> Date { current.withLock { $0 } }

    func set(_ date: Date) {
        current.withLock { $0 = date }
    }

    func advance(days: Double = 0, seconds: Double = 0) {
        current.withLock { $0 = $0.addingTimeInterval(days * 86_400 + seconds) }
    }
}

/// Payment and access alerts as raised, in order, as the admins would get them.
final class RecordedAlerts: SubscriptionAlertSink {
    private let alerts = Mutex<[SubscriptionAlert]>([])

    func raise(_ alert: SubscriptionAlert) async throws {
        alerts.withLock { $0.append(alert) }
    }

    var all: [SubscriptionAlert] { alerts.withLock { $0 } }
}

/// Everything a subscriber purchase touches, running: a migrated database, the fake Bot API with a channel
/// pair on sale, the fake NOWPayments, the bot polling with purchases wired in, and the job workers.
/// IPNs go through the real receiver (signature check, inbox, enqueue) exactly as the HTTP route calls it.
struct SubscriptionWorld: Sendable {
    static let anna: Int64 = 1001
    static let boris: Int64 = 1002
    static let owner: Int64 = 2001
    static let admin: Int64 = 2002
    static let closedChat: Int64 = -1_001_000_000_001
    static let openChat: Int64 = -1_001_000_000_002

    let database: Database
    let bot: FakeBotAPI
    let provider: FakeNOWPayments
    let receiver: NOWPaymentsIPNReceiver
    let purchases: PurchaseService
    let access: AccessService
    let processor: PaymentProcessor
    let rechecker: PaymentRechecker
    let alerts: RecordedAlerts
    let clock: TestClock
    let queue: JobQueue
    /// The job workers; running unless the world was made with `workers: false`.
    let pool: JobWorkerPool
    let channelID: Int64
    let offerToken: String
    let localizer: Localizer

    static let localizer: Localizer = {
        do {
            return try Localizer.load(directory: RepositoryPaths.root + "/Localization")
        } catch {
            fatalError("catalogs do not load: \(error)")
        }
    }()

    func text(_ key: String, _ arguments: [String: String] = [:], language: String = "en") -> String {
        localizer.text(key, language: language, arguments)
    }

    func days(_ count: Int, language: String = "en") -> String {
        localizer.text("days.count", language: language, count: count)
    }

    // MARK: - Acting like users and like NOWPayments

    /// The newest inline keyboard labels in a user's chat.
    func buttons(of user: Int64) async -> [String] {
        await bot.lastMessage(to: user)?.keyboard?.inlineKeyboard.joined().map(\.text) ?? []
    }

    /// The URL of the newest button labelled `label` in the user's chat.
    func url(of label: String, for user: Int64) async -> String? {
        for message in await bot.sentMessages(to: user).reversed() {
            for button in (message.keyboard?.inlineKeyboard ?? []).joined() where button.text == label {
                if case .url(let url) = button.action { return url }
            }
        }
        return nil
    }

    /// The user opens the offer link, taps the tier button, and gets the invoice; returns the invoice.
    func buyThroughBot(_ user: Int64, tierLabel: String) async throws -> FakeNOWPayments.Invoice {
        let before = await provider.invoices.count
        await bot.userSendsText(user, "/start \(offerToken)")
        try await eventually("the offer shows \(tierLabel)") { await buttons(of: user).contains(tierLabel) }
        try await bot.userTapsButton(user, label: tierLabel)
        try await eventually("the invoice exists") { await provider.invoices.count > before }
        try await eventually("the pay button arrives") { await url(of: text("purchase.pay_button"), for: user) != nil }
        return try #require(await newestInvoice(of: user))
    }

    /// The newest invoice made for one of the user's orders.
    func newestInvoice(of user: Int64) async throws -> FakeNOWPayments.Invoice? {
        let mine = Set(try await orderIDs(of: user))
        return await provider.invoices.values
            .filter { mine.contains($0.orderID ?? "") }
            .max { (Int64($0.id) ?? 0) < (Int64($1.id) ?? 0) }
    }

    /// The provider's public order ids of a user's orders.
    func orderIDs(of user: Int64) async throws -> [String] {
        try await strings("SELECT public_id FROM orders WHERE user_id = \(user) ORDER BY id")
    }

    /// Delivers the IPN to the receiver the way the HTTP route does; returns what the receiver said.
    @discardableResult
    func deliver(_ ipn: FakeNOWPayments.IPN) async throws -> IPNReceipt {
        try await receiver.receive(body: ipn.body, signature: ipn.signature)
    }

    /// The buyer pays the invoice: a payment appears and moves through `statuses`, each IPN delivered.
    @discardableResult
    func pay(_ invoice: FakeNOWPayments.Invoice, through statuses: [String] = ["waiting", "confirming", "confirmed", "sending", "finished"])
        async throws -> Int64
    {
        let payment = try await provider.startPayment(invoiceID: invoice.id, payAmount: Decimal(string: "0.0041")!)
        for status in statuses {
            try await deliver(try await provider.setStatus(payment, status))
        }
        return payment
    }

    // MARK: - Reading the database

    func orderStatus(_ publicID: String) async throws -> String? {
        try await strings("SELECT status FROM orders WHERE public_id = \(publicID)").first
    }

    func waitForOrder(_ publicID: String, _ status: String) async throws {
        try await eventually("order \(publicID) is \(status)") { try await orderStatus(publicID) == status }
    }

    func subscription(of user: Int64) async throws -> (status: String, expiresAt: Date)? {
        try await database.withConnection { connection in
            let rows = try await connection.query(
                "SELECT status, expires_at FROM subscriptions WHERE user_id = \(user) AND channel_id = \(channelID)", logger: quietLogger
            )
            for try await (status, expires) in rows.decode((String, Date).self) { return (status, expires) }
            return nil
        }
    }

    func count(_ sql: PostgresQuery) async throws -> Int {
        try await database.withConnection { connection in
            let rows = try await connection.query(sql, logger: quietLogger)
            var count = 0
            for try await (value) in rows.decode(Int.self) { count = value }
            return count
        }
    }

    func strings(_ sql: PostgresQuery) async throws -> [String] {
        try await database.withConnection { connection in
            let rows = try await connection.query(sql, logger: quietLogger)
            var values: [String] = []
            for try await (value) in rows.decode(String.self) { values.append(value) }
            return values
        }
    }

    /// Messages a user got whose text contains `fragment`.
    func messages(to user: Int64, containing fragment: String) async -> [String] {
        await bot.sentMessages(to: user).map(\.text).filter { $0.contains(fragment) }
    }

    /// Waits (generously: the machine may be loaded) until `condition` holds.
    func eventually(_ what: String, seconds: Double = 45, _ condition: @Sendable () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("timed out waiting for: \(what)")
        throw WorldError.timedOut(what)
    }

    enum WorldError: Error {
        case timedOut(String)
    }
}

/// Runs `body` in a fresh world. `settings` adjusts the purchase settings (fee, tolerance, invite mode…);
/// with `workers: false` no job runs until the test runs `world.pool` itself.
func withSubscriptionWorld<Result: Sendable>(
    settings: SubscriptionSettings = SubscriptionSettings(publicURL: URL(string: "https://telepay.example")!),
    workers runsWorkers: Bool = true,
    _ body: @Sendable (SubscriptionWorld) async throws -> Result
) async throws -> Result {
    try await withMigratedDatabase(poolSize: 12) { database in
        let bot = FakeBotAPI()
        await bot.addUser(id: SubscriptionWorld.anna, firstName: "Anna", languageCode: "en")
        await bot.addUser(id: SubscriptionWorld.boris, firstName: "Boris", languageCode: "en")
        await bot.addUser(id: SubscriptionWorld.owner, firstName: "Olga", languageCode: "en")
        await bot.addUser(id: SubscriptionWorld.admin, firstName: "Adam", languageCode: "en")
        await bot.addChannel(id: SubscriptionWorld.closedChat, title: "Secret Club", owner: SubscriptionWorld.owner)
        await bot.addChannel(id: SubscriptionWorld.openChat, title: "Open Club", owner: SubscriptionWorld.owner)
        await bot.makeAdministrator(chat: SubscriptionWorld.closedChat, user: SubscriptionWorld.admin)
        let (botURL, botServer) = try await bot.start()
        defer { botServer.cancel() }
        let provider = FakeNOWPayments()
        let (providerURL, providerServer) = try await provider.start()
        defer { providerServer.cancel() }

        let (channelID, offerToken) = try await seedChannel(database)
        let client = TelegramClient(
            transport: HTTPTelegramTransport(baseURL: botURL, token: bot.token, logger: quietLogger), limiter: nil, retry: .none, logger: quietLogger
        )
        let nowPayments = NOWPaymentsClient(
            configuration: .init(baseURL: URL(string: providerURL)!, apiKey: provider.apiKey, retry: .none, account: provider.account),
            logger: quietLogger
        )
        let clock = TestClock()
        await provider.useClock { clock.now() }
        let queue = JobQueue(database: database, logger: quietLogger)
        let purchases = PurchaseService(database: database, provider: nowPayments, settings: settings, clock: clock, logger: quietLogger)
        let access = AccessService(
            database: database, queue: queue, access: TelegramChannelAccess(client: client), clock: clock, settings: settings, logger: quietLogger
        )
        let processor = PaymentProcessor(
            database: database, queue: queue, provider: nowPayments, clock: clock, settings: settings, logger: quietLogger)
        let receiver = NOWPaymentsIPNReceiver.processing(secret: provider.ipnSecret, database: database, queue: queue, logger: quietLogger)
        let rechecker = PaymentRechecker(processor: processor)
        let alerts = RecordedAlerts()

        var registry = JobRegistry()
        registry.register(processor)
        registry.register(SubscriptionAlertDeliverer(sink: alerts))
        registry.register(InviteDeliverer(service: access))
        registry.register(JoinRequestDecider(service: access))
        registry.register(MemberJoinChecker(service: access))
        registry.register(UserNotifier(client: client, database: database, localizer: SubscriptionWorld.localizer))
        registry.register(
            OwnerNotifier(client: client, database: database, localizer: SubscriptionWorld.localizer, feePercent: settings.platformFeePercent))
        let pool = JobWorkerPool(
            registry: registry, database: database,
            configuration: JobWorkerConfiguration(pollInterval: .milliseconds(100)),
            alertHook: LoggingJobAlertHook(logger: quietLogger), logger: quietLogger
        )
        var router = BotRouter()
        SubscriberCommands(purchases: purchases, access: access).register(into: &router)
        let dispatcher = Dispatcher(
            router: router, services: BotServices(client: client, database: database, localizer: SubscriptionWorld.localizer, logger: quietLogger),
            maxConcurrency: 8
        )
        let poller = LongPollingSource(
            client: client, dispatcher: dispatcher, database: database, botID: bot.bot.id, pollTimeoutSeconds: 1, logger: quietLogger)
        let polling = Task { try await poller.run() }
        defer { polling.cancel() }
        let workers = runsWorkers ? Task { try await pool.run() } : nil
        defer { pool.beginShutdown() }

        let world = SubscriptionWorld(
            database: database, bot: bot, provider: provider, receiver: receiver, purchases: purchases, access: access,
            processor: processor, rechecker: rechecker, alerts: alerts, clock: clock, queue: queue, pool: pool, channelID: channelID,
            offerToken: offerToken, localizer: SubscriptionWorld.localizer
        )
        let result = try await body(world)
        pool.beginShutdown()
        try? await workers?.value
        return result
    }
}

/// The owner, their channel pair (active) and its tiers: 1 = $10.00 / 30 days, 2 = $25.50 / 90 days,
/// 3 = $99.99 / 365 days but disabled.
private func seedChannel(_ database: Database) async throws -> (Int64, String) {
    try await database.withTransaction { connection in
        try await connection.query(
            """
            INSERT INTO telegram_users (id, first_name, telegram_language) VALUES
                (\(SubscriptionWorld.anna), 'Anna', 'en'), (\(SubscriptionWorld.boris), 'Boris', 'en'),
                (\(SubscriptionWorld.owner), 'Olga', 'en'), (\(SubscriptionWorld.admin), 'Adam', 'en')
            """,
            logger: quietLogger
        )
        try await connection.query("INSERT INTO owners (user_id) VALUES (\(SubscriptionWorld.owner))", logger: quietLogger)
        let rows = try await connection.query(
            """
            INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, closed_description, status)
            VALUES (\(SubscriptionWorld.owner), \(SubscriptionWorld.closedChat), 'Secret Club', \(SubscriptionWorld.openChat), 'Open Club',
                    'Daily <b>alpha</b> & more', 'active')
            RETURNING id, offer_token
            """,
            logger: quietLogger
        )
        var channel: (Int64, String)?
        for try await row in rows.decode((Int64, String).self) { channel = row }
        let (id, token) = try #require(channel)
        // Sales are announced to the owner.
        try await connection.query(
            """
            INSERT INTO channel_payout_settings (channel_id, currency_code, network_code, wallet_address, notifications_enabled, notification_user_id)
            VALUES (\(id), 'USDT', 'ETH', '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', true, \(SubscriptionWorld.owner))
            """,
            logger: quietLogger
        )
        try await connection.query(
            """
            INSERT INTO channel_tiers (channel_id, position, price_usd, duration_days, enabled) VALUES
                (\(id), 1, 10.00, 30, true), (\(id), 2, 25.50, 90, true), (\(id), 3, 99.99, 365, false)
            """,
            logger: quietLogger
        )
        return (id, token)
    }
}
