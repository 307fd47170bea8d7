import Foundation
import Logging
import PostgresNIO
import Storage

/// The home of `telegram_webhook_updates`: updates received by the webhook route, handled in id order.
public enum WebhookUpdateStore {
    /// Stores an update; returns false when it was already stored (Telegram re-sent it).
    @discardableResult
    public static func store(updateID: Int64, payload: String, on database: Database) async throws -> Bool {
        try await database.withConnection { connection in
            try await connection.run(
                """
                INSERT INTO telegram_webhook_updates (update_id, payload) VALUES (\(updateID), \(payload)::jsonb)
                ON CONFLICT (update_id) DO NOTHING RETURNING update_id
                """,
                logger: database.logger
            ) > 0
        }
    }

    static func pending(limit: Int, on database: Database) async throws -> [(Int64, String)] {
        try await database.withConnection { connection in
            try await connection.all(
                "SELECT update_id, payload::text FROM telegram_webhook_updates WHERE handled_at IS NULL ORDER BY update_id LIMIT \(limit)",
                as: (Int64, String).self, logger: database.logger
            )
        }
    }

    static func markHandled(_ ids: [Int64], on database: Database) async throws {
        _ = try await database.withConnection { connection in
            try await connection.run(
                "UPDATE telegram_webhook_updates SET handled_at = now() WHERE update_id = ANY(\(ids))",
                logger: database.logger
            )
        }
    }

    static func prune(olderThan interval: Duration, on database: Database) async throws {
        let seconds = Int(interval.components.seconds)
        _ = try await database.withConnection { connection in
            try await connection.run(
                "DELETE FROM telegram_webhook_updates WHERE handled_at < now() - make_interval(secs => \(seconds))",
                logger: database.logger
            )
        }
    }

    /// Tries to become the one processor of the inbox (a session advisory lock on `connection`, released by the
    /// server if this instance dies).
    static func tryLockProcessing(on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.first("SELECT pg_try_advisory_lock(\(processingLockKey))", as: Bool.self, logger: logger) ?? false
    }

    static func unlockProcessing(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("SELECT pg_advisory_unlock(\(processingLockKey))", logger: logger)
    }

    static let processingLockKey: Int64 = 0x5445_4C45_5745_4248
}
