import CoreMetrics
import Foundation
import Logging
import Metrics
import PostgresNIO

/// TelePay's handle on PostgreSQL: the connection pool plus the pool figures the metrics endpoint reports.
///
/// Everything that touches the database goes through `withConnection` or `withTransaction`, so the figures
/// (connections in use, time spent waiting for one) describe all traffic.
public struct Database: Sendable {
    public let client: PostgresClient
    public let logger: Logger
    private let inUse: Meter
    private let waitTime: CoreMetrics.Timer
    private let failures: Counter

    public init(configuration: PostgresClient.Configuration, poolSize: Int, logger: Logger, metrics: any MetricsFactory) {
        var configuration = configuration
        configuration.options.maximumConnections = poolSize
        configuration.options.minimumConnections = 0
        // The pool starts an idle timer each time a connection goes back to it, and each timer holds a task for
        // the whole timeout: at 1,000 returns a second PostgresNIO's default of 60 s kept about 60,000 of them
        // (~17 MB) alive. 10 s keeps a sixth of that; an idle connection closing sooner costs one reconnect.
        configuration.options.connectionIdleTimeout = .seconds(10)
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        self.inUse = Meter(label: "telepay_db_connections_in_use", dimensions: [], factory: metrics)
        self.waitTime = CoreMetrics.Timer(label: "telepay_db_connection_wait_seconds", dimensions: [], factory: metrics)
        self.failures = Counter(label: "telepay_db_operation_failures_total", dimensions: [], factory: metrics)
        Gauge(label: "telepay_db_pool_max_connections", dimensions: [], factory: metrics).record(poolSize)
    }

    /// Runs the pool; it must run (in the service group or a task) for any query to be served.
    public func run() async {
        await client.run()
    }

    public func withConnection<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        let requested = ContinuousClock.now
        do {
            return try await client.withConnection { connection in
                waitTime.record(duration: ContinuousClock.now - requested)
                inUse.increment()
                defer { inUse.decrement() }
                return try await body(connection)
            }
        } catch {
            failures.increment()
            throw error
        }
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    /// When `body` throws and the rollback succeeds, its own error is rethrown unwrapped, so callers can
    /// match their typed errors; a failed BEGIN, COMMIT or ROLLBACK surfaces as `PostgresTransactionError`.
    public func withTransaction<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        let requested = ContinuousClock.now
        do {
            return try await client.withTransaction(logger: logger) { connection in
                waitTime.record(duration: ContinuousClock.now - requested)
                inUse.increment()
                defer { inUse.decrement() }
                return try await body(connection)
            }
        } catch let error as PostgresTransactionError {
            failures.increment()
            if let closureError = error.closureError, error.rollbackError == nil { throw closureError }
            throw error
        } catch {
            failures.increment()
            throw error
        }
    }

    /// Round-trips a trivial query; returns the server's version string.
    public func ping() async throws -> String {
        try await withConnection { connection in
            try await connection.first("SHOW server_version", as: String.self, logger: logger) ?? ""
        }
    }
}
