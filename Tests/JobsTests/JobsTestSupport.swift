import Foundation
import Logging
import PostgresNIO
import Storage
import Synchronization
import TestSupport
import Testing

@testable import Jobs

/// A condition a test waited for did not come true; carries what was awaited.
struct ConditionTimedOut: Error, CustomStringConvertible {
    var condition: String
    var description: String { "timed out waiting until \(condition)" }
}

/// Polls `condition` until it holds. The timeout is deliberately generous (the shared CI machine may be slow):
/// it bounds a hang, it does not measure speed.
func waitUntil(
    _ condition: String,
    timeout: Duration = .seconds(60),
    _ check: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await check() { return }
        guard ContinuousClock.now < deadline else { throw ConditionTimedOut(condition: condition) }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// Runs a worker pool for the duration of `body`, then shuts it down gracefully and waits for it to stop.
func withRunningPool<Result: Sendable>(_ pool: JobWorkerPool, _ body: () async throws -> Result) async throws -> Result {
    let running = Task { try await pool.run() }
    do {
        let result = try await body()
        pool.beginShutdown()
        try await running.value
        return result
    } catch {
        pool.beginShutdown()
        try? await running.value
        throw error
    }
}

/// Runs a service (rescuer, scheduler) until `body` returns.
func withRunningService<Result: Sendable>(_ run: @escaping @Sendable () async throws -> Void, _ body: () async throws -> Result) async throws
    -> Result
{
    let running = Task { try await run() }
    defer { running.cancel() }
    return try await body()
}

/// Records every alert.
final class RecordingAlertHook: JobAlertHook {
    private let recorded = Mutex<[FailedJob]>([])

    var alerts: [FailedJob] { recorded.withLock { $0 } }

    func jobFailed(_ job: FailedJob) async {
        recorded.withLock { $0.append(job) }
    }
}

/// A thread-safe list the test handlers append to.
final class Log<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])

    var all: [Element] { items.withLock { $0 } }
    var count: Int { items.withLock { $0.count } }

    func append(_ item: Element) {
        items.withLock { $0.append(item) }
    }
}

/// Opens when the test says so; handlers wait on it to hold a job in the running state.
final class Gate: Sendable {
    private let opened = Atomic<Bool>(false)

    func open() {
        opened.store(true, ordering: .relaxed)
    }

    func wait() async throws {
        while !opened.load(ordering: .relaxed) {
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// A test job carrying a number.
struct EchoJob: JobPayload, Equatable {
    static let kind = "test.echo"
    var value: Int
}

/// Records each run of an `EchoJob`.
struct EchoHandler: JobHandler {
    let runs: Log<(value: Int, attempt: Int)>
    var concurrency = 10

    var options: JobKindOptions { JobKindOptions(concurrency: concurrency) }

    func run(_ payload: EchoJob, context: JobContext) async throws {
        runs.append((payload.value, context.attempt))
    }
}

func count(_ sql: String, on database: Database) async throws -> Int {
    try await database.withConnection { connection in
        var result = 0
        for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: quietLogger).decode(Int.self) {
            result = value
        }
        return result
    }
}

func fastPoolConfiguration(
    workerID: String = "test-worker",
    listens: Bool = true,
    lease: Duration = .seconds(15),
    heartbeat: Duration = .seconds(5)
) -> JobWorkerConfiguration {
    JobWorkerConfiguration(
        workerID: workerID,
        pollInterval: .milliseconds(50),
        listensForNotifications: listens,
        lease: lease,
        heartbeatInterval: heartbeat,
        shutdownGrace: .seconds(5),
        cancellationGrace: .seconds(1)
    )
}
