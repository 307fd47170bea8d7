import Bot
import Foundation
import Jobs
import NOWPaymentsFake
import Payments
import PostgresNIO
import Subscriptions
import TestSupport
import Testing

@Suite("Subscriber purchase, end to end")
struct PurchaseFlowTests {
    @Test("deep link → tier → invoice with the right fields → IPNs → paid: subscription, balanced ledger, invite for the buyer only")
    func happyPath() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            let tierLabel = world.text("offer.tier_button", ["price": "10.00", "duration": world.days(30)])
            let invoice = try await world.buyThroughBot(anna, tierLabel: tierLabel)
            let offer = try #require(await world.bot.sentMessages(to: anna).first { $0.text.contains("Secret Club") && $0.keyboard != nil })
            #expect(offer.text.contains("Daily &lt;b&gt;alpha&lt;/b&gt; &amp; more"), "the description is escaped: \(offer.text)")
            #expect(offer.keyboard?.inlineKeyboard.joined().count == 2, "the disabled tier is not offered")

            let orderID = try #require(try await world.orderIDs(of: anna).first)
            #expect(invoice.priceAmount == "10")
            #expect(invoice.priceCurrency == "usd")
            #expect(invoice.orderID == orderID)
            #expect(invoice.ipnCallbackURL == "https://telepay.example/payments/nowpayments/ipn")
            #expect(invoice.successURL == "https://telepay.example/payments/return?order=\(orderID)")
            #expect(invoice.cancelURL == invoice.successURL)
            #expect(await world.url(of: world.text("purchase.pay_button"), for: anna) == "https://nowpayments.io/payment/?iid=\(invoice.id)")
            #expect(try await world.orderStatus(orderID) == "awaiting_payment")

            // Seen on chain first: the buyer hears it is confirming (later statuses are read back from the provider,
            // so delivering them all at once may skip straight to paid).
            let payment = try await world.pay(invoice, through: ["waiting", "confirming"])
            try await world.waitForOrder(orderID, "confirming")
            let confirming = world.text("payment.confirming", ["title": "Secret Club"])
            try await world.eventually("Anna hears the payment is confirming") { await !world.messages(to: anna, containing: confirming).isEmpty }
            for status in ["confirmed", "sending", "finished"] {
                try await world.deliver(try await world.provider.setStatus(payment, status))
            }
            try await world.waitForOrder(orderID, "paid")
            let subscription = try #require(try await world.subscription(of: anna))
            #expect(subscription.status == "active")
            let expected = world.clock.now().addingTimeInterval(30 * 86_400)
            #expect(abs(subscription.expiresAt.timeIntervalSince(expected)) < 1)

            let ledger = try await world.strings(
                """
                SELECT t.kind || ' ' || e.account || ':' || e.amount::numeric(14, 2)::text FROM ledger_entries e
                JOIN ledger_transactions t ON t.id = e.transaction_id
                WHERE e.asset = 'USD' AND e.order_id = (SELECT id FROM orders WHERE public_id = \(orderID)) ORDER BY e.id
                """
            )
            #expect(
                ledger == [
                    "receipt provider_clearing:10.00", "receipt buyer_credit:-10.00",
                    "sale buyer_credit:10.00", "sale platform_fee:-0.30", "sale owner_payable:-9.70",
                ])
            #expect(try await world.strings("SELECT sum(amount)::numeric(14, 2)::text FROM ledger_entries WHERE asset = 'USD'") == ["0.00"])
            #expect(
                try await world.strings(
                    "SELECT balance::numeric(14, 2)::text FROM owner_pending_balances WHERE owner_user_id = \(SubscriptionWorld.owner) AND asset = 'USD'"
                ) == ["9.70"])

            try await world.eventually("the invite arrives") { await world.url(of: world.text("invite.button"), for: anna) != nil }
            let link = try #require(await world.url(of: world.text("invite.button"), for: anna))
            try await world.eventually("the owner hears of the payment") {
                await !world.messages(to: SubscriptionWorld.owner, containing: "9.70").isEmpty
            }
            #expect(await world.messages(to: anna, containing: confirming).count == 1, "said once")

            try await world.bot.userOpensInviteLink(anna, link)
            try await world.eventually("Anna is let in") { await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: anna) == "member" }
            try await world.bot.userOpensInviteLink(SubscriptionWorld.boris, link)
            try await world.eventually("Boris is turned away") {
                try await world.count("SELECT count(*) FROM access_events WHERE action = 'join_declined' AND user_id = \(SubscriptionWorld.boris)")
                    == 1
            }
            #expect(await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: SubscriptionWorld.boris) == nil)
            #expect(await world.bot.pendingJoinRequests[SubscriptionWorld.closedChat]?.isEmpty ?? true)
        }
    }

    @Test("50 identical IPNs delivered at once produce one inbox row, one processing and one subscription")
    func concurrentDuplicates() async throws {
        try await withSubscriptionWorld { world in
            let outcome = try await world.purchases.buy(userID: SubscriptionWorld.anna, channelID: world.channelID, position: 1)
            guard case .invoice = outcome else { Issue.record("no invoice: \(outcome)"); return }
            let invoice = try #require(try await world.newestInvoice(of: SubscriptionWorld.anna))
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: Decimal(string: "0.0041")!)
            let ipn = try await world.provider.setStatus(payment, "finished")
            let stored = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        if case .stored = try await world.deliver(ipn) { return true }
                        return false
                    }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(stored == 1)
            let orderID = try #require(try await world.orderIDs(of: SubscriptionWorld.anna).first)
            try await world.waitForOrder(orderID, "paid")
            try await world.eventually("the invite is sent") { try await world.count("SELECT count(*) FROM invite_links") == 1 }
            #expect(try await world.count("SELECT count(*) FROM subscriptions") == 1)
            #expect(try await world.count("SELECT count(*) FROM ledger_entries WHERE asset = 'USD'") == 5)
            #expect(try await world.count("SELECT count(*) FROM jobs WHERE kind = 'payments.process_inbox'") == 1)
        }
    }

    @Test("statuses delivered in reverse still end paid, with one grant")
    func reversedDelivery() async throws {
        try await withSubscriptionWorld { world in
            _ = try await world.purchases.buy(userID: SubscriptionWorld.anna, channelID: world.channelID, position: 2)
            let invoice = try #require(try await world.newestInvoice(of: SubscriptionWorld.anna))
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: Decimal(string: "0.01")!)
            var ipns: [FakeNOWPayments.IPN] = []
            for status in ["waiting", "confirming", "confirmed", "sending", "finished"] {
                ipns.append(try await world.provider.setStatus(payment, status))
            }
            for ipn in ipns.reversed() { try await world.deliver(ipn) }
            let orderID = try #require(try await world.orderIDs(of: SubscriptionWorld.anna).first)
            try await world.eventually("every callback is processed") {
                try await world.count("SELECT count(*) FROM payment_inbox WHERE processed_at IS NULL") == 0
            }
            #expect(try await world.orderStatus(orderID) == "paid")
            let subscription = try #require(try await world.subscription(of: SubscriptionWorld.anna))
            #expect(abs(subscription.expiresAt.timeIntervalSince(world.clock.now().addingTimeInterval(90 * 86_400))) < 1)
            #expect(try await world.count("SELECT count(*) FROM ledger_entries WHERE asset = 'USD'") == 5)
        }
    }

    @Test("an invoice paid twice is booked twice: a second order row, a second period, a balanced ledger for each")
    func paidTwice() async throws {
        try await withSubscriptionWorld { world in
            _ = try await world.purchases.buy(userID: SubscriptionWorld.anna, channelID: world.channelID, position: 2)
            let invoice = try #require(try await world.newestInvoice(of: SubscriptionWorld.anna))
            let first = try await world.pay(invoice)
            try await world.waitForOrder(invoice.orderID!, "paid")
            let second = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: Decimal(string: "0.01")!)
            #expect(second != first)
            // The processor re-fetches the payment, so it must end finished (a duplicate finished IPN included).
            for status in ["waiting", "confirming", "finished", "finished"] {
                try await world.deliver(try await world.provider.setStatus(second, status))
            }
            try await world.eventually("every callback is processed") {
                try await world.count("SELECT count(*) FROM payment_inbox WHERE processed_at IS NULL") == 0
            }
            #expect(try await world.strings("SELECT status FROM orders WHERE user_id = \(SubscriptionWorld.anna) ORDER BY id") == ["paid", "paid"])
            #expect(try await world.count("SELECT count(DISTINCT order_id) FROM payments") == 2)
            let subscription = try #require(try await world.subscription(of: SubscriptionWorld.anna))
            #expect(abs(subscription.expiresAt.timeIntervalSince(world.clock.now().addingTimeInterval(180 * 86_400))) < 1, "two periods of 90 days")
            #expect(try await world.count("SELECT count(*) FROM ledger_entries WHERE asset = 'USD'") == 10)
            #expect(
                try await world.strings("SELECT sum(amount)::numeric(14, 2)::text FROM ledger_entries WHERE asset = 'USD' GROUP BY order_id") == [
                    "0.00", "0.00",
                ])
        }
    }

    @Test("a payment for an order we do not have is held for review and alerted, and grants nothing")
    func unknownOrderHeld() async throws {
        try await withSubscriptionWorld { world in
            _ = try await world.purchases.buy(userID: SubscriptionWorld.anna, channelID: world.channelID, position: 1)
            let invoice = try #require(try await world.newestInvoice(of: SubscriptionWorld.anna))
            // The provider reports an order id TelePay never issued (orders exist before their invoices).
            _ = try await world.database.withConnection { connection in
                try await connection.query("UPDATE orders SET public_id = public_id || 'x'", logger: quietLogger)
            }
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: 1)
            try await world.deliver(try await world.provider.setStatus(payment, "finished"))
            try await world.eventually("the callback is processed") {
                try await world.count("SELECT count(*) FROM payment_inbox WHERE processed_at IS NULL") == 0
            }
            #expect(try await world.strings("SELECT review_reason FROM payments").first?.hasPrefix("it matches no order") == true)
            #expect(try await world.count("SELECT count(*) FROM subscriptions") == 0)
            #expect(
                try await world.strings(
                    "SELECT account || ':' || amount::numeric(14, 2)::text FROM ledger_entries WHERE asset = 'USD' ORDER BY id"
                ) == ["provider_clearing:10.00", "payment_review:-10.00"], "the money is booked where an operator finds it")
            try await world.eventually("the admins are alerted") {
                world.alerts.all.contains { if case .heldForReview(String(payment), _, _) = $0 { true } else { false } }
            }
        }
    }

    @Test("partially_paid grants nothing and tells the buyer what arrived; failed and expired close the order and say so")
    func partialFailedExpired() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            _ = try await world.purchases.buy(userID: anna, channelID: world.channelID, position: 1)
            let partialInvoice = try #require(try await world.newestInvoice(of: anna))
            let partial = try await world.provider.startPayment(invoiceID: partialInvoice.id, payAmount: Decimal(string: "0.004")!)
            try await world.deliver(try await world.provider.setStatus(partial, "waiting"))
            try await world.deliver(try await world.provider.setStatus(partial, "partially_paid"))
            try await world.waitForOrder(partialInvoice.orderID!, "partially_paid")
            try await world.eventually("Anna is told what arrived") {
                await !world.messages(to: anna, containing: "0.002 of 0.004 ETH").isEmpty
            }
            #expect(try await world.subscription(of: anna) == nil)
            #expect(try await world.count("SELECT count(*) FROM ledger_transactions WHERE kind = 'sale'") == 0)
            #expect(
                try await world.strings(
                    "SELECT account || ':' || amount::numeric(14, 2)::text FROM ledger_entries WHERE asset = 'USD' ORDER BY id"
                ) == ["provider_clearing:5.00", "buyer_credit:-5.00"], "what arrived is booked as owed to the buyer's order")

            for status in ["failed", "expired"] {
                _ = try await world.purchases.buy(userID: anna, channelID: world.channelID, position: 1)
                let invoice = try #require(try await world.newestInvoice(of: anna))
                let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: 1)
                try await world.deliver(try await world.provider.setStatus(payment, "waiting"))
                try await world.deliver(try await world.provider.setStatus(payment, status))
                try await world.waitForOrder(invoice.orderID!, status)
                let said = world.text("payment.\(status)", ["title": "Secret Club"])
                try await world.eventually("Anna hears the payment \(status)") { await !world.messages(to: anna, containing: said).isEmpty }
                // A late `confirming` after the close changes nothing.
                try await world.deliver(try await world.provider.setStatus(payment, "confirming"))
                try await world.eventually("the late callback is processed") {
                    try await world.count("SELECT count(*) FROM payment_inbox WHERE processed_at IS NULL") == 0
                }
                #expect(try await world.orderStatus(invoice.orderID!) == status)
            }
            #expect(try await world.subscription(of: anna) == nil)
        }
    }

    @Test("a partial payment within the configured tolerance counts as paid")
    func partialWithinTolerance() async throws {
        var settings = SubscriptionSettings(publicURL: URL(string: "https://telepay.example")!)
        settings.partialPaymentTolerancePercent = 2
        try await withSubscriptionWorld(settings: settings) { world in
            _ = try await world.purchases.buy(userID: SubscriptionWorld.anna, channelID: world.channelID, position: 1)
            let invoice = try #require(try await world.newestInvoice(of: SubscriptionWorld.anna))
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: 1)
            try await world.deliver(try await world.provider.setStatus(payment, "partially_paid", actuallyPaid: Decimal(string: "0.99")!))
            try await world.waitForOrder(invoice.orderID!, "paid")
            #expect(try await world.subscription(of: SubscriptionWorld.anna)?.status == "active")
        }
    }

    @Test("provider down at invoice creation: a clear message and a retry button; the order keeps the reason; retry works")
    func providerDown() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            await world.provider.failNext([.serverError(503)])
            await world.bot.userSendsText(anna, "/start \(world.offerToken)")
            let tierLabel = world.text("offer.tier_button", ["price": "10.00", "duration": world.days(30)])
            try await world.eventually("the offer shows") { await world.buttons(of: anna).contains(tierLabel) }
            try await world.bot.userTapsButton(anna, label: tierLabel)
            let retry = world.text("purchase.retry_button")
            try await world.eventually("the retry button arrives") { await world.buttons(of: anna).contains(retry) }
            #expect(await world.bot.lastMessage(to: anna)?.text == world.text("purchase.invoice_failed"))
            let reasons = try await world.strings("SELECT status || ': ' || invoice_error FROM orders WHERE user_id = \(anna)")
            #expect(reasons.count == 1 && reasons[0].hasPrefix("invoice_failed: provider error 503"), "\(reasons)")
            try await world.bot.userTapsButton(anna, label: retry)
            try await world.eventually("the pay button arrives") { await world.url(of: world.text("purchase.pay_button"), for: anna) != nil }
            #expect(try await world.strings("SELECT status FROM orders WHERE user_id = \(anna)") == ["awaiting_payment"])
        }
    }

    @Test("two users buying different tiers of one channel at the same moment each get their own tier")
    func concurrentBuyers() async throws {
        try await withSubscriptionWorld { world in
            let cheap = world.text("offer.tier_button", ["price": "10.00", "duration": world.days(30)])
            let dear = world.text("offer.tier_button", ["price": "25.50", "duration": world.days(90)])
            await world.bot.userSendsText(SubscriptionWorld.anna, "/start \(world.offerToken)")
            await world.bot.userSendsText(SubscriptionWorld.boris, "/start \(world.offerToken)")
            try await world.eventually("both see the offer") {
                let annaSees = await world.buttons(of: SubscriptionWorld.anna).contains(cheap)
                let borisSees = await world.buttons(of: SubscriptionWorld.boris).contains(dear)
                return annaSees && borisSees
            }
            try await world.bot.userTapsButton(SubscriptionWorld.anna, label: cheap)
            try await world.bot.userTapsButton(SubscriptionWorld.boris, label: dear)
            try await world.eventually("both have invoices") { await world.provider.invoices.count == 2 }
            let annaInvoice = try #require(try await world.newestInvoice(of: SubscriptionWorld.anna))
            let borisInvoice = try #require(try await world.newestInvoice(of: SubscriptionWorld.boris))
            #expect(annaInvoice.priceAmount == "10")
            #expect(borisInvoice.priceAmount == "25.5")
            async let first: Int64 = world.pay(annaInvoice, through: ["finished"])
            async let second: Int64 = world.pay(borisInvoice, through: ["finished"])
            _ = try await (first, second)
            try await world.waitForOrder(annaInvoice.orderID!, "paid")
            try await world.waitForOrder(borisInvoice.orderID!, "paid")
            let now = world.clock.now()
            let annaEnd = try #require(try await world.subscription(of: SubscriptionWorld.anna)).expiresAt
            let borisEnd = try #require(try await world.subscription(of: SubscriptionWorld.boris)).expiresAt
            #expect(abs(annaEnd.timeIntervalSince(now) - 30 * 86_400) < 1)
            #expect(abs(borisEnd.timeIntervalSince(now) - 90 * 86_400) < 1)
        }
    }

    @Test("a crash between the IPN's acknowledgement and its processing loses nothing: after restart the payment is processed exactly once")
    func crashAfterAcknowledgement() async throws {
        try await withSubscriptionWorld(workers: false) { world in
            _ = try await world.purchases.buy(userID: SubscriptionWorld.anna, channelID: world.channelID, position: 1)
            let invoice = try #require(try await world.newestInvoice(of: SubscriptionWorld.anna))
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: 1)
            let ipn = try await world.provider.setStatus(payment, "finished")
            guard case .stored(let inboxID, _) = try await world.deliver(ipn) else { Issue.record("not stored"); return }
            // Acknowledged: the callback and its processing job are committed together, nothing is processed yet.
            #expect(try await world.count("SELECT count(*) FROM jobs WHERE kind = 'payments.process_inbox' AND state = 'available'") == 1)
            #expect(try await world.subscription(of: SubscriptionWorld.anna) == nil)
            // A worker claimed it and was killed mid-run: the job is running under a lease nobody will renew.
            _ = try await world.database.withConnection { connection in
                try await connection.query(
                    """
                    UPDATE jobs SET state = 'running', attempt = 1, attempted_by = 'killed-worker', attempted_at = now(),
                        lease_expires_at = now() - interval '1 second'
                    WHERE kind = 'payments.process_inbox'
                    """,
                    logger: quietLogger
                )
            }
            // Restart: the rescuer hands the job back and a fresh pool runs it.
            let rescuer = JobRescuer(database: world.database, alertHook: LoggingJobAlertHook(logger: quietLogger), logger: quietLogger)
            #expect(try await rescuer.sweep() == 1)
            let running = Task { try await world.pool.run() }
            defer { world.pool.beginShutdown() }
            try await world.waitForOrder(invoice.orderID!, "paid")
            try await world.eventually("the invite is sent") { try await world.count("SELECT count(*) FROM invite_links") == 1 }
            // NOWPayments re-sends; a retried job finds the callback processed.
            if case .stored = try await world.deliver(ipn) { Issue.record("a re-sent IPN was stored again") }
            #expect(try await world.processor.process(inboxID: inboxID) == .alreadyProcessed)
            #expect(try await world.count("SELECT count(*) FROM subscriptions") == 1)
            #expect(try await world.count("SELECT count(*) FROM ledger_entries WHERE asset = 'USD'") == 5)
            world.pool.beginShutdown()
            try await running.value
        }
    }
}
