import Jobs
import Logging
import ServiceLifecycle
import Storage
import Synchronization

/// The job engine as wired into TelePay: the process's job queue (handed in, so everything that enqueues
/// shares it), and the services that run jobs (worker pool, rescuer, periodic scheduler).
public struct JobsRuntime: Sendable {
    public let queue: JobQueue
    public let pool: JobWorkerPool
    public let rescuer: JobRescuer
    public let scheduler: PeriodicScheduler

    /// The engine's own housekeeping plus every feature's job kinds and periodic tasks, in the order given.
    /// The scheduler reads `clock` (the sandbox's can be moved forward, and then the missed slots run at once).
    static func build(
        settings: JobsSettings,
        database: Database,
        queue: JobQueue,
        telemetry: Telemetry,
        alertHook: any JobAlertHook,
        contributions: [FeatureContribution],
        clock: any WallClock,
        logger: Logger
    ) throws -> JobsRuntime {
        var registry = JobRegistry()
        registry.register(Housekeeper(database: database, retention: settings.completedRetention))
        var tasks = [try Housekeeper.periodicTask()]
        for contribution in contributions {
            contribution.registerJobs(&registry)
            tasks += contribution.periodicTasks
        }
        let pool = JobWorkerPool(
            registry: registry,
            database: database,
            configuration: JobWorkerConfiguration(
                pollInterval: settings.pollInterval,
                listensForNotifications: settings.listensForNotifications,
                lease: settings.lease,
                heartbeatInterval: settings.heartbeatInterval,
                shutdownGrace: settings.shutdownGrace
            ),
            alertHook: alertHook,
            metrics: telemetry.factory,
            logger: logger
        )
        let rescuer = JobRescuer(
            database: database, sweepInterval: JobsSettings.rescueSweepInterval, alertHook: alertHook,
            metrics: telemetry.factory, logger: logger
        )
        let scheduler = try PeriodicScheduler(tasks: tasks, queue: queue, clock: clock, logger: logger)
        return JobsRuntime(queue: queue, pool: pool, rescuer: rescuer, scheduler: scheduler)
    }
}

/// Opens once the schema is migrated; services that need the schema wait for it.
final class SchemaGate: Sendable {
    private struct State {
        var isOpen = false
        var waiters: [Int: CheckedContinuation<Void, any Error>] = [:]
        var nextID = 0
    }

    private enum WaitDecision {
        case proceed, cancelled, wait
    }

    private let state = Mutex(State())

    func open() {
        let waiters = state.withLock { state in
            state.isOpen = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once open; throws `CancellationError` if the task is cancelled first.
    func wait() async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Decided under the lock, so a cancellation racing with this registration is never missed.
                let decision: WaitDecision = state.withLock { state in
                    if state.isOpen { return .proceed }
                    if Task.isCancelled { return .cancelled }
                    state.waiters[id] = continuation
                    return .wait
                }
                switch decision {
                case .proceed: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .wait: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }
}

/// Runs a service only once the schema is up to date. The group starts every service at once, but workers must
/// not claim from a `jobs` table that a pending migration has yet to create.
struct AfterMigrations<Inner: Service>: Service {
    let gate: SchemaGate
    let inner: Inner

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { [gate] in try await gate.wait() }
        } catch is CancellationError {
            return
        }
        try await inner.run()
    }
}
