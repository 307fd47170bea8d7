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

@Suite("Admins look people up and extend or revoke their access, with a reason and an audit row")
struct AdminAccessTests {
    static let closedChat: Int64 = -1001000000001
    static let owner: Int64 = 1003

    /// Channel "Alpha VIP" owned by 1003; user 1002 paid and is subscribed for 10 more days and is in the
    /// closed channel. Returns the subscription id.
    static func subscribe(_ bot: BroadcastBot) async throws -> Int64 {
        await bot.fake.addUser(id: owner, firstName: "Olga", languageCode: "en")
        await bot.fake.addChannel(id: closedChat, title: "Alpha VIP", owner: owner)
        await bot.fake.addChannel(id: -1001000000002, title: "Alpha", owner: owner)
        let link = try await bot.client.send(CreateChatInviteLink(chatId: .id(closedChat), memberLimit: 1))
        try await bot.fake.userOpensInviteLink(BroadcastBot.stranger, link.inviteLink)
        return try await bot.database.withConnection { connection in
            try await connection.query("INSERT INTO telegram_users (id, first_name) VALUES (\(owner), 'Olga')", logger: quietLogger)
            try await connection.query("INSERT INTO owners (user_id) VALUES (\(owner))", logger: quietLogger)
            let channel = try #require(
                try await connection.first(
                    """
                    INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title)
                    VALUES (\(owner), \(closedChat), 'Alpha VIP', -1001000000002, 'Alpha') RETURNING id
                    """, as: Int64.self, logger: quietLogger))
            return try #require(
                try await connection.first(
                    """
                    WITH paid AS (
                        INSERT INTO orders (user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title, status, paid_at)
                        VALUES (\(BroadcastBot.stranger), \(channel), \(owner), 1, 9.99, 30, \(closedChat), 'Alpha VIP', 'paid', now() - interval '20 days')
                        RETURNING id
                    )
                    INSERT INTO subscriptions (user_id, channel_id, status, started_at, expires_at, last_order_id)
                    SELECT \(BroadcastBot.stranger), \(channel), 'active', now() - interval '20 days', now() + interval '10 days', id FROM paid
                    RETURNING id
                    """, as: Int64.self, logger: quietLogger))
        }
    }

    static func audit(_ bot: BroadcastBot) async throws -> [(
        admin: Int64, action: String, reason: String?, status: String, before: Date?, after: Date?
    )] {
        try await bot.database.withConnection { connection in
            let rows = try await connection.query(
                "SELECT admin_user_id, action, reason, status, expires_before, expires_after FROM admin_access_actions ORDER BY id",
                logger: quietLogger
            )
            var result: [(admin: Int64, action: String, reason: String?, status: String, before: Date?, after: Date?)] = []
            for try await row in rows.decode((Int64, String, String?, String, Date?, Date?).self) { result.append(row) }
            return result
        }
    }

    static func expiresAt(_ bot: BroadcastBot, _ subscription: Int64) async throws -> Date {
        try await bot.database.withConnection { connection in
            try #require(
                try await connection.first("SELECT expires_at FROM subscriptions WHERE id = \(subscription)", as: Date.self, logger: quietLogger))
        }
    }

    static func notices(_ bot: BroadcastBot) async throws -> [String] {
        try await bot.database.withConnection { connection in
            let rows = try await connection.query(
                "SELECT payload->>'key' FROM jobs WHERE kind = \(NotifyUserJob.kind) AND (payload->>'userID')::bigint = \(BroadcastBot.stranger) ORDER BY id",
                logger: quietLogger
            )
            var keys: [String] = []
            for try await key in rows.decode(String.self) { keys.append(key) }
            return keys
        }
    }

    @Test("extend: 30 more days, the reason required and recorded with the expiry before and after, the subscriber told")
    func extend() async throws {
        try await BroadcastBot.run { bot in
            let subscription = try await Self.subscribe(bot)
            let before = try await Self.expiresAt(bot, subscription)
            let admin = BroadcastBot.admin
            await bot.fake.userSendsText(admin, "/admin user \(BroadcastBot.stranger)")
            let label = bot.text("admin.button.extend", ["days": "30", "title": "Alpha VIP"])
            await bot.eventually("the user's card") {
                await bot.fake.lastMessage(to: admin)?.keyboard?.inlineKeyboard.joined().contains { $0.text == label } == true
            }
            #expect(await bot.fake.lastMessage(to: admin)?.text.contains("Alpha VIP") == true)
            try await bot.fake.userTapsButton(admin, label: label)
            await bot.eventually("the reason prompt") {
                await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.access.reason_prompt.extend", ["title": "Alpha VIP", "days": "30"])
            }
            await bot.fake.userSendsText(admin, "ok")
            await bot.eventually("the short reason refused") {
                await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.access.reason_invalid")
            }
            #expect(try await Self.expiresAt(bot, subscription) == before)

            await bot.fake.userSendsText(admin, "Goodwill after the outage")
            await bot.eventually("the extension done") { await bot.fake.lastMessage(to: admin)?.text.hasPrefix("✅ Alpha VIP") == true }
            let after = try await Self.expiresAt(bot, subscription)
            #expect(abs(after.timeIntervalSince(before) - 30 * 86_400) < 1)
            let audit = try await Self.audit(bot)
            #expect(audit.count == 1)
            #expect(audit.first?.admin == admin)
            #expect(audit.first?.action == "extend")
            #expect(audit.first?.reason == "Goodwill after the outage")
            #expect(audit.first?.status == "done")
            #expect(audit.first?.before.map { abs($0.timeIntervalSince(before)) < 1 } == true)
            #expect(audit.first?.after.map { abs($0.timeIntervalSince(after)) < 1 } == true)
            #expect(try await Self.notices(bot) == ["subscription.admin_extended"])
        }
    }

    @Test("revoke: the subscription ends now, the expiry sweep removes them from the channel, audited and told")
    func revoke() async throws {
        try await BroadcastBot.run { bot in
            let subscription = try await Self.subscribe(bot)
            #expect(await bot.fake.memberStatus(chat: Self.closedChat, user: BroadcastBot.stranger) == "member")
            let admin = BroadcastBot.admin
            await bot.fake.userSendsText(admin, "/admin user \(BroadcastBot.stranger)")
            let label = bot.text("admin.button.revoke", ["title": "Alpha VIP"])
            await bot.eventually("the user's card") {
                await bot.fake.lastMessage(to: admin)?.keyboard?.inlineKeyboard.joined().contains { $0.text == label } == true
            }
            try await bot.fake.userTapsButton(admin, label: label)
            await bot.eventually("the reason prompt") {
                await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.access.reason_prompt.revoke", ["title": "Alpha VIP"])
            }
            await bot.fake.userSendsText(admin, "Chargeback reported by the provider")
            await bot.eventually("the revocation done") { await bot.fake.lastMessage(to: admin)?.text.hasPrefix("✅") == true }
            #expect(try await Self.expiresAt(bot, subscription) <= Date())
            #expect(try await Self.audit(bot).map(\.action) == ["revoke"])
            #expect(try await Self.notices(bot) == ["subscription.admin_revoked"])

            let access = AccessService(
                database: bot.database, queue: JobQueue(database: bot.database, logger: quietLogger),
                access: TelegramChannelAccess(client: bot.client), clock: SystemWallClock(), settings: SubscriptionSettings(), logger: quietLogger
            )
            _ = try await access.sweepExpired()
            #expect(await bot.fake.memberStatus(chat: Self.closedChat, user: BroadcastBot.stranger) != "member")
        }
    }

    @Test("someone who is not an admin can neither look people up nor press a crafted extend or revoke")
    func nonAdminRefused() async throws {
        try await BroadcastBot.run { bot in
            let subscription = try await Self.subscribe(bot)
            let before = try await Self.expiresAt(bot, subscription)
            let stranger = BroadcastBot.stranger
            await bot.fake.userSendsText(stranger, "/admin user \(BroadcastBot.admin)")
            await bot.eventually("the refusal") {
                await bot.fake.lastMessage(to: stranger)?.text == bot.text("command.unknown", ["command": "/admin"])
            }
            let anchor = try #require(await bot.fake.lastMessage(to: stranger)).messageID
            await bot.fake.userSendsCallback(stranger, data: CallbackData.adminAccess(.extend, subscription).encoded, onMessage: anchor)
            await bot.fake.userSendsCallback(stranger, data: CallbackData.adminAccess(.revoke, subscription).encoded, onMessage: anchor)
            await bot.eventually("two refusals") {
                await bot.fake.answeredCallbacks.values.filter { $0 == bot.text("admin.not_allowed") }.count == 2
            }
            await bot.fake.userSendsText(stranger, "I grant myself forever")
            await bot.eventually("the text handled") { await bot.fake.lastMessage(to: stranger)?.text == bot.text("text.unexpected") }
            #expect(try await Self.audit(bot).isEmpty)
            #expect(try await Self.expiresAt(bot, subscription) == before)
        }
    }
}

@Suite("Admins see failed jobs and re-queue them")
struct AdminJobsTests {
    static func failedJob(_ bot: BroadcastBot) async throws -> Int64 {
        let queue = JobQueue(database: bot.database, logger: quietLogger)
        let id = try #require(try await queue.enqueue(SendTelegramMessageJob(chatID: 42, text: "hi")).enqueuedID)
        _ = try await bot.database.withConnection { connection in
            try await connection.query(
                """
                UPDATE jobs SET state = \(JobState.failed.rawValue), attempt = 1, finalized_at = now(), last_error = 'chat not found'
                WHERE id = \(id.rawValue)
                """, logger: quietLogger)
        }
        return id.rawValue
    }

    static func state(_ bot: BroadcastBot, _ id: Int64) async throws -> String? {
        try await bot.database.withConnection { connection in
            try await connection.first("SELECT state FROM jobs WHERE id = \(id)", as: String.self, logger: quietLogger)
        }
    }

    @Test("the admin's list shows the failure; retry re-queues it; a crafted retry from anyone else changes nothing")
    func failedJobs() async throws {
        try await BroadcastBot.run { bot in
            let job = try await Self.failedJob(bot)
            await bot.fake.userSendsCallback(BroadcastBot.stranger, data: CallbackData.adminRetryJob(job).encoded, onMessage: 1)
            await bot.eventually("the refusal") { await bot.fake.answeredCallbacks.values.contains(bot.text("admin.not_allowed")) }
            #expect(try await Self.state(bot, job) == JobState.failed.rawValue)

            let admin = BroadcastBot.admin
            await bot.fake.userSendsText(admin, "/admin")
            await bot.eventually("the admin menu") { await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.menu") }
            try await bot.fake.userTapsButton(admin, label: bot.text("admin.button.failed_jobs"))
            let retry = bot.text("admin.button.retry_job", ["id": String(job)])
            await bot.eventually("the failed jobs") {
                await bot.fake.lastMessage(to: admin)?.keyboard?.inlineKeyboard.joined().contains { $0.text == retry } == true
            }
            #expect(await bot.fake.lastMessage(to: admin)?.text.contains("chat not found") == true)
            try await bot.fake.userTapsButton(admin, label: retry)
            await bot.eventually("the job re-queued") { (try? await Self.state(bot, job)) == JobState.available.rawValue }
        }
    }
}
