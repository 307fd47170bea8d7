import Foundation
import Jobs
import Logging

/// Something about subscriber money or access that an operator must look at. Raised through a durable job
/// written in the same transaction as the state it describes, so a crash cannot lose it.
public enum SubscriptionAlert: Codable, Sendable, Hashable {
    /// A payment arrived that cannot be delivered: it matches no order, disagrees with its order, or its
    /// order was cancelled. Its money is held in `payment_review`.
    case heldForReview(paymentID: String, orderID: String?, reason: String)
    /// A refund left an owner owing money: their share was already paid out.
    case ownerBalanceNegative(ownerUserID: Int64, balanceUSD: String, orderID: String)
    /// Money arrived for an order already delivered (a top-up or a re-deposit after the sale); it is owed
    /// to the buyer (`buyer_credit`).
    case overpaid(orderID: String, paymentID: String, excessUSD: String)
    /// A channel stopped selling while an order had already received part of its price.
    case cancelledWithMoney(orderID: String, receivedUSD: String)
    /// The expiry sweep could not act in channel `channelID`: it was paused, its ended subscriptions were
    /// expired without removing their holders, and the owner was told.
    case channelPaused(channelID: Int64, title: String, problem: ChannelProblem, expiredWithoutRemoval: Int, pausedAt: Date)
    /// A payout's transfer ended without moving the value; the owner's share is pending again.
    case payoutFailed(payoutID: Int64, ownerUserID: Int64, reason: String)
    /// A batch conversion needs an operator: it failed or was refunded (`event` names which; its shares are
    /// pending again), it is held at the exchange, or what reached the hot wallet differs from what the
    /// exchange reported.
    case conversion(conversionID: Int64, event: String, detail: String)
    /// Reconciliation found the books and the outside world apart.
    case drift(check: String, detail: String)

    /// The same event raised twice has the same key.
    public var key: String {
        switch self {
        case .heldForReview(let payment, _, _): return "payment-review:\(payment)"
        case .ownerBalanceNegative(let owner, _, let order): return "owner-negative:\(owner):\(order)"
        case .overpaid(let order, let payment, let excess): return "overpaid:\(order):\(payment):\(excess)"
        case .cancelledWithMoney(let order, _): return "cancelled-with-money:\(order)"
        case .channelPaused(let channel, _, _, _, let pausedAt): return "access-paused:\(channel):\(Int64(pausedAt.timeIntervalSince1970))"
        case .payoutFailed(let payout, _, _): return "payout-failed:\(payout)"
        case .conversion(let conversion, let event, _): return "conversion:\(conversion):\(event)"
        case .drift(let check, let detail): return "drift:\(check):\(detail.prefix(120))"
        }
    }

    /// Plain text for the admins; ids and amounts only.
    public var text: String {
        switch self {
        case .heldForReview(let payment, let order, let reason):
            return
                "TelePay alert: payment \(payment)\(order.map { " (order \($0))" } ?? "") is held for review and granted nothing: \(reason). Its money is in payment_review."
        case .ownerBalanceNegative(let owner, let balance, let order):
            return "TelePay alert: after the refund of order \(order), owner \(owner) owes $\(balance): their share was already paid out."
        case .overpaid(let order, let payment, let excess):
            return
                "TelePay alert: payment \(payment) brought $\(excess) more to order \(order), which was already delivered; it is owed to the buyer (buyer_credit)."
        case .cancelledWithMoney(let order, let received):
            return
                "TelePay alert: order \(order) was cancelled (its channel stopped selling) after $\(received) of it arrived; it is owed to the buyer (buyer_credit)."
        case .channelPaused(let channel, let title, let problem, let expired, _):
            let why =
                switch problem {
                case .botRights: "the bot lacks the administrator rights it needs there"
                case .botRemoved: "the bot is no longer in the channel, or the channel is gone"
                }
            return "TelePay alert: channel pair #\(channel) (“\(title)”) was paused because \(why): the expiry sweep could not remove "
                + "expired subscribers. \(expired) ended subscription(s) were closed without removal; the owner was told."
        case .payoutFailed(let payout, let owner, let reason):
            return "TelePay alert: payout \(payout) to owner \(owner) failed without moving money (\(reason)); the share is pending again."
        case .conversion(let conversion, let event, let detail):
            return "TelePay alert: conversion \(conversion) \(event): \(detail)"
        case .drift(let check, let detail):
            return "TelePay alert: reconciliation (\(check)) found drift: \(detail). See `telepay ledger --reconcile`."
        }
    }
}

/// Receives subscription alerts: the admins' chat and the log.
public protocol SubscriptionAlertSink: Sendable {
    func raise(_ alert: SubscriptionAlert) async throws
}

/// Logs subscription alerts; the sink when no admins are configured.
public struct LoggingSubscriptionAlerts: SubscriptionAlertSink {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func raise(_ alert: SubscriptionAlert) async {
        logger.error("subscription alert", metadata: ["alert": "\(alert.key)", "detail": "\(alert.text)"])
    }
}

/// Carries one alert from the transaction that noticed it to the sink.
public struct SubscriptionAlertJob: JobPayload {
    public static let kind = "subscriptions.alert"
    public static let maxAttempts = 10

    public var alert: SubscriptionAlert

    public init(alert: SubscriptionAlert) {
        self.alert = alert
    }
}

/// Runs `SubscriptionAlertJob`s.
public struct SubscriptionAlertDeliverer: JobHandler {
    public let sink: any SubscriptionAlertSink

    public init(sink: any SubscriptionAlertSink) {
        self.sink = sink
    }

    public func run(_ payload: SubscriptionAlertJob, context: JobContext) async throws {
        try await sink.raise(payload.alert)
    }
}

extension JobTransaction {
    /// Enqueues the alert once per key.
    func raise(_ alert: SubscriptionAlert) async throws {
        try await enqueue(SubscriptionAlertJob(alert: alert), options: JobOptions(uniqueKey: "alert:" + String(alert.key.prefix(190))))
    }
}
