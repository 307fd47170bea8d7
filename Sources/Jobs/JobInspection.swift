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
            try await Self.records(.id(id, lock: false), on: connection, logger: logger).first
        }
    }

    public func summary(recentFailures limit: Int = 10) async throws -> JobQueueSummary {
        try await database.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT kind, CASE WHEN state = 'available' AND run_at > now() THEN 'scheduled' ELSE state END, count(*)
                FROM jobs GROUP BY 1, 2 ORDER BY 1, 2
                """,
                logger: logger
            )
            var counts: [JobQueueSummary.Count] = []
            for try await (kind, state, count) in rows.decode((String, String, Int).self) {
                counts.append(JobQueueSummary.Count(kind: kind, state: state, count: count))
            }
            let oldestRows = try await connection.query(
                """
                SELECT id, kind, extract(epoch FROM now() - run_at)::bigint FROM jobs
                WHERE state = 'available' AND run_at <= now()
                ORDER BY run_at, id LIMIT 1
                """,
                logger: logger
            )
            var oldest: JobQueueSummary.OldestWaiting?
            for try await (id, kind, seconds) in oldestRows.decode((Int64, String, Int64).self) {
                oldest = JobQueueSummary.OldestWaiting(id: JobID(id), kind: kind, waitingSeconds: seconds)
            }
            let failures = try await Self.records(.recentFailures(limit: limit), on: connection, logger: logger)
            return JobQueueSummary(counts: counts, oldestWaiting: oldest, recentFailures: failures)
        }
    }

    /// Re-queues a failed job to run now, with one more attempt allowed if it had used them all.
    @discardableResult
    public func retry(_ id: JobID) async throws -> JobRecord {
        try await database.withTransaction { connection in
            guard let current = try await Self.records(.id(id, lock: true), on: connection, logger: logger).first else {
                throw JobQueueError.jobNotFound(id)
            }
            guard current.state == .failed else { throw JobQueueError.notRetryable(id, state: current.state) }
            if let key = current.uniqueKey {
                let holders = try await connection.query(
                    "SELECT id FROM jobs WHERE unique_key = \(key) AND state IN ('available', 'running') AND id <> \(id.rawValue)",
                    logger: logger
                )
                for try await holder in holders.decode(Int64.self) {
                    throw JobQueueError.uniqueKeyTaken(JobID(holder), key: key)
                }
            }
            try await connection.query(
                """
                UPDATE jobs SET state = 'available', run_at = now(), finalized_at = NULL,
                    max_attempts = greatest(max_attempts, attempt + 1)
                WHERE id = \(id.rawValue)
                """,
                logger: logger
            )
            guard let updated = try await Self.records(.id(id, lock: false), on: connection, logger: logger).first else {
                throw JobQueueError.jobNotFound(id)
            }
            logger.notice("failed job re-queued by hand", metadata: ["job_id": "\(id)", "job_kind": "\(updated.kind)"])
            return updated
        }
    }

    enum RecordSelection {
        case id(JobID, lock: Bool)
        case recentFailures(limit: Int)
    }

    static func records(_ selection: RecordSelection, on connection: PostgresConnection, logger: Logger) async throws -> [JobRecord] {
        // Error timestamps come out as Unix seconds, which JSONDecoder reads without guessing at PostgreSQL's text format.
        let columns = """
            id, kind, payload::text, state, attempt, max_attempts, run_at, unique_key, attempted_by, last_error,
            (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'attempt', e->'attempt', 'at', extract(epoch FROM (e->>'at')::timestamptz), 'error', e->'error',
                'retry_at', extract(epoch FROM (e->>'retry_at')::timestamptz))), '[]')
             FROM jsonb_array_elements(errors) AS e)::text,
            created_at, finalized_at
            """
        let query: PostgresQuery
        switch selection {
        case .id(let id, lock: false):
            query = "SELECT \(unescaped: columns) FROM jobs WHERE id = \(id.rawValue)"
        case .id(let id, lock: true):
            query = "SELECT \(unescaped: columns) FROM jobs WHERE id = \(id.rawValue) FOR UPDATE"
        case .recentFailures(let limit):
            query = "SELECT \(unescaped: columns) FROM jobs WHERE state = 'failed' ORDER BY finalized_at DESC LIMIT \(limit)"
        }
        let rows = try await connection.query(query, logger: logger)
        var records: [JobRecord] = []
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        for try await (id, kind, payload, state, attempt, maxAttempts, runAt, uniqueKey, attemptedBy, lastError, errors, createdAt, finalizedAt)
            in rows.decode((Int64, String, String, String, Int, Int, Date, String?, String?, String?, String, Date, Date?).self) {
            records.append(JobRecord(
                id: JobID(id), kind: kind, payload: payload, state: JobState(rawValue: state) ?? .failed, attempt: attempt,
                maxAttempts: maxAttempts, runAt: runAt, uniqueKey: uniqueKey, attemptedBy: attemptedBy, lastError: lastError,
                errors: try decoder.decode([JobAttemptError].self, from: Data(errors.utf8)), createdAt: createdAt, finalizedAt: finalizedAt
            ))
        }
        return records
    }
}
