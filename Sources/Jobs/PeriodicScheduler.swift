import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Storage
import Synchronization

/// The current time, injectable so tests can simulate days of slots in milliseconds.
public protocol WallClock: Sendable {
    func now() -> Date
}

/// The system clock.
public struct SystemWallClock: WallClock {
    public init() {}

    public func now() -> Date { Date() }
}

/// What a periodic task does about slots that passed while no TelePay instance was running.
public enum CatchUpPolicy: Sendable, Hashable {
    /// One run stands for the whole missed period: the current slot is enqueued with `coversFrom` set to the start
    /// of the first missed slot, and the job handles everything since then (for sweeps that look at state, not at
    /// the clock).
    case runOnce
    /// A slot first seen more than `tolerance` after its start is dropped; the task runs again at its next slot.
    /// For work that is wrong when late (a digest posted at a fixed hour).
    case skip(tolerance: Duration)
}

/// One run of a periodic task, handed to the job it enqueues.
public struct PeriodicSlot: Codable, Sendable, Hashable {
    public var task: String
    /// Start of this slot, aligned to multiples of the interval since the Unix epoch (UTC).
    public var start: Date
    /// Start of the oldest slot this run stands for; earlier than `start` after downtime under `.runOnce`.
    public var coversFrom: Date
    public var intervalSeconds: Int64

    public var end: Date { start.addingTimeInterval(TimeInterval(intervalSeconds)) }

    /// The job's unique key: "periodic:<task>:<slot start, ISO 8601>".
    public var uniqueKey: String { "periodic:\(task):\(start.formatted(.iso8601))" }
}

/// Why a periodic task cannot be declared.
public enum PeriodicTaskError: Error, Sendable, Hashable, CustomStringConvertible {
    case invalidName(String)
    case invalidInterval(task: String, Duration)
    case duplicateName(String)

    public var description: String {
        switch self {
        case .invalidName(let name):
            return "periodic task name '\(name)' must be 1–64 lowercase letters, digits, '.', '_' or '-', starting with a letter"
        case .invalidInterval(let task, let interval):
            return "periodic task '\(task)': interval \(interval) must be a whole number of seconds, at least one"
        case .duplicateName(let name):
            return "periodic task '\(name)' is declared twice"
        }
    }
}

/// A task that runs once per slot of a fixed interval, by enqueueing a job for each due slot.
public struct PeriodicTask: Sendable {
    public let name: String
    public let intervalSeconds: Int64
    public let catchUp: CatchUpPolicy
    let enqueue: @Sendable (PeriodicSlot, JobTransaction) async throws -> EnqueueResult

    /// Declares a task; `job` builds the payload for a slot. Write the catch-up policy here, next to the task,
    /// with the reason it is right for this work.
    public init<Payload: JobPayload>(
        _ name: String,
        every interval: Duration,
        catchUp: CatchUpPolicy,
        job: @escaping @Sendable (PeriodicSlot) -> Payload
    ) throws(PeriodicTaskError) {
        guard JobKindName.isValid(name) else { throw .invalidName(name) }
        let parts = interval.components
        guard parts.attoseconds == 0, parts.seconds >= 1 else { throw .invalidInterval(task: name, interval) }
        self.name = name
        self.intervalSeconds = parts.seconds
        self.catchUp = catchUp
        self.enqueue = { slot, transaction in
            try await transaction.enqueue(job(slot), options: JobOptions(uniqueKey: slot.uniqueKey))
        }
    }
}

/// Which slot, if any, a task should enqueue now. Pure, so the policies are tested without a database.
public enum SlotPlanner {
    /// A slot to enqueue: its start and the start of the oldest slot it stands for (Unix seconds).
    public struct Plan: Sendable, Hashable {
        public var start: Int64
        public var coversFrom: Int64
    }

    /// - Parameters:
    ///   - lastStart: start of the newest slot already enqueued for the task, by any instance, if any.
    ///   - now: the current time in Unix seconds.
    public static func plan(intervalSeconds: Int64, catchUp: CatchUpPolicy, lastStart: Int64?, now: Int64) -> Plan? {
        let current = floorDiv(now, intervalSeconds) * intervalSeconds
        if let lastStart, lastStart >= current { return nil }
        switch catchUp {
        case .runOnce:
            let firstMissed = lastStart.map { $0 + intervalSeconds } ?? current
            return Plan(start: current, coversFrom: min(firstMissed, current))
        case .skip(let tolerance):
            guard now - current <= tolerance.components.seconds else { return nil }
            return Plan(start: current, coversFrom: current)
        }
    }

    /// The first slot boundary after `now`: nothing can become due before it.
    public static func nextBoundary(after now: Int64, intervalSeconds: Int64) -> Int64 {
        (floorDiv(now, intervalSeconds) + 1) * intervalSeconds
    }

    static func floorDiv(_ value: Int64, _ divisor: Int64) -> Int64 {
        let quotient = value / divisor
        return (value % divisor != 0 && (value < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

/// Enqueues each due slot of its tasks exactly once across all TelePay instances.
///
/// Per task and slot, one transaction takes a per-task advisory lock, reads the newest recorded slot, applies the
/// catch-up policy and writes the job together with its `periodic_slots` row. The lock and the slot table (not
/// the job's unique key alone, which frees up once the job completes) are what keep two instances from enqueueing
/// the same slot twice.
public final class PeriodicScheduler: Service, Sendable {
    public let tasks: [PeriodicTask]
    let queue: JobQueue
    let clock: any WallClock
    let tickInterval: Duration
    let logger: Logger
    /// Per task, the Unix second before which nothing new can be due; saves a transaction per task per tick.
    private let nextCheck = Mutex<[String: Int64]>([:])

    public init(
        tasks: [PeriodicTask],
        queue: JobQueue,
        clock: any WallClock = SystemWallClock(),
        tickInterval: Duration = .seconds(1),
        logger: Logger
    ) throws(PeriodicTaskError) {
        var seen = Set<String>()
        for task in tasks where !seen.insert(task.name).inserted { throw .duplicateName(task.name) }
        self.tasks = tasks
        self.queue = queue
        self.clock = clock
        self.tickInterval = tickInterval
        self.logger = logger
    }

    public func run() async throws {
        guard !tasks.isEmpty else {
            try? await gracefulShutdown()
            return
        }
        logger.info("periodic scheduler started", metadata: ["tasks": "\(tasks.map(\.name).joined(separator: ","))"])
        repeat {
            await enqueueDueSlots()
        } while await sleepUnlessShuttingDown(for: tickInterval)
    }

    /// Enqueues every task's due slot (if any) at the clock's current time; returns the slots this call enqueued.
    /// A task whose transaction fails is logged and tried again at the next tick.
    @discardableResult
    public func enqueueDueSlots() async -> [PeriodicSlot] {
        let now = Int64(clock.now().timeIntervalSince1970.rounded(.down))
        var enqueued: [PeriodicSlot] = []
        for task in tasks {
            if let next = nextCheck.withLock({ $0[task.name] }), now < next { continue }
            do {
                if let slot = try await enqueueDueSlot(of: task, now: now) { enqueued.append(slot) }
                nextCheck.withLock { $0[task.name] = SlotPlanner.nextBoundary(after: now, intervalSeconds: task.intervalSeconds) }
            } catch {
                logger.warning(
                    "enqueueing a periodic slot failed; retrying at the next tick",
                    metadata: [
                        "task": "\(task.name)", "error": "\(String(reflecting: error))",
                    ])
            }
        }
        return enqueued
    }

    private func enqueueDueSlot(of task: PeriodicTask, now: Int64) async throws -> PeriodicSlot? {
        let logger = self.logger
        return try await queue.transaction { transaction in
            let connection = transaction.connection
            try await PeriodicSlotStore.lockTask(task.name, on: connection, logger: logger)
            let lastStart = try await PeriodicSlotStore.lastStart(of: task.name, on: connection, logger: logger)
            guard let plan = SlotPlanner.plan(intervalSeconds: task.intervalSeconds, catchUp: task.catchUp, lastStart: lastStart, now: now) else {
                return nil
            }
            let slot = PeriodicSlot(
                task: task.name,
                start: Date(timeIntervalSince1970: TimeInterval(plan.start)),
                coversFrom: Date(timeIntervalSince1970: TimeInterval(plan.coversFrom)),
                intervalSeconds: task.intervalSeconds
            )
            let result = try await task.enqueue(slot, transaction)
            try await PeriodicSlotStore.insert(slot, jobID: result.enqueuedID, on: connection, logger: logger)
            if plan.coversFrom < plan.start {
                logger.notice(
                    "periodic task catching up: one run covers the missed slots",
                    metadata: [
                        "task": "\(task.name)", "covers_from": "\(slot.coversFrom.formatted(.iso8601))", "slot": "\(slot.start.formatted(.iso8601))",
                    ])
            }
            return slot
        }
    }
}
