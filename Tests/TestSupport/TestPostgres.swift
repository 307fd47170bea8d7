import Foundation
import Logging
import Metrics
import PostgresNIO
import Storage

/// One embedded PostgreSQL server shared by every test in the process, each test getting a fresh database.
///
/// The cluster lives at `TELEPAY_TEST_DATA_DIR` (default `/tmp/telepay-tests`): the next run adopts a server a
/// crashed run left behind, and `scripts/test` stops it when the suite ends.
public actor TestPostgres {
    public static let shared = TestPostgres()

    private var starting: Task<RunningEmbeddedPostgres, any Error>?

    public static var dataDirectory: String {
        ProcessInfo.processInfo.environment["TELEPAY_TEST_DATA_DIR"] ?? "/tmp/telepay-tests"
    }

    /// Starts the shared server once; concurrent callers wait for the same start.
    public func server() async throws -> RunningEmbeddedPostgres {
        if let starting { return try await starting.value }
        let task = Task {
            let cluster = EmbeddedPostgres(
                dataDirectory: Self.dataDirectory,
                binaries: try PostgresServerBinaries.locate(),
                // Every suite runs in parallel, each test with its own pool; 200 is not enough for all of them.
                maxConnections: 600,
                logger: Logger(label: "test-postgres") { _ in SwiftLogNoOpLogHandler() }
            )
            return try await cluster.start()
        }
        starting = task
        return try await task.value
    }

    /// Creates an empty database with a unique name and returns how to reach it.
    public func makeDatabase() async throws -> PostgresClient.Configuration {
        let server = try await server()
        let name = "test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let connection = try await PostgresConnection.connect(
            configuration: .init(unixSocketPath: server.cluster.socketPath, username: EmbeddedPostgres.username, password: nil, database: "postgres"),
            id: 0,
            logger: Logger(label: "test-postgres") { _ in SwiftLogNoOpLogHandler() }
        )
        defer { Task { try? await connection.close() } }
        try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: quietLogger)
        return server.clientConfiguration(database: name)
    }
}

/// A logger that drops everything, for tests that do not inspect logs.
/// Silent, unless `TELEPAY_TEST_LOG=1` (then everything goes to standard error, for debugging a test).
public let quietLogger: Logger = {
    guard ProcessInfo.processInfo.environment["TELEPAY_TEST_LOG"] == "1" else {
        return Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    }
    var logger = Logger(label: "test") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = .debug
    return logger
}()

/// Runs `body` against a fresh, empty database whose pool runs for the duration of the call.
public func withTestDatabase<Result: Sendable>(
    poolSize: Int = 4,
    metrics: any MetricsFactory = NOOPMetricsHandler.instance,
    _ body: @Sendable (Database) async throws -> Result
) async throws -> Result {
    let configuration = try await TestPostgres.shared.makeDatabase()
    let database = Database(configuration: configuration, poolSize: poolSize, logger: quietLogger, metrics: metrics)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await database.run() }
        defer { group.cancelAll() }
        return try await body(database)
    }
}

/// Runs `body` against a fresh database migrated to the repository's current schema.
public func withMigratedDatabase<Result: Sendable>(
    poolSize: Int = 4,
    _ body: @Sendable (Database) async throws -> Result
) async throws -> Result {
    try await withTestDatabase(poolSize: poolSize) { database in
        try await MigrationRunner(migrations: try Migration.load(directory: RepositoryPaths.migrations), logger: quietLogger)
            .apply(on: database)
        return try await body(database)
    }
}

/// Folders of this checkout, found from this source file's location.
public enum RepositoryPaths {
    public static let root: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    public static var migrations: String { root + "/Migrations" }

    /// A new empty folder under the system's temporary folder, traversable by the `postgres` account.
    public static func makeTemporaryDirectory(_ prefix: String = "telepay-test") throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        return path
    }
}
