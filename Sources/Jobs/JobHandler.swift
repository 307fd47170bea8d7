import Foundation
import Logging
import Resilience
import Synchronization

/// Runs jobs of one kind. Handlers carry their own dependencies as stored properties.
///
/// Delivery is at least once: a job may run again after a crash or a lost lease, so the handler's effect must be
/// idempotent (keyed by `context.id`, or by a business key).
public protocol JobHandler: Sendable {
    associatedtype Payload: JobPayload

    /// How many jobs of this kind one worker pool runs at the same time, and how failures are retried.
    var options: JobKindOptions { get }

    /// Does the job's work. Returning marks it completed; throwing retries or fails it according to `classify`.
    func run(_ payload: Payload, context: JobContext) async throws

    /// Decides whether an error is worth retrying. The default treats `JobFailure.permanent` as permanent and
    /// everything else as retryable; override it to map a dependency's typed errors.
    func classify(_ error: any Error) -> JobErrorClass
}

extension JobHandler {
    public var options: JobKindOptions { JobKindOptions() }

    public func classify(_ error: any Error) -> JobErrorClass {
        JobErrorClass.default(for: error)
    }
}

/// Whether a failed attempt may be retried.
public enum JobErrorClass: Sendable, Hashable {
    case retryable
    case permanent

    static func `default`(for error: any Error) -> JobErrorClass {
        if let failure = error as? JobFailure, case .permanent = failure { return .permanent }
        return .retryable
    }
}

/// An error a handler throws to say how its failure must be treated, with the reason recorded on the job.
public enum JobFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// Retrying cannot help (invalid input, a request the other side rejects for good): the job fails now.
    case permanent(String)
    /// Worth trying again later with the kind's backoff.
    case retryable(String)

    public var description: String {
        switch self {
        case .permanent(let reason): return "permanent failure: \(reason)"
        case .retryable(let reason): return "retryable failure: \(reason)"
        }
    }
}

/// Settings of one job kind inside a worker pool.
public struct JobKindOptions: Sendable, Hashable {
    /// Most jobs of this kind running at once in one pool (one TelePay process).
    public var concurrency: Int
    public var retry: RetryPolicy

    public init(concurrency: Int = 10, retry: RetryPolicy = RetryPolicy()) {
        precondition(concurrency >= 1, "a job kind needs a concurrency of at least 1")
        self.concurrency = concurrency
        self.retry = retry
    }
}

/// Capped exponential backoff with jitter: attempt n waits about `initialDelay × 2^(n-1)`, give or take
/// `jitterPercent`, never more than `maximumDelay`.
///
/// Jitter spreads retries of jobs that failed together (one outage) so they do not all return at once. It stays
/// below a third, so before the cap each delay is still longer than the one before.
public struct RetryPolicy: Sendable, Hashable {
    public var initialDelay: Duration
    public var maximumDelay: Duration
    public var jitterPercent: Int

    public init(initialDelay: Duration = .seconds(1), maximumDelay: Duration = .seconds(3600), jitterPercent: Int = 20) {
        precondition(initialDelay > .zero && maximumDelay >= initialDelay, "retry delays must be positive and the cap at least the first delay")
        precondition((0...33).contains(jitterPercent), "jitter must be 0–33 % so delays keep growing")
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.jitterPercent = jitterPercent
    }

    /// The wait before the retry that follows failed attempt `attempt` (1-based).
    public func delay(afterAttempt attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        Backoff(initial: initialDelay, maximum: maximumDelay, jitter: .percent(jitterPercent)).delay(afterAttempt: attempt, using: &generator)
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    var milliseconds: Int64 {
        let parts = components
        return parts.seconds * 1000 + parts.attoseconds / 1_000_000_000_000_000
    }
}

/// What a running job knows about itself.
public struct JobContext: Sendable {
    public let id: JobID
    public let kind: String
    /// 1 on the first run; a retry or a rescue after a crash runs with a higher number.
    public let attempt: Int
    public let maxAttempts: Int
    public let enqueuedAt: Date
    public let scheduledAt: Date
    /// Carries `job_id`, `job_kind` and `attempt` metadata.
    public let logger: Logger
    let lease: LeaseFlag

    /// True when a heartbeat found the job no longer held by this attempt (it was rescued after the lease
    /// expired). Whatever this attempt writes to the job row will be ignored; long handlers may stop early.
    public var leaseLost: Bool { lease.isLost }

    public var isFinalAttempt: Bool { attempt >= maxAttempts }
}

/// Shared between the pool's heartbeat and the handler's context.
final class LeaseFlag: Sendable {
    private let lost = Atomic<Bool>(false)

    var isLost: Bool { lost.load(ordering: .relaxed) }

    func markLost() {
        lost.store(true, ordering: .relaxed)
    }
}
