import Foundation
import Jobs

/// Something about money that an operator must look at. Raised through a durable job written in the same
/// transaction as the state it describes, so a crash cannot lose it.
public enum PaymentAlert: Codable, Sendable, Hashable {
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

    /// The same event raised twice has the same key.
    public var key: String {
        switch self {
        case .heldForReview(let payment, _, _): return "payment-review:\(payment)"
        case .ownerBalanceNegative(let owner, _, let order): return "owner-negative:\(owner):\(order)"
        case .overpaid(let order, let payment, let excess): return "overpaid:\(order):\(payment):\(excess)"
        case .cancelledWithMoney(let order, _): return "cancelled-with-money:\(order)"
        }
    }

    /// Plain text for the admins; ids and amounts only.
    public var text: String {
        switch self {
        case .heldForReview(let payment, let order, let reason):
            return "TelePay alert: payment \(payment)\(order.map { " (order \($0))" } ?? "") is held for review and granted nothing: \(reason). Its money is in payment_review."
        case .ownerBalanceNegative(let owner, let balance, let order):
            return "TelePay alert: after the refund of order \(order), owner \(owner) owes $\(balance): their share was already paid out."
        case .overpaid(let order, let payment, let excess):
            return "TelePay alert: payment \(payment) brought $\(excess) more to order \(order), which was already delivered; it is owed to the buyer (buyer_credit)."
        case .cancelledWithMoney(let order, let received):
            return "TelePay alert: order \(order) was cancelled (its channel stopped selling) after $\(received) of it arrived; it is owed to the buyer (buyer_credit)."
        }
    }
}

/// Receives payment alerts: the admins' chat and the log.
public protocol PaymentAlertSink: Sendable {
    func raise(_ alert: PaymentAlert) async throws
}

/// Carries one alert from the transaction that noticed it to the sink.
public struct PaymentAlertJob: JobPayload {
    public static let kind = "payments.alert"
    public static let maxAttempts = 10

    public var alert: PaymentAlert

    public init(alert: PaymentAlert) {
        self.alert = alert
    }
}

/// Runs `PaymentAlertJob`s.
public struct PaymentAlertDeliverer: JobHandler {
    public let sink: any PaymentAlertSink

    public init(sink: any PaymentAlertSink) {
        self.sink = sink
    }

    public func run(_ payload: PaymentAlertJob, context: JobContext) async throws {
        try await sink.raise(payload.alert)
    }
}

extension JobTransaction {
    /// Enqueues the alert once per key.
    func raise(_ alert: PaymentAlert) async throws {
        try await enqueue(PaymentAlertJob(alert: alert), options: JobOptions(uniqueKey: "alert:" + String(alert.key.prefix(190))))
    }
}
