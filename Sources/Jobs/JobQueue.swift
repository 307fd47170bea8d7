import Foundation
import Logging
import Metrics
import PostgresNIO
import Storage
import Synchronization

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

/// Writes jobs, and wakes listening workers once they are committed.
///
/// Three ways in, by where the transaction comes from:
/// - `transaction { tx in … tx.enqueue(job) … }` runs the business writes and the jobs in one transaction and
///   notifies workers right after the commit. The fast path: PostgreSQL serialises the commits of transactions
///   that NOTIFY (a global lock held across the WAL flush), so notifying after the commit keeps concurrent
///   business transactions from queueing behind each other. If the process dies between commit and notification,
///   workers find the jobs at their next poll.
/// - `enqueue(_:options:on:)` writes into a transaction the caller opened with `Database.withTransaction`; the
///   notification is part of that transaction and is sent at its commit.
/// - `enqueue(_:options:)` writes one job on its own and notifies after its commit.
///
/// Either way a rollback leaves no job, and workers see a job only after its commit.
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

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws (its own error is
    /// rethrown). Jobs enqueued through the `JobTransaction` wake workers as soon as the commit is done.
    public func transaction<Value: Sendable>(_ body: (JobTransaction) async throws -> Value) async throws -> Value {
        let due = DueKinds()
        let value = try await database.withTransaction { connection in
            try await body(JobTransaction(connection: connection, queue: self, due: due))
        }
        await notifyAfterCommit(due.kinds)
        return value
    }

    /// Writes the job in the caller's transaction (`transaction` must be inside `Database.withTransaction`).
    /// The wake-up notification goes out with that transaction's commit.
    @discardableResult
    public func enqueue<Payload: JobPayload>(
        _ payload: Payload,
        options: JobOptions = JobOptions(),
        on transaction: PostgresConnection
    ) async throws -> EnqueueResult {
        let row = try Self.row(for: payload, options: options)
        let result = try await insert(row, on: transaction)
        if result.enqueuedID != nil && row.isDueNow {
            try await notifyAtCommit([row.kind], on: transaction)
        }
        return result
    }

    /// Wakes the workers for jobs of `kinds` written without a notification (e.g. by a trigger), after their
    /// commit. Best effort: a lost notification only delays them to the workers' next poll.
    public func announce(_ kinds: Set<String>) async {
        await notifyAfterCommit(kinds)
    }

    /// Writes the job on its own, for callers with no business transaction.
    @discardableResult
    public func enqueue<Payload: JobPayload>(_ payload: Payload, options: JobOptions = JobOptions()) async throws -> EnqueueResult {
        let row = try Self.row(for: payload, options: options)
        // A single INSERT commits on its own; the duplicate look-up after a conflict needs no atomicity with it.
        return try await database.withConnection { connection in
            let result = try await insert(row, on: connection)
            if result.enqueuedID != nil && row.isDueNow {
                await notifyAfterCommit([row.kind], on: connection)
            }
            return result
        }
    }

    /// Writes many jobs of one kind in a single statement (fan-out, bulk loads) into the caller's transaction;
    /// one notification goes out with its commit. Unique keys are not supported here; use `enqueue` for those.
    @discardableResult
    public func enqueueBatch<Payload: JobPayload>(
        _ payloads: [Payload],
        runAt: Date? = nil,
        on transaction: PostgresConnection
    ) async throws -> [JobID] {
        let ids = try await insertBatch(payloads, runAt: runAt, on: transaction)
        if !ids.isEmpty && runAt.map({ $0 <= Date() }) ?? true {
            try await notifyAtCommit([Payload.kind], on: transaction)
        }
        return ids
    }

    func insertBatch<Payload: JobPayload>(_ payloads: [Payload], runAt: Date?, on connection: PostgresConnection) async throws -> [JobID] {
        guard !payloads.isEmpty else { return [] }
        try Self.validate(kind: Payload.kind, maxAttempts: Payload.maxAttempts)
        let encoder = JSONEncoder()
        var texts: [String] = []
        texts.reserveCapacity(payloads.count)
        for payload in payloads {
            texts.append(try Self.encode(payload, encoder: encoder))
        }
        let ids = try await JobStore.insertBatch(
            kind: Payload.kind, maxAttempts: Payload.maxAttempts, payloads: texts, runAt: runAt, on: connection, logger: logger
        )
        metrics.kind(Payload.kind).enqueued.increment(by: Int64(ids.count))
        return ids
    }

    struct Row: Sendable {
        var kind: String
        var payload: String
        var maxAttempts: Int
        var runAt: Date?
        var uniqueKey: String?

        /// Scheduled jobs are found by polling when they come due; notifying now would only wake workers for nothing.
        var isDueNow: Bool { runAt.map { $0 <= Date() } ?? true }
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

    func insert(_ row: Row, on connection: PostgresConnection) async throws -> EnqueueResult {
        if let id = try await JobStore.insert(row, on: connection, logger: logger) {
            metrics.kind(row.kind).enqueued.increment()
            return .enqueued(id)
        }
        guard let key = row.uniqueKey else {
            preconditionFailure("an insert without a unique key cannot conflict")
        }
        return .duplicate(existing: try await JobStore.holder(ofUniqueKey: key, on: connection, logger: logger))
    }

    /// Queues the notification inside the caller's transaction; PostgreSQL delivers it at commit, and drops it on
    /// rollback.
    func notifyAtCommit(_ kinds: Set<String>, on transaction: PostgresConnection) async throws {
        try await JobStore.notify(kinds, synchronousCommitOff: false, on: transaction, logger: logger)
    }

    /// Notifies in a transaction of its own, after the jobs' commit. Best effort: a lost notification only delays
    /// the jobs to the workers' next poll. Its commit need not wait for the disk (a notification is never durable
    /// anyway), which keeps the NOTIFY lock held for microseconds instead of a WAL flush.
    func notifyAfterCommit(_ kinds: Set<String>, on connection: PostgresConnection? = nil) async {
        guard !kinds.isEmpty else { return }
        let logger = self.logger
        let notify = { @Sendable (connection: PostgresConnection) async throws in
            try await JobStore.notify(kinds, synchronousCommitOff: true, on: connection, logger: logger)
        }
        do {
            if let connection {
                try await notify(connection)
            } else {
                try await database.withConnection { try await notify($0) }
            }
        } catch {
            logger.warning(
                "notifying workers of new jobs failed; they find them at their next poll",
                metadata: [
                    "kinds": "\(kinds.sorted().joined(separator: ","))", "error": "\(String(reflecting: error))",
                ])
        }
    }
}

/// A transaction opened by `JobQueue.transaction`: do the business writes on `connection` and enqueue the jobs
/// they cause here; workers are woken once the whole transaction has committed.
public struct JobTransaction: Sendable {
    public let connection: PostgresConnection
    let queue: JobQueue
    let due: DueKinds

    @discardableResult
    public func enqueue<Payload: JobPayload>(_ payload: Payload, options: JobOptions = JobOptions()) async throws -> EnqueueResult {
        let row = try JobQueue.row(for: payload, options: options)
        let result = try await queue.insert(row, on: connection)
        if result.enqueuedID != nil && row.isDueNow { due.add(row.kind) }
        return result
    }

    /// Many jobs of one kind in one statement; see `JobQueue.enqueueBatch`.
    @discardableResult
    public func enqueueBatch<Payload: JobPayload>(_ payloads: [Payload], runAt: Date? = nil) async throws -> [JobID] {
        let ids = try await queue.insertBatch(payloads, runAt: runAt, on: connection)
        if !ids.isEmpty && runAt.map({ $0 <= Date() }) ?? true { due.add(Payload.kind) }
        return ids
    }
}

/// The kinds a `JobTransaction` enqueued ready-to-run jobs of, to notify after its commit.
final class DueKinds: Sendable {
    private let pending = Mutex<Set<String>>([])

    var kinds: Set<String> { pending.withLock { $0 } }

    func add(_ kind: String) {
        pending.withLock { _ = $0.insert(kind) }
    }
}
