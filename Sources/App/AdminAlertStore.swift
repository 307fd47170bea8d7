import Jobs
import Logging
import PostgresNIO

/// The home of `admin_alerts`: which admin was told about which alert key, and by which job, so an event
/// raised again tells nobody twice.
enum AdminAlertStore {
    /// Claims the telling of `key` to `chatID`; false when that admin was already told.
    static func claim(key: String, chatID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.run(
            """
            INSERT INTO admin_alerts (alert_key, chat_id) VALUES (\(key), \(chatID))
            ON CONFLICT DO NOTHING RETURNING chat_id
            """,
            logger: logger
        ) > 0
    }

    /// Records the job that delivers a claimed alert.
    static func record(job: JobID, key: String, chatID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            "UPDATE admin_alerts SET job_id = \(job.rawValue) WHERE alert_key = \(key) AND chat_id = \(chatID)", logger: logger
        )
    }

    /// Whether `job` delivers an alert (its own failure must not raise another).
    static func isDelivery(_ job: JobID, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.run("SELECT 1 FROM admin_alerts WHERE job_id = \(job.rawValue)", logger: logger) > 0
    }
}
