import Foundation
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import Storage
import Synchronization

/// How a worker pool claims, holds and gives back jobs.
public struct JobWorkerConfiguration: Sendable {
    /// Recorded in `jobs.attempted_by`; tells operators which process held a job.
    public var workerID: String
    /// How often the pool looks for jobs without being notified. NOTIFY can be lost (listener reconnecting,
    /// notifications disabled), and scheduled or backed-off jobs become due without any notification.
    public var pollInterval: Duration
    /// Wake on `LISTEN telepay_jobs` as soon as a job is committed; when false the pool relies on polling alone.
    public var listensForNotifications: Bool
    /// How long a claimed job stays reserved without a heartbeat. After it expires the rescuer gives the job to
    /// another worker, so the worst-case rescue time is about `lease` + the rescuer's sweep interval.
    public var lease: Duration
    /// How often held leases are renewed; keep it well under `lease`.
    public var heartbeatInterval: Duration
    /// On shutdown, how long running jobs may finish before they are cancelled and given back.
    public var shutdownGrace: Duration
    /// After cancelling them, how long to wait for handlers to return before giving their jobs back regardless.
    public var cancellationGrace: Duration
    /// Most jobs of one kind claimed by one query.
    public var claimBatchSize: Int
    /// Most outcomes written by one statement group.
    public var outcomeBatchSize: Int

    public init(
        workerID: String = JobWorkerConfiguration.defaultWorkerID(),
        pollInterval: Duration = .seconds(1),
        listensForNotifications: Bool = true,
        lease: Duration = .seconds(15),
        heartbeatInterval: Duration = .seconds(5),
        shutdownGrace: Duration = .seconds(10),
        cancellationGrace: Duration = .seconds(2),
        claimBatchSize: Int = 200,
        outcomeBatchSize: Int = 2000
    ) {
        precondition(pollInterval > .zero && lease > .zero && heartbeatInterval > .zero, "intervals must be positive")
        precondition(claimBatchSize >= 1 && outcomeBatchSize >= 1, "batch sizes must be at least 1")
        self.workerID = workerID
        self.pollInterval = pollInterval
        self.listensForNotifications = listensForNotifications
        self.lease = lease
        self.heartbeatInterval = heartbeatInterval
        self.shutdownGrace = shutdownGrace
        self.cancellationGrace = cancellationGrace
        self.claimBatchSize = claimBatchSize
        self.outcomeBatchSize = outcomeBatchSize
    }

    /// `host:pid:random`, unique per process start.
    public static func defaultWorkerID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        return "\(host):\(ProcessInfo.processInfo.processIdentifier):\(UInt16.random(in: .min ... .max))"
    }
}

/// Counts since the pool started, for tests, the benchmark and logs.
public struct JobWorkerStatistics: Sendable, Hashable {
    public var claimed = 0
    public var succeeded = 0
    public var retried = 0
    public var failed = 0
    public var released = 0
    /// Outcomes the database refused because the attempt had been rescued (fencing at work).
    public var staleWrites = 0
    /// Jobs claimed whose outcome is not written yet.
    public var held = 0
}

/// Runs registered job kinds: claims batches with `FOR UPDATE SKIP LOCKED`, runs each job in its own task within
/// its kind's concurrency, renews leases, and writes outcomes in batches, fenced by attempt.
///
/// As a `Service` it stops claiming on graceful shutdown, lets running jobs finish for `shutdownGrace`, then
/// cancels them and gives back what is still unfinished, so nothing waits for a lease to expire.
public final class JobWorkerPool: Service, Sendable {
    public let configuration: JobWorkerConfiguration
    let registry: JobRegistry
    let database: Database
    let metrics: JobMetrics
    let alertHook: any JobAlertHook
    let logger: Logger

    private let state = Mutex(PoolState())
    private let fetchWake = Wakeup()
    private let outcomeWake = Wakeup()
    private let drainWake = Wakeup()

    public convenience init(
        registry: JobRegistry,
        database: Database,
        configuration: JobWorkerConfiguration = JobWorkerConfiguration(),
        alertHook: any JobAlertHook,
        metrics: any MetricsFactory = NOOPMetricsHandler.instance,
        logger: Logger
    ) {
        self.init(
            registry: registry, database: database, configuration: configuration, alertHook: alertHook,
            metrics: JobMetrics(factory: metrics), logger: logger
        )
    }

    init(
        registry: JobRegistry,
        database: Database,
        configuration: JobWorkerConfiguration,
        alertHook: any JobAlertHook,
        metrics: JobMetrics,
        logger: Logger
    ) {
        self.registry = registry
        self.database = database
        self.configuration = configuration
        self.alertHook = alertHook
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "worker"] = "\(configuration.workerID)"
        self.logger = logger
        state.withLock { state in
            for kind in registry.kinds { state.running[kind] = 0 }
        }
    }

    public var statistics: JobWorkerStatistics {
        state.withLock { state in
            var statistics = state.statistics
            statistics.held = state.held.count
            return statistics
        }
    }

    /// Whether the notification listener is subscribed right now.
    var isListening: Bool { state.withLock { $0.listening } }

    /// Stops claiming and starts the shutdown sequence; `run()` returns once it completes.
    public func beginShutdown() {
        state.withLock { $0.stopping = true }
        fetchWake.signal()
    }

    public func run() async throws {
        guard !registry.kinds.isEmpty else {
            logger.info("no job kinds registered; the worker pool has nothing to run")
            try? await gracefulShutdown()
            return
        }
        logger.info(
            "job worker pool started",
            metadata: [
                "kinds": "\(registry.kinds.joined(separator: ","))", "listen": "\(configuration.listensForNotifications)",
            ])
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { helpers in
                helpers.addTask { await self.heartbeatLoop() }
                helpers.addTask { await self.pollTicker() }
                if configuration.listensForNotifications {
                    helpers.addTask { await self.listenLoop() }
                }
                async let outcomesWritten: Void = outcomeLoop()
                await withTaskCancellationHandler {
                    await fetchLoop()
                } onCancel: {
                    self.beginShutdown()
                }
                await drainHandlers()
                state.withLock { $0.handlersDrained = true }
                outcomeWake.signal()
                await outcomesWritten
                helpers.cancelAll()
            }
        } onGracefulShutdown: {
            self.beginShutdown()
        }
        let statistics = self.statistics
        logger.info(
            "job worker pool stopped",
            metadata: [
                "succeeded": "\(statistics.succeeded)", "released": "\(statistics.released)", "unwritten": "\(statistics.held)",
            ])
    }

    // MARK: Claiming

    private func fetchLoop() async {
        var failures = 0
        while true {
            let wanted: [(kind: String, count: Int)] = state.withLock { state in
                guard !state.stopping else { return [] }
                return registry.entries.values.compactMap { entry in
                    let free = entry.options.concurrency - (state.running[entry.kind] ?? 0)
                    return free > 0 ? (entry.kind, min(free, configuration.claimBatchSize)) : nil
                }
            }
            if state.withLock({ $0.stopping }) { return }
            if wanted.isEmpty {
                await fetchWake.wait()
                continue
            }
            let claimed: [ClaimedJob]
            do {
                claimed = try await database.withConnection { connection in
                    try await JobStore.claim(
                        wanted: wanted, workerID: configuration.workerID, lease: configuration.lease,
                        on: connection, logger: logger
                    )
                }
                failures = 0
            } catch {
                failures += 1
                logger.warning("claiming jobs failed", metadata: ["error": "\(String(reflecting: error))", "failures": "\(failures)"])
                await fetchWake.wait(upTo: min(configuration.pollInterval, .milliseconds(100 * min(failures, 50))))
                continue
            }
            var claimedPerKind: [String: Int] = [:]
            for job in claimed {
                claimedPerKind[job.kind, default: 0] += 1
                start(job)
            }
            let mayHaveMore = state.withLock { state in
                var more = false
                for (kind, count) in wanted {
                    let full = (claimedPerKind[kind] ?? 0) >= count
                    state.backlogged[kind] = full
                    if let entry = registry.entry(kind), full, (state.running[kind] ?? 0) < entry.options.concurrency {
                        more = true
                    }
                }
                return more
            }
            if !mayHaveMore {
                await fetchWake.wait()
            }
        }
    }

    private func start(_ job: ClaimedJob) {
        guard let entry = registry.entry(job.kind) else { return }
        var jobLogger = logger
        jobLogger[metadataKey: "job_id"] = "\(job.id)"
        jobLogger[metadataKey: "job_kind"] = "\(job.kind)"
        jobLogger[metadataKey: "attempt"] = "\(job.attempt)"
        let lease = LeaseFlag()
        let context = JobContext(
            id: job.id, kind: job.kind, attempt: job.attempt, maxAttempts: job.maxAttempts,
            enqueuedAt: job.createdAt, scheduledAt: job.runAt, logger: jobLogger, lease: lease
        )
        let kindMetrics = metrics.kind(job.kind)
        kindMetrics.started.increment()
        kindMetrics.pickupLatency.record(duration: job.pickupLatency)
        // The entry exists before the task does, so a handler that finishes at once always finds it.
        state.withLock { state in
            state.held[job.id] = HeldJob(attempt: job.attempt, kind: job.kind, lease: lease)
            state.running[job.kind, default: 0] += 1
            state.statistics.claimed += 1
        }
        let task = Task {
            await self.execute(job, entry: entry, context: context, metrics: kindMetrics)
        }
        state.withLock { state in
            state.held[job.id]?.task = task
        }
    }

    private func execute(_ job: ClaimedJob, entry: JobRegistry.Entry, context: JobContext, metrics: JobMetrics.Kind) async {
        let started = ContinuousClock.now
        let outcome: AttemptOutcome
        do {
            try await entry.run(job.payload, context)
            outcome = .succeeded
        } catch {
            if state.withLock({ $0.cancellingHandlers }) && Task.isCancelled {
                outcome = .released
            } else {
                outcome = Self.outcome(
                    of: error, class: entry.classify(error), attempt: job.attempt, maxAttempts: job.maxAttempts,
                    retry: entry.options.retry
                )
            }
        }
        metrics.runDuration.record(duration: ContinuousClock.now - started)
        finish(job.id, attempt: job.attempt, kind: job.kind, outcome: outcome)
    }

    static func outcome(of error: any Error, class errorClass: JobErrorClass, attempt: Int, maxAttempts: Int, retry: RetryPolicy) -> AttemptOutcome {
        let message = String(describing: error)
        switch errorClass {
        case .permanent:
            return .failed(error: message, permanent: true)
        case .retryable where attempt >= maxAttempts:
            return .failed(error: message, permanent: false)
        case .retryable:
            var generator = SystemRandomNumberGenerator()
            return .retry(after: retry.delay(afterAttempt: attempt, using: &generator), error: message)
        }
    }

    /// Queues a handler's outcome for writing and frees its concurrency slot.
    private func finish(_ id: JobID, attempt: Int, kind: String, outcome: AttemptOutcome) {
        let wakeFetcher: Bool = state.withLock { state in
            // An abandoned job's outcome was already decided (released) when the pool stopped waiting for it.
            guard var held = state.held[id], held.attempt == attempt, !held.abandoned else { return false }
            held.handlerFinished = true
            state.held[id] = held
            state.running[kind, default: 1] -= 1
            state.pendingOutcomes.append(PendingOutcome(id: id, attempt: attempt, kind: kind, outcome: outcome))
            if state.running.values.allSatisfy({ $0 == 0 }) { drainWake.signal() }
            guard state.backlogged[kind] == true, let entry = registry.entry(kind) else { return false }
            // Refill once a useful share of the slots is free, so one finished job does not cost one claim query.
            let free = entry.options.concurrency - (state.running[kind] ?? 0)
            return free >= max(1, min(entry.options.concurrency, configuration.claimBatchSize) / 2)
        }
        outcomeWake.signal()
        if wakeFetcher { fetchWake.signal() }
    }

    // MARK: Writing outcomes

    private func outcomeLoop() async {
        var failures = 0
        while true {
            let batch: [PendingOutcome] = state.withLock { state in
                let count = min(state.pendingOutcomes.count, configuration.outcomeBatchSize)
                let batch = Array(state.pendingOutcomes.prefix(count))
                state.pendingOutcomes.removeFirst(count)
                return batch
            }
            if batch.isEmpty {
                if state.withLock({ $0.handlersDrained && $0.pendingOutcomes.isEmpty }) { return }
                await outcomeWake.wait()
                continue
            }
            do {
                // Not cancelled with the pool: the final write at shutdown (releases) must still reach the database.
                let result = try await Task {
                    try await self.write(batch)
                }.value
                failures = 0
                await account(batch, applied: result.applied, failed: result.failed)
            } catch {
                failures += 1
                logger.warning("writing job outcomes failed", metadata: ["error": "\(String(reflecting: error))", "count": "\(batch.count)"])
                let givingUp = state.withLock { $0.handlersDrained } && failures >= 3
                if givingUp {
                    // Leaving them unwritten loses nothing: their leases expire and the rescuer hands them out again.
                    logger.error(
                        "giving up on job outcomes at shutdown; the jobs will be rescued when their leases expire",
                        metadata: ["count": "\(batch.count)"])
                    state.withLock { state in
                        for outcome in batch { state.held[outcome.id] = nil }
                    }
                    continue
                }
                state.withLock { $0.pendingOutcomes.insert(contentsOf: batch, at: 0) }
                try? await Task.sleep(for: .milliseconds(100 * min(failures, 50)))
            }
        }
    }

    private func write(_ batch: [PendingOutcome]) async throws -> (applied: Set<JobID>, failed: [FailedRow]) {
        let outcomes = batch.map { (id: $0.id, attempt: $0.attempt, outcome: $0.outcome) }
        let categories = Set(batch.map(\.outcome.category)).count
        if categories == 1 {
            return try await database.withConnection { connection in
                try await JobStore.record(outcomes, on: connection, logger: logger)
            }
        }
        return try await database.withTransaction { connection in
            try await JobStore.record(outcomes, on: connection, logger: logger)
        }
    }

    private func account(_ batch: [PendingOutcome], applied: Set<JobID>, failed: [FailedRow]) async {
        let stale: [PendingOutcome] = state.withLock { state in
            var stale: [PendingOutcome] = []
            for outcome in batch {
                if state.held[outcome.id]?.attempt == outcome.attempt { state.held[outcome.id] = nil }
                guard applied.contains(outcome.id) else {
                    stale.append(outcome)
                    state.statistics.staleWrites += 1
                    continue
                }
                switch outcome.outcome {
                case .succeeded: state.statistics.succeeded += 1
                case .retry: state.statistics.retried += 1
                case .failed: state.statistics.failed += 1
                case .released: state.statistics.released += 1
                }
            }
            return stale
        }
        for outcome in batch where applied.contains(outcome.id) {
            let kindMetrics = metrics.kind(outcome.kind)
            switch outcome.outcome {
            case .succeeded: kindMetrics.succeeded.increment()
            case .retry: kindMetrics.retried.increment()
            case .failed: kindMetrics.failed.increment()
            case .released: break
            }
        }
        for outcome in stale {
            metrics.staleWrites.increment()
            logger.warning(
                "outcome ignored: the job was rescued after this worker's lease expired, and belongs to a later attempt now",
                metadata: [
                    "job_id": "\(outcome.id)", "job_kind": "\(outcome.kind)", "attempt": "\(outcome.attempt)",
                    "outcome": "\(outcome.outcome.category)",
                ])
        }
        let permanent = Dictionary(batch.map { ($0.id, $0.outcome.isPermanentFailure) }, uniquingKeysWith: { first, _ in first })
        for row in failed {
            await alertHook.jobFailed(
                FailedJob(
                    id: row.id, kind: row.kind, attempt: row.attempt, maxAttempts: row.maxAttempts, error: row.error,
                    reason: permanent[row.id] == true ? .permanentError : .attemptsExhausted
                ))
        }
        if state.withLock({ $0.handlersDrained }) { drainWake.signal() }
    }

    // MARK: Leases

    private func heartbeatLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.heartbeatInterval)
            if Task.isCancelled { return }
            let held: [(id: JobID, attempt: Int)] = state.withLock { state in
                state.held.compactMap { $0.value.abandoned ? nil : (id: $0.key, attempt: $0.value.attempt) }
            }
            guard !held.isEmpty else { continue }
            do {
                let alive = try await database.withConnection { connection in
                    try await JobStore.heartbeat(held, lease: configuration.lease, on: connection, logger: logger)
                }
                let lost: [(JobID, Int)] = state.withLock { state in
                    held.compactMap { job in
                        guard !alive.contains(job.id), let current = state.held[job.id], current.attempt == job.attempt,
                            !current.lease.isLost, !current.handlerFinished
                        else { return nil }
                        current.lease.markLost()
                        return (job.id, job.attempt)
                    }
                }
                for (id, attempt) in lost {
                    logger.warning(
                        "lease lost: the job was rescued while this worker still ran it",
                        metadata: [
                            "job_id": "\(id)", "attempt": "\(attempt)",
                        ])
                }
            } catch {
                logger.warning("renewing job leases failed", metadata: ["error": "\(String(reflecting: error))", "held": "\(held.count)"])
            }
        }
    }

    // MARK: Wake-ups

    private func pollTicker() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.pollInterval)
            fetchWake.signal()
        }
    }

    private func listenLoop() async {
        let kinds = Set(registry.kinds)
        var failures = 0
        while !Task.isCancelled {
            do {
                try await database.withConnection { connection in
                    try await connection.listen(on: JobStore.notificationChannel) { notifications in
                        failures = 0
                        state.withLock { $0.listening = true }
                        defer { state.withLock { $0.listening = false } }
                        // Jobs committed while the listener was down sent their notifications to nobody.
                        fetchWake.signal()
                        for try await notification in notifications where kinds.contains(notification.payload) {
                            fetchWake.signal()
                        }
                    }
                }
                // The stream ended without an error (the connection went away quietly): subscribe again, unhurried.
                try? await Task.sleep(for: .milliseconds(200))
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.warning(
                    "job notification listener failed; polling continues meanwhile",
                    metadata: [
                        "error": "\(String(reflecting: error))", "failures": "\(failures)",
                    ])
                try? await Task.sleep(for: .milliseconds(200 * min(failures, 25)))
            }
        }
    }

    // MARK: Shutdown

    private func drainHandlers() async {
        let deadline = ContinuousClock.now + configuration.shutdownGrace
        while !Task.isCancelled, ContinuousClock.now < deadline, state.withLock({ $0.runningCount > 0 }) {
            await drainWake.wait(upTo: deadline - ContinuousClock.now)
        }
        let toCancel: [Task<Void, Never>] = state.withLock { state in
            state.cancellingHandlers = true
            return state.held.values.filter { !$0.handlerFinished }.compactMap(\.task)
        }
        guard !toCancel.isEmpty else { return }
        logger.notice("cancelling jobs still running at the end of the shutdown grace period", metadata: ["count": "\(toCancel.count)"])
        for task in toCancel { task.cancel() }
        let cancelDeadline = ContinuousClock.now + configuration.cancellationGrace
        while ContinuousClock.now < cancelDeadline, state.withLock({ $0.runningCount > 0 }) {
            await drainWake.wait(upTo: cancelDeadline - ContinuousClock.now)
            if Task.isCancelled { break }
        }
        let abandoned: Int = state.withLock { state in
            var abandoned = 0
            for (id, held) in state.held where !held.handlerFinished {
                state.held[id]?.abandoned = true
                state.running[held.kind, default: 1] -= 1
                state.pendingOutcomes.append(PendingOutcome(id: id, attempt: held.attempt, kind: held.kind, outcome: .released))
                abandoned += 1
            }
            return abandoned
        }
        if abandoned > 0 {
            logger.warning("handlers ignored cancellation; their jobs are given back while they still run", metadata: ["count": "\(abandoned)"])
            outcomeWake.signal()
        }
    }
}

private struct HeldJob {
    var attempt: Int
    var kind: String
    var lease: LeaseFlag
    var task: Task<Void, Never>?
    var handlerFinished = false
    var abandoned = false
}

private struct PendingOutcome: Sendable {
    var id: JobID
    var attempt: Int
    var kind: String
    var outcome: AttemptOutcome
}

private struct PoolState {
    var running: [String: Int] = [:]
    var held: [JobID: HeldJob] = [:]
    var pendingOutcomes: [PendingOutcome] = []
    /// Per kind: the last claim filled every slot it asked for, so more jobs are probably waiting.
    var backlogged: [String: Bool] = [:]
    var stopping = false
    var listening = false
    var cancellingHandlers = false
    var handlersDrained = false
    var statistics = JobWorkerStatistics()

    var runningCount: Int { running.values.reduce(0, +) }
}

extension AttemptOutcome {
    var category: String {
        switch self {
        case .succeeded: return "succeeded"
        case .retry: return "retry"
        case .failed: return "failed"
        case .released: return "released"
        }
    }

    var isPermanentFailure: Bool {
        if case .failed(_, let permanent) = self { return permanent }
        return false
    }
}
