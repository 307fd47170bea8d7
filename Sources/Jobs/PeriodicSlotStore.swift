import Foundation
import Logging
import PostgresNIO
import Storage

/// Every query on the `periodic_slots` table, its only writer: which slot of each periodic task was enqueued.
enum PeriodicSlotStore {
    /// Holds the task's advisory lock until the transaction ends, so one instance at a time plans its slots.
    static func lockTask(_ task: String, on transaction: PostgresConnection, logger: Logger) async throws {
        try await transaction.run("SELECT pg_advisory_xact_lock(hashtextextended(\("telepay.periodic." + task), 0))", logger: logger)
    }

    /// Start of the newest slot recorded for the task, in Unix seconds, by any instance.
    static func lastStart(of task: String, on connection: PostgresConnection, logger: Logger) async throws -> Int64? {
        try await connection.first(
            "SELECT extract(epoch FROM max(slot_start))::bigint FROM periodic_slots WHERE task = \(task)",
            as: Int64?.self, logger: logger
        ) ?? nil
    }

    /// Records the slot as enqueued; `jobID` is `nil` when its job was a duplicate of one still waiting.
    static func insert(_ slot: PeriodicSlot, jobID: JobID?, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            INSERT INTO periodic_slots (task, slot_start, covers_from, job_id)
            VALUES (\(slot.task), \(slot.start), \(slot.coversFrom), \(jobID?.rawValue))
            """,
            logger: logger
        )
    }

    /// Deletes slot records older than `retention`, keeping each task's newest (catch-up needs it); returns how many went.
    static func deleteExpired(olderThan retention: Duration, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        try await connection.first(
            """
            WITH deleted AS (
                DELETE FROM periodic_slots old
                WHERE old.slot_start < now() - \(retention.milliseconds) * interval '1 millisecond'
                  AND EXISTS (SELECT 1 FROM periodic_slots newer WHERE newer.task = old.task AND newer.slot_start > old.slot_start)
                RETURNING 1
            )
            SELECT count(*) FROM deleted
            """,
            as: Int.self, logger: logger
        ) ?? 0
    }
}
