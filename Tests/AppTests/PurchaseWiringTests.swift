import App
import Foundation
import Logging
import NOWPaymentsFake
import PostgresNIO
import Storage
import TelegramBotAPI
import TelegramFake
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@Suite("TelePay purchases, wired")
struct PurchaseWiringTests {
    static let closedChat: Int64 = -1_001_000_000_011
    static let openChat: Int64 = -1_001_000_000_012

    func get(_ url: String) async throws -> (Int, String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    func waitFor(_ what: String, _ condition: @Sendable () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting for \(what)")
        throw CancellationError()
    }

    @Test("the whole process: offer link, invoice, IPN over HTTP, processing job, invite, join request, return page")
    func endToEnd() async throws {
        let bot = FakeBotAPI()
        await bot.addUser(id: 1001, firstName: "Anna", languageCode: "en")
        await bot.addUser(id: 2001, firstName: "Olga", languageCode: "en")
        await bot.addChannel(id: Self.closedChat, title: "Secret Club", owner: 2001)
        let (botURL, botServer) = try await bot.start()
        defer { botServer.cancel() }
        let provider = FakeNOWPayments()
        let (providerURL, providerServer) = try await provider.start()
        defer { providerServer.cancel() }
        let dataDirectory = try RepositoryPaths.makeTemporaryDirectory("telepay-buy")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let configuration = try Configuration.load(environment: [
            "TELEPAY_DATA_DIR": dataDirectory, "TELEPAY_HTTP_PORT": "0", "TELEPAY_RESOURCES_DIR": RepositoryPaths.root,
            "TELEGRAM_BOT_TOKEN": bot.token, "TELEPAY_TELEGRAM_API_URL": botURL,
            "TELEPAY_PUBLIC_URL": "https://telepay.example.com",
            "TELEPAY_NOWPAYMENTS_API_URL": providerURL, "TELEPAY_NOWPAYMENTS_API_KEY": provider.apiKey,
            "TELEPAY_NOWPAYMENTS_IPN_SECRET": provider.ipnSecret, "TELEPAY_JOBS_POLL_INTERVAL_MS": "200",
        ])
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = try await TelePayApplication.build(
            configuration: configuration, logger: quietLogger, gracefulShutdownSignals: [], onServerRunning: { continuation.yield($0) }
        )
        let running = Task { try await application.run() }
        do {
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let database = application.database.database
            let token = try await database.withTransaction { connection in
                try await connection.query("INSERT INTO telegram_users (id, first_name) VALUES (2001, 'Olga')", logger: quietLogger)
                try await connection.query("INSERT INTO owners (user_id) VALUES (2001)", logger: quietLogger)
                let rows = try await connection.query(
                    """
                    INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, status)
                    VALUES (2001, \(Self.closedChat), 'Secret Club', \(Self.openChat), 'Open Club', 'active') RETURNING id, offer_token
                    """,
                    logger: quietLogger
                )
                var channel: (Int64, String)?
                for try await row in rows.decode((Int64, String).self) { channel = row }
                let (id, token) = try #require(channel)
                try await connection.query(
                    "INSERT INTO channel_tiers (channel_id, position, price_usd, duration_days) VALUES (\(id), 1, 5.00, 7)", logger: quietLogger
                )
                return token
            }

            // Tier-specific deep link: straight to the invoice.
            await bot.userSendsText(1001, "/start t1\(token)")
            try await waitFor("the pay button") {
                await bot.lastMessage(to: 1001)?.keyboard?.inlineKeyboard.joined().contains { $0.text == "💰 Pay" } == true
            }
            let invoice = try #require(await provider.invoices.values.first)
            #expect(invoice.priceAmount == "5")
            let orderID = try #require(invoice.orderID)
            let returnURL = "http://127.0.0.1:\(port)/payments/return?order=\(orderID)"
            let (pendingStatus, pending) = try await get(returnURL)
            #expect(pendingStatus == 200)
            #expect(pending.contains("http-equiv=\"refresh\""))
            #expect(pending.contains("https://t.me/telepay_test_bot"))

            let payment = try await provider.startPayment(invoiceID: invoice.id, payAmount: Decimal(string: "0.002")!)
            for status in ["waiting", "finished"] {
                let ipn = try await provider.setStatus(payment, status)
                let local = FakeNOWPayments.IPN(
                    url: "http://127.0.0.1:\(port)/payments/nowpayments/ipn", paymentID: ipn.paymentID, status: ipn.status,
                    body: ipn.body, signature: ipn.signature
                )
                #expect(try await provider.deliver(local) == 200)
            }
            try await waitFor("the invite") {
                await bot.sentMessages(to: 1001).contains {
                    $0.keyboard?.inlineKeyboard.joined().contains { $0.text == "🔗 Join the channel" } == true
                }
            }
            let link = try #require(
                await bot.sentMessages(to: 1001).compactMap { message -> String? in
                    guard let button = message.keyboard?.inlineKeyboard.joined().first(where: { $0.text == "🔗 Join the channel" }),
                        case .url(let url) = button.action
                    else { return nil }
                    return url
                }.last)
            try await bot.userOpensInviteLink(1001, link)
            try await waitFor("Anna is in") { await bot.memberStatus(chat: Self.closedChat, user: 1001) == "member" }

            let (paidStatus, paid) = try await get(returnURL)
            #expect(paidStatus == 200)
            #expect(paid.contains("Payment confirmed"))
            #expect(!paid.contains("http-equiv=\"refresh\""))
            let (missingStatus, _) = try await get("http://127.0.0.1:\(port)/payments/return?order=tp-nope")
            #expect(missingStatus == 404)
        } catch {
            await application.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
        await application.triggerGracefulShutdown()
        try await running.value
    }
}
