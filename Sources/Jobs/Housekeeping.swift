import Foundation
import Logging
import PostgresNIO
import Storage

/// The payload of the built-in housekeeping job, enqueued by the periodic task `jobs.housekeeping`.
public struct HousekeepingJob: JobPayload {
    public static let kind = "jobs.housekeeping"
    public static let maxAttempts = 5

    public var slot: PeriodicSlot

    public init(slot: PeriodicSlot) {
        self.slot = slot
    }
}

/// Deletes completed jobs older than the retention period, so the hot table (and every SKIP LOCKED scan over it)
/// stays small; failed jobs are kept for people to inspect and retry. Also prunes old periodic slot records,
/// keeping each task's newest, which catch-up needs.
public struct Housekeeper: JobHandler {
    public typealias Payload = HousekeepingJob

    public var database: Database
    public var retention: Duration
    /// Rows per DELETE: small enough that no single statement holds locks or a snapshot for long.
    public var chunkSize: Int

    public var options: JobKindOptions { JobKindOptions(concurrency: 1) }

    public init(database: Database, retention: Duration, chunkSize: Int = 5000) {
        precondition(retention > .zero && chunkSize > 0, "retention and chunk size must be positive")
        self.database = database
        self.retention = retention
        self.chunkSize = chunkSize
    }

    /// The periodic task that enqueues housekeeping. Catch-up `.runOnce`: a single run after downtime deletes
    /// everything that aged out meanwhile, so running each missed slot would only repeat the same work.
    public static func periodicTask(every interval: Duration = .seconds(300)) throws(PeriodicTaskError) -> PeriodicTask {
        try PeriodicTask("jobs.housekeeping", every: interval, catchUp: .runOnce) { slot in HousekeepingJob(slot: slot) }
    }

    public func run(_ payload: HousekeepingJob, context: JobContext) async throws {
        let removed = try await deleteExpired()
        if removed.jobs > 0 || removed.slots > 0 {
            context.logger.info(
                "housekeeping removed expired rows", metadata: ["completed_jobs": "\(removed.jobs)", "periodic_slots": "\(removed.slots)"])
        }
    }

    /// Deletes what is older than the retention period; returns how many jobs and slot records went.
    @discardableResult
    public func deleteExpired() async throws -> (jobs: Int, slots: Int) {
        var jobs = 0
        while true {
            let deleted = try await database.withConnection { connection in
                try await JobStore.deleteCompleted(olderThan: retention, limit: chunkSize, on: connection, logger: database.logger)
            }
            jobs += deleted
            if deleted < chunkSize { break }
        }
        let slots = try await database.withConnection { connection in
            try await PeriodicSlotStore.deleteExpired(olderThan: retention, on: connection, logger: database.logger)
        }
        return (jobs, slots)
    }
}
