import Foundation
import Logging
import Metrics
import PostgresNIO
import Storage

/// Why a queue operation was refused.
public enum JobQueueError: Error, Sendable, Hashable, CustomStringConvertible {
    case invalidKind(String)
    case invalidMaxAttempts(kind: String, Int)
    case invalidUniqueKey(String)
    case payloadNotEncodable(kind: String, reason: String)
    case jobNotFound(JobID)
    /// Only failed jobs can be retried by hand; the others are waiting, running or done.
    case notRetryable(JobID, state: JobState)
    /// A job with the same unique key is already waiting or running, so re-queueing this one would run the work twice.
    case uniqueKeyTaken(JobID, key: String)

    public var description: String {
        switch self {
        case .invalidKind(let kind):
            return "job kind '\(kind)' is invalid: use 1–64 lowercase letters, digits, '.', '_' or '-', starting with a letter"
        case .invalidMaxAttempts(let kind, let value):
            return "job kind '\(kind)': max attempts \(value) is outside 1–1000"
        case .invalidUniqueKey(let key):
            return "unique key '\(key.prefix(80))' must be 1–512 characters"
        case .payloadNotEncodable(let kind, let reason):
            return "payload of job kind '\(kind)' cannot be encoded as JSON: \(reason)"
        case .jobNotFound(let id):
            return "job \(id) does not exist (completed jobs are deleted after the retention period)"
        case .notRetryable(let id, let state):
            return "job \(id) is \(state.rawValue); only failed jobs can be retried"
        case .uniqueKeyTaken(let id, let key):
            return "job \(id) cannot be re-queued: another job with unique key '\(key)' is waiting or running"
        }
    }
}

/// Writes jobs. Use `enqueue(_:options:on:)` inside the business transaction that causes the job, so both commit
/// or neither does; workers see the job only after that commit.
public struct JobQueue: Sendable {
    public let database: Database
    let metrics: JobMetrics
    let logger: Logger

    public init(database: Database, metrics: any MetricsFactory = NOOPMetricsHandler.instance, logger: Logger) {
        self.init(database: database, metrics: JobMetrics(factory: metrics), logger: logger)
    }

    init(database: Database, metrics: JobMetrics, logger: Logger) {
        self.database = database
        self.metrics = metrics
        self.logger = logger
    }

    /// Writes the job in the caller's transaction (`connection` must be inside `Database.withTransaction`).
    @discardableResult
    public func enqueue<Payload: JobPayload>(
        _ payload: Payload,
        options: JobOptions = JobOptions(),
        on transaction: PostgresConnection
    ) async throws -> EnqueueResult {
        let row = try Self.row(for: payload, options: options)
        let result = try await Self.insert(row, on: transaction, logger: logger)
        if case .enqueued = result { metrics.kind(Payload.kind).enqueued.increment() }
        return result
    }

    /// Writes the job on its own, for callers with no business transaction.
    @discardableResult
    public func enqueue<Payload: JobPayload>(_ payload: Payload, options: JobOptions = JobOptions()) async throws -> EnqueueResult {
        let row = try Self.row(for: payload, options: options)
        // A single INSERT commits on its own; the duplicate look-up after a conflict needs no atomicity with it.
        let result = try await database.withConnection { connection in
            try await Self.insert(row, on: connection, logger: logger)
        }
        if case .enqueued = result { metrics.kind(Payload.kind).enqueued.increment() }
        return result
    }

    /// Writes many jobs of one kind in a single statement (fan-out, bulk loads). Unique keys are not supported
    /// here; use `enqueue` for jobs that need one.
    @discardableResult
    public func enqueueBatch<Payload: JobPayload>(
        _ payloads: [Payload],
        runAt: Date? = nil,
        on transaction: PostgresConnection
    ) async throws -> [JobID] {
        guard !payloads.isEmpty else { return [] }
        try Self.validate(kind: Payload.kind, maxAttempts: Payload.maxAttempts)
        let encoder = JSONEncoder()
        var texts: [String] = []
        texts.reserveCapacity(payloads.count)
        for payload in payloads {
            texts.append(try Self.encode(payload, encoder: encoder))
        }
        let rows = try await transaction.query(
            """
            INSERT INTO jobs (kind, payload, max_attempts, run_at)
            SELECT \(Payload.kind), p::jsonb, \(Payload.maxAttempts), coalesce(\(runAt), now())
            FROM unnest(\(texts)::text[]) WITH ORDINALITY AS t(p, n)
            ORDER BY n
            RETURNING id
            """,
            logger: logger
        )
        var ids: [JobID] = []
        ids.reserveCapacity(payloads.count)
        for try await id in rows.decode(Int64.self) { ids.append(JobID(id)) }
        metrics.kind(Payload.kind).enqueued.increment(by: Int64(ids.count))
        return ids
    }

    struct Row: Sendable {
        var kind: String
        var payload: String
        var maxAttempts: Int
        var runAt: Date?
        var uniqueKey: String?
    }

    static func row<Payload: JobPayload>(for payload: Payload, options: JobOptions) throws(JobQueueError) -> Row {
        let maxAttempts = options.maxAttempts ?? Payload.maxAttempts
        try validate(kind: Payload.kind, maxAttempts: maxAttempts)
        if let key = options.uniqueKey, key.isEmpty || key.count > 512 { throw .invalidUniqueKey(key) }
        return Row(
            kind: Payload.kind, payload: try encode(payload, encoder: JSONEncoder()), maxAttempts: maxAttempts,
            runAt: options.runAt, uniqueKey: options.uniqueKey
        )
    }

    static func validate(kind: String, maxAttempts: Int) throws(JobQueueError) {
        guard JobKindName.isValid(kind) else { throw .invalidKind(kind) }
        guard (1...1000).contains(maxAttempts) else { throw .invalidMaxAttempts(kind: kind, maxAttempts) }
    }

    static func encode<Payload: JobPayload>(_ payload: Payload, encoder: JSONEncoder) throws(JobQueueError) -> String {
        do {
            return String(decoding: try encoder.encode(payload), as: UTF8.self)
        } catch {
            throw .payloadNotEncodable(kind: Payload.kind, reason: "\(error)")
        }
    }

    static func insert(_ row: Row, on connection: PostgresConnection, logger: Logger) async throws -> EnqueueResult {
        let inserted = try await connection.query(
            """
            INSERT INTO jobs (kind, payload, max_attempts, run_at, unique_key)
            VALUES (\(row.kind), \(row.payload)::jsonb, \(row.maxAttempts), coalesce(\(row.runAt), now()), \(row.uniqueKey))
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('available', 'running') DO NOTHING
            RETURNING id
            """,
            logger: logger
        )
        for try await id in inserted.decode(Int64.self) { return .enqueued(JobID(id)) }
        guard let key = row.uniqueKey else {
            preconditionFailure("an insert without a unique key cannot conflict")
        }
        let existing = try await connection.query(
            "SELECT id FROM jobs WHERE unique_key = \(key) AND state IN ('available', 'running')",
            logger: logger
        )
        for try await id in existing.decode(Int64.self) { return .duplicate(existing: JobID(id)) }
        return .duplicate(existing: nil)
    }
}
