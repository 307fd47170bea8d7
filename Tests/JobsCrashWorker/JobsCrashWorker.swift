import Foundation
import Jobs
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import Storage
import UnixSignals

// A worker process for the crash campaign and the shutdown test: they SIGKILL or SIGTERM it mid-work and then
// check every job's effect exists exactly once.
//
//   JobsCrashWorker <socket> <database> enqueue <count> <first-attempt-sleep-ms>
//   JobsCrashWorker <socket> <database> work <lease-ms> <shutdown-grace-ms> [--exit-when-drained]

/// The job: wait a while (only on its first attempt, so re-runs after the campaign are quick), then record one
/// execution and its idempotent effect.
struct CrashEffectJob: JobPayload {
    static let kind = "test.crash_effect"
    // Every SIGKILL costs the jobs it held one attempt; the campaign must not exhaust them.
    static let maxAttempts = 1000

    var firstAttemptSleepMilliseconds: Int
}

struct CrashEffectHandler: JobHandler {
    let database: Database

    var options: JobKindOptions { JobKindOptions(concurrency: 16) }

    func run(_ payload: CrashEffectJob, context: JobContext) async throws {
        if context.attempt == 1 && payload.firstAttemptSleepMilliseconds > 0 {
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...payload.firstAttemptSleepMilliseconds)))
        }
        try await database.withConnection { connection in
            try await connection.query(
                "INSERT INTO crash_runs (job_id, attempt) VALUES (\(context.id.rawValue), \(context.attempt))",
                logger: context.logger
            )
            try await connection.query(
                "INSERT INTO crash_effects (job_id) VALUES (\(context.id.rawValue)) ON CONFLICT (job_id) DO NOTHING",
                logger: context.logger
            )
        }
    }
}

/// Ends the process (gracefully) once no job is left unfinished.
struct DrainWatcher: Service {
    let database: Database
    let onDrained: @Sendable () async -> Void

    func run() async throws {
        while !Task.isCancelled {
            let remaining = try await database.withConnection { connection in
                var count = 0
                for try await value in try await connection.query("SELECT count(*) FROM jobs WHERE state <> 'completed'", logger: database.logger)
                    .decode(Int.self)
                {
                    count = value
                }
                return count
            }
            if remaining == 0 {
                await onDrained()
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

struct PoolService: Service {
    let database: Database

    func run() async throws {
        await database.run()
    }
}

enum UsageError: Error, CustomStringConvertible {
    case usage

    var description: String {
        "usage: JobsCrashWorker <socket> <database> enqueue <count> <sleep-ms> | work <lease-ms> <grace-ms> [--exit-when-drained]"
    }
}

@main
enum JobsCrashWorker {
    static func main() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .notice
            return handler
        }
        let logger = Logger(label: "crash-worker")
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard arguments.count >= 5 else { throw UsageError.usage }
        let database = Database(
            configuration: PostgresClient.Configuration(
                unixSocketPath: arguments[0], username: EmbeddedPostgres.username, password: nil, database: arguments[1]
            ),
            poolSize: 8,
            logger: logger,
            metrics: NOOPMetricsHandler.instance
        )
        switch arguments[2] {
        case "enqueue":
            guard let count = Int(arguments[3]), let sleep = Int(arguments[4]) else { throw UsageError.usage }
            try await enqueue(count: count, sleepMilliseconds: sleep, database: database, logger: logger)
        case "work":
            guard let lease = Int(arguments[3]), let grace = Int(arguments[4]) else { throw UsageError.usage }
            try await work(
                leaseMilliseconds: lease, graceMilliseconds: grace, exitWhenDrained: arguments.contains("--exit-when-drained"),
                database: database, logger: logger
            )
        default:
            throw UsageError.usage
        }
    }

    static func enqueue(count: Int, sleepMilliseconds: Int, database: Database, logger: Logger) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            try await database.withTransaction { connection in
                try await connection.query("CREATE TABLE IF NOT EXISTS crash_effects (job_id BIGINT PRIMARY KEY)", logger: logger)
                try await connection.query("CREATE TABLE IF NOT EXISTS crash_runs (job_id BIGINT NOT NULL, attempt INTEGER NOT NULL)", logger: logger)
                try await JobQueue(database: database, logger: logger).enqueueBatch(
                    Array(repeating: CrashEffectJob(firstAttemptSleepMilliseconds: sleepMilliseconds), count: count), on: connection
                )
            }
            group.cancelAll()
        }
    }

    static func work(leaseMilliseconds: Int, graceMilliseconds: Int, exitWhenDrained: Bool, database: Database, logger: Logger) async throws {
        var registry = JobRegistry()
        registry.register(CrashEffectHandler(database: database))
        let alerts = LoggingJobAlertHook(logger: logger)
        let pool = JobWorkerPool(
            registry: registry,
            database: database,
            configuration: JobWorkerConfiguration(
                pollInterval: .milliseconds(200),
                lease: .milliseconds(leaseMilliseconds),
                heartbeatInterval: .milliseconds(max(leaseMilliseconds / 4, 50)),
                shutdownGrace: .milliseconds(graceMilliseconds),
                cancellationGrace: .seconds(1),
                claimBatchSize: 16
            ),
            alertHook: alerts,
            logger: logger
        )
        let rescuer = JobRescuer(database: database, sweepInterval: .milliseconds(250), alertHook: alerts, logger: logger)
        let trigger = ShutdownTrigger()
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: PoolService(database: database)),
            .init(service: rescuer),
            .init(service: pool, successTerminationBehavior: .gracefullyShutdownGroup),
        ]
        if exitWhenDrained {
            services.append(.init(service: DrainWatcher(database: database) { await trigger.fire() }, successTerminationBehavior: .ignore))
        }
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(30)
        let group = ServiceGroup(configuration: configuration)
        await trigger.set(group)
        try await group.run()
        print("worker stopped: \(pool.statistics)")
    }
}

/// Lets the drain watcher, which the group runs, end that same group.
actor ShutdownTrigger {
    private var group: ServiceGroup?

    func set(_ group: ServiceGroup) {
        self.group = group
    }

    func fire() async {
        await group?.triggerGracefulShutdown()
    }
}
