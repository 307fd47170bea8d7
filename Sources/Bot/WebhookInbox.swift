import Foundation
import Synchronization
import Logging
import PostgresNIO
import ServiceLifecycle
import Storage
import TelegramBotAPI

/// The `telegram_webhook_updates` table: updates received by the webhook route, handled in id order.
public enum WebhookInbox {
    /// Stores an update; returns false when it was already stored (Telegram re-sent it).
    @discardableResult
    public static func store(updateID: Int64, payload: String, on database: Database) async throws -> Bool {
        try await database.withConnection { connection in
            let rows = try await connection.query(
                """
                INSERT INTO telegram_webhook_updates (update_id, payload) VALUES (\(updateID), \(payload)::jsonb)
                ON CONFLICT (update_id) DO NOTHING RETURNING update_id
                """,
                logger: database.logger
            )
            var inserted = false
            for try await _ in rows { inserted = true }
            return inserted
        }
    }

    static func pending(limit: Int, on database: Database) async throws -> [(Int64, String)] {
        try await database.withConnection { connection in
            let rows = try await connection.query(
                "SELECT update_id, payload::text FROM telegram_webhook_updates WHERE handled_at IS NULL ORDER BY update_id LIMIT \(limit)",
                logger: database.logger
            )
            var result: [(Int64, String)] = []
            for try await (id, payload) in rows.decode((Int64, String).self) { result.append((id, payload)) }
            return result
        }
    }

    static func markHandled(_ ids: [Int64], on database: Database) async throws {
        _ = try await database.withConnection { connection in
            try await connection.query(
                "UPDATE telegram_webhook_updates SET handled_at = now() WHERE update_id = ANY(\(ids))",
                logger: database.logger
            )
        }
    }

    static func prune(olderThan interval: Duration, on database: Database) async throws {
        let seconds = Int(interval.components.seconds)
        _ = try await database.withConnection { connection in
            try await connection.query(
                "DELETE FROM telegram_webhook_updates WHERE handled_at < now() - make_interval(secs => \(seconds))",
                logger: database.logger
            )
        }
    }
}

/// Handles webhook updates from the inbox. One instance at a time holds the processing lock (a session
/// advisory lock, released by the server if that instance dies), so one user's updates stay in order even
/// when several instances receive webhooks behind a load balancer.
public struct WebhookProcessor: Service {
    public static let lockKey: Int64 = 0x5445_4C45_5745_4248

    public let dispatcher: Dispatcher
    public let database: Database
    public let wakeUps: WakeUpSignal
    public let pollInterval: Duration
    public let logger: Logger

    public init(dispatcher: Dispatcher, database: Database, wakeUps: WakeUpSignal, pollInterval: Duration = .seconds(1), logger: Logger) {
        self.dispatcher = dispatcher
        self.database = database
        self.wakeUps = wakeUps
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func run() async throws {
        try await database.withConnection { lockConnection in
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let rows = try await lockConnection.query("SELECT pg_try_advisory_lock(\(Self.lockKey))", logger: logger)
                var acquired = false
                for try await (flag) in rows.decode(Bool.self) { acquired = flag }
                if acquired { break }
                try await pause()
            }
            guard !Task.isShuttingDownGracefully && !Task.isCancelled else { return }
            logger.info("processing webhook updates")
            var pruned = ContinuousClock.now
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let batch = try await WebhookInbox.pending(limit: 100, on: database)
                if batch.isEmpty {
                    try await pause()
                    continue
                }
                var updates: [Update] = []
                for (id, payload) in batch {
                    do {
                        updates.append(try JSONDecoder().decode(Update.self, from: Data(payload.utf8)))
                    } catch {
                        logger.error("stored webhook update does not decode; skipping it", metadata: ["update_id": "\(id)", "error": "\(error)"])
                    }
                }
                await dispatcher.dispatch(updates)
                try await WebhookInbox.markHandled(batch.map(\.0), on: database)
                if ContinuousClock.now - pruned > .seconds(3600) {
                    try await WebhookInbox.prune(olderThan: .seconds(86_400), on: database)
                    pruned = .now
                }
            }
            _ = try await lockConnection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
        }
    }

    /// Waits for a wake-up from the webhook route, the poll interval (another instance may have stored
    /// updates), or shutdown.
    private func pause() async throws {
        let deadline = ContinuousClock.now + pollInterval
        while ContinuousClock.now < deadline && !wakeUps.consume() && !Task.isShuttingDownGracefully {
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// "New updates are stored": set by the webhook route, consumed by the processor. A flag checked every few
/// milliseconds rather than a stream, so a missed or doubled wake-up costs nothing.
public final class WakeUpSignal: Sendable {
    private let pending = Mutex(false)

    public init() {}

    public func signal() {
        pending.withLock { $0 = true }
    }

    /// Returns whether a wake-up was pending, clearing it.
    public func consume() -> Bool {
        pending.withLock { value in
            defer { value = false }
            return value
        }
    }
}
