import App
import AsyncHTTPClient
import Bot
import Foundation
import Hummingbird
import Jobs
import Logging
import NIOCore
import Payments
import PostgresNIO
import Storage
import Subscriptions
import Synchronization
import TelegramBotAPI
import TelegramFake

/// From a `finished` IPN's POST to the moment the invite-link request leaves for Telegram: the IPN route,
/// inbox insert with its job, the processing job (payment re-fetch, grant, ledger, follow-up jobs), and the
/// invite job — the path that took at least two queued service hops in the original. The provider is an
/// in-memory stand-in, so its network time is not counted; Telegram is the fake Bot API over HTTP. Payments
/// arrive at a steady offered rate, each for its own buyer.
struct InviteLatencyBenchmark {
    var payments: Int
    var offeredRate: Int

    static let closedChat: Int64 = -1_001_999_000_001
    static let firstUser: Int64 = 500_000

    /// Answers every payment as finished for the order named after it.
    struct FinishedPayments: PaymentProvider {
        func createInvoice(_ request: InvoiceRequest) async throws(PaymentProviderError) -> Invoice {
            throw .invalidRequest(reason: "the benchmark creates no invoices")
        }

        func payment(id: String) async throws(PaymentProviderError) -> Payment {
            Payment(
                id: id, status: .finished, orderID: InviteLatencyBenchmark.orderID(Int64(id) ?? 0), priceAmount: 5, priceCurrency: "usd",
                payAmount: 1, actuallyPaid: 1, payCurrency: "eth"
            )
        }

        func payments(invoiceID: String) async throws(PaymentProviderError) -> [Payment]? { nil }
    }

    /// When each invite request was sent, by link name.
    final class RequestTimes: Sendable {
        let times = Mutex<[String: ContinuousClock.Instant]>([:])
    }

    /// The real Telegram adapter, noting when each invite request is sent.
    struct TimedAccess: ChannelAccess {
        let inner: TelegramChannelAccess
        let requested: RequestTimes

        func createInviteLink(chatID: Int64, name: String, mode: InviteMode, expiresAt: Date?) async throws(ChannelAccessError) -> String {
            requested.times.withLock { $0[name] = .now }
            return try await inner.createInviteLink(chatID: chatID, name: name, mode: mode, expiresAt: expiresAt)
        }

        func revokeInviteLink(chatID: Int64, link: String) async throws(ChannelAccessError) {
            try await inner.revokeInviteLink(chatID: chatID, link: link)
        }
        func approveJoinRequest(chatID: Int64, userID: Int64) async throws(ChannelAccessError) {
            try await inner.approveJoinRequest(chatID: chatID, userID: userID)
        }
        func declineJoinRequest(chatID: Int64, userID: Int64) async throws(ChannelAccessError) {
            try await inner.declineJoinRequest(chatID: chatID, userID: userID)
        }
        func memberStatus(chatID: Int64, userID: Int64) async throws(ChannelAccessError) -> ChannelMemberStatus {
            try await inner.memberStatus(chatID: chatID, userID: userID)
        }
        func banMember(chatID: Int64, userID: Int64) async throws(ChannelAccessError) { try await inner.banMember(chatID: chatID, userID: userID) }
        func unbanMember(chatID: Int64, userID: Int64) async throws(ChannelAccessError) {
            try await inner.unbanMember(chatID: chatID, userID: userID)
        }
    }

    static func orderID(_ index: Int64) -> String {
        "tp-bench" + String(format: "%011lld", index)
    }

    func run(database: Database, logger: Logger) async throws -> String {
        let fake = FakeBotAPI()
        await fake.addUser(id: 1, firstName: "Owner")
        await fake.addChannel(id: Self.closedChat, title: "Bench Club", owner: 1)
        let (botURL, botServer) = try await fake.start()
        defer { botServer.cancel() }
        try await seed(database: database, logger: logger)

        let client = TelegramClient(
            transport: HTTPTelegramTransport(baseURL: botURL, token: fake.token, logger: logger), limiter: nil, retry: .none, logger: logger
        )
        let requested = RequestTimes()
        let settings = SubscriptionSettings()
        let clock = SystemWallClock()
        let queue = JobQueue(database: database, logger: logger)
        let access = AccessService(
            database: database, queue: queue, access: TimedAccess(inner: TelegramChannelAccess(client: client), requested: requested),
            clock: clock, settings: settings, logger: logger
        )
        var registry = JobRegistry()
        registry.register(
            PaymentProcessor(database: database, queue: queue, provider: FinishedPayments(), clock: clock, settings: settings, logger: logger))
        registry.register(InviteDeliverer(service: access))
        let pool = JobWorkerPool(registry: registry, database: database, alertHook: LoggingJobAlertHook(logger: logger), logger: logger)
        let workers = Task { try await pool.run() }
        defer { pool.beginShutdown() }

        let secret = "bench-ipn-secret"
        let receiver = NOWPaymentsIPNReceiver.processing(secret: secret, database: database, queue: queue, logger: logger)
        let router = HTTPRoutes.buildRouter(
            readiness: IPNBenchmark.AlwaysReady(), telemetry: Telemetry(), maxBodyBytes: 1 << 20, nowPaymentsIPN: receiver, logger: logger
        )
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger
        )
        let server = Task { try await app.runService() }
        defer { server.cancel() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { return "invite latency: server did not start" }
        let url = "http://127.0.0.1:\(port)/payments/nowpayments/ipn"

        let signer = IPNSignatureVerifier(secret: secret)
        let callbacks: [(body: [UInt8], signature: String)] = (0..<payments).map { index in
            let body = Self.body(index: Int64(index))
            return (body.javaScriptText(), signer.sign(body))
        }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let started = ContinuousClock.now + .milliseconds(100)
        let interval = Duration.seconds(1) / offeredRate
        let sent = try await withThrowingTaskGroup(of: (Int, ContinuousClock.Instant).self) { group in
            for index in 0..<payments {
                let due = started + interval * index
                try await Task.sleep(until: due, clock: .continuous)
                group.addTask {
                    let at = ContinuousClock.now
                    try await IPNBenchmark.post(client: http, url: url, callbacks[index])
                    return (index, at)
                }
            }
            return try await group.reduce(into: [Int: ContinuousClock.Instant]()) { $0[$1.0] = $1.1 }
        }
        try await http.shutdown()
        let deadline = ContinuousClock.now + .seconds(120)
        while requested.times.withLock({ $0.count }) < payments, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        pool.beginShutdown()
        try await workers.value

        // Invite names carry the subscription id; each subscription belongs to one buyer, who is one payment.
        let buyers = try await database.withConnection { connection in
            let rows = try await connection.query("SELECT id, user_id FROM subscriptions", logger: logger)
            var buyers: [Int64: Int64] = [:]
            for try await (id, user) in rows.decode((Int64, Int64).self) { buyers[id] = user }
            return buyers
        }
        var latencies: [Duration] = []
        for (name, at) in requested.times.withLock({ $0 }) {
            guard let id = Int64(name.dropFirst("TelePay ".count)), let user = buyers[id], let sentAt = sent[Int(user - Self.firstUser)] else {
                continue
            }
            latencies.append(at - sentAt)
        }
        return String(
            format: "invite latency: %d finished payments at %d/s: IPN POST → createChatInviteLink sent p50 %@, p99 %@, max %@ (%d of %d measured)",
            payments, offeredRate, IPNBenchmark.percentile(latencies, 0.5), IPNBenchmark.percentile(latencies, 0.99),
            IPNBenchmark.percentile(latencies, 1.0), latencies.count, payments
        )
    }

    /// The owner, the channel with one tier, and one buyer with an open order per payment.
    func seed(database: Database, logger: Logger) async throws {
        try await database.withTransaction { connection in
            try await connection.query("INSERT INTO telegram_users (id, first_name) VALUES (1, 'Owner')", logger: logger)
            try await connection.query("INSERT INTO owners (user_id) VALUES (1)", logger: logger)
            let rows = try await connection.query(
                """
                INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, status)
                VALUES (1, \(Self.closedChat), 'Bench Club', \(Self.closedChat - 1), 'Bench Open', 'active') RETURNING id
                """,
                logger: logger
            )
            var channel: Int64 = 0
            for try await (id) in rows.decode(Int64.self) { channel = id }
            try await connection.query(
                "INSERT INTO channel_tiers (channel_id, position, price_usd, duration_days) VALUES (\(channel), 1, 5.00, 30)", logger: logger
            )
            try await connection.query(
                """
                INSERT INTO telegram_users (id, first_name)
                SELECT \(Self.firstUser) + n, 'Buyer' FROM generate_series(0, \(payments - 1)) AS n
                """,
                logger: logger
            )
            try await connection.query(
                """
                INSERT INTO orders (public_id, user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days,
                                    closed_chat_id, closed_title, status)
                SELECT 'tp-bench' || lpad(n::text, 11, '0'), \(Self.firstUser) + n, \(channel), 1, 1, 5.00, 30,
                       \(Self.closedChat), 'Bench Club', 'awaiting_payment'
                FROM generate_series(0, \(payments - 1)) AS n
                """,
                logger: logger
            )
        }
    }

    /// A `finished` IPN for payment `index`, whose id is the index.
    static func body(index: Int64) -> ExactJSON {
        .object([
            .init("payment_id", .number(JSONNumber(index))),
            .init("invoice_id", .number(JSONNumber(index + 1_000_000_000))),
            .init("payment_status", .text("finished")),
            .init("price_amount", .number(JSONNumber(literal: "5")!)),
            .init("price_currency", .text("usd")),
            .init("order_id", .text(orderID(index))),
        ])
    }
}
