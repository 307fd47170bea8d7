import Foundation
import Jobs
import Logging

/// Sends one message to one person. The Telegram side lives in the bot; this target knows only outcomes.
public protocol BroadcastDelivery: Sendable {
    func deliver(_ text: String, to userID: Int64) async -> DeliveryOutcome
}

/// Shows the author how the broadcast is going (the progress message, then the final report).
public protocol BroadcastProgressDisplay: Sendable {
    func show(_ progress: BroadcastProgress) async
}

/// Settings of the sender.
public struct BroadcastSenderSettings: Sendable, Hashable {
    /// Sends in flight at once per broadcast. Enough to keep Telegram's 30 messages a second busy across
    /// round trips; it is also the most recipients a crash can make receive the message twice.
    public var concurrency: Int
    /// How often the progress message is redrawn while sending.
    public var progressInterval: Duration
    /// Tries per recipient for errors that may pass (server, network, long flood waits).
    public var attemptsPerRecipient: Int

    public init(concurrency: Int = 8, progressInterval: Duration = .seconds(3), attemptsPerRecipient: Int = 3) {
        precondition(concurrency >= 1 && attemptsPerRecipient >= 1)
        self.concurrency = concurrency
        self.progressInterval = progressInterval
        self.attemptsPerRecipient = attemptsPerRecipient
    }
}

/// Runs one broadcast's sends.
public struct RunBroadcastJob: JobPayload {
    public static let kind = "broadcasts.run"
    /// A run ends early only when the process stops or the lease is lost; each such end is an attempt.
    public static let maxAttempts = 1000

    public var broadcastID: Int64

    public init(broadcastID: Int64) {
        self.broadcastID = broadcastID
    }

    /// One run per broadcast waits or runs at a time.
    public var uniqueKey: String { "broadcast:\(broadcastID)" }
}

/// The durable sender. A run works through the broadcast's pending recipients with `concurrency` sends in
/// flight, each claimed in the database (committed as "sending") before Telegram is called and recorded
/// after. It stops claiming when the broadcast is paused or cancelled, redraws the author's progress message
/// every `progressInterval`, and finishes the broadcast with a final report when no one is left.
///
/// Guarantees: every recipient is sent to at most once, except those whose send was in flight when a run
/// died (at most `concurrency` per run): the next run finds them still "sending", sends again and counts
/// them in `resent_after_restart`. A run cut short by shutdown or a lost lease fails its attempt as
/// retryable, so the job runs again; `BroadcastResumeScan` re-enqueues any running broadcast without a run.
public struct BroadcastSender: JobHandler {
    public let store: BroadcastStore
    public let delivery: any BroadcastDelivery
    public let display: any BroadcastProgressDisplay
    public let settings: BroadcastSenderSettings

    public init(
        store: BroadcastStore, delivery: any BroadcastDelivery, display: any BroadcastProgressDisplay,
        settings: BroadcastSenderSettings = BroadcastSenderSettings()
    ) {
        self.store = store
        self.delivery = delivery
        self.display = display
        self.settings = settings
    }

    /// Broadcasts share Telegram's overall rate, so running many at once only splits it.
    public var options: JobKindOptions { JobKindOptions(concurrency: 2) }

    public func run(_ payload: RunBroadcastJob, context: JobContext) async throws {
        let outcome = try await send(payload.broadcastID, logger: context.logger, shouldStop: { context.leaseLost })
        if outcome == .running {
            throw JobFailure.retryable("broadcast \(payload.broadcastID) interrupted; the next run resumes it")
        }
    }

    /// Works through the broadcast until it is finished, paused or cancelled (the status returned), or
    /// until the task is cancelled or `shouldStop` says so (returns `.running`: another run must resume it).
    public func send(_ id: Int64, logger: Logger, shouldStop: @escaping @Sendable () -> Bool = { false }) async throws -> BroadcastStatus? {
        let reclaimed = try await store.reclaimInFlight(id)
        if reclaimed > 0 {
            logger.warning(
                "broadcast resumed after a run stopped mid-send; these recipients may get it twice",
                metadata: [
                    "broadcast_id": "\(id)", "resent": "\(reclaimed)",
                ])
        }
        let started = ContinuousClock.now
        let doneAtStart = try await store.counts(id).done
        while true {
            guard let broadcast = try await store.broadcast(id) else { return nil }
            guard broadcast.status == .running else {
                await show(broadcast, started: started, doneAtStart: doneAtStart)
                return broadcast.status
            }
            let claimed = try await sendAll(broadcast, shouldStop: shouldStop, logger: logger, started: started, doneAtStart: doneAtStart)
            if try await store.finishIfDone(id) {
                if let finished = try await store.broadcast(id) { await show(finished, started: started, doneAtStart: doneAtStart) }
                logger.info("broadcast finished", metadata: ["broadcast_id": "\(id)"])
                return .finished
            }
            // Nothing to claim yet not done: the rest is in flight in another run (one whose lease was lost);
            // a later run takes over what it leaves.
            if Task.isCancelled || shouldStop() { return .running }
            if claimed == 0, try await store.broadcast(id)?.status == .running { return .running }
            // Paused or cancelled meanwhile (the next turn shows it and ends), or resumed while this run was
            // stopping (it carries on).
        }
    }

    /// Sends until nothing is left to claim, with the progress message redrawn on the side; returns how
    /// many sends it claimed.
    private func sendAll(
        _ broadcast: Broadcast, shouldStop: @escaping @Sendable () -> Bool, logger: Logger, started: ContinuousClock.Instant, doneAtStart: Int
    ) async throws -> Int {
        let progress = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: settings.progressInterval)
                guard !Task.isCancelled, let current = try? await store.broadcast(broadcast.id), current.status == .running else { continue }
                await show(current, started: started, doneAtStart: doneAtStart)
            }
        }
        defer { progress.cancel() }
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<settings.concurrency {
                group.addTask { try await sendLoop(broadcast, shouldStop: shouldStop, logger: logger) }
            }
            return try await group.reduce(0, +)
        }
    }

    private func sendLoop(_ broadcast: Broadcast, shouldStop: @Sendable () -> Bool, logger: Logger) async throws -> Int {
        var claimed = 0
        while !Task.isCancelled && !shouldStop() {
            guard let (user, attempts) = try await store.claimNext(broadcast.id) else { break }
            claimed += 1
            switch await delivery.deliver(broadcast.text, to: user) {
            case .sent:
                try await store.record(broadcast.id, user: user, status: .sent, reason: nil)
            case .blocked:
                try await store.record(broadcast.id, user: user, status: .blocked, reason: nil)
            case .failed(let reason):
                try await store.record(broadcast.id, user: user, status: .failed, reason: reason)
            case .retry(let after, let reason):
                if attempts >= settings.attemptsPerRecipient {
                    try await store.record(broadcast.id, user: user, status: .failed, reason: reason)
                } else {
                    try await store.release(broadcast.id, user: user, reason: reason)
                    logger.warning("broadcast send postponed", metadata: ["broadcast_id": "\(broadcast.id)", "reason": "\(reason)"])
                    try? await Task.sleep(for: after)
                }
            }
        }
        return claimed
    }

    private func show(_ broadcast: Broadcast, started: ContinuousClock.Instant, doneAtStart: Int) async {
        guard let counts = try? await store.counts(broadcast.id) else { return }
        let remaining =
            broadcast.status == .running
            ? BroadcastProgress.estimate(left: counts.left, done: counts.done - doneAtStart, elapsed: ContinuousClock.now - started)
            : nil
        await display.show(BroadcastProgress(broadcast: broadcast, counts: counts, remaining: remaining))
    }
}

/// Every minute, makes sure each running broadcast has a run waiting or running (the unique key makes this
/// a no-op for those that have): a backstop for a resume that raced with the end of the previous run.
public struct BroadcastResumeScan: JobHandler {
    public struct Job: JobPayload {
        public static let kind = "broadcasts.resume_scan"
        public var slot: PeriodicSlot

        public init(slot: PeriodicSlot) {
            self.slot = slot
        }
    }

    public let store: BroadcastStore
    public let queue: JobQueue

    public init(store: BroadcastStore, queue: JobQueue) {
        self.store = store
        self.queue = queue
    }

    public func run(_ payload: Job, context: JobContext) async throws {
        for id in try await store.running() {
            let job = RunBroadcastJob(broadcastID: id)
            try await queue.enqueue(job, options: JobOptions(uniqueKey: job.uniqueKey))
        }
    }

    public static func periodicTask() throws -> PeriodicTask {
        try PeriodicTask(Job.kind, every: .seconds(60), catchUp: .skip(tolerance: .seconds(60))) { Job(slot: $0) }
    }
}
