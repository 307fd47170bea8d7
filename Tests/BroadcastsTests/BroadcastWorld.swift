import Bot
import Broadcasts
import Foundation
import Jobs
import Logging
import PostgresNIO
import Storage
import Synchronization
import TelegramBotAPI
import TestSupport
import Testing

/// A migrated database with users, the broadcast service and a sender, for engine tests.
struct BroadcastWorld: Sendable {
    static let admin: Int64 = 1

    let database: Database
    let service: BroadcastService
    let display: RecordingDisplay

    var store: BroadcastStore { service.store }

    init(database: Database, admins: Set<Int64> = [Self.admin], settings: BroadcastSettings = BroadcastSettings()) {
        self.database = database
        let store = BroadcastStore(database: database, logger: quietLogger)
        self.service = BroadcastService(store: store, queue: JobQueue(database: database, logger: quietLogger), admins: admins, settings: settings)
        self.display = RecordingDisplay()
    }

    func sender(_ delivery: any BroadcastDelivery, concurrency: Int = 8, progressInterval: Duration = .seconds(3)) -> BroadcastSender {
        BroadcastSender(
            store: store, delivery: delivery, display: display,
            settings: BroadcastSenderSettings(concurrency: concurrency, progressInterval: progressInterval)
        )
    }

    /// Telegram users `ids` (all of them reachable as far as the database knows).
    func addUsers(_ ids: some Sequence<Int64>) async throws {
        let list = Array(ids)
        try await database.withConnection { connection in
            try await connection.query(
                "INSERT INTO telegram_users (id, first_name) SELECT id, 'User' FROM unnest(\(list)::bigint[]) AS t(id) ON CONFLICT DO NOTHING",
                logger: quietLogger
            )
        }
    }

    /// A ready admin broadcast to every user, started; returns its id and recipient count.
    func startAdminBroadcast(_ text: String = "<b>News</b> for everyone", audience: BroadcastAudience = .allUsers) async throws -> (
        id: Int64, total: Int
    ) {
        let id = try await service.compose(author: Self.admin, language: "en", audience: audience, chat: Self.admin)
        let draft = try #require(try await service.draftAwaitingText(of: Self.admin))
        #expect(draft.id == id)
        _ = try await service.setText(text, draft: draft).get()
        let total = try await service.start(id, by: Self.admin, progressMessageID: 77)
        return (id, total)
    }

    func blockedAt(_ user: Int64) async throws -> Date? {
        try await database.withConnection { connection in
            let rows = try await connection.query("SELECT blocked_bot_at FROM telegram_users WHERE id = \(user)", logger: quietLogger)
            for try await value in rows.decode(Date?.self) { return value }
            return nil
        }
    }
}

/// Counts deliveries per user; some users "blocked the bot", some "never started it".
final class RecordingDelivery: BroadcastDelivery {
    let blocked: Set<Int64>
    let unknown: Set<Int64>
    private let counts = Mutex<[Int64: Int]>([:])
    /// Runs after each delivery with the number delivered so far (to pause or cancel mid-way).
    let afterEach: (@Sendable (Int) async -> Void)?

    init(blocked: Set<Int64> = [], unknown: Set<Int64> = [], afterEach: (@Sendable (Int) async -> Void)? = nil) {
        self.blocked = blocked
        self.unknown = unknown
        self.afterEach = afterEach
    }

    func deliver(_ text: String, to userID: Int64) async -> DeliveryOutcome {
        let outcome: DeliveryOutcome
        if blocked.contains(userID) {
            outcome = .blocked
        } else if unknown.contains(userID) {
            outcome = .failed(reason: "chat not found")
        } else {
            outcome = .sent
        }
        let total = counts.withLock { counts in
            if outcome == .sent { counts[userID, default: 0] += 1 }
            return counts.values.reduce(0, +)
        }
        await afterEach?(total)
        return outcome
    }

    /// Marks users as having received the message (sends Telegram accepted before a crash).
    func alreadyDelivered(_ users: [Int64]) {
        counts.withLock { counts in for user in users { counts[user, default: 0] += 1 } }
    }

    var delivered: [Int64: Int] { counts.withLock { $0 } }
}

/// Remembers every progress the sender showed.
final class RecordingDisplay: BroadcastProgressDisplay {
    private let shown = Mutex<[BroadcastProgress]>([])

    func show(_ progress: BroadcastProgress) async {
        shown.withLock { $0.append(progress) }
    }

    var all: [BroadcastProgress] { shown.withLock { $0 } }
    var last: BroadcastProgress? { all.last }
}
