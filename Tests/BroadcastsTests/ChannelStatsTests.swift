import Bot
import Foundation
import PostgresNIO
import Storage
import TestSupport
import Testing

@Suite("Owner statistics per channel")
struct ChannelStatsTests {
    @Test("active subscribers, started and ended per week, and revenue by tier equal a hand-computed fixture")
    func handComputed() async throws {
        try await withMigratedDatabase { database in
            let stats = try await database.withConnection { connection in
                try await connection.query(
                    "INSERT INTO telegram_users (id, first_name) SELECT id, 'U' FROM generate_series(1, 8) AS id UNION ALL SELECT 500, 'Owner'",
                    logger: quietLogger
                )
                try await connection.query("INSERT INTO owners (user_id) VALUES (500)", logger: quietLogger)
                let channel = try #require(
                    try await connection.first(
                        """
                        INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title)
                        VALUES (500, -1001000000001, 'C', -1001000000002, 'O') RETURNING id
                        """, as: Int64.self, logger: quietLogger))
                let other = try #require(
                    try await connection.first(
                        """
                        INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title)
                        VALUES (500, -1001000000003, 'D', -1001000000004, 'P') RETURNING id
                        """, as: Int64.self, logger: quietLogger))
                // (user, channel, tier, price, paid days ago or NULL for unpaid)
                try await connection.query(
                    """
                    INSERT INTO orders (user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title, status, paid_at)
                    SELECT u, ch, 500, tier, price, 30, -1001000000001, 'C',
                           CASE WHEN ago IS NULL THEN 'awaiting_payment' ELSE 'paid' END, now() - make_interval(days => ago)
                    FROM (VALUES (1, \(channel), 1, 10.00, 2), (2, \(channel), 1, 10.00, 10), (3, \(channel), 2, 25.50, 20),
                                 (4, \(channel), 2, 25.50, 40), (5, \(channel), 1, 9.99, 3), (6, \(channel), 1, 10.00, NULL),
                                 (7, \(other), 1, 100.00, 2)) AS o(u, ch, tier, price, ago)
                    """, logger: quietLogger)
                // (user, status, started days ago, expires in days; negative = ended that many days ago)
                try await connection.query(
                    """
                    INSERT INTO subscriptions (user_id, channel_id, status, started_at, expires_at, last_order_id)
                    SELECT s.u, \(channel), s.status, now() - make_interval(days => s.started), now() + make_interval(days => s.expires),
                           (SELECT id FROM orders WHERE user_id = s.u)
                    FROM (VALUES (1, 'active', 2, 28), (2, 'active', 10, 20), (3, 'expired', 20, -5), (4, 'expired', 40, -10), (5, 'active', 3, 27))
                         AS s(u, status, started, expires)
                    """, logger: quietLogger)
                return try await ChannelStatsStore(logger: quietLogger).read(channelID: channel, on: connection)
            }
            #expect(stats.activeSubscribers == 3)
            // [weeks ago, started, ended]
            #expect(stats.weeks.map { [$0.weeksAgo, $0.started, $0.ended] } == [[0, 2, 1], [1, 1, 1], [2, 1, 0], [3, 0, 0]])
            #expect(stats.tiers.map(\.position) == [1, 2])
            #expect(stats.tiers.map(\.orders) == [3, 2])
            #expect(stats.tiers.map(\.lastWeek) == [Decimal(string: "19.99")!, 0])
            #expect(stats.tiers.map(\.lastMonth) == [Decimal(string: "29.99")!, Decimal(string: "25.5")!])
            #expect(stats.tiers.map(\.allTime) == [Decimal(string: "29.99")!, 51])
        }
    }

    @Test("the card's Stats button shows the owner their numbers; anyone else's press is refused")
    func onlyTheOwner() async throws {
        try await BroadcastBot.run { bot in
            let owner = BroadcastBot.admin, stranger = BroadcastBot.stranger
            let channel = try await bot.database.withConnection { connection in
                try await connection.query("INSERT INTO owners (user_id) VALUES (\(owner))", logger: quietLogger)
                return try #require(
                    try await connection.first(
                        """
                        INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title)
                        VALUES (\(owner), -1001000000001, 'C', -1001000000002, 'O') RETURNING id
                        """, as: Int64.self, logger: quietLogger))
            }
            await bot.fake.userSendsText(stranger, "hello")
            await bot.eventually("the stranger's chat") { await bot.fake.lastMessage(to: stranger) != nil }
            let anchor = try #require(await bot.fake.lastMessage(to: stranger)).messageID
            await bot.fake.userSendsCallback(stranger, data: CallbackData.channelStats(channel).encoded, onMessage: anchor)
            await bot.eventually("the refusal") { await bot.fake.answeredCallbacks.values.contains(bot.text("channels.not_yours")) }
            #expect(await bot.fake.sentMessages(to: stranger).allSatisfy { !$0.text.contains(bot.text("stats.channel.active", ["count": "0"])) })

            await bot.fake.userSendsText(owner, "hello")
            await bot.eventually("the owner's chat") { await bot.fake.lastMessage(to: owner) != nil }
            let ownAnchor = try #require(await bot.fake.lastMessage(to: owner)).messageID
            await bot.fake.userSendsCallback(owner, data: CallbackData.channelStats(channel).encoded, onMessage: ownAnchor)
            await bot.eventually("the owner's stats") {
                await bot.fake.lastMessage(to: owner)?.text.hasPrefix(bot.text("stats.channel.active", ["count": "0"])) == true
            }
        }
    }
}
