import Foundation
import Logging
import PostgresNIO
import Storage

/// One failed attempt as recorded in `jobs.errors`.
public struct JobAttemptError: Codable, Sendable, Hashable {
    public var attempt: Int
    public var at: Date
    public var error: String
    /// When the retry was scheduled for; absent when the attempt ended the job.
    public var retryAt: Date?

    enum CodingKeys: String, CodingKey {
        case attempt, at, error
        case retryAt = "retry_at"
    }
}

/// A job row as stored, for inspection and tests.
public struct JobRecord: Sendable, Hashable {
    public var id: JobID
    public var kind: String
    public var payload: String
    public var state: JobState
    public var attempt: Int
    public var maxAttempts: Int
    public var runAt: Date
    public var uniqueKey: String?
    public var attemptedBy: String?
    public var lastError: String?
    public var errors: [JobAttemptError]
    public var createdAt: Date
    public var finalizedAt: Date?

    public init(
        id: JobID, kind: String, payload: String, state: JobState, attempt: Int, maxAttempts: Int, runAt: Date,
        uniqueKey: String?, attemptedBy: String?, lastError: String?, errors: [JobAttemptError], createdAt: Date, finalizedAt: Date?
    ) {
        self.id = id
        self.kind = kind
        self.payload = payload
        self.state = state
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.runAt = runAt
        self.uniqueKey = uniqueKey
        self.attemptedBy = attemptedBy
        self.lastError = lastError
        self.errors = errors
        self.createdAt = createdAt
        self.finalizedAt = finalizedAt
    }
}

/// What `telepay jobs` shows.
public struct JobQueueSummary: Sendable, Hashable {
    /// Count of jobs per kind and state; waiting jobs whose `run_at` is in the future count as `scheduled`.
    public struct Count: Sendable, Hashable {
        public var kind: String
        public var state: String
        public var count: Int

        public init(kind: String, state: String, count: Int) {
            self.kind = kind
            self.state = state
            self.count = count
        }
    }

    /// The job that has been ready the longest without being picked up.
    public struct OldestWaiting: Sendable, Hashable {
        public var id: JobID
        public var kind: String
        public var waitingSeconds: Int64

        public init(id: JobID, kind: String, waitingSeconds: Int64) {
            self.id = id
            self.kind = kind
            self.waitingSeconds = waitingSeconds
        }
    }

    public var counts: [Count]
    public var oldestWaiting: OldestWaiting?
    public var recentFailures: [JobRecord]

    public init(counts: [Count], oldestWaiting: OldestWaiting?, recentFailures: [JobRecord]) {
        self.counts = counts
        self.oldestWaiting = oldestWaiting
        self.recentFailures = recentFailures
    }
}

extension JobQueue {
    public func job(_ id: JobID) async throws -> JobRecord? {
        try await database.withConnection { connection in
            try await JobStore.records(.id(id, lock: false), on: connection, logger: logger).first
        }
    }

    public func summary(recentFailures limit: Int = 10) async throws -> JobQueueSummary {
        try await database.withConnection { connection in
            let counts = try await JobStore.counts(on: connection, logger: logger).map {
                JobQueueSummary.Count(kind: $0.kind, state: $0.state, count: $0.count)
            }
            let oldest = try await JobStore.oldestWaiting(on: connection, logger: logger).map {
                JobQueueSummary.OldestWaiting(id: $0.id, kind: $0.kind, waitingSeconds: $0.seconds)
            }
            let failures = try await JobStore.records(.recentFailures(limit: limit), on: connection, logger: logger)
            return JobQueueSummary(counts: counts, oldestWaiting: oldest, recentFailures: failures)
        }
    }

    /// Re-queues a failed job to run now, with one more attempt allowed if it had used them all.
    @discardableResult
    public func retry(_ id: JobID) async throws -> JobRecord {
        try await database.withTransaction { connection in
            guard let current = try await JobStore.records(.id(id, lock: true), on: connection, logger: logger).first else {
                throw JobQueueError.jobNotFound(id)
            }
            guard current.state == .failed else { throw JobQueueError.notRetryable(id, state: current.state) }
            if let key = current.uniqueKey, let holder = try await JobStore.holder(ofUniqueKey: key, excluding: id, on: connection, logger: logger) {
                throw JobQueueError.uniqueKeyTaken(holder, key: key)
            }
            try await JobStore.requeueFailed(id, on: connection, logger: logger)
            guard let updated = try await JobStore.records(.id(id, lock: false), on: connection, logger: logger).first else {
                throw JobQueueError.jobNotFound(id)
            }
            logger.notice("failed job re-queued by hand", metadata: ["job_id": "\(id)", "job_kind": "\(updated.kind)"])
            return updated
        }
    }
}
