import Foundation
import Logging

/// A job that reached `failed`: it needs a person to look at it (and maybe `telepay jobs retry ID`).
public struct FailedJob: Sendable, Hashable {
    /// Why the engine gave up.
    public enum Reason: String, Sendable, Hashable {
        /// The handler classified the error as permanent.
        case permanentError = "permanent_error"
        /// A retryable error on the final attempt.
        case attemptsExhausted = "attempts_exhausted"
        /// The worker running the final attempt died or froze until its lease expired.
        case leaseExpiredOnFinalAttempt = "lease_expired_on_final_attempt"
    }

    public var id: JobID
    public var kind: String
    public var attempt: Int
    public var maxAttempts: Int
    public var error: String
    public var reason: Reason

    public init(id: JobID, kind: String, attempt: Int, maxAttempts: Int, error: String, reason: Reason) {
        self.id = id
        self.kind = kind
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.error = error
        self.reason = reason
    }
}

/// Told once per job that moves to `failed`. The call happens after the failure is committed and only by the
/// worker whose fenced write made it, so two instances never alert for the same failure.
public protocol JobAlertHook: Sendable {
    func jobFailed(_ job: FailedJob) async
}

/// The default hook: an error-level log line (the application adds admins in Telegram when configured).
public struct LoggingJobAlertHook: JobAlertHook {
    public var logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func jobFailed(_ job: FailedJob) async {
        logger.error(
            "job failed",
            metadata: [
                "job_id": "\(job.id)",
                "job_kind": "\(job.kind)",
                "attempt": "\(job.attempt)/\(job.maxAttempts)",
                "reason": "\(job.reason.rawValue)",
                "error": "\(job.error)",
            ])
    }
}
