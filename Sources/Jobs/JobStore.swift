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

/// The SQL of the engine. Every write that ends or extends an attempt names `(id, attempt)` and requires
/// `state = 'running'`, so it is a no-op for a worker whose attempt was rescued and re-claimed.
enum JobStore {
    static let notificationChannel = "telepay_jobs"
    /// Errors are stored for people to read; a multi-megabyte description would bloat the hot table.
    static let maxErrorLength = 2000

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
        let rows = try await connection.query(
            """
            UPDATE jobs SET
                state = 'running',
                attempt = jobs.attempt + 1,
                attempted_at = now(),
                attempted_by = \(workerID),
                lease_expires_at = now() + \(lease.milliseconds) * interval '1 millisecond'
            WHERE jobs.id = ANY(ARRAY(
                SELECT candidate.id
                FROM unnest(\(kinds)::text[], \(counts)::bigint[]) AS wanted(kind, n)
                CROSS JOIN LATERAL (
                    SELECT id FROM jobs
                    WHERE state = 'available' AND kind = wanted.kind AND run_at <= now()
                    ORDER BY run_at, id
                    LIMIT wanted.n
                    FOR UPDATE SKIP LOCKED
                ) AS candidate
            ))
            RETURNING jobs.id, jobs.kind, jobs.payload::text, jobs.attempt, jobs.max_attempts, jobs.created_at, jobs.run_at,
                      (extract(epoch FROM clock_timestamp() - jobs.run_at) * 1000000)::bigint
            """,
            logger: logger
        )
        var claimed: [ClaimedJob] = []
        for try await (id, kind, payload, attempt, maxAttempts, createdAt, runAt, latencyMicros)
            in rows.decode((Int64, String, String, Int, Int, Date, Date, Int64).self) {
            claimed.append(ClaimedJob(
                id: JobID(id), kind: kind, payload: payload, attempt: attempt, maxAttempts: maxAttempts,
                createdAt: createdAt, runAt: runAt, pickupLatency: .microseconds(max(latencyMicros, 0))
            ))
        }
        return claimed
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
            let rows = try await connection.query(
                """
                UPDATE jobs SET state = 'completed', finalized_at = now(), lease_expires_at = NULL
                FROM unnest(\(succeeded.map(\.0))::bigint[], \(succeeded.map(\.1))::bigint[]) AS done(id, attempt)
                WHERE jobs.id = done.id AND jobs.attempt = done.attempt AND jobs.state = 'running'
                RETURNING jobs.id
                """,
                logger: logger
            )
            for try await id in rows.decode(Int64.self) { applied.insert(JobID(id)) }
        }
        if !retries.isEmpty {
            let rows = try await connection.query(
                """
                UPDATE jobs SET
                    state = 'available',
                    run_at = now() + r.delay_ms * interval '1 millisecond',
                    lease_expires_at = NULL,
                    last_error = r.message,
                    errors = jobs.errors || jsonb_build_array(jsonb_build_object(
                        'attempt', r.attempt, 'at', now(), 'error', r.message,
                        'retry_at', now() + r.delay_ms * interval '1 millisecond'))
                FROM unnest(\(retries.map(\.0))::bigint[], \(retries.map(\.1))::bigint[], \(retries.map(\.2))::bigint[], \(retries.map(\.3))::text[])
                    AS r(id, attempt, delay_ms, message)
                WHERE jobs.id = r.id AND jobs.attempt = r.attempt AND jobs.state = 'running'
                RETURNING jobs.id
                """,
                logger: logger
            )
            for try await id in rows.decode(Int64.self) { applied.insert(JobID(id)) }
        }
        if !failures.isEmpty {
            let rows = try await connection.query(
                """
                UPDATE jobs SET
                    state = 'failed',
                    finalized_at = now(),
                    lease_expires_at = NULL,
                    last_error = f.message,
                    errors = jobs.errors || jsonb_build_array(jsonb_build_object('attempt', f.attempt, 'at', now(), 'error', f.message))
                FROM unnest(\(failures.map(\.0))::bigint[], \(failures.map(\.1))::bigint[], \(failures.map(\.2))::text[]) AS f(id, attempt, message)
                WHERE jobs.id = f.id AND jobs.attempt = f.attempt AND jobs.state = 'running'
                RETURNING jobs.id, jobs.kind, jobs.attempt, jobs.max_attempts, f.message
                """,
                logger: logger
            )
            for try await (id, kind, attempt, maxAttempts, message) in rows.decode((Int64, String, Int, Int, String).self) {
                applied.insert(JobID(id))
                failed.append(FailedRow(id: JobID(id), kind: kind, attempt: attempt, maxAttempts: maxAttempts, error: message))
            }
        }
        if !released.isEmpty {
            // A release is not the job's fault, so it must not use up the last attempt: raising max_attempts keeps
            // attempt ≤ max_attempts when the next claim increments it, while the attempt number itself never goes
            // back (reusing it would let this worker's late write pass the fence of the next run).
            let rows = try await connection.query(
                """
                UPDATE jobs SET
                    state = 'available',
                    run_at = now(),
                    lease_expires_at = NULL,
                    max_attempts = greatest(jobs.max_attempts, jobs.attempt + 1)
                FROM unnest(\(released.map(\.0))::bigint[], \(released.map(\.1))::bigint[]) AS r(id, attempt)
                WHERE jobs.id = r.id AND jobs.attempt = r.attempt AND jobs.state = 'running'
                RETURNING jobs.id
                """,
                logger: logger
            )
            for try await id in rows.decode(Int64.self) { applied.insert(JobID(id)) }
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
        let rows = try await connection.query(
            """
            UPDATE jobs SET lease_expires_at = now() + \(lease.milliseconds) * interval '1 millisecond'
            FROM unnest(\(held.map(\.id.rawValue))::bigint[], \(held.map(\.attempt))::bigint[]) AS h(id, attempt)
            WHERE jobs.id = h.id AND jobs.attempt = h.attempt AND jobs.state = 'running'
            RETURNING jobs.id
            """,
            logger: logger
        )
        var alive = Set<JobID>()
        for try await id in rows.decode(Int64.self) { alive.insert(JobID(id)) }
        return alive
    }

    /// Makes running jobs whose lease expired claimable again, keeping their attempt number (the next claim
    /// increments it). A job whose lease expired on its final attempt fails instead, so a job that kills its
    /// worker every time cannot loop forever.
    static func rescueExpired(limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> (rescuedKinds: [String], failed: [FailedRow]) {
        let rows = try await connection.query(
            """
            UPDATE jobs SET
                state = CASE WHEN jobs.attempt >= jobs.max_attempts THEN 'failed' ELSE 'available' END,
                finalized_at = CASE WHEN jobs.attempt >= jobs.max_attempts THEN now() END,
                run_at = now(),
                lease_expires_at = NULL,
                last_error = 'lease expired: worker ' || coalesce(jobs.attempted_by, '?') || ' stopped renewing it',
                errors = jobs.errors || jsonb_build_array(jsonb_build_object(
                    'attempt', jobs.attempt, 'at', now(),
                    'error', 'lease expired: worker ' || coalesce(jobs.attempted_by, '?') || ' stopped renewing it'))
            WHERE jobs.id = ANY(ARRAY(
                SELECT id FROM jobs
                WHERE state = 'running' AND lease_expires_at < now()
                ORDER BY lease_expires_at
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            ))
            RETURNING jobs.id, jobs.kind, jobs.state, jobs.attempt, jobs.max_attempts, jobs.last_error
            """,
            logger: logger
        )
        var rescued: [String] = []
        var failed: [FailedRow] = []
        for try await (id, kind, state, attempt, maxAttempts, error) in rows.decode((Int64, String, String, Int, Int, String).self) {
            if state == JobState.failed.rawValue {
                failed.append(FailedRow(id: JobID(id), kind: kind, attempt: attempt, maxAttempts: maxAttempts, error: error))
            } else {
                rescued.append(kind)
            }
        }
        return (rescued, failed)
    }
}
