import App
import Jobs
import Logging
import Storage

/// Why a one-off database command (`telepay jobs`) cannot run.
public enum DatabaseCommandError: Error, CustomStringConvertible {
    case schemaNotCurrent(pending: [String])

    public var description: String {
        switch self {
        case .schemaNotCurrent(let pending):
            return "the database schema is not up to date (\(pending.count) pending: \(pending.joined(separator: ", "))); run `telepay migrate` first"
        }
    }
}

/// What a one-off command works with: the open database and the process's one job queue.
public struct CommandContext: Sendable {
    public let database: Database
    public let queue: JobQueue
}

/// Opens the configured database for one command, runs `body` while the pool runs, then closes everything
/// (stopping the embedded server if this process started it). Refuses to run on an out-of-date schema.
public func withCurrentDatabase<Value: Sendable>(
    configuration: Configuration,
    logger: Logger,
    _ body: @Sendable (CommandContext) async throws -> Value
) async throws -> Value {
    let migrations = try loadMigrations(configuration: configuration, logger: logger)
    let handle = try await DatabaseHandle.open(configuration: configuration, telemetry: Telemetry(), logger: logger)
    let outcome: Result<Value, any Error> = await withTaskGroup(of: Void.self) { group in
        group.addTask { await handle.database.run() }
        defer { group.cancelAll() }
        do {
            let status = try await migrations.status(on: handle.database)
            guard status.isUpToDate else { throw DatabaseCommandError.schemaNotCurrent(pending: status.pending.map(\.fileName)) }
            // The command's one job queue: whatever it enqueues goes through it.
            let context = CommandContext(database: handle.database, queue: JobQueue(database: handle.database, logger: logger))
            return .success(try await body(context))
        } catch {
            return .failure(error)
        }
    }
    try await handle.embedded?.stop()
    return try outcome.get()
}
