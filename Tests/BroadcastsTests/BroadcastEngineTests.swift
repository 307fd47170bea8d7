import Broadcasts
import Foundation
import PostgresNIO
import Storage
import TestSupport
import Testing

@Suite("Broadcast engine: audience resolved once, durable resumable sending, controls, reports")
struct BroadcastEngineTests {
    @Test("every reachable user gets exactly one message; blocked and failed are recorded and the report adds up")
    func thousandRecipients() async throws {
        try await withMigratedDatabase(poolSize: 12) { database in
            let world = BroadcastWorld(database: database)
            let users = Array(Int64(1)...1000)
            try await world.addUsers(users)
            let blocked = Set(users.filter { $0 % 50 == 7 })
            let unknown = Set(users.filter { $0 % 97 == 3 })
            let delivery = RecordingDelivery(blocked: blocked, unknown: unknown)
            let (id, total) = try await world.startAdminBroadcast()
            #expect(total == 1000)

            let outcome = try await world.sender(delivery).send(id, logger: quietLogger)
            #expect(outcome == .finished)
            let reachable = Set(users).subtracting(blocked).subtracting(unknown)
            #expect(delivery.delivered.count == reachable.count)
            #expect(delivery.delivered.values.allSatisfy { $0 == 1 })
            #expect(Set(delivery.delivered.keys) == reachable)

            let counts = try await world.store.counts(id)
            #expect(counts == BroadcastCounts(sent: reachable.count, blocked: blocked.count, failed: unknown.count, left: 0))
            #expect(counts.total == total)
            let rows = try await world.store.recipients(id)
            #expect(rows.filter { $0.status == .failed }.allSatisfy { $0.reason == "chat not found" })
            let report = try #require(world.display.last)
            #expect(report.broadcast.status == .finished)
            #expect(report.counts == counts)
            #expect(report.broadcast.resentAfterRestart == 0)
        }
    }

    @Test("the audience is resolved once: users who arrive after the start are not added, blocked users are left out")
    func audienceResolvedOnce() async throws {
        try await withMigratedDatabase { database in
            let world = BroadcastWorld(database: database)
            try await world.addUsers(1...20)
            try await database.withConnection { connection in
                try await connection.query("UPDATE telegram_users SET blocked_bot_at = now() WHERE id IN (5, 6)", logger: quietLogger)
            }
            let (id, total) = try await world.startAdminBroadcast()
            #expect(total == 18)
            try await world.addUsers(21...30)
            let delivery = RecordingDelivery()
            _ = try await world.sender(delivery).send(id, logger: quietLogger)
            #expect(Set(delivery.delivered.keys) == Set(Array(1...20)).subtracting([5, 6]))
        }
    }

    @Test("pause stops sending after the sends in flight; resume finishes with nobody messaged twice")
    func pauseAndResume() async throws {
        try await withMigratedDatabase(poolSize: 12) { database in
            let world = BroadcastWorld(database: database)
            try await world.addUsers(1...200)
            let box = IDBox()
            let delivery = RecordingDelivery { delivered in
                // On a loaded machine a call can fail for want of a pooled connection: try again, boundedly.
                if delivered == 50, let id = box.id {
                    for _ in 0..<100 {
                        if (try? await world.service.pause(id, by: BroadcastWorld.admin)) != nil { break }
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                    // What was done when the pause took effect: at most the sends then in flight may follow.
                    box.doneAtPause = (try? await world.store.counts(id)).map { 200 - $0.left }
                }
            }
            let (id, _) = try await world.startAdminBroadcast()
            box.id = id
            let concurrency = 4
            #expect(try await world.sender(delivery, concurrency: concurrency).send(id, logger: quietLogger) == .paused)
            let atPause = try await world.store.counts(id)
            let doneAtPause = try #require(box.doneAtPause)
            #expect(
                atPause.sent >= 50 && atPause.sent <= doneAtPause + concurrency && atPause.sent < 200,
                "sent \(atPause.sent), done at the pause \(doneAtPause)")
            #expect(atPause.left == 200 - atPause.sent)
            #expect(world.display.last?.broadcast.status == .paused)
            // A paused broadcast's run sends nothing.
            #expect(try await world.sender(delivery).send(id, logger: quietLogger) == .paused)
            #expect(try await world.store.counts(id) == atPause)

            _ = try await world.service.resume(id, by: BroadcastWorld.admin)
            #expect(try await world.sender(delivery).send(id, logger: quietLogger) == .finished)
            #expect(delivery.delivered.count == 200)
            #expect(delivery.delivered.values.allSatisfy { $0 == 1 })
        }
    }

    @Test("cancel stops the broadcast for good: those left are never sent to, and the report says so")
    func cancel() async throws {
        try await withMigratedDatabase(poolSize: 12) { database in
            let world = BroadcastWorld(database: database)
            try await world.addUsers(1...200)
            let box = IDBox()
            let delivery = RecordingDelivery { delivered in
                if delivered == 30, let id = box.id { _ = try? await world.service.cancel(id, by: BroadcastWorld.admin) }
            }
            let (id, _) = try await world.startAdminBroadcast()
            box.id = id
            #expect(try await world.sender(delivery, concurrency: 4).send(id, logger: quietLogger) == .cancelled)
            let counts = try await world.store.counts(id)
            #expect(counts.sent == delivery.delivered.count)
            #expect(counts.left == 200 - counts.sent)
            #expect(world.display.last?.broadcast.status == .cancelled)
            await #expect(throws: BroadcastError.self) { try await world.service.resume(id, by: BroadcastWorld.admin) }
            #expect(try await world.sender(delivery).send(id, logger: quietLogger) == .cancelled)
            #expect(delivery.delivered.count == counts.sent)
        }
    }

    @Test("a run that died mid-send is resumed: only the sends in flight are repeated, and they are counted")
    func resumeAfterCrash() async throws {
        try await withMigratedDatabase(poolSize: 12) { database in
            let world = BroadcastWorld(database: database)
            try await world.addUsers(1...300)
            let delivery = RecordingDelivery()
            let (id, _) = try await world.startAdminBroadcast()
            // The state a SIGKILL leaves: 100 recorded sends, then 8 claimed ("sending", committed) whose
            // calls reached Telegram but whose outcome was never written.
            let first = world.sender(delivery, concurrency: 4)
            let stop = StopAfter(100, delivery: delivery)
            #expect(try await first.send(id, logger: quietLogger, shouldStop: { stop.reached }) == .running)
            var inFlight: [Int64] = []
            for _ in 0..<8 {
                let claimed = try #require(try await world.store.claimNext(id))
                inFlight.append(claimed.userID)
            }
            delivery.alreadyDelivered(inFlight)
            let before = try await world.store.counts(id)

            #expect(try await world.sender(delivery).send(id, logger: quietLogger) == .finished)
            #expect(delivery.delivered.count == 300)
            let twice = delivery.delivered.filter { $0.value > 1 }
            #expect(Set(twice.keys) == Set(inFlight))
            #expect(twice.values.allSatisfy { $0 == 2 })
            #expect(try await world.store.broadcast(id)?.resentAfterRestart == inFlight.count)
            #expect(before.sent >= 100)
        }
    }

    @Test("blocked users are marked unreachable by the Telegram delivery and left out of the next broadcast")
    func blockedSkippedNextTime() async throws {
        try await withMigratedDatabase { database in
            let world = BroadcastWorld(database: database)
            try await world.addUsers(1...10)
            let (first, _) = try await world.startAdminBroadcast()
            try await database.withConnection { connection in
                try await connection.query("UPDATE telegram_users SET blocked_bot_at = now() WHERE id = 4", logger: quietLogger)
            }
            _ = try await world.sender(RecordingDelivery(blocked: [4])).send(first, logger: quietLogger)
            #expect(try await world.store.recipients(first).first { $0.userID == 4 }?.status == .blocked)
            let (_, total) = try await world.startAdminBroadcast()
            #expect(total == 9)
        }
    }

    @Test("owner broadcasts: only the owner's channel, one live per channel, a daily cap, audiences by subscription")
    func ownerRules() async throws {
        try await withMigratedDatabase { database in
            let world = BroadcastWorld(database: database, settings: BroadcastSettings(ownerDailyCap: 2))
            let owner: Int64 = 500, stranger: Int64 = 501
            try await world.addUsers([owner, stranger] + Array(Int64(1)...9))
            let channel = try await database.withConnection { connection in
                try await connection.query("INSERT INTO owners (user_id) VALUES (\(owner))", logger: quietLogger)
                let rows = try await connection.query(
                    """
                    INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title)
                    VALUES (\(owner), -1001000000001, 'Closed', -1001000000002, 'Open') RETURNING id
                    """, logger: quietLogger)
                var id: Int64 = 0
                for try await value in rows.decode(Int64.self) { id = value }
                // Users 1–7 paid (8 only opened an invoice); 1–3 are active, 4–5 ended 3 days ago, 6 ended 20 days ago.
                try await connection.query(
                    """
                    WITH paid AS (
                        INSERT INTO orders (user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days,
                                            closed_chat_id, closed_title, status, paid_at)
                        SELECT u, \(id), \(owner), 1, 10, 30, -1001000000001, 'Closed', 'paid', now() - interval '60 days'
                        FROM generate_series(1, 7) AS u
                        RETURNING id, user_id
                    )
                    INSERT INTO subscriptions (user_id, channel_id, status, started_at, expires_at, last_order_id)
                    SELECT user_id, \(id), CASE WHEN user_id <= 3 THEN 'active' ELSE 'expired' END, now() - interval '60 days',
                           CASE WHEN user_id <= 3 THEN now() + interval '10 days' WHEN user_id <= 5 THEN now() - interval '3 days'
                                ELSE now() - interval '20 days' END,
                           id
                    FROM paid WHERE user_id <= 6
                    """, logger: quietLogger)
                try await connection.query(
                    """
                    INSERT INTO orders (user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title, status)
                    VALUES (8, \(id), \(owner), 1, 10, 30, -1001000000001, 'Closed', 'awaiting_payment')
                    """, logger: quietLogger)
                return id
            }
            await #expect(throws: BroadcastError.notAllowed) {
                _ = try await world.service.compose(author: stranger, language: "en", audience: .channelActive(channelID: channel), chat: stranger)
            }
            await #expect(throws: BroadcastError.notAllowed) {
                _ = try await world.service.compose(author: owner, language: "en", audience: .allUsers, chat: owner)
            }
            #expect(try await world.store.audienceSize(.channelActive(channelID: channel)) == 3)
            #expect(try await world.store.audienceSize(.channelExpired(channelID: channel, days: 7)) == 2)
            #expect(try await world.store.audienceSize(.channelExpired(channelID: channel, days: 30)) == 3)
            #expect(try await world.store.audienceSize(.channelPaid(channelID: channel)) == 7)

            func startOwner(_ audience: BroadcastAudience) async throws(BroadcastError) -> Int64 {
                do {
                    let id = try await world.service.compose(author: owner, language: "en", audience: audience, chat: owner)
                    let draft = try #require(try await world.service.draftAwaitingText(of: owner))
                    _ = try await world.service.setText("Hello subscribers", draft: draft)
                    _ = try await world.service.start(id, by: owner, progressMessageID: 1)
                    return id
                } catch let error as BroadcastError {
                    throw error
                } catch {
                    throw .database("\(error)")
                }
            }
            let first = try await startOwner(.channelActive(channelID: channel))
            await #expect(throws: BroadcastError.channelBusy) { _ = try await startOwner(.channelExpired(channelID: channel, days: 7)) }
            await #expect(throws: BroadcastError.notAllowed) { _ = try await world.service.cancel(first, by: stranger) }
            _ = try await world.sender(RecordingDelivery()).send(first, logger: quietLogger)
            _ = try await startOwner(.channelExpired(channelID: channel, days: 7))
            _ = try await world.service.cancel(try #require(try await world.store.running().last), by: owner)
            await #expect(throws: BroadcastError.dailyCapReached(2)) { _ = try await startOwner(.channelActive(channelID: channel)) }
            // An admin may stop any broadcast.
            #expect(try await world.service.authorized(first, by: BroadcastWorld.admin).id == first)
        }
    }
}

/// Holds the broadcast id for a delivery callback created before the broadcast.
final class IDBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64?
    private var claimed: Int?
    var id: Int64? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
    var doneAtPause: Int? {
        get { lock.withLock { claimed } }
        set { lock.withLock { claimed = newValue } }
    }
}

/// Says "stop" once `count` messages were delivered.
struct StopAfter: Sendable {
    let count: Int
    let delivery: RecordingDelivery

    init(_ count: Int, delivery: RecordingDelivery) {
        self.count = count
        self.delivery = delivery
    }

    var reached: Bool { delivery.delivered.values.reduce(0, +) >= count }
}
