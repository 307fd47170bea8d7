import Foundation
import Localization
import Logging
import Metrics
import Storage

/// `telepay-bench [updates|limiter|all]`: TelePay's benchmarks. Run them with `scripts/bench` (release build).
let arguments = Set(CommandLine.arguments.dropFirst())
let which = arguments.isEmpty ? ["all"] : arguments
let logger = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB")

if which.contains("updates") || which.contains("all") {
    let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("telepay-bench-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    let server = try await EmbeddedPostgres(dataDirectory: dataDirectory, binaries: try PostgresServerBinaries.locate(), logger: logger).start()
    let database = Database(configuration: server.clientConfiguration(), poolSize: 16, logger: logger, metrics: NOOPMetricsHandler.instance)
    let pool = Task { await database.run() }
    try await MigrationRunner(migrations: try Migration.load(directory: root + "/Migrations"), logger: logger).apply(on: database)
    let localizer = try Localizer.load(directory: root + "/Localization")
    let result = try await UpdatesBenchmark(updates: 20_000, users: 1_000, concurrency: 32).run(database: database, localizer: localizer, logger: logger)
    print(result)
    pool.cancel()
    try await server.stop()
    try? FileManager.default.removeItem(atPath: dataDirectory)
}

if which.contains("limiter") || which.contains("all") {
    print(try await LimiterBenchmark(seconds: 60, chats: 200).run(logger: logger))
}
