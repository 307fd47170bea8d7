import Foundation
import Localization
import Logging
import Metrics
import PostgresNIO
import Storage

/// `telepay-bench [jobs|updates|limiter|broadcast|ipn|invites|payouts|hostile|adminstats|all]`: TelePay's benchmarks. Run them with `scripts/bench`
/// (release build).
let arguments = Set(CommandLine.arguments.dropFirst())
let which = arguments.isEmpty ? ["all"] : arguments
let logger = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
if CommandLine.arguments.dropFirst().first == HostileTrafficBenchmark.serverArgument {
    // The hostile benchmark's server, in a process of its own.
    try await HostileTrafficBenchmark.serve(logger: logger)
    exit(0)
}

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB")

/// Runs `body` on a fresh embedded PostgreSQL with the current schema, removed afterwards.
func withBenchDatabase(_ body: (Database) async throws -> Void) async throws {
    try await withBenchCluster { database, _ in try await body(database) }
}

/// `withBenchDatabase`, also handing over how to connect to the server (for a child process).
func withBenchCluster(_ body: (Database, PostgresClient.Configuration) async throws -> Void) async throws {
    let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("telepay-bench-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    let server = try await EmbeddedPostgres(dataDirectory: dataDirectory, binaries: try PostgresServerBinaries.locate(), logger: logger).start()
    let database = Database(configuration: server.clientConfiguration(), poolSize: 16, logger: logger, metrics: NOOPMetricsHandler.instance)
    let pool = Task { await database.run() }
    do {
        try await MigrationRunner(migrations: try Migration.load(directory: root + "/Migrations"), logger: logger).apply(on: database)
        try await body(database, server.clientConfiguration())
    } catch {
        // A failed run must not leave its private server behind.
        pool.cancel()
        try? await server.stop()
        try? FileManager.default.removeItem(atPath: dataDirectory)
        throw error
    }
    pool.cancel()
    try await server.stop()
    try? FileManager.default.removeItem(atPath: dataDirectory)
}

if which.contains("jobs") || which.contains("all") {
    // The jobs engine starts its own private cluster (it measures with its own pool size).
    let benchmark = JobsBenchmark(
        options: JobsBenchmark.Options.fromEnvironment(),
        migrations: MigrationRunner(migrations: try Migration.load(directory: root + "/Migrations"), logger: logger),
        logger: logger
    ) { line in
        // Unbuffered, so each figure shows up as soon as it is measured.
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
    try await benchmark.run()
}

if which.contains("updates") || which.contains("all") {
    try await withBenchDatabase { database in
        let localizer = try Localizer.load(directory: root + "/Localization")
        let result = try await UpdatesBenchmark(updates: 20_000, users: 1_000, concurrency: 32).run(
            database: database, localizer: localizer, logger: logger)
        print(result)
    }
}

if which.contains("broadcast") || which.contains("all") {
    try await withBenchDatabase { database in
        let recipients = Int(ProcessInfo.processInfo.environment["TELEPAY_BENCH_RECIPIENTS"] ?? "") ?? 10_000
        print(try await BroadcastBenchmark(recipients: recipients).run(database: database, logger: logger))
    }
}

if which.contains("limiter") || which.contains("all") {
    print(try await LimiterBenchmark(seconds: 60, chats: 200).run(logger: logger))
}

if which.contains("ipn") || which.contains("all") {
    try await withBenchDatabase { database in
        print(
            try await IPNBenchmark(closedLoopCallbacks: 20_000, concurrency: 16, offeredRate: 1_000, offeredSeconds: 20).run(
                database: database, logger: logger))
    }
}

if which.contains("invites") || which.contains("all") {
    try await withBenchDatabase { database in
        print(try await InviteLatencyBenchmark(payments: 1_000, offeredRate: 100).run(database: database, logger: logger))
    }
}

if which.contains("payouts") || which.contains("all") {
    try await withBenchDatabase { database in
        print(try await PayoutBenchmark().run(database: database, logger: logger))
    }
}

if which.contains("hostile") || which.contains("all") {
    try await withBenchCluster { _, connection in
        // TELEPAY_BENCH_IDLE / _FORGED / _GENUINE / _SECONDS change the mix, e.g. 0 idle and 0 forged for a baseline.
        let environment = ProcessInfo.processInfo.environment
        var benchmark = HostileTrafficBenchmark()
        benchmark.idleConnections = environment["TELEPAY_BENCH_IDLE"].flatMap { Int($0) } ?? benchmark.idleConnections
        benchmark.forgedRate = environment["TELEPAY_BENCH_FORGED"].flatMap { Int($0) } ?? benchmark.forgedRate
        benchmark.genuineRate = environment["TELEPAY_BENCH_GENUINE"].flatMap { Int($0) } ?? benchmark.genuineRate
        benchmark.seconds = environment["TELEPAY_BENCH_SECONDS"].flatMap { Int($0) } ?? benchmark.seconds
        benchmark.settleSeconds = environment["TELEPAY_BENCH_SETTLE_SECONDS"].flatMap { Int($0) } ?? benchmark.settleSeconds
        print(try await benchmark.run(database: connection, logger: logger))
    }
}

if which.contains("adminstats") || which.contains("all") {
    try await withBenchDatabase { database in
        let orders = Int(ProcessInfo.processInfo.environment["TELEPAY_BENCH_ORDERS"] ?? "") ?? 1_000_000
        print(try await AdminStatsBenchmark(orders: orders).run(database: database, logger: logger))
    }
}
