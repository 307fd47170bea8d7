import Bot
import Foundation
import Jobs
import NOWPaymentsFake
import PostgresNIO
import Subscriptions
import TestSupport
import Testing

extension SubscriptionWorld {
    func notifyOwner(_ notification: OwnerNotification) async throws {
        try await queue.transaction { transaction in
            try await OwnerNotifications.enqueue(notification, channelID: channelID, in: transaction)
        }
    }

    func setNotifications(_ enabled: Bool, recipient: Int64?) async throws {
        try await database.withConnection { connection in
            try await connection.run(
                "UPDATE channel_payout_settings SET notifications_enabled = \(enabled), notification_user_id = \(recipient)", logger: quietLogger
            )
        }
    }

    func execute(_ sql: PostgresQuery) async throws {
        try await database.withConnection { connection in try await connection.run(sql, logger: quietLogger) }
    }
}

@Suite("Owner notifications (fake Bot API, fake NOWPayments, real PostgreSQL)")
struct OwnerNotificationTests {
    let notice = PayoutNotice(
        payoutID: 41, amount: "0.0123", currency: "ETH", network: "ETH", wallet: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        transactionHash: "0xabc123"
    )

    @Test(
        "a new subscription names channel, tier, price, duration, share and the buyer as a mention, with the instant payout section; a renewal says renewal; threshold payouts show progress"
    )
    func saleAndRenewal() async throws {
        try await withSubscriptionWorld { world in
            let owner = SubscriptionWorld.owner
            let first = try await world.order(SubscriptionWorld.anna)
            try await world.pay(first, through: ["finished"])
            try await world.waitForOrder(first.orderID!, "paid")
            try await world.settled()
            let sale = try #require(await world.bot.sentMessages(to: owner).last?.text)
            #expect(
                sale == """
                    💸 New subscription to <b>Secret Club</b>
                    Tier 1: $10.00 for 30 days
                    Buyer: <a href="tg://user?id=\(SubscriptionWorld.anna)">Anna</a>
                    Your share: $9.70

                    Payout: instant, in USDT on ETH to 0x5aAe…eAed.
                    """)

            try await world.execute("UPDATE channel_payout_settings SET strategy = 'threshold', threshold_usd = 50")
            let second = try await world.order(SubscriptionWorld.anna, position: 2)
            try await world.pay(second, through: ["finished"])
            try await world.waitForOrder(second.orderID!, "paid")
            try await world.settled()
            let renewal = try #require(await world.bot.sentMessages(to: owner).last?.text)
            #expect(renewal.hasPrefix("🔁 Renewal of <b>Secret Club</b>\nTier 2: $25.50 for 90 days"), "\(renewal)")
            // Nothing is converted to USDT yet; the two shares wait for a conversion, valued at payment time:
            // 9.70 + 24.73 (25.50 less its 0.77 fee) = 34.43.
            #expect(
                renewal.hasSuffix("Payout at $50.00: $0.00 of $50.00 converted (0%); $34.43 more waits for the next conversion to USDT."),
                "\(renewal)")
        }
    }

    @Test(
        "payout sent, arrived and failed (with what to fix) reach the recipient; notifications off send nothing; a recipient changed before delivery gets it; the recipient's language is used"
    )
    func payoutsAndRecipients() async throws {
        try await withSubscriptionWorld(workers: false) { world in
            let owner = SubscriptionWorld.owner
            try await world.notifyOwner(.payoutSent(notice))
            try await world.notifyOwner(.payoutArrived(notice))
            try await world.notifyOwner(.payoutFailed(notice, problem: .invalidWallet))
            // The recipient changes after the events but before delivery: the new recipient hears of them.
            try await world.setNotifications(true, recipient: SubscriptionWorld.boris)
            let workers = Task { try await world.pool.run() }
            defer { world.pool.beginShutdown() }
            try await world.eventually("three payout notices reach Boris") { await world.bot.sentMessages(to: SubscriptionWorld.boris).count == 3 }
            let texts = await world.bot.sentMessages(to: SubscriptionWorld.boris).map(\.text)
            #expect(texts.contains("📤 Payout sent for <b>Secret Club</b>: 0.0123 ETH on ETH to 0x5aAe…eAed.\nTransaction: 0xabc123"))
            #expect(texts.contains("✅ Payout arrived for <b>Secret Club</b>: 0.0123 ETH on ETH at 0x5aAe…eAed.\nTransaction: 0xabc123"))
            let fix = world.text("owner.notice.payout_fix.invalid_wallet")
            #expect(texts.contains { $0.hasPrefix("⚠️ Payout of 0.0123 ETH for <b>Secret Club</b>") && $0.hasSuffix("What to do: " + fix) })
            #expect(await world.bot.sentMessages(to: owner).isEmpty)

            try await world.setNotifications(false, recipient: nil)
            try await world.notifyOwner(.test)
            try await world.notifyOwner(
                .payoutFailed(PayoutNotice(payoutID: 42, amount: "1", currency: "ETH", network: "ETH", wallet: "0x1"), problem: .temporary))
            try await world.settled()
            #expect(await world.bot.sentMessages(to: owner).isEmpty, "notifications are off")
            #expect(await world.bot.sentMessages(to: SubscriptionWorld.boris).count == 3)

            try await world.setNotifications(true, recipient: owner)
            try await world.execute("UPDATE telegram_users SET chosen_language = 'ru' WHERE id = \(owner)")
            try await world.notifyOwner(.test)
            try await world.eventually("the owner gets the test in Russian") {
                await world.bot.sentMessages(to: owner).last?.text.hasPrefix("🔔 Тестовое уведомление для <b>Secret Club</b>") == true
            }
            world.pool.beginShutdown()
            try? await workers.value
        }
    }

    @Test("every payout problem has a fix in every language, and wallets are shortened to first six and last four characters")
    func renderingRules() {
        for problem in PayoutProblem.allCases {
            for language in SubscriptionWorld.localizer.languages {
                let key = "owner.notice.payout_fix.\(problem.rawValue)"
                #expect(SubscriptionWorld.localizer.text(key, language: language) != key)
            }
        }
        #expect(OwnerNotificationText.shortWallet("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed") == "0x5aAe…eAed")
        #expect(OwnerNotificationText.shortWallet("short") == "short")
        #expect(OwnerNotificationText.percent(Decimal(string: "34.44")!, of: 50) == 68)
        #expect(OwnerNotificationText.percent(0, of: 50) == 0)
        #expect(OwnerNotificationText.mention(id: 7, name: "<Tom & Jerry>") == "<a href=\"tg://user?id=7\">&lt;Tom &amp; Jerry&gt;</a>")
    }
}
