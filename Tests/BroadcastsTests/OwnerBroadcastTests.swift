import Bot
import Broadcasts
import Foundation
import PostgresNIO
import Storage
import TestSupport
import Testing

@Suite("Owners broadcast to their channel's subscribers from the channel card")
struct OwnerBroadcastTests {
    @Test("an owner (not an admin) picks 'active subscribers', previews, confirms, and only those subscribers get it")
    func ownerToActiveSubscribers() async throws {
        try await BroadcastBot.run(extraUsers: 4) { bot in
            let owner = BroadcastBot.stranger
            let channel = try await bot.database.withConnection { connection in
                try await connection.query("INSERT INTO owners (user_id) VALUES (\(owner))", logger: quietLogger)
                let channel = try #require(
                    try await connection.first(
                        """
                        INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title)
                        VALUES (\(owner), -1001000000001, 'C', -1001000000002, 'O') RETURNING id
                        """, as: Int64.self, logger: quietLogger))
                // 5001–5003 active, 5004 ended long ago.
                try await connection.query(
                    """
                    WITH paid AS (
                        INSERT INTO orders (user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title, status, paid_at)
                        SELECT u, \(channel), \(owner), 1, 5, 30, -1001000000001, 'C', 'paid', now() - interval '90 days'
                        FROM generate_series(5001, 5004) AS u RETURNING id, user_id
                    )
                    INSERT INTO subscriptions (user_id, channel_id, status, started_at, expires_at, last_order_id)
                    SELECT user_id, \(channel), CASE WHEN user_id < 5004 THEN 'active' ELSE 'expired' END, now() - interval '90 days',
                           CASE WHEN user_id < 5004 THEN now() + interval '5 days' ELSE now() - interval '60 days' END, id
                    FROM paid
                    """, logger: quietLogger)
                return channel
            }
            await bot.fake.userSendsText(owner, "hi")
            await bot.eventually("the owner's chat") { await bot.fake.lastMessage(to: owner) != nil }
            let anchor = try #require(await bot.fake.lastMessage(to: owner)).messageID
            await bot.fake.userSendsCallback(owner, data: CallbackData.channelBroadcast(channel).encoded, onMessage: anchor)
            let active = bot.text("broadcast.audience.active")
            await bot.eventually("the audiences") {
                await bot.fake.sentMessages(to: owner).contains { $0.keyboard?.inlineKeyboard.joined().contains { $0.text == active } == true }
            }
            try await bot.fake.userTapsButton(owner, label: active)
            await bot.eventually("the prompt") { await bot.fake.lastMessage(to: owner)?.text.hasPrefix("📣") == true }
            await bot.fake.userSendsText(owner, "New <i>season</i> starts Monday")
            let send = bot.text("broadcast.button.send", ["count": "3"])
            await bot.eventually("the confirmation") {
                await bot.fake.lastMessage(to: owner)?.keyboard?.inlineKeyboard.joined().contains { $0.text == send } == true
            }
            try await bot.fake.userTapsButton(owner, label: send)
            let id = try #require(try await bot.broadcastIDs().last)
            await bot.eventually("running") { (try? await bot.store.broadcast(id))?.status == .running }
            #expect(try await bot.sender().send(id, logger: quietLogger) == .finished)
            for user in [Int64(5001), 5002, 5003] {
                #expect(await bot.fake.sentMessages(to: user).map(\.text) == ["New <i>season</i> starts Monday"])
            }
            #expect(await bot.fake.sentMessages(to: 5004).isEmpty)
            #expect(await bot.fake.sentMessages(to: BroadcastBot.admin).isEmpty)
        }
    }
}
