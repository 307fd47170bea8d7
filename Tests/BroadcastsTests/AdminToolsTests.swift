import Bot
import Broadcasts
import Foundation
import Jobs
import PostgresNIO
import Storage
import Subscriptions
import TelegramBotAPI
import TestSupport
import Testing

@Suite("Admins grant access without an order, pause any channel, and release failed payouts")
struct AdminToolsTests {
    static let owner: Int64 = 1003
    static let closedChat: Int64 = -1001000000021
    static let openChat: Int64 = -1001000000022

    /// Channel "Beta VIP" of owner 1003, known to the fake and the database; nobody has ordered it.
    static func channel(_ bot: BroadcastBot) async throws -> Int64 {
        await bot.fake.addUser(id: owner, firstName: "Olga", languageCode: "en")
        await bot.fake.addChannel(id: closedChat, title: "Beta VIP", owner: owner)
        await bot.fake.addChannel(id: openChat, title: "Beta", owner: owner)
        return try await bot.database.withConnection { connection in
            try await connection.query(
                "INSERT INTO telegram_users (id, first_name) VALUES (\(owner), 'Olga') ON CONFLICT DO NOTHING", logger: quietLogger)
            try await connection.query("INSERT INTO owners (user_id) VALUES (\(owner)) ON CONFLICT DO NOTHING", logger: quietLogger)
            return try #require(
                try await connection.first(
                    """
                    INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, status)
                    VALUES (\(owner), \(closedChat), 'Beta VIP', \(openChat), 'Beta', 'active') RETURNING id
                    """, as: Int64.self, logger: quietLogger))
        }
    }

    static func jobs(_ bot: BroadcastBot, kind: String) async throws -> [String] {
        try await bot.database.withConnection { connection in
            try await connection.all("SELECT payload::text FROM jobs WHERE kind = \(kind) ORDER BY id", as: String.self, logger: quietLogger)
        }
    }

    @Test("grant to someone who never ordered: the reason required, a subscription with no order, an audit row, told, invited, then a member")
    func grantWithoutOrder() async throws {
        try await BroadcastBot.run { bot in
            let channel = try await Self.channel(bot)
            let admin = BroadcastBot.admin, person = BroadcastBot.stranger
            await bot.fake.userSendsText(admin, "/admin grant \(person) \(channel) 400000")
            await bot.eventually("the usage") {
                await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.grant.usage", ["maximum": "3650"])
            }
            await bot.fake.userSendsText(admin, "/admin grant @nobody \(channel) 14")
            await bot.eventually("unknown person") {
                await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.grant.not_found", ["user": "@nobody", "channel": String(channel)])
            }
            await bot.fake.userSendsText(admin, "/admin grant \(person) \(channel) 14")
            await bot.eventually("the reason prompt") {
                await bot.fake.lastMessage(to: admin)?.text
                    == bot.text("admin.access.reason_prompt.grant", ["title": "Beta VIP", "days": "14", "user": String(person)])
            }
            await bot.fake.userSendsText(admin, "no")
            await bot.eventually("the short reason refused") {
                await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.access.reason_invalid")
            }
            let before = try await bot.database.withConnection { connection -> Int64? in
                try await connection.first("SELECT count(*) FROM subscriptions", as: Int64.self, logger: quietLogger)
            }
            #expect(before == 0)

            await bot.fake.userSendsText(admin, "Prize winner of the November contest")
            await bot.eventually("the grant done") { await bot.fake.lastMessage(to: admin)?.text.hasPrefix("✅ Beta VIP") == true }
            let (subscription, status, order, days) = try #require(
                try await bot.database.withConnection { connection in
                    try await connection.first(
                        """
                        SELECT id, status, last_order_id, round(extract(epoch FROM expires_at - started_at) / 86400)::int FROM subscriptions
                        WHERE user_id = \(person) AND channel_id = \(channel)
                        """, as: (Int64, String, Int64?, Int32).self, logger: quietLogger)
                })
            #expect(status == "active" && order == nil && days == 14)
            let audit = try #require(
                try await bot.database.withConnection { connection in
                    try await connection.first(
                        """
                        SELECT admin_user_id, action, reason, status, subscription_id, channel_id, expires_before FROM admin_access_actions
                        """, as: (Int64, String, String?, String, Int64?, Int64?, Date?).self, logger: quietLogger)
                })
            #expect(audit.0 == admin && audit.1 == "grant" && audit.2 == "Prize winner of the November contest" && audit.3 == "done")
            #expect(audit.4 == subscription && audit.5 == channel && audit.6 == nil)
            #expect(try await Self.jobs(bot, kind: NotifyUserJob.kind).contains { $0.contains("subscription.admin_granted") })
            #expect(try await Self.jobs(bot, kind: DeliverInviteJob.kind).count == 1)

            // The invite the job sends lets them in.
            let access = AccessService(
                database: bot.database, queue: JobQueue(database: bot.database, logger: quietLogger),
                access: TelegramChannelAccess(client: bot.client), clock: SystemWallClock(), settings: SubscriptionSettings(), logger: quietLogger
            )
            try await access.deliverInvite(subscriptionID: subscription)
            let link = try #require(await bot.fake.inviteLinks.values.first { $0.chatID == Self.closedChat }?.link.inviteLink)
            try await bot.fake.userOpensInviteLink(person, link)
            // Links ask to join (the default mode); the bot approves a person whose subscription is active.
            #expect(try await access.handleJoinRequest(chatID: Self.closedChat, userID: person) == true)
            #expect(await bot.fake.memberStatus(chat: Self.closedChat, user: person) == "member")
        }
    }

    @Test("a non-admin's /admin grant and /admin channel are unknown commands, and crafted channel buttons change nothing")
    func nonAdminRefused() async throws {
        try await BroadcastBot.run { bot in
            let channel = try await Self.channel(bot)
            let stranger = BroadcastBot.stranger
            await bot.fake.userSendsText(stranger, "/admin grant \(stranger) \(channel) 30")
            await bot.eventually("the refusal") {
                await bot.fake.lastMessage(to: stranger)?.text == bot.text("command.unknown", ["command": "/admin"])
            }
            await bot.fake.userSendsCallback(stranger, data: CallbackData.adminChannel(.pause, channel).encoded, onMessage: 1)
            await bot.fake.userSendsCallback(stranger, data: CallbackData.adminReleasePayout(1).encoded, onMessage: 1)
            await bot.eventually("two refusals") {
                await bot.fake.answeredCallbacks.values.filter { $0 == bot.text("admin.not_allowed") }.count == 2
            }
            await bot.fake.userSendsText(stranger, "because I say so")
            await bot.eventually("the text handled") { await bot.fake.lastMessage(to: stranger)?.text == bot.text("text.unexpected") }
            let (subscriptions, accessRows, channelRows, status) = try #require(
                try await bot.database.withConnection { connection in
                    try await connection.first(
                        """
                        SELECT (SELECT count(*) FROM subscriptions), (SELECT count(*) FROM admin_access_actions), (SELECT count(*) FROM admin_channel_actions),
                               (SELECT status FROM channels WHERE id = \(channel))
                        """, as: (Int64, Int64, Int64, String).self, logger: quietLogger)
                })
            #expect(subscriptions == 0 && accessRows == 0 && channelRows == 0 && status == "active")
        }
    }

    @Test("an admin pauses any channel with a reason the owner is told; the owner cannot resume it; the admin resumes it")
    func pauseAndResume() async throws {
        try await BroadcastBot.run { bot in
            let channel = try await Self.channel(bot)
            let admin = BroadcastBot.admin
            await bot.fake.userSendsText(admin, "/admin channel beta vip")
            let pause = bot.text("admin.channel.button.pause")
            await bot.eventually("the channel card") {
                await bot.fake.lastMessage(to: admin)?.keyboard?.inlineKeyboard.joined().contains { $0.text == pause } == true
            }
            #expect(await bot.fake.lastMessage(to: admin)?.text.contains("<code>\(channel)</code>") == true)
            try await bot.fake.userTapsButton(admin, label: pause)
            await bot.eventually("the reason prompt") {
                await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.channel.reason_prompt.pause", ["title": "Beta VIP"])
            }
            await bot.fake.userSendsText(admin, "Reported for selling stolen content")
            await bot.eventually("paused") { await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.channel.paused", ["title": "Beta VIP"]) }
            @Sendable func state() async throws -> String {
                let row = try await bot.database.withConnection { connection in
                    try await connection.first(
                        "SELECT status, paused_reason FROM channels WHERE id = \(channel)", as: (String, String?).self, logger: quietLogger)
                }
                return "\(row?.0 ?? "") \(row?.1 ?? "-")"
            }
            #expect(try await state() == "paused admin")
            let notices = try await Self.jobs(bot, kind: NotifyUserJob.kind)
            #expect(
                notices.contains {
                    $0.contains("channel.admin_paused") && $0.contains("Reported for selling stolen content") && $0.contains("\(Self.owner)")
                })

            // The owner's Resume is refused.
            await bot.fake.userSendsCallback(Self.owner, data: CallbackData.channelResume(channel).encoded, onMessage: 1)
            await bot.eventually("the owner refused") { await bot.fake.answeredCallbacks.values.contains(bot.text("channels.paused_by_admin")) }
            #expect(try await state() == "paused admin")

            await bot.fake.userSendsText(admin, "/admin channel \(channel)")
            let resume = bot.text("admin.channel.button.resume")
            await bot.eventually("the card with resume") {
                await bot.fake.lastMessage(to: admin)?.keyboard?.inlineKeyboard.joined().contains { $0.text == resume } == true
            }
            try await bot.fake.userTapsButton(admin, label: resume)
            await bot.eventually("the reason prompt") {
                await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.channel.reason_prompt.resume", ["title": "Beta VIP"])
            }
            await bot.fake.userSendsText(admin, "The owner removed the content")
            await bot.eventually("resumed") {
                await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.channel.resumed", ["title": "Beta VIP"])
            }
            #expect(try await state() == "active -")
            let audit = try await bot.database.withConnection { connection in
                try await connection.all(
                    "SELECT admin_user_id, action, reason, status FROM admin_channel_actions ORDER BY id", as: (Int64, String, String?, String).self,
                    logger: quietLogger
                )
            }
            #expect(
                audit.map { "\($0.0) \($0.1) \($0.2 ?? "") \($0.3)" } == [
                    "\(admin) pause Reported for selling stolen content done", "\(admin) resume The owner removed the content done",
                ])
            #expect(try await Self.jobs(bot, kind: NotifyUserJob.kind).contains { $0.contains("channel.admin_resumed") })
        }
    }

    @Test("failed work lists a failed payout with its reason; Allow releases it once, a second press is refused")
    func failedPayouts() async throws {
        try await BroadcastBot.run { bot in
            let channel = try await Self.channel(bot)
            let payout = try #require(
                try await bot.database.withConnection { connection in
                    try await connection.first(
                        """
                        INSERT INTO payouts (owner_user_id, channel_id, asset, amount, currency_code, network_code, wallet_address, state, failure, route, owner_fixable)
                        VALUES (\(Self.owner), \(channel), 'ETH', 1000000000000000, 'usdc', 'eth', '0x00000000000000000000000000000000000000aa', 'failed',
                                'ChangeNOW rejects the wallet', 'exchange', true)
                        RETURNING id
                        """, as: Int64.self, logger: quietLogger)
                })
            let admin = BroadcastBot.admin
            await bot.fake.userSendsText(admin, "/admin")
            await bot.eventually("the admin menu") { await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.menu") }
            try await bot.fake.userTapsButton(admin, label: bot.text("admin.button.failed_jobs"))
            let release = bot.text("admin.button.release_payout", ["id": String(payout)])
            await bot.eventually("the failed payouts") {
                await bot.fake.sentMessages(to: admin).contains { $0.keyboard?.inlineKeyboard.joined().contains { $0.text == release } == true }
            }
            let list = try #require(await bot.fake.sentMessages(to: admin).first { $0.text.hasPrefix(bot.text("admin.payouts.title")) })
            #expect(list.text.contains("ChangeNOW rejects the wallet"))
            #expect(list.text.contains(bot.text("admin.payouts.owner_fixable")))
            try await bot.fake.userTapsButton(admin, label: release, onMessage: list.messageID)
            await bot.eventually("released") {
                await bot.fake.answeredCallbacks.values.contains(bot.text("admin.payouts.released", ["id": String(payout)]))
            }
            let released = try await bot.database.withConnection { connection in
                try await connection.first("SELECT released_at IS NOT NULL FROM payouts WHERE id = \(payout)", as: Bool.self, logger: quietLogger)
            }
            #expect(released == true)
            try await bot.fake.userTapsButton(admin, label: release, onMessage: list.messageID)
            await bot.eventually("refused the second time") {
                await bot.fake.answeredCallbacks.values.contains(bot.text("admin.payouts.not_released", ["id": String(payout)]))
            }
        }
    }

    @Test("an owner types any N for \"expired in the last N days\"; a wrong answer is explained and the question stays")
    func audienceDays() async throws {
        try await BroadcastBot.run { bot in
            let channel = try await Self.channel(bot)
            try await bot.database.withConnection { connection in
                try await connection.query(
                    """
                    INSERT INTO subscriptions (user_id, channel_id, status, started_at, expires_at, expired_at) VALUES
                        (\(BroadcastBot.stranger), \(channel), 'expired', now() - interval '90 days', now() - interval '40 days', now() - interval '40 days')
                    """, logger: quietLogger)
            }
            await bot.fake.userSendsCallback(Self.owner, data: CallbackData.channelBroadcast(channel).encoded, onMessage: 1)
            let choice = bot.text("broadcast.audience.expired_days")
            await bot.eventually("the audiences") {
                await bot.fake.lastMessage(to: Self.owner)?.keyboard?.inlineKeyboard.joined().contains { $0.text == choice } == true
            }
            try await bot.fake.userTapsButton(Self.owner, label: choice)
            await bot.eventually("the question") {
                await bot.fake.lastMessage(to: Self.owner)?.text == bot.text("broadcast.audience.ask_days", ["min": "1", "max": "365"])
            }
            for wrong in ["forty", "0", "366", "-5"] {
                let before = await bot.fake.sentMessages(to: Self.owner).count
                await bot.fake.userSendsText(Self.owner, wrong)
                await bot.eventually("'\(wrong)' explained") {
                    let sent = await bot.fake.sentMessages(to: Self.owner)
                    return sent.count > before && sent.last?.text == bot.text("broadcast.audience.days_invalid", ["min": "1", "max": "365"])
                }
                #expect(try await bot.broadcastIDs().isEmpty)
            }
            await bot.fake.userSendsText(Self.owner, "45")
            try await bot.eventually("the composer for 45 days") {
                let drafts = try await bot.broadcastIDs()
                let last = await bot.fake.lastMessage(to: Self.owner)?.text ?? ""
                return drafts.count == 1 && last.contains(bot.text("broadcast.audience.expired", ["days": "45"]))
            }
            let days = try await bot.database.withConnection { connection in
                try await connection.first("SELECT audience, audience_days FROM broadcasts", as: (String, Int32?).self, logger: quietLogger)
            }
            #expect(days?.0 == "channel_expired" && days?.1 == 45)
            // The question is closed: the next text is the broadcast's text, checked by the composer.
            await bot.fake.userSendsText(Self.owner, "12")
            await bot.eventually("the preview and confirmation") {
                await bot.fake.lastMessage(to: Self.owner)?.keyboard?.inlineKeyboard.joined().contains {
                    $0.text == bot.text("broadcast.button.send", ["count": "1"])
                } == true
            }
        }
    }
}

@Suite("The admin's money figures")
struct PlatformMoneyStatsTests {
    @Test("fees today, 7 and 30 days per asset, owner payables by state and the hot wallet by the ledger equal a hand-computed fixture")
    func handComputed() async throws {
        try await withMigratedDatabase { database in
            try await database.withTransaction { connection in
                try await connection.query("INSERT INTO telegram_users (id, first_name) VALUES (500, 'Owner'), (1, 'Buyer')", logger: quietLogger)
                try await connection.query("INSERT INTO owners (user_id) VALUES (500)", logger: quietLogger)
                let channel = try #require(
                    try await connection.first(
                        """
                        INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title)
                        VALUES (500, -1001000000001, 'C', -1001000000002, 'O') RETURNING id
                        """, as: Int64.self, logger: quietLogger))
                // (key, kind, days ago, [(account, asset, amount, owner?)])
                let bookings: [(String, String, Int, [(String, String, String, Bool)])] = [
                    (
                        "t1", "sale", 0,
                        [
                            ("provider_clearing", "USD", "10.00", false), ("platform_fee", "USD", "-1.00", false),
                            ("owner_payable", "USD", "-9.00", true),
                        ]
                    ),
                    (
                        "t2", "sale", 3,
                        [
                            ("provider_clearing", "USD", "20.00", false), ("platform_fee", "USD", "-2.50", false),
                            ("owner_payable", "USD", "-17.50", true),
                        ]
                    ),
                    (
                        "t3", "sale", 20,
                        [
                            ("provider_clearing", "USD", "40.00", false), ("platform_fee", "USD", "-4.25", false),
                            ("owner_payable", "USD", "-35.75", true),
                        ]
                    ),
                    (
                        "t4", "sale", 45,
                        [
                            ("provider_clearing", "USD", "100.00", false), ("platform_fee", "USD", "-8.00", false),
                            ("owner_payable", "USD", "-92.00", true),
                        ]
                    ),
                    ("t5", "receipt", 1, [("hot_wallet", "ETH", "5000000", false), ("buyer_credit", "ETH", "-5000000", false)]),
                    (
                        "t6", "split", 1,
                        [
                            ("buyer_credit", "ETH", "5000000", false), ("platform_fee", "ETH", "-500000", false),
                            ("owner_payable", "ETH", "-4500000", true),
                        ]
                    ),
                ]
                for (key, kind, ago, entries) in bookings {
                    let transaction = try #require(
                        try await connection.first(
                            "INSERT INTO ledger_transactions (kind, idempotency_key, created_at) VALUES (\(kind), \(key), now() - make_interval(days => \(Int32(ago)))) RETURNING id",
                            as: Int64.self, logger: quietLogger
                        ))
                    for (account, asset, amount, owned) in entries {
                        try await connection.query(
                            """
                            INSERT INTO ledger_entries (transaction_id, account, asset, amount, owner_user_id, channel_id, created_at)
                            VALUES (\(transaction), \(account), \(asset), \(amount)::numeric, \(owned ? Int64(500) : nil), \(owned ? channel : nil),
                                    now() - make_interval(days => \(Int32(ago))))
                            """, logger: quietLogger)
                    }
                }
            }
            let stats = try await PlatformStatsStore(database: database, logger: quietLogger).read()
            #expect(
                stats.fees == [
                    .init(asset: "ETH", today: 0, week: 500_000, month: 500_000),
                    .init(asset: "USD", today: 1, week: Decimal(string: "3.5")!, month: Decimal(string: "7.75")!),
                ])
            #expect(
                stats.payables == [
                    .init(asset: "ETH", pending: 4_500_000, inFlight: 0, paidOut: 0),
                    .init(asset: "USD", pending: Decimal(string: "154.25")!, inFlight: 0, paidOut: 0),
                ])
            #expect(stats.hotWallet == [.init(asset: "ETH", amount: 5_000_000)])
        }
    }
}

@Suite("Owner statistics: donations and the owner's money")
struct OwnerMoneyStatsTests {
    @Test("donations by period and the balances per asset equal a hand-computed fixture; tiers leave donations out")
    func handComputed() async throws {
        try await BroadcastBot.run { bot in
            let owner = BroadcastBot.admin
            let channel = try await bot.database.withConnection { connection in
                try await connection.query("INSERT INTO owners (user_id) VALUES (\(owner))", logger: quietLogger)
                let channel = try #require(
                    try await connection.first(
                        """
                        INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, status)
                        VALUES (\(owner), -1001000000031, 'Gamma VIP', -1001000000032, 'Gamma', 'active') RETURNING id
                        """, as: Int64.self, logger: quietLogger))
                // (kind, tier, price, paid days ago)
                try await connection.query(
                    """
                    INSERT INTO orders (user_id, channel_id, owner_user_id, kind, tier_position, price_usd, duration_days, closed_chat_id, closed_title, status, paid_at)
                    SELECT \(BroadcastBot.stranger), \(channel), \(owner), kind, tier, price, CASE WHEN tier IS NULL THEN NULL ELSE 30 END, -1001000000031, 'Gamma VIP',
                           'paid', now() - make_interval(days => ago)
                    FROM (VALUES ('subscription', 1::smallint, 10.00, 2), ('donation', NULL::smallint, 5.00, 3), ('donation', NULL, 7.50, 40),
                                 ('donation', NULL, 2.25, 10)) AS o(kind, tier, price, ago)
                    """, logger: quietLogger)
                try await connection.query(
                    """
                    INSERT INTO owner_balances (owner_user_id, channel_id, asset, earned, pending, in_flight, paid_out)
                    VALUES (\(owner), \(channel), 'USD', 24.75, 4.75, 10.00, 10.00)
                    """, logger: quietLogger)
                return channel
            }
            let stats = try await bot.database.withConnection { try await ChannelStatsStore(logger: quietLogger).read(channelID: channel, on: $0) }
            #expect(stats.tiers.map(\.orders) == [1])
            #expect(stats.donations.count == 3)
            #expect(stats.donations.lastWeek == 5)
            #expect(stats.donations.lastMonth == Decimal(string: "7.25")!)
            #expect(stats.donations.allTime == Decimal(string: "14.75")!)

            await bot.fake.userSendsCallback(owner, data: CallbackData.channelStats(channel).encoded, onMessage: 1)
            let balance = bot.text(
                "stats.channel.balance", ["asset": "USD", "earned": "24.75", "pending": "4.75", "converting": "0", "in_flight": "10", "paid": "10"])
            let donations = bot.text("stats.channel.donations", ["count": "3", "week": "5", "month": "7.25", "all": "14.75"])
            await bot.eventually("the stats with donations and balances") {
                let text = await bot.fake.lastMessage(to: owner)?.text ?? ""
                return text.contains(balance) && text.contains(donations)
            }
        }
    }
}

@Suite("The admin's stats in the bot")
struct AdminStatsBotTests {
    @Test("Stats shows the counts, then fees, owner payables, open payouts and the hot wallet; a crafted press from anyone else is refused")
    func statsInTheBot() async throws {
        try await BroadcastBot.run { bot in
            try await bot.database.withTransaction { connection in
                try await connection.query("INSERT INTO owners (user_id) VALUES (\(BroadcastBot.stranger))", logger: quietLogger)
                let channel = try #require(
                    try await connection.first(
                        """
                        INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, status)
                        VALUES (\(BroadcastBot.stranger), -1001000000041, 'Delta VIP', -1001000000042, 'Delta', 'active') RETURNING id
                        """, as: Int64.self, logger: quietLogger))
                let transaction = try #require(
                    try await connection.first(
                        "INSERT INTO ledger_transactions (kind, idempotency_key) VALUES ('sale', 'stats-bot') RETURNING id", as: Int64.self,
                        logger: quietLogger
                    ))
                try await connection.query(
                    """
                    INSERT INTO ledger_entries (transaction_id, account, asset, amount, owner_user_id, channel_id) VALUES
                        (\(transaction), 'provider_clearing', 'USD', 10.00, NULL, NULL),
                        (\(transaction), 'platform_fee', 'USD', -0.30, NULL, NULL),
                        (\(transaction), 'owner_payable', 'USD', -9.70, \(BroadcastBot.stranger), \(channel))
                    """, logger: quietLogger)
            }
            await bot.fake.userSendsCallback(BroadcastBot.stranger, data: CallbackData.admin(.stats).encoded, onMessage: 1)
            await bot.eventually("the refusal") { await bot.fake.answeredCallbacks.values.contains(bot.text("admin.not_allowed")) }
            #expect(await bot.fake.sentMessages(to: BroadcastBot.stranger).isEmpty)

            let admin = BroadcastBot.admin
            await bot.fake.userSendsText(admin, "/admin")
            await bot.eventually("the admin menu") { await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.menu") }
            try await bot.fake.userTapsButton(admin, label: bot.text("admin.button.stats"))
            let fee = bot.text("admin.stats.fee_line", ["asset": "USD", "today": "0.3", "week": "0.3", "month": "0.3"])
            let payable = bot.text("admin.stats.payable_line", ["asset": "USD", "pending": "9.7", "converting": "0", "in_flight": "0", "paid": "0"])
            await bot.eventually("the stats") {
                let text = await bot.fake.lastMessage(to: admin)?.text ?? ""
                return text.contains(fee) && text.contains(payable) && text.contains(bot.text("admin.stats.hot_wallet"))
            }
        }
    }
}
