import Exchange
import Foundation
import Jobs
import Logging

/// What happened to a stored status when a `by-id` answer was recorded.
public enum ExchangeStatusChange: Sendable, Hashable {
    /// The answer moved the exchange forward (or gave it its first status).
    case advance(ExchangeStatus)
    /// Same status as stored; amounts and hashes may have been filled in.
    case unchanged
    /// The answer would move the exchange back, or out of a final status; it is stale and not stored.
    case ignoredBackward(stored: ExchangeStatus, reported: ExchangeStatus)
    /// A status the v2 enum does not document; not stored.
    case ignoredUnknown(String)
}

/// Forward-only status moves. Pure, so every pair of statuses is tested without a database.
///
/// `new → waiting → confirming → exchanging → sending → finished` is the documented path; `failed` and
/// `refunded` may end it anywhere. `verifying` (an AML/KYC hold on a received deposit) may begin at any
/// non-final step and ends in `confirming` or later. Anything final stays final.
public enum ExchangeStatusProgress {
    /// Position on the documented path; `nil` for `verifying` and undocumented values.
    static func rank(_ status: ExchangeStatus) -> Int? {
        switch status {
        case .new: return 0
        case .waiting: return 1
        case .confirming: return 2
        case .exchanging: return 3
        case .sending: return 4
        case .finished, .failed, .refunded: return 5
        case .verifying, .other: return nil
        }
    }

    public static func decide(stored: ExchangeStatus?, reported: ExchangeStatus) -> ExchangeStatusChange {
        if case .other(let raw) = reported { return .ignoredUnknown(raw) }
        // Nothing stored yet, or a value an older version stored unchecked: take the answer.
        guard let stored else { return .advance(reported) }
        if case .other = stored { return .advance(reported) }
        if stored == reported { return .unchanged }
        if stored.isFinal { return .ignoredBackward(stored: stored, reported: reported) }
        if reported.isFinal || reported == .verifying { return .advance(reported) }
        guard let target = rank(reported) else { return .ignoredUnknown(reported.rawValue) }
        let floor = rank(stored).map { $0 + 1 } ?? rank(.confirming)!
        return target >= floor ? .advance(reported) : .ignoredBackward(stored: stored, reported: reported)
    }
}

/// An exchange the admins must look at.
public struct ExchangeAlertSubject: Sendable, Hashable {
    public var intentId: Int64
    public var idempotencyKey: String
    public var exchangeId: String

    public init(intentId: Int64, idempotencyKey: String, exchangeId: String) {
        self.intentId = intentId
        self.idempotencyKey = idempotencyKey
        self.exchangeId = exchangeId
    }
}

/// Raised by the status tracking, once per event.
public enum ExchangeAlert: Sendable, Hashable {
    case exchangeFailed(ExchangeAlertSubject)
    /// ChangeNOW sent the deposit back to the refund address (the hot wallet).
    case exchangeRefunded(ExchangeAlertSubject, refundHash: String?)
    /// Held in `verifying` (AML/KYC) since `since`, longer than the configured threshold.
    case verifyingTooLong(ExchangeAlertSubject, since: Date)
}

/// Receives exchange alerts: a chat message to the admins, a log line.
public protocol ExchangeAlertSink: Sendable {
    func raise(_ alert: ExchangeAlert) async
}

/// Exchange alerts as error-level log lines.
public struct LoggingExchangeAlerts: ExchangeAlertSink {
    public let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func raise(_ alert: ExchangeAlert) async {
        switch alert {
        case .exchangeFailed(let subject):
            logger.error("exchange failed", metadata: ["intent": "\(subject.idempotencyKey)", "exchange": "\(subject.exchangeId)"])
        case .exchangeRefunded(let subject, let hash):
            logger.error(
                "exchange refunded",
                metadata: ["intent": "\(subject.idempotencyKey)", "exchange": "\(subject.exchangeId)", "refund_hash": "\(hash ?? "unknown")"])
        case .verifyingTooLong(let subject, let since):
            logger.error(
                "exchange held in verifying",
                metadata: ["intent": "\(subject.idempotencyKey)", "exchange": "\(subject.exchangeId)", "since": "\(since.formatted(.iso8601))"])
        }
    }
}

/// `recordStatus`'s result: the intent as now stored and what the answer did to it.
public struct StatusRecord: Sendable, Hashable {
    public var intent: ExchangeIntent
    public var change: ExchangeStatusChange
}

/// What the poller has recorded about an intent's exchange.
public struct ExchangeTracking: Sendable, Hashable {
    public var status: ExchangeStatus?
    public var amountFrom: Decimal?
    public var amountTo: Decimal?
    public var payinHash: String?
    public var payoutHash: String?
    public var refundHash: String?
    public var refundAmount: Decimal?
    /// ChangeNOW's own timestamps.
    public var exchangeCreatedAt: Date?
    public var exchangeUpdatedAt: Date?
    /// Ours: the last status read, and when the current status was first seen.
    public var statusCheckedAt: Date?
    public var statusChangedAt: Date?
    public var verifyingAlertedAt: Date?
}

/// ChangeNOW's timestamps (`2024-06-11T12:52:15.759Z`, with or without the fraction).
enum ChangeNowTimestamp {
    static func parse(_ text: String) -> Date? {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return withFraction.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }
}

/// How the status poller treats ChangeNOW.
public struct ExchangeTrackingSettings: Sendable, Hashable {
    /// Most `by-id` calls per second from one poll. ChangeNOW allows 30 per key across every endpoint;
    /// the default leaves two thirds for creates, estimates and a second instance's catch-up.
    public var requestsPerSecond: Int
    /// A hold in `verifying` longer than this is raised to the admins, once per hold.
    public var verifyingAlertAfter: Duration

    public init(requestsPerSecond: Int = 10, verifyingAlertAfter: Duration = .seconds(3600)) {
        precondition((1...30).contains(requestsPerSecond), "ChangeNOW allows at most 30 calls per second")
        self.requestsPerSecond = requestsPerSecond
        self.verifyingAlertAfter = verifyingAlertAfter
    }
}

/// What one poll did.
public struct TrackingPass: Sendable, Hashable {
    public var polled = 0
    public var advanced = 0
    public var failedReads = 0
    /// Exchanges left for the next slot because the deadline came first.
    public var leftForLater = 0
}

/// Polls `by-id` for every recorded exchange not yet in a final status and records what it learns.
///
/// One poll runs per periodic slot (the scheduler's unique slot key means two instances never run the
/// same slot), paces its calls to `requestsPerSecond`, and stops at the slot's end, so consecutive slots
/// do not overlap and never add up past ChangeNOW's limit. Exchanges least recently read go first, so
/// what a busy slot leaves undone is the first work of the next.
public struct ExchangeTracker: Sendable {
    public let orders: ExchangeOrderService
    public let settings: ExchangeTrackingSettings
    let logger: Logger

    public init(orders: ExchangeOrderService, settings: ExchangeTrackingSettings = ExchangeTrackingSettings(), logger: Logger) {
        self.orders = orders
        self.settings = settings
        self.logger = logger
    }

    public func poll(until deadline: Date) async throws -> TrackingPass {
        let seconds = max(0, deadline.timeIntervalSinceNow)
        let budget = max(1, Int(seconds * Double(settings.requestsPerSecond)))
        let ids = try await orders.unsettledExchanges(limit: budget)
        var pass = TrackingPass()
        let clock = ContinuousClock()
        let spacing = Duration.seconds(1) / settings.requestsPerSecond
        var nextCall = clock.now
        for (index, id) in ids.enumerated() {
            if Date() >= deadline || Task.isCancelled {
                pass.leftForLater = ids.count - index
                break
            }
            if nextCall > clock.now { try await Task.sleep(until: nextCall, clock: clock) }
            nextCall = clock.now.advanced(by: spacing)
            pass.polled += 1
            do {
                let record = try await orders.refresh(intentId: id, verifyingAlertAfter: settings.verifyingAlertAfter)
                if case .advance = record?.change { pass.advanced += 1 }
            } catch ExchangeOrderError.statusUnavailable(let error) {
                pass.failedReads += 1
                logger.warning("exchange status unavailable", metadata: ["intent_id": "\(id)", "error": "\(error)"])
                // Past the limit every further call fails too; the next slot starts afresh.
                if case .rejected(let status, _, _) = error, status == 429 {
                    pass.leftForLater = ids.count - index - 1
                    break
                }
            }
        }
        return pass
    }
}

/// The payload of the periodic exchange status poll.
public struct ExchangeStatusPollJob: JobPayload {
    public static let kind = "exchange.poll_status"
    public static let maxAttempts = 3

    public var slot: PeriodicSlot

    public init(slot: PeriodicSlot) {
        self.slot = slot
    }
}

/// Runs one status poll per slot; the poll ends with its slot.
public struct ExchangeStatusPoller: JobHandler {
    public let tracker: ExchangeTracker

    public init(tracker: ExchangeTracker) {
        self.tracker = tracker
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 1) }

    /// Catch-up `.runOnce`: the poll reads current state, so after downtime one run stands for all missed slots.
    public static func periodicTask(every interval: Duration) throws(PeriodicTaskError) -> PeriodicTask {
        try PeriodicTask(ExchangeStatusPollJob.kind, every: interval, catchUp: .runOnce) { slot in ExchangeStatusPollJob(slot: slot) }
    }

    public func run(_ payload: ExchangeStatusPollJob, context: JobContext) async throws {
        let pass = try await tracker.poll(until: payload.slot.end)
        if pass.polled > 0 {
            context.logger.info(
                "exchange statuses polled",
                metadata: [
                    "polled": "\(pass.polled)", "advanced": "\(pass.advanced)", "failed_reads": "\(pass.failedReads)",
                    "left_for_later": "\(pass.leftForLater)",
                ])
        }
    }
}
