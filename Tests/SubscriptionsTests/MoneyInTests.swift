import BigInt
import Bot
import Channels
import Ethereum
import Foundation
import Jobs
import Money
import NOWPaymentsFake
import Payments
import PostgresNIO
import Storage
import Subscriptions
import TestPeers
import TestSupport
import Testing

extension SubscriptionWorld {
    /// Orders the user has, oldest first, as `public_id:status`.
    func orders(of user: Int64) async throws -> [String] {
        try await strings("SELECT status FROM orders WHERE user_id = \(user) ORDER BY id")
    }

    /// The ledger lines of one order as `kind account:amount`, in booking order.
    func ledger(ofOrder publicID: String) async throws -> [String] {
        try await strings(
            """
            SELECT t.kind || ' ' || e.account || ':' || e.amount::numeric(14, 2)::text FROM ledger_entries e
            JOIN ledger_transactions t ON t.id = e.transaction_id
            WHERE e.asset = 'USD' AND e.order_id = (SELECT id FROM orders WHERE public_id = \(publicID)) ORDER BY e.id
            """
        )
    }

    /// Every stored callback has been processed and no job is waiting or running.
    func settled() async throws {
        try await eventually("every callback and job is done") {
            let callbacks = try await count("SELECT count(*) FROM payment_inbox WHERE processed_at IS NULL")
            let jobs = try await count("SELECT count(*) FROM jobs WHERE state IN ('available', 'running') AND run_at <= now()")
            return callbacks == 0 && jobs == 0
        }
    }

    /// A new order for `user` with its invoice; returns the invoice.
    func order(_ user: Int64, position: Int = 1) async throws -> FakeNOWPayments.Invoice {
        let outcome = try await purchases.buy(userID: user, channelID: channelID, position: position)
        guard case .invoice = outcome else { throw WorldError.timedOut("an invoice, got \(outcome)") }
        return try #require(try await newestInvoice(of: user))
    }

    func ownerHeard(_ fragment: String, recipient: Int64 = SubscriptionWorld.owner) async -> Bool {
        await !messages(to: recipient, containing: fragment).isEmpty
    }
}

@Suite("Money in, to the cent")
struct MoneyInTests {
    static var tolerant: SubscriptionSettings {
        var settings = SubscriptionSettings(publicURL: URL(string: "https://telepay.example")!)
        settings.partialPaymentTolerancePercent = 2
        return settings
    }

    @Test("a re-deposit to the same address completes its parent's order, and one after the sale is owed to the buyer, never a new purchase")
    func reDepositCreditsParent() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            let invoice = try await world.order(anna)
            let orderID = try #require(invoice.orderID)
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: Decimal(string: "0.004")!)
            try await world.deliver(try await world.provider.setStatus(payment, "partially_paid", actuallyPaid: Decimal(string: "0.002")!))
            try await world.waitForOrder(orderID, "partially_paid")
            #expect(try await world.subscription(of: anna) == nil)

            // The rest arrives at the same address: NOWPayments files it as a child payment, status finished.
            try await world.deliver(try await world.provider.reDeposit(parentID: payment, actuallyPaid: Decimal(string: "0.002")!))
            try await world.waitForOrder(orderID, "paid")
            try await world.settled()
            #expect(try await world.orders(of: anna) == ["paid"])
            #expect(try await world.count("SELECT count(*) FROM payments WHERE order_id IS NOT NULL") == 2)
            let subscription = try #require(try await world.subscription(of: anna))
            #expect(abs(subscription.expiresAt.timeIntervalSince(world.clock.now()) - 30 * 86_400) < 1)
            #expect(
                try await world.ledger(ofOrder: orderID) == [
                    "receipt provider_clearing:5.00", "receipt buyer_credit:-5.00",
                    "receipt provider_clearing:5.00", "receipt buyer_credit:-5.00",
                    "sale buyer_credit:10.00", "sale platform_fee:-0.30", "sale owner_payable:-9.70",
                ])

            // Another re-deposit after the sale: no second order, no second period; owed to the buyer and alerted.
            try await world.deliver(try await world.provider.reDeposit(parentID: payment, actuallyPaid: Decimal(string: "0.001")!))
            try await world.settled()
            #expect(try await world.orders(of: anna) == ["paid"])
            #expect(abs(try #require(try await world.subscription(of: anna)).expiresAt.timeIntervalSince(world.clock.now()) - 30 * 86_400) < 1)
            #expect(
                try await world.strings(
                    "SELECT (-sum(amount))::numeric(14, 2)::text FROM ledger_entries WHERE asset = 'USD' AND account = 'buyer_credit'"
                ) == ["2.50"])
            try await world.eventually("the admins hear of the excess") {
                world.alerts.all.contains { if case .overpaid(orderID, _, "2.50") = $0 { true } else { false } }
            }
            #expect(try await world.strings("SELECT sum(amount)::numeric(14, 2)::text FROM ledger_entries WHERE asset = 'USD'") == ["0.00"])
            let summary = try await world.database.withConnection { try await LedgerStore.summary(on: $0, logger: quietLogger) }
            #expect(summary.ordersOwingBuyers == 1 && summary.owedToBuyersUSD == Decimal(string: "2.5"), "telepay ledger shows what is owed")
            #expect(
                summary.owners.contains { $0.ownerUserID == SubscriptionWorld.owner && $0.asset == "USD" && $0.pending == Decimal(string: "9.7") })
        }
    }

    @Test("an underpayment marked finished is booked at what arrived: granted with the shortfall in variance within the tolerance")
    func underpaymentWithinTolerance() async throws {
        try await withSubscriptionWorld(settings: Self.tolerant) { world in
            let invoice = try await world.order(SubscriptionWorld.anna)
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: 1)
            try await world.deliver(try await world.provider.setStatus(payment, "finished", actuallyPaid: Decimal(string: "0.985")!))
            try await world.waitForOrder(invoice.orderID!, "paid")
            #expect(
                try await world.ledger(ofOrder: invoice.orderID!) == [
                    "receipt provider_clearing:9.85", "receipt buyer_credit:-9.85",
                    "sale buyer_credit:9.85", "sale payment_variance:0.15", "sale platform_fee:-0.30", "sale owner_payable:-9.70",
                ])
            #expect(try await world.strings("SELECT value_usd::text || '/' || actually_paid::text FROM payments") == ["9.85/0.985"])
        }
    }

    @Test("an underpayment marked finished outside the tolerance grants nothing and tells the buyer what arrived")
    func underpaymentOutsideTolerance() async throws {
        try await withSubscriptionWorld(settings: Self.tolerant) { world in
            let anna = SubscriptionWorld.anna
            let invoice = try await world.order(anna)
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: 1)
            try await world.deliver(try await world.provider.setStatus(payment, "finished", actuallyPaid: Decimal(string: "0.9")!))
            try await world.waitForOrder(invoice.orderID!, "partially_paid")
            try await world.settled()
            #expect(try await world.subscription(of: anna) == nil)
            #expect(try await world.count("SELECT count(*) FROM ledger_transactions WHERE kind = 'sale'") == 0)
            #expect(try await world.ledger(ofOrder: invoice.orderID!) == ["receipt provider_clearing:9.00", "receipt buyer_credit:-9.00"])
            #expect(await !world.messages(to: anna, containing: "0.9 of 1 ETH").isEmpty)
        }
    }

    @Test("a payment whose price or invoice disagrees with its order is held for review, never granted")
    func mismatchedPrice() async throws {
        try await withSubscriptionWorld { world in
            let invoice = try await world.order(SubscriptionWorld.anna)
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: 1)
            try await world.provider.reportPrice(payment, "1")
            try await world.deliver(try await world.provider.setStatus(payment, "finished"))
            try await world.settled()
            #expect(try await world.strings("SELECT review_reason FROM payments") == ["its price 1 is not the order's 10"])
            #expect(try await world.orderStatus(invoice.orderID!) == "awaiting_payment")
            #expect(try await world.subscription(of: SubscriptionWorld.anna) == nil)
            #expect(world.alerts.all.count == 1)
        }
    }

    @Test("a coin switch: the abandoned payment expires while the other finishes — one grant and no 'expired' message")
    func coinSwitch() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            let invoice = try await world.order(anna)
            let abandoned = try await world.provider.startPayment(invoiceID: invoice.id, payCurrency: "eth", payAmount: Decimal(string: "0.0041")!)
            let real = try await world.provider.startPayment(invoiceID: invoice.id, payCurrency: "btc", payAmount: Decimal(string: "0.0001")!)
            try await world.deliver(try await world.provider.setStatus(abandoned, "waiting"))
            try await world.deliver(try await world.provider.setStatus(real, "waiting"))
            try await world.deliver(try await world.provider.setStatus(real, "confirming"))
            // The abandoned payment expires after the other is known (NOWPayments' callbacks are minutes apart);
            // without this wait the job for "expired" could overtake the ones that record the other payment.
            try await world.settled()
            try await world.deliver(try await world.provider.setStatus(abandoned, "expired"))
            try await world.settled()
            #expect(try await world.orderStatus(invoice.orderID!) == "confirming")
            try await world.deliver(try await world.provider.setStatus(real, "finished"))
            try await world.waitForOrder(invoice.orderID!, "paid")
            try await world.settled()
            #expect(try await world.orders(of: anna) == ["paid"])
            #expect(try await world.count("SELECT count(*) FROM ledger_transactions WHERE kind = 'sale'") == 1)
            #expect(await world.messages(to: anna, containing: world.text("payment.expired", ["title": "Secret Club"])).isEmpty)
            #expect(try await world.strings("SELECT status FROM payments ORDER BY status") == ["expired", "finished"])
        }
    }

    @Test(
        "a refund after the grant reverses the bookings, takes the access back, and tells the buyer, the owner and (when already paid out) the admins"
    )
    func refundAfterGrant() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            let invoice = try await world.order(anna)
            let orderID = try #require(invoice.orderID)
            let payment = try await world.pay(invoice, through: ["finished"])
            try await world.waitForOrder(orderID, "paid")
            try await world.settled()
            // The owner's share was paid out meanwhile (as the payout engine will book it).
            try await world.database.withTransaction { connection in
                let id = try #require(
                    try await connection.first(
                        "INSERT INTO ledger_transactions (kind, idempotency_key) VALUES ('payout', 'test-payout') RETURNING id", as: Int64.self,
                        logger: quietLogger
                    ))
                try await connection.run(
                    """
                    INSERT INTO ledger_entries (transaction_id, account, owner_user_id, channel_id, asset, amount) VALUES
                        (\(id), 'owner_payable', \(SubscriptionWorld.owner), (SELECT channel_id FROM orders WHERE public_id = \(orderID)), 'USD', 9.70),
                        (\(id), 'provider_clearing', NULL, NULL, 'USD', -9.70)
                    """,
                    logger: quietLogger
                )
            }
            world.clock.advance(days: 2)
            try await world.deliver(try await world.provider.setStatus(payment, "refunded"))
            try await world.waitForOrder(orderID, "refunded")
            try await world.settled()
            #expect(
                try await world.ledger(ofOrder: orderID) == [
                    "receipt provider_clearing:10.00", "receipt buyer_credit:-10.00",
                    "sale buyer_credit:10.00", "sale platform_fee:-0.30", "sale owner_payable:-9.70",
                    "reversal provider_clearing:-10.00", "reversal buyer_credit:10.00",
                    "reversal buyer_credit:-10.00", "reversal platform_fee:0.30", "reversal owner_payable:9.70",
                ])
            #expect(
                try await world.strings("SELECT sum(amount)::numeric(14, 2)::text FROM ledger_entries WHERE asset = 'USD' AND order_id IS NOT NULL")
                    == ["0.00"])
            // Nothing else covers the time: the subscription ends now and the sweep removes her.
            let subscription = try #require(try await world.subscription(of: anna))
            #expect(abs(subscription.expiresAt.timeIntervalSince(world.clock.now())) < 1)
            try await world.access.sweepExpired()
            #expect(try await world.subscription(of: anna)?.status == "expired")
            #expect(await !world.messages(to: anna, containing: world.text("payment.refunded_after_access", ["title": "Secret Club"])).isEmpty)
            #expect(await world.ownerHeard("↩️ A payment of $10.00 in <b>Secret Club</b>"))
            #expect(
                world.alerts.all.contains { if case .ownerBalanceNegative(SubscriptionWorld.owner, "9.70", orderID) = $0 { true } else { false } })
        }
    }

    @Test("a refund of one of two renewals shortens the subscription by that order's days only")
    func refundKeepsOtherPeriods() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            let first = try await world.order(anna, position: 1)
            try await world.pay(first, through: ["finished"])
            try await world.waitForOrder(first.orderID!, "paid")
            let second = try await world.order(anna, position: 2)
            let refunded = try await world.pay(second, through: ["finished"])
            try await world.waitForOrder(second.orderID!, "paid")
            try await world.deliver(try await world.provider.setStatus(refunded, "refunded"))
            try await world.waitForOrder(second.orderID!, "refunded")
            let subscription = try #require(try await world.subscription(of: anna))
            #expect(abs(subscription.expiresAt.timeIntervalSince(world.clock.now()) - 30 * 86_400) < 1)
            #expect(subscription.status == "active")
            #expect(world.alerts.all.isEmpty, "the owner's balance stays positive: nothing was paid out")
        }
    }

    @Test("partially_paid, then a top-up reported with the same status: processed and granted once covered")
    func topUpSameStatus() async throws {
        try await withSubscriptionWorld(settings: Self.tolerant) { world in
            let invoice = try await world.order(SubscriptionWorld.anna)
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: 1)
            try await world.deliver(try await world.provider.setStatus(payment, "partially_paid", actuallyPaid: Decimal(string: "0.5")!))
            try await world.waitForOrder(invoice.orderID!, "partially_paid")
            let receipt = try await world.deliver(
                try await world.provider.setStatus(payment, "partially_paid", actuallyPaid: Decimal(string: "0.99")!))
            guard case .stored = receipt else { Issue.record("the top-up was taken for a duplicate: \(receipt)"); return }
            try await world.waitForOrder(invoice.orderID!, "paid")
            try await world.settled()
            #expect(
                try await world.ledger(ofOrder: invoice.orderID!) == [
                    "receipt provider_clearing:5.00", "receipt buyer_credit:-5.00",
                    "receipt provider_clearing:4.90", "receipt buyer_credit:-4.90",
                    "sale buyer_credit:9.90", "sale payment_variance:0.10", "sale platform_fee:-0.30", "sale owner_payable:-9.70",
                ])
        }
    }

    @Test("callbacks never delivered: the re-check finds the payment through the invoice and the buyer is served")
    func lostCallbacks() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            let invoice = try await world.order(anna)
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: 1)
            _ = try await world.provider.setStatus(payment, "finished")
            // Before its first check is due nothing is asked.
            #expect(try await world.rechecker.recheck().orders == 0)
            world.clock.advance(seconds: 61)
            let pass = try await world.rechecker.recheck()
            #expect(pass.orders == 1 && pass.failures == 0)
            try await world.waitForOrder(invoice.orderID!, "paid")
            try await world.eventually("the invite arrives") { await world.url(of: world.text("invite.button"), for: anna) != nil }
            #expect(await world.provider.requests.contains { $0.path.hasPrefix("payments?invoiceId=\(invoice.id)") })
        }
    }

    @Test("a payment whose later callbacks are lost is finished by the re-check")
    func lostLaterCallback() async throws {
        try await withSubscriptionWorld { world in
            let invoice = try await world.order(SubscriptionWorld.anna)
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: 1)
            try await world.deliver(try await world.provider.setStatus(payment, "confirming"))
            try await world.waitForOrder(invoice.orderID!, "confirming")
            _ = try await world.provider.setStatus(payment, "finished")
            world.clock.advance(seconds: 31)
            #expect(try await world.rechecker.recheck().payments == 1)
            try await world.waitForOrder(invoice.orderID!, "paid")
            #expect(try await world.strings("SELECT coalesce(next_check_at::text, 'final') FROM payments") == ["final"])
        }
    }

    @Test("an order with no payment expires after the invoice's lifetime, and the return page says so")
    func unpaidOrderExpires() async throws {
        try await withSubscriptionWorld { world in
            let invoice = try await world.order(SubscriptionWorld.anna)
            world.clock.advance(seconds: 3600)
            #expect(try await world.rechecker.recheck().expired == 0)
            #expect(try await world.orderStatus(invoice.orderID!) == "awaiting_payment")
            world.clock.advance(days: 1)
            #expect(try await world.rechecker.recheck().expired == 1)
            #expect(try await world.purchases.order(publicID: invoice.orderID!)?.status == .expired)
            #expect(try await world.count("SELECT count(*) FROM orders WHERE next_check_at IS NOT NULL") == 0)
        }
    }

    @Test("deleting a channel cancels its open invoices: a payment that still arrives is held for refund and alerted, not granted")
    func deleteCancelsOpenOrders() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            let invoice = try await world.order(anna)
            try await world.database.withTransaction { connection in
                try await ChannelLifecycle.lockForClosing(id: world.channelID, on: connection, logger: quietLogger)
                try await ChannelLifecycle.delete(
                    id: world.channelID, ownerUserID: SubscriptionWorld.owner, jobs: world.queue, on: connection, logger: quietLogger)
            }
            #expect(try await world.orderStatus(invoice.orderID!) == "cancelled")
            try await world.eventually("Anna is told her order was cancelled") {
                await !world.messages(to: anna, containing: world.text("order.cancelled", ["title": "Secret Club"])).isEmpty
            }
            try await world.pay(invoice, through: ["finished"])
            try await world.settled()
            #expect(try await world.orderStatus(invoice.orderID!) == "cancelled")
            #expect(try await world.subscription(of: anna) == nil)
            #expect(
                try await world.strings("SELECT account FROM ledger_entries WHERE asset = 'USD' ORDER BY id") == [
                    "provider_clearing", "payment_review",
                ])
            #expect(await !world.messages(to: anna, containing: world.text("payment.held_for_refund", ["title": "Secret Club"])).isEmpty)
            #expect(world.alerts.all.contains { if case .heldForReview = $0 { true } else { false } })
            let summary = try await world.database.withConnection { try await LedgerStore.summary(on: $0, logger: quietLogger) }
            #expect(summary.held.map(\.reason) == ["its order was cancelled: the channel stopped selling"], "telepay ledger lists it")
            #expect(summary.balances.contains { $0.account == "payment_review" && $0.asset == "USD" && $0.amount == -10 })
        }
    }

    @Test("a payment processed while the channel is being paused waits for the pause, then is held — never granted into a closed channel")
    func pauseExcludesConcurrentGrant() async throws {
        try await withSubscriptionWorld { world in
            let invoice = try await world.order(SubscriptionWorld.anna)
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: 1)
            let ipn = try await world.provider.setStatus(payment, "finished")
            try await world.database.withTransaction { connection in
                try await ChannelLifecycle.lockForClosing(id: world.channelID, on: connection, logger: quietLogger)
                try await world.deliver(ipn)
                try await world.eventually("the processing job is running and waits for the channel") {
                    try await world.count("SELECT count(*) FROM jobs WHERE kind = 'payments.process_inbox' AND state = 'running'") == 1
                }
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await world.orderStatus(invoice.orderID!) == "awaiting_payment")
                try await ChannelLifecycle.pause(id: world.channelID, reason: .owner, jobs: world.queue, on: connection, logger: quietLogger)
            }
            try await world.settled()
            #expect(try await world.orderStatus(invoice.orderID!) == "cancelled")
            #expect(try await world.subscription(of: SubscriptionWorld.anna) == nil)
            #expect(try await world.count("SELECT count(*) FROM payments WHERE review_reason IS NOT NULL") == 1)
        }
    }

    @Test("owner notifications off: the owner hears nothing; another recipient: only they hear")
    func ownerNotificationSettings() async throws {
        try await withSubscriptionWorld { world in
            let owner = SubscriptionWorld.owner
            try await world.database.withConnection { connection in
                try await connection.run(
                    "UPDATE channel_payout_settings SET notifications_enabled = false, notification_user_id = NULL", logger: quietLogger
                )
            }
            let first = try await world.order(SubscriptionWorld.anna)
            try await world.pay(first, through: ["finished"])
            try await world.waitForOrder(first.orderID!, "paid")
            try await world.settled()
            #expect(await world.bot.sentMessages(to: owner).isEmpty, "notifications are off")

            try await world.database.withConnection { connection in
                try await connection.run(
                    "UPDATE channel_payout_settings SET notifications_enabled = true, notification_user_id = \(SubscriptionWorld.boris)",
                    logger: quietLogger
                )
            }
            let second = try await world.order(SubscriptionWorld.anna)
            try await world.pay(second, through: ["finished"])
            try await world.waitForOrder(second.orderID!, "paid")
            try await world.settled()
            #expect(await world.ownerHeard("$10.00", recipient: SubscriptionWorld.boris))
            #expect(await world.bot.sentMessages(to: owner).isEmpty)
        }
    }

    @Test("the period starts at the payment's time, not when a late callback is processed")
    func periodFromPaymentTime() async throws {
        try await withSubscriptionWorld { world in
            let invoice = try await world.order(SubscriptionWorld.anna)
            let paidAt = world.clock.now()
            let payment = try await world.provider.startPayment(invoiceID: invoice.id, payAmount: 1)
            let ipn = try await world.provider.setStatus(payment, "finished")
            world.clock.advance(seconds: 7200)
            try await world.deliver(ipn)
            try await world.waitForOrder(invoice.orderID!, "paid")
            let subscription = try #require(try await world.subscription(of: SubscriptionWorld.anna))
            #expect(abs(subscription.expiresAt.timeIntervalSince(paidAt) - 30 * 86_400) < 1)
        }
    }

    @Test("periods are whole days of 24 hours whatever the session's time zone (a daylight-saving change is not an hour lost)")
    func periodsInUTC() async throws {
        try await withMigratedDatabase { database in
            try await database.withTransaction { connection in
                try await connection.run("INSERT INTO telegram_users (id, first_name) VALUES (1, 'A'), (2, 'O')", logger: quietLogger)
                try await connection.run("INSERT INTO owners (user_id) VALUES (2)", logger: quietLogger)
                let channel = try #require(
                    try await connection.first(
                        """
                        INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, status)
                        VALUES (2, -1001000000001, 'C', -1001000000002, 'O', 'active') RETURNING id
                        """,
                        as: Int64.self, logger: quietLogger
                    ))
                let order = try #require(
                    try await connection.first(
                        """
                        INSERT INTO orders (user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title)
                        VALUES (1, \(channel), 2, 1, 10, 30, -1001000000001, 'C') RETURNING id
                        """,
                        as: Int64.self, logger: quietLogger
                    ))
                // New York moves its clocks on 2026-03-08: a 30-day period across it is still 720 hours.
                try await connection.run("SET LOCAL TIME ZONE 'America/New_York'", logger: quietLogger)
                let paidAt = Date(timeIntervalSince1970: 1_772_366_400)  // 2026-03-01T12:00:00Z
                let grant = try await SubscriptionStore.grant(
                    userID: 1, channelID: channel, orderID: order, days: 30, paidAt: paidAt, on: connection, logger: quietLogger
                )
                #expect(grant.expiresAt.timeIntervalSince(paidAt) == 30 * 86_400)
                let renewed = try await SubscriptionStore.grant(
                    userID: 1, channelID: channel, orderID: order, days: 30, paidAt: paidAt, on: connection, logger: quietLogger
                )
                #expect(renewed.expiresAt.timeIntervalSince(paidAt) == 60 * 86_400)
            }
        }
    }

    @Test(
        "each finished payment's outcome is booked in wei and a sale splits it to the wei; the hot wallet on the chain holds exactly what the ledger says"
    )
    func settlementMatchesTheChain() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let hotWallet = LocalChain.randomAddress()
        try await withSubscriptionWorld { world in
            await world.provider.settleOnChain { amount in
                try await chain.fund(hotWallet, wei: try TokenUnits.baseUnits(fromDecimal: DecimalText.plain(amount), decimals: 18))
            }
            let anna = SubscriptionWorld.anna
            let first = try await world.order(anna)
            try await world.pay(first, through: ["waiting", "confirming", "finished"])
            try await world.waitForOrder(first.orderID!, "paid")
            // An underpayment outside the tolerance: settled, but its order is not sold, so nothing is split.
            let second = try await world.order(anna)
            let short = try await world.provider.startPayment(invoiceID: second.id, payCurrency: "btc", payAmount: Decimal(string: "0.0002")!)
            try await world.deliver(try await world.provider.setStatus(short, "finished", actuallyPaid: Decimal(string: "0.0001")!))
            try await world.waitForOrder(second.orderID!, "partially_paid")
            try await world.settled()
            let lines = try await world.strings(
                """
                SELECT t.kind || ' ' || e.account || ':' || e.amount::text FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
                WHERE e.asset = 'ETH' AND e.order_id = (SELECT id FROM orders WHERE public_id = \(first.orderID!)) ORDER BY e.id
                """
            )
            // 0.0041 ETH paid, 1 % kept by NOWPayments: 0.004059 ETH reached the wallet; 3 % of it is the fee.
            #expect(
                lines == [
                    "receipt hot_wallet:4059000000000000", "receipt buyer_credit:-4059000000000000",
                    "split buyer_credit:4059000000000000", "split platform_fee:-121770000000000", "split owner_payable:-3937230000000000",
                ])
            #expect(
                try await world.strings(
                    "SELECT balance::text FROM owner_pending_balances WHERE owner_user_id = \(SubscriptionWorld.owner) AND asset = 'ETH'"
                ) == ["3937230000000000"])
            // 0.0001 BTC at the fake's 25 ETH per BTC, less 1 %: 0.002475 ETH, held for the unsold order.
            #expect(
                try await world.strings(
                    "SELECT (-sum(amount))::text FROM ledger_entries WHERE asset = 'ETH' AND account = 'buyer_credit'"
                ) == ["2475000000000000"])
            let ledgerWallet = try #require(
                try await world.strings(
                    "SELECT sum(amount)::text FROM ledger_entries WHERE asset = 'ETH' AND account = 'hot_wallet'"
                ).first)
            let onChain = try await chain.rpc.balance(of: hotWallet, at: .latest)
            #expect(onChain.description == ledgerWallet, "the chain holds \(onChain) wei, the ledger says \(ledgerWallet)")
            #expect(onChain == BigUInt(4_059_000_000_000_000) + BigUInt(2_475_000_000_000_000))
        }
    }
}
