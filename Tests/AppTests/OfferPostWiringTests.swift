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

@Suite("Offer posts, wired")
struct OfferPostWiringTests {
    static let owner: Int64 = 2001
    static let buyer: Int64 = 1001
    static let closedChat: Int64 = -1_001_000_000_021
    static let openChat: Int64 = -1_001_000_000_022

    func waitFor(_ what: String, _ condition: @Sendable () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting for \(what)")
        throw CancellationError()
    }

    @Test(
        "the owner saves the form, the offer is posted in the public channel, a tier's button opens that tier, the purchase completes, the owner is notified and the donation link opens a keypad"
    )
    func saveToPurchase() async throws {
        let bot = FakeBotAPI()
        await bot.addUser(id: Self.buyer, firstName: "Anna", languageCode: "en")
        await bot.addUser(id: Self.owner, firstName: "Olga", languageCode: "en")
        await bot.addChannel(id: Self.closedChat, title: "Secret Club", owner: Self.owner)
        await bot.addChannel(id: Self.openChat, title: "Open Club", owner: Self.owner)
        let (botURL, botServer) = try await bot.start()
        defer { botServer.cancel() }
        let provider = FakeNOWPayments()
        let (providerURL, providerServer) = try await provider.start()
        defer { providerServer.cancel() }
        let dataDirectory = try RepositoryPaths.makeTemporaryDirectory("telepay-offer-post")
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
        @Sendable func tap(_ label: String) async throws {
            try await waitFor("a button “\(label)”") {
                await bot.lastMessage(to: Self.owner)?.keyboard?.inlineKeyboard.joined().contains { $0.text == label } == true
            }
            try await bot.userTapsButton(Self.owner, label: label)
        }
        @Sendable func see(_ text: String) async throws {
            try await waitFor("“\(text)”") { await bot.lastMessage(to: Self.owner)?.text.contains(text) == true }
        }
        do {
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            await bot.userSendsText(Self.owner, "/channels")
            try await tap("➕ Add channel")
            try await see("Step 1 of 2")
            try await bot.userSharesChat(Self.owner, chat: Self.closedChat)
            try await see("Step 2 of 2")
            try await bot.userSharesChat(Self.owner, chat: Self.openChat)
            try await see("Channel settings")
            try await tap("💰 Tiers")
            try await tap("Tier 1: ❌")
            try await see("Tier 1: send the price")
            await bot.userSendsText(Self.owner, "5")
            try await see("Tier 1: for how many days")
            await bot.userSendsText(Self.owner, "7")
            try await see("🥇 Tier 1 ✅ $5.00 · 7 days")
            try await tap("Tier 2: ❌")
            try await see("Tier 2: send the price")
            await bot.userSendsText(Self.owner, "12.50")
            try await see("Tier 2: for how many days")
            await bot.userSendsText(Self.owner, "30")
            try await see("🥈 Tier 2 ✅ $12.50 · 30 days")
            try await tap("⬅️ Back")
            try await tap("💳 Payout")
            try await tap("🌐 Network")
            try await tap("TRON (TRX)")
            try await tap("USDT")
            try await see("wallet address")
            await bot.userSendsText(Self.owner, "TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9")
            try await see("Wallet: <code>TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9</code>")
            try await tap("⬅️ Back")
            try await tap("✅ Save all changes")
            try await see("All changes saved")

            try await waitFor("the offer post in the public channel") { await bot.lastMessage(to: Self.openChat) != nil }
            let post = try #require(await bot.lastMessage(to: Self.openChat))
            #expect(post.text.contains("<b>Open Club</b>") && post.text.contains("<b>Secret Club</b>"))
            let buttons = post.keyboard?.inlineKeyboard.joined().map { $0 } ?? []
            #expect(buttons.map(\.text) == ["🥇 $5.00 · 7 days", "🥈 $12.50 · 30 days"])
            guard let second = buttons.last, case .url(let link) = second.action else {
                Issue.record("the second tier's button is a URL")
                return
            }
            let payload = try #require(link.split(separator: "?start=").last.map(String.init))
            #expect(link.hasPrefix("https://t.me/telepay_test_bot?start=t2"))

            try await application.database.database.withConnection { connection in
                _ = try await connection.query(
                    "UPDATE channel_payout_settings SET notifications_enabled = true, notification_user_id = \(Self.owner)", logger: quietLogger
                )
            }

            // The buyer taps the tier 2 button: Telegram opens the bot with /start <payload>.
            await bot.userSendsText(Self.buyer, "/start \(payload)")
            try await waitFor("the pay button") {
                await bot.lastMessage(to: Self.buyer)?.keyboard?.inlineKeyboard.joined().contains { $0.text == "💰 Pay" } == true
            }
            let invoice = try #require(await provider.invoices.values.first)
            #expect(invoice.priceAmount == "12.5")
            let payment = try await provider.startPayment(invoiceID: invoice.id, payAmount: Decimal(string: "0.005")!)
            for status in ["waiting", "finished"] {
                let ipn = try await provider.setStatus(payment, status)
                let local = FakeNOWPayments.IPN(
                    url: "http://127.0.0.1:\(port)/payments/nowpayments/ipn", paymentID: ipn.paymentID, status: ipn.status,
                    body: ipn.body, signature: ipn.signature
                )
                #expect(try await provider.deliver(local) == 200)
            }
            try await waitFor("the invite") {
                await bot.sentMessages(to: Self.buyer).contains {
                    $0.keyboard?.inlineKeyboard.joined().contains { $0.text == "🔗 Join the channel" } == true
                }
            }
            let invite = try #require(
                await bot.sentMessages(to: Self.buyer).compactMap { message -> String? in
                    guard let button = message.keyboard?.inlineKeyboard.joined().first(where: { $0.text == "🔗 Join the channel" }),
                        case .url(let url) = button.action
                    else { return nil }
                    return url
                }.last)
            try await waitFor("the owner's sale notification") {
                await bot.sentMessages(to: Self.owner).contains {
                    $0.text.hasPrefix("💸 New subscription to <b>Secret Club</b>\nTier 2: $12.50 for 30 days")
                }
            }
            // The donation link opens the keypad in the application as wired.
            let token = String(payload.dropFirst(2))
            await bot.userSendsText(Self.buyer, "/start d\(token)")
            try await waitFor("the donation keypad") {
                await bot.lastMessage(to: Self.buyer)?.keyboard?.inlineKeyboard.joined().contains { $0.text == "⌫" } == true
            }
            try await bot.userOpensInviteLink(Self.buyer, invite)
            try await waitFor("the buyer is in") { await bot.memberStatus(chat: Self.closedChat, user: Self.buyer) == "member" }
            let days = try await application.database.database.withConnection { connection -> Int? in
                let rows = try await connection.query(
                    "SELECT duration_days FROM orders WHERE user_id = \(Self.buyer) AND status = 'paid'", logger: quietLogger
                )
                for try await value in rows.decode(Int.self) { return value }
                return nil
            }
            #expect(days == 30)
        } catch {
            await application.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
        await application.triggerGracefulShutdown()
        try await running.value
    }
}
