import Foundation
import Logging
import PostgresNIO

/// Why a configured database cannot be used at start-up.
public enum DatabaseStartupError: Error, Sendable, CustomStringConvertible {
    /// The server answered and refused us for a reason retrying cannot fix (wrong password, unknown role or
    /// database). `serverMessage` is the server's own sentence.
    case refusedByServer(sqlState: String, serverMessage: String, location: String)
    /// The server could not be reached within the start-up bound.
    case unreachable(location: String, waited: Duration, lastError: String)

    public var description: String {
        switch self {
        case .refusedByServer(let sqlState, let message, let location):
            return "the database server at \(location) refused the connection: \(message) (SQLSTATE \(sqlState)); check DATABASE_URL"
        case .unreachable(let location, let waited, let lastError):
            return "the database at \(location) was not reachable within \(waited.components.seconds) s (last error: \(lastError)); "
                + "check that it is up and DATABASE_URL, or raise TELEPAY_DATABASE_CONNECT_TIMEOUT_SECONDS"
        }
    }

    /// A configuration problem (exit 2), as opposed to an outage that may pass.
    public var isConfigurationProblem: Bool {
        if case .refusedByServer = self { return true }
        return false
    }
}

/// Opens one connection before the pool starts, so start-up (and `doctor`) can tell a configuration mistake
/// from an outage: the pool itself retries every failure forever and logs it only at debug level.
public enum DatabaseReachability {
    /// SQLSTATE classes and codes that retrying cannot fix: 28 (invalid authorization: unknown role,
    /// wrong password, no pg_hba entry) and 3D000 (no such database).
    static func isDefinitive(sqlState: String) -> Bool {
        sqlState.hasPrefix("28") || sqlState == "3D000"
    }

    /// Connects once; on a transient failure (refused, timed out, server starting) waits and tries again,
    /// with a warning each time, until `timeout` has passed. Cancellation stops it at once.
    public static func waitUntilReachable(
        _ configuration: PostgresConnection.Configuration, location: String, timeout: Duration, logger: Logger
    ) async throws {
        let started = ContinuousClock.now
        var attempt = 0
        while true {
            attempt += 1
            do {
                let connection = try await connectOnce(configuration, location: location, logger: logger)
                try? await connection.close()
                if attempt > 1 { logger.notice("database reachable", metadata: ["database": "\(location)", "attempts": "\(attempt)"]) }
                return
            } catch let error as DatabaseStartupError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                let cause = describe(error)
                let waited = ContinuousClock.now - started
                guard waited < timeout else {
                    throw DatabaseStartupError.unreachable(location: location, waited: timeout, lastError: cause)
                }
                let pause = min(Duration.seconds(1) * Int(min(attempt, 5)), timeout - waited)
                logger.warning(
                    "database not reachable yet; retrying",
                    metadata: [
                        "database": "\(location)", "error": "\(cause)", "attempt": "\(attempt)",
                        "retry_in_ms": "\(pause.components.seconds * 1000 + pause.components.attoseconds / 1_000_000_000_000_000)",
                        "gives_up_after_s": "\(timeout.components.seconds)",
                    ])
                try await Task.sleep(for: pause)
            }
        }
    }

    static func connectOnce(_ configuration: PostgresConnection.Configuration, location: String, logger: Logger) async throws -> PostgresConnection {
        var configuration = configuration
        configuration.options.connectTimeout = .seconds(5)
        do {
            return try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
        } catch let error as PSQLError {
            if error.code == .server, let state = error.serverInfo?[.sqlState], isDefinitive(sqlState: state) {
                throw DatabaseStartupError.refusedByServer(
                    sqlState: state, serverMessage: error.serverInfo?[.message] ?? "no message", location: location)
            }
            throw error
        }
    }

    /// A short cause for a log line or an error: the server's message when it sent one, else the error.
    public static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        return "\(error)"
    }
}
