import Foundation
import Logging
import PostgresNIO
import Storage

/// A job as claimed by a worker.
struct ClaimedJob: Sendable {
    var id: JobID
    var kind: String
    var payload: String
    var attempt: Int
    var maxAttempts: Int
    var createdAt: Date
    var runAt: Date
    /// From the moment the job became due (`run_at`) until this claim, measured by the database clock.
    var pickupLatency: Duration
}

/// One attempt's outcome, written back fenced by (id, attempt).
enum AttemptOutcome: Sendable {
    case succeeded
    case retry(after: Duration, error: String)
    case failed(error: String, permanent: Bool)
    /// Given back unfinished at shutdown; the next claim may take it at once.
    case released
}

/// A job that reached `failed` by one of our writes.
struct FailedRow: Sendable {
    var id: JobID
    var kind: String
    var attempt: Int
    var maxAttempts: Int
    var error: String
}

/// Every query on the `jobs` table, its only writer. Every write that ends or extends an attempt names
/// `(id, attempt)` and requires the `running` state, so it is a no-op for a worker whose attempt was rescued
/// and re-claimed. States are bound from `JobState`, never spelled in the SQL.
enum JobStore {
    static let notificationChannel = "telepay_jobs"
    /// Errors are stored for people to read; a multi-megabyte description would bloat the hot table.
    static let maxErrorLength = 2000

    /// What `telepay jobs` and the depth gauges call an `available` job whose `run_at` is still ahead: a label
    /// for people, not a stored state.
    static let scheduledLabel = "scheduled"

    /// The states the unique key covers; must match the predicate of `jobs_unique_key_idx`.
    private static let uniqueKeyStates = [JobState.available.rawValue, JobState.running.rawValue]

    static func truncated(_ message: String) -> String {
        message.count <= maxErrorLength ? message : String(message.prefix(maxErrorLength)) + "…"
    }

    static func claim(
        wanted: [(kind: String, count: Int)],
        workerID: String,
        lease: Duration,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [ClaimedJob] {
        let kinds = wanted.map(\.kind)
        let counts = wanted.map(\.count)
        // The ids come from an ARRAY(...) sub-select so the UPDATE reaches them through the primary key: joined as
        // a CTE, the planner cannot see that the LATERAL LIMITs return few rows and hashes the whole table instead.
        return try await connection.all(
            """
            UPDATE jobs SET
                state = \(JobState.running.rawValue),
                attempt = jobs.attempt + 1,
                attempted_at = now(),
                attempted_by = \(workerID),
                lease_expires_at = now() + \(lease.milliseconds) * interval '1 millisecond'
            WHERE jobs.id = ANY(ARRAY(
                SELECT candidate.id
                FROM unnest(\(kinds)::text[], \(counts)::bigint[]) AS wanted(kind, n)
                CROSS JOIN LATERAL (
                    SELECT id FROM jobs
                    WHERE state = \(JobState.available.rawValue) AND kind = wanted.kind AND run_at <= now()
                    ORDER BY run_at, id
                    LIMIT wanted.n
                    FOR UPDATE SKIP LOCKED
                ) AS candidate
            ))
            RETURNING jobs.id, jobs.kind, jobs.payload::text, jobs.attempt, jobs.max_attempts, jobs.created_at, jobs.run_at,
                      (extract(epoch FROM clock_timestamp() - jobs.run_at) * 1000000)::bigint
            """,
            as: (Int64, String, String, Int, Int, Date, Date, Int64).self, logger: logger
        ).map { row in
            let (id, kind, payload, attempt, maxAttempts, createdAt, runAt, latencyMicros) = row
            return ClaimedJob(
                id: JobID(id), kind: kind, payload: payload, attempt: attempt, maxAttempts: maxAttempts,
                createdAt: createdAt, runAt: runAt, pickupLatency: .microseconds(max(latencyMicros, 0))
            )
        }
    }

    /// Writes a batch of outcomes in one transaction; returns which of them took effect (the rest were fenced
    /// out) and the jobs this batch moved to `failed`.
    static func record(
        _ outcomes: [(id: JobID, attempt: Int, outcome: AttemptOutcome)],
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> (applied: Set<JobID>, failed: [FailedRow]) {
        var succeeded: [(Int64, Int)] = []
        var retries: [(Int64, Int, Int64, String)] = []
        var failures: [(Int64, Int, String)] = []
        var released: [(Int64, Int)] = []
        for (id, attempt, outcome) in outcomes {
            switch outcome {
            case .succeeded: succeeded.append((id.rawValue, attempt))
            case .retry(let delay, let error): retries.append((id.rawValue, attempt, delay.milliseconds, truncated(error)))
            case .failed(let error, _): failures.append((id.rawValue, attempt, truncated(error)))
            case .released: released.append((id.rawValue, attempt))
            }
        }
        var applied = Set<JobID>()
        var failed: [FailedRow] = []
        if !succeeded.isEmpty {
            let ids = try await connection.all(
                """
                UPDATE jobs SET state = \(JobState.completed.rawValue), finalized_at = now(), lease_expires_at = NULL
                FROM unnest(\(succeeded.map(\.0))::bigint[], \(succeeded.map(\.1))::bigint[]) AS done(id, attempt)
                WHERE jobs.id = done.id AND jobs.attempt = done.attempt AND jobs.state = \(JobState.running.rawValue)
                RETURNING jobs.id
                """,
                as: Int64.self, logger: logger
            )
            applied.formUnion(ids.map { JobID($0) })
        }
        if !retries.isEmpty {
            let ids = try await connection.all(
                """
                UPDATE jobs SET
                    state = \(JobState.available.rawValue),
                    run_at = now() + r.delay_ms * interval '1 millisecond',
                    lease_expires_at = NULL,
                    last_error = r.message,
                    errors = jobs.errors || jsonb_build_array(jsonb_build_object(
                        'attempt', r.attempt, 'at', now(), 'error', r.message,
                        'retry_at', now() + r.delay_ms * interval '1 millisecond'))
                FROM unnest(\(retries.map(\.0))::bigint[], \(retries.map(\.1))::bigint[], \(retries.map(\.2))::bigint[], \(retries.map(\.3))::text[])
                    AS r(id, attempt, delay_ms, message)
                WHERE jobs.id = r.id AND jobs.attempt = r.attempt AND jobs.state = \(JobState.running.rawValue)
                RETURNING jobs.id
                """,
                as: Int64.self, logger: logger
            )
            applied.formUnion(ids.map { JobID($0) })
        }
        if !failures.isEmpty {
            let rows = try await connection.all(
                """
                UPDATE jobs SET
                    state = \(JobState.failed.rawValue),
                    finalized_at = now(),
                    lease_expires_at = NULL,
                    last_error = f.message,
                    errors = jobs.errors || jsonb_build_array(jsonb_build_object('attempt', f.attempt, 'at', now(), 'error', f.message))
                FROM unnest(\(failures.map(\.0))::bigint[], \(failures.map(\.1))::bigint[], \(failures.map(\.2))::text[]) AS f(id, attempt, message)
                WHERE jobs.id = f.id AND jobs.attempt = f.attempt AND jobs.state = \(JobState.running.rawValue)
                RETURNING jobs.id, jobs.kind, jobs.attempt, jobs.max_attempts, f.message
                """,
                as: (Int64, String, Int, Int, String).self, logger: logger
            )
            for (id, kind, attempt, maxAttempts, message) in rows {
                applied.insert(JobID(id))
                failed.append(FailedRow(id: JobID(id), kind: kind, attempt: attempt, maxAttempts: maxAttempts, error: message))
            }
        }
        if !released.isEmpty {
            // A release is not the job's fault, so it must not use up the last attempt: raising max_attempts keeps
            // attempt ≤ max_attempts when the next claim increments it, while the attempt number itself never goes
            // back (reusing it would let this worker's late write pass the fence of the next run).
            let ids = try await connection.all(
                """
                UPDATE jobs SET
                    state = \(JobState.available.rawValue),
                    run_at = now(),
                    lease_expires_at = NULL,
                    max_attempts = greatest(jobs.max_attempts, jobs.attempt + 1)
                FROM unnest(\(released.map(\.0))::bigint[], \(released.map(\.1))::bigint[]) AS r(id, attempt)
                WHERE jobs.id = r.id AND jobs.attempt = r.attempt AND jobs.state = \(JobState.running.rawValue)
                RETURNING jobs.id
                """,
                as: Int64.self, logger: logger
            )
            applied.formUnion(ids.map { JobID($0) })
        }
        return (applied, failed)
    }

    /// Extends the leases of the given attempts; returns the ids still held (the others were rescued).
    static func heartbeat(
        _ held: [(id: JobID, attempt: Int)],
        lease: Duration,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Set<JobID> {
        let alive = try await connection.all(
            """
            UPDATE jobs SET lease_expires_at = now() + \(lease.milliseconds) * interval '1 millisecond'
            FROM unnest(\(held.map(\.id.rawValue))::bigint[], \(held.map(\.attempt))::bigint[]) AS h(id, attempt)
            WHERE jobs.id = h.id AND jobs.attempt = h.attempt AND jobs.state = \(JobState.running.rawValue)
            RETURNING jobs.id
            """,
            as: Int64.self, logger: logger
        )
        return Set(alive.map { JobID($0) })
    }

    /// Makes running jobs whose lease expired claimable again, keeping their attempt number (the next claim
    /// increments it). A job whose lease expired on its final attempt fails instead, so a job that kills its
    /// worker every time cannot loop forever.
    static func rescueExpired(limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> (
        rescuedKinds: [String], failed: [FailedRow]
    ) {
        let rows = try await connection.all(
            """
            UPDATE jobs SET
                state = CASE WHEN jobs.attempt >= jobs.max_attempts THEN \(JobState.failed.rawValue) ELSE \(JobState.available.rawValue) END,
                finalized_at = CASE WHEN jobs.attempt >= jobs.max_attempts THEN now() END,
                run_at = now(),
                lease_expires_at = NULL,
                last_error = 'lease expired: worker ' || coalesce(jobs.attempted_by, '?') || ' stopped renewing it',
                errors = jobs.errors || jsonb_build_array(jsonb_build_object(
                    'attempt', jobs.attempt, 'at', now(),
                    'error', 'lease expired: worker ' || coalesce(jobs.attempted_by, '?') || ' stopped renewing it'))
            WHERE jobs.id = ANY(ARRAY(
                SELECT id FROM jobs
                WHERE state = \(JobState.running.rawValue) AND lease_expires_at < now()
                ORDER BY lease_expires_at
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            ))
            RETURNING jobs.id, jobs.kind, jobs.state, jobs.attempt, jobs.max_attempts, jobs.last_error
            """,
            as: (Int64, String, String, Int, Int, String).self, logger: logger
        )
        var rescued: [String] = []
        var failed: [FailedRow] = []
        for (id, kind, state, attempt, maxAttempts, error) in rows {
            if state == JobState.failed.rawValue {
                failed.append(FailedRow(id: JobID(id), kind: kind, attempt: attempt, maxAttempts: maxAttempts, error: error))
            } else {
                rescued.append(kind)
            }
        }
        return (rescued, failed)
    }

    // MARK: - Enqueueing

    /// Inserts one job; returns its id, or `nil` when a waiting or running job already holds its unique key.
    static func insert(_ row: JobQueue.Row, on connection: PostgresConnection, logger: Logger) async throws -> JobID? {
        try await connection.first(
            """
            INSERT INTO jobs (kind, payload, max_attempts, run_at, unique_key)
            VALUES (\(row.kind), \(row.payload)::jsonb, \(row.maxAttempts), coalesce(\(row.runAt), now()), \(row.uniqueKey))
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state = ANY(\(uniqueKeyStates)) DO NOTHING
            RETURNING id
            """,
            as: Int64.self, logger: logger
        ).map { JobID($0) }
    }

    /// The waiting or running job that holds `key`, other than `excluded`.
    static func holder(ofUniqueKey key: String, excluding excluded: JobID? = nil, on connection: PostgresConnection, logger: Logger) async throws
        -> JobID?
    {
        try await connection.first(
            """
            SELECT id FROM jobs WHERE unique_key = \(key) AND state = ANY(\(uniqueKeyStates))
              AND id IS DISTINCT FROM \(excluded?.rawValue)
            """,
            as: Int64.self, logger: logger
        ).map { JobID($0) }
    }

    /// Inserts one job per payload text, in order, in a single statement; returns their ids in that order.
    static func insertBatch(
        kind: String, maxAttempts: Int, payloads: [String], runAt: Date?, on connection: PostgresConnection, logger: Logger
    ) async throws -> [JobID] {
        try await connection.all(
            """
            INSERT INTO jobs (kind, payload, max_attempts, run_at)
            SELECT \(kind), p::jsonb, \(maxAttempts), coalesce(\(runAt), now())
            FROM unnest(\(payloads)::text[]) WITH ORDINALITY AS t(p, n)
            ORDER BY n
            RETURNING id
            """,
            as: Int64.self, logger: logger
        ).map { JobID($0) }
    }

    /// Queues a wake-up per kind on the connection's transaction; PostgreSQL delivers them at commit and drops
    /// them on rollback. `synchronousCommitOff` lets a transaction that only notifies skip waiting for the disk.
    static func notify(_ kinds: Set<String>, synchronousCommitOff: Bool, on connection: PostgresConnection, logger: Logger) async throws {
        if synchronousCommitOff {
            try await connection.run(
                """
                SELECT set_config('synchronous_commit', 'off', true), pg_notify(\(notificationChannel), kind)
                FROM unnest(\(Array(kinds))::text[]) AS kind
                """,
                logger: logger
            )
        } else {
            try await connection.run(
                "SELECT pg_notify(\(notificationChannel), kind) FROM unnest(\(Array(kinds))::text[]) AS kind",
                logger: logger
            )
        }
    }

    // MARK: - Inspection

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
            query = "SELECT \(unescaped: columns) FROM jobs WHERE state = \(JobState.failed.rawValue) ORDER BY finalized_at DESC LIMIT \(limit)"
        }
        let rows = try await connection.all(
            query, as: (Int64, String, String, String, Int, Int, Date, String?, String?, String?, String, Date, Date?).self, logger: logger
        )
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try rows.map {
            id, kind, payload, state, attempt, maxAttempts, runAt, uniqueKey, attemptedBy, lastError, errors, createdAt, finalizedAt in
            JobRecord(
                id: JobID(id), kind: kind, payload: payload, state: try JobState(storedValue: state), attempt: attempt,
                maxAttempts: maxAttempts, runAt: runAt, uniqueKey: uniqueKey, attemptedBy: attemptedBy, lastError: lastError,
                errors: try decoder.decode([JobAttemptError].self, from: Data(errors.utf8)), createdAt: createdAt, finalizedAt: finalizedAt
            )
        }
    }

    /// Jobs per kind and state, `available` jobs not yet due counted as `scheduledLabel`; only `states` when given.
    static func counts(in states: [JobState]? = nil, on connection: PostgresConnection, logger: Logger) async throws -> [(
        kind: String, state: String, count: Int
    )] {
        let wanted = (states ?? JobState.allCases).map(\.rawValue)
        return try await connection.all(
            """
            SELECT kind, CASE WHEN state = \(JobState.available.rawValue) AND run_at > now() THEN \(scheduledLabel) ELSE state END, count(*)
            FROM jobs WHERE state = ANY(\(wanted))
            GROUP BY 1, 2 ORDER BY 1, 2
            """,
            as: (String, String, Int).self, logger: logger
        ).map { (kind: $0.0, state: $0.1, count: $0.2) }
    }

    /// The due job that has waited longest, and for how many seconds.
    static func oldestWaiting(on connection: PostgresConnection, logger: Logger) async throws -> (id: JobID, kind: String, seconds: Int64)? {
        try await connection.first(
            """
            SELECT id, kind, extract(epoch FROM now() - run_at)::bigint FROM jobs
            WHERE state = \(JobState.available.rawValue) AND run_at <= now()
            ORDER BY run_at, id LIMIT 1
            """,
            as: (Int64, String, Int64).self, logger: logger
        ).map { (id: JobID($0.0), kind: $0.1, seconds: $0.2) }
    }

    /// Seconds the longest-waiting due job has waited; zero when none is waiting.
    static func oldestWaitingAge(on connection: PostgresConnection, logger: Logger) async throws -> Int64 {
        try await connection.first(
            """
            SELECT coalesce(extract(epoch FROM now() - min(run_at)), 0)::bigint FROM jobs
            WHERE state = \(JobState.available.rawValue) AND run_at <= now()
            """,
            as: Int64.self, logger: logger
        ) ?? 0
    }

    /// Makes a failed job claimable now, with one more attempt allowed if it had used them all.
    static func requeueFailed(_ id: JobID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE jobs SET state = \(JobState.available.rawValue), run_at = now(), finalized_at = NULL,
                max_attempts = greatest(max_attempts, attempt + 1)
            WHERE id = \(id.rawValue)
            """,
            logger: logger
        )
    }

    // MARK: - Housekeeping

    /// Deletes up to `limit` jobs that completed more than `retention` ago, oldest first; returns how many went.
    static func deleteCompleted(olderThan retention: Duration, limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        try await connection.first(
            """
            WITH deleted AS (
                DELETE FROM jobs WHERE id = ANY(ARRAY(
                    SELECT id FROM jobs
                    WHERE state = \(JobState.completed.rawValue) AND finalized_at < now() - \(retention.milliseconds) * interval '1 millisecond'
                    ORDER BY finalized_at
                    LIMIT \(limit)
                ))
                RETURNING 1
            )
            SELECT count(*) FROM deleted
            """,
            as: Int.self, logger: logger
        ) ?? 0
    }
}
