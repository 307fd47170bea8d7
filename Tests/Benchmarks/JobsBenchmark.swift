import Foundation
import Jobs
import Logging
import Metrics
import PostgresNIO
import Storage
import Synchronization

/// A job that does nothing: the burn-down measures the engine, not the work.
struct BenchmarkNoopJob: JobPayload {
    static let kind = "bench.noop"
    var sequence: Int
}

struct BenchmarkNoopHandler: JobHandler {
    let concurrency: Int

    var options: JobKindOptions { JobKindOptions(concurrency: concurrency) }

    func run(_ payload: BenchmarkNoopJob, context: JobContext) async throws {}
}

/// A job that notes when it started, for enqueue-to-start latency.
struct BenchmarkLatencyJob: JobPayload {
    static let kind = "bench.latency"
    var sequence: Int
}

struct BenchmarkLatencyHandler: JobHandler {
    let starts: BenchmarkTimes
    let concurrency: Int

    var options: JobKindOptions { JobKindOptions(concurrency: concurrency) }

    func run(_ payload: BenchmarkLatencyJob, context: JobContext) async throws {
        starts.record(payload.sequence)
    }
}

/// Monotonic nanosecond timestamps by job sequence number.
final class BenchmarkTimes: Sendable {
    private let times: Mutex<[UInt64]>

    init(count: Int) {
        times = Mutex([UInt64](repeating: 0, count: count))
    }

    func record(_ sequence: Int, at time: UInt64 = DispatchTime.now().uptimeNanoseconds) {
        times.withLock { $0[sequence] = time }
    }

    var all: [UInt64] { times.withLock { $0 } }
}

/// `scripts/bench jobs`: throughput and pickup latency of the job engine on a private, freshly initialised
/// PostgreSQL cluster on this machine (never the configured database), with the server's default durability
/// (`synchronous_commit=on`, `fsync=on`).
public struct JobsBenchmark: Sendable {
    public struct Options: Sendable {
        public var burnDownJobs = 100_000
        public var rate = 1000
        public var steadySeconds = 10
        public var concurrency = 200
        public var claimBatch = 200
        public var pollInterval: Duration = .seconds(1)

        public init() {}

        /// The defaults, each overridden by its variable when set: `TELEPAY_BENCH_JOBS` (burn-down jobs),
        /// `_RATE` (jobs/s in the latency runs), `_SECONDS`, `_CONCURRENCY`, `_BATCH` (most jobs per claim),
        /// `_POLL_MS`.
        static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Options {
            var options = Options()
            func number(_ name: String) -> Int? { environment["TELEPAY_BENCH_" + name].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil } }
            if let value = number("JOBS") { options.burnDownJobs = value }
            if let value = number("RATE") { options.rate = value }
            if let value = number("SECONDS") { options.steadySeconds = value }
            if let value = number("CONCURRENCY") { options.concurrency = value }
            if let value = number("BATCH") { options.claimBatch = value }
            if let value = number("POLL_MS"), value >= 10 { options.pollInterval = .milliseconds(value) }
            return options
        }
    }

    /// Percentiles of one latency sample, in milliseconds.
    public struct Latency: Sendable, CustomStringConvertible {
        public var count: Int
        public var p50: Double
        public var p99: Double
        public var max: Double

        init(nanoseconds: [UInt64]) {
            let sorted = nanoseconds.sorted()
            func at(_ fraction: Double) -> Double {
                guard !sorted.isEmpty else { return 0 }
                let index = Swift.min(sorted.count - 1, Swift.max(0, Int((Double(sorted.count) * fraction).rounded(.up)) - 1))
                return Double(sorted[index]) / 1_000_000
            }
            count = sorted.count
            p50 = at(0.50)
            p99 = at(0.99)
            max = at(1.0)
        }

        public var description: String {
            String(format: "p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d jobs)", p50, p99, max, count)
        }
    }

    public var options: Options
    public var migrations: MigrationRunner
    public var logger: Logger
    /// Receives each result line as soon as it is measured.
    public var report: @Sendable (String) -> Void

    public init(options: Options, migrations: MigrationRunner, logger: Logger, report: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.migrations = migrations
        self.logger = logger
        self.report = report
    }

    public func run() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("telepay-bench-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cluster = EmbeddedPostgres(dataDirectory: folder, binaries: try PostgresServerBinaries.locate(), logger: logger)
        let server = try await cluster.start()
        do {
            let database = Database(
                configuration: server.clientConfiguration(), poolSize: 24, logger: logger, metrics: NOOPMetricsHandler.instance
            )
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.run() }
                defer { group.cancelAll() }
                try await migrations.apply(on: database)
                try await describeSetup(database)
                try await burnDown(database)
                try await steady(database, listens: true, seconds: options.steadySeconds)
                try await steady(database, listens: false, seconds: Swift.max(5, options.steadySeconds / 2))
            }
            try await server.stop()
        } catch {
            try? await server.stop()
            throw error
        }
    }

    private func describeSetup(_ database: Database) async throws {
        let settings = try await database.withConnection { connection in
            var values: [String] = []
            for name in ["server_version", "synchronous_commit", "fsync", "shared_buffers"] {
                let rows = try await connection.query(PostgresQuery(unsafeSQL: "SHOW \(name)"), logger: logger)
                for try await value in rows.decode(String.self) { values.append("\(name)=\(value)") }
            }
            return values.joined(separator: " ")
        }
        #if DEBUG
        let build = "debug build (use `swift build -c release` for representative figures)"
        #else
        let build = "release build"
        #endif
        report("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; \(build)")
        report("PostgreSQL (private embedded cluster on this machine): \(settings)")
    }

    private func pool(for registry: JobRegistry, database: Database, listens: Bool) -> JobWorkerPool {
        JobWorkerPool(
            registry: registry,
            database: database,
            configuration: JobWorkerConfiguration(
                workerID: "bench", pollInterval: options.pollInterval, listensForNotifications: listens,
                claimBatchSize: options.claimBatch
            ),
            alertHook: LoggingJobAlertHook(logger: logger),
            logger: logger
        )
    }

    private func burnDown(_ database: Database) async throws {
        let total = options.burnDownJobs
        let queue = JobQueue(database: database, logger: logger)
        let chunk = 10_000
        let enqueueStarted = ContinuousClock.now
        var sequence = 0
        while sequence < total {
            let payloads = (sequence..<Swift.min(total, sequence + chunk)).map { BenchmarkNoopJob(sequence: $0) }
            try await database.withTransaction { connection in
                _ = try await queue.enqueueBatch(payloads, on: connection)
            }
            sequence += payloads.count
        }
        let enqueueElapsed = ContinuousClock.now - enqueueStarted
        report(
            String(
                format: "bulk enqueue: %d jobs in %.2f s = %.0f jobs/s (one INSERT per %d)", total, enqueueElapsed.seconds,
                Double(total) / enqueueElapsed.seconds, chunk))
        _ = try await database.withConnection { connection in
            try await connection.query("ANALYZE jobs", logger: logger)
        }

        var registry = JobRegistry()
        registry.register(BenchmarkNoopHandler(concurrency: options.concurrency))
        let pool = pool(for: registry, database: database, listens: true)
        let started = ContinuousClock.now
        let running = Task { try await pool.run() }
        while pool.statistics.succeeded < total {
            try await Task.sleep(for: .milliseconds(5))
        }
        let elapsed = ContinuousClock.now - started
        pool.beginShutdown()
        try await running.value
        let completed = try await count("SELECT count(*) FROM jobs WHERE state = 'completed' AND kind = 'bench.noop'", database)
        report(
            String(
                format: "burn-down: %d no-op jobs in %.2f s = %.0f jobs/s (concurrency %d, claim batch %d; %d completed in the database)",
                total, elapsed.seconds, Double(total) / elapsed.seconds, options.concurrency, options.claimBatch, completed
            ))
        _ = try await database.withConnection { connection in
            try await connection.query("TRUNCATE jobs", logger: logger)
        }
    }

    /// Enqueues at a fixed rate, each job in its own transaction as a business write would, from a few
    /// concurrent enqueuers (an open loop: a slow enqueue does not delay the next one's schedule).
    private func steady(_ database: Database, listens: Bool, seconds: Int) async throws {
        let total = options.rate * seconds
        let enqueueCalls = BenchmarkTimes(count: total)
        let returns = BenchmarkTimes(count: total)
        let starts = BenchmarkTimes(count: total)
        var registry = JobRegistry()
        registry.register(BenchmarkLatencyHandler(starts: starts, concurrency: options.concurrency))
        let pool = pool(for: registry, database: database, listens: listens)
        let queue = JobQueue(database: database, logger: logger)
        let running = Task { try await pool.run() }
        // Let the listener subscribe and the first empty claim pass before the clock starts.
        try await Task.sleep(for: .milliseconds(500))

        let enqueuers = 12
        let interval = 1_000_000_000 / UInt64(options.rate)
        let origin = DispatchTime.now().uptimeNanoseconds + 10_000_000
        let began = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<enqueuers {
                group.addTask {
                    var sequence = lane
                    while sequence < total {
                        let due = origin + UInt64(sequence) * interval
                        let now = DispatchTime.now().uptimeNanoseconds
                        if due > now { try await Task.sleep(for: .nanoseconds(Int64(due - now))) }
                        enqueueCalls.record(sequence)
                        try await queue.enqueue(BenchmarkLatencyJob(sequence: sequence))
                        returns.record(sequence)
                        sequence += enqueuers
                    }
                }
            }
            try await group.waitForAll()
        }
        let enqueueElapsed = ContinuousClock.now - began
        while pool.statistics.succeeded < total {
            try await Task.sleep(for: .milliseconds(10))
        }
        pool.beginShutdown()
        try await running.value

        let startTimes = starts.all
        let fromCall = zip(startTimes, enqueueCalls.all).map { $0 &- $1 }
        // The job may start before `enqueue` returns (the notification goes out after the commit, before the
        // return), so this figure is clamped at zero; it shows how much of the first one is the producer's own commit.
        let fromReturn = zip(startTimes, returns.all).map { $0 > $1 ? $0 - $1 : 0 }
        let mode = listens ? "LISTEN/NOTIFY on" : "LISTEN/NOTIFY off, poll every \(options.pollInterval.milliseconds) ms"
        report(
            "steady \(options.rate) jobs/s for \(seconds) s (\(mode)): "
                + String(format: "enqueued at %.0f jobs/s", Double(total) / enqueueElapsed.seconds))
        report("  enqueue call -> start:     \(Latency(nanoseconds: fromCall))")
        report("  enqueue returned -> start: \(Latency(nanoseconds: fromReturn))")
        _ = try await database.withConnection { connection in
            try await connection.query("TRUNCATE jobs", logger: logger)
        }
    }

    private func count(_ sql: String, _ database: Database) async throws -> Int {
        try await database.withConnection { connection in
            var result = 0
            for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(Int.self) { result = value }
            return result
        }
    }
}

extension Duration {
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    var milliseconds: Int64 {
        let parts = components
        return parts.seconds * 1000 + parts.attoseconds / 1_000_000_000_000_000
    }
}
