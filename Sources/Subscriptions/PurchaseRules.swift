import Foundation
import Money
import Payments

/// Where an order stands. It is derived from the order's payments (`OrderRules.status`): paid when the
/// money that arrived covers it, closed (expired, failed, refunded) only when no payment can still complete
/// it, cancelled when its channel stopped selling while the invoice was open.
public enum OrderStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case created
    case invoiceFailed = "invoice_failed"
    case awaitingPayment = "awaiting_payment"
    case waiting, confirming, confirmed, sending
    case partiallyPaid = "partially_paid"
    case expired, failed, refunded
    case paid
    case cancelled

    /// An order still waiting for money: what closing a channel cancels.
    public static let open: [OrderStatus] = [
        .created, .invoiceFailed, .awaitingPayment, .waiting, .confirming, .confirmed, .sending, .partiallyPaid,
    ]

    /// Closed without a sale: the buyer has been told and may renew.
    public var isClosedUnsold: Bool { self == .expired || self == .failed || self == .refunded }
}

/// What an order buys: access for a tier's duration, or nothing — a donation to the channel's owner.
public enum OrderKind: String, Sendable, Hashable, CaseIterable, Codable {
    case subscription
    case donation
}

/// One provider payment's status, forward only. Ranks make the machine a maximum, so the same set of
/// observed statuses ends in the same state whatever order they arrive in; money that arrived
/// (`partially_paid`, `finished`) never goes back to `expired` or `failed`, and only `refunded` undoes it.
public enum PaymentProgress: String, Sendable, Hashable, CaseIterable, Codable {
    case waiting, confirming, confirmed, sending, expired, failed
    case partiallyPaid = "partially_paid"
    case finished, refunded

    var rank: Int {
        switch self {
        case .waiting: return 0
        case .confirming: return 1
        case .confirmed: return 2
        case .sending: return 3
        case .expired, .failed: return 4
        case .partiallyPaid: return 5
        case .finished: return 6
        case .refunded: return 7
        }
    }

    /// What a provider status means for a payment; `nil` for statuses we do not know (refused rather than
    /// guessed at). `cancelled` is merchant-set and moves no money: it counts as expired.
    public init?(_ status: PaymentStatus) {
        switch status {
        case .waiting: self = .waiting
        case .confirming: self = .confirming
        case .confirmed: self = .confirmed
        case .sending: self = .sending
        case .partiallyPaid: self = .partiallyPaid
        case .finished: self = .finished
        case .failed: self = .failed
        case .expired, .cancelled: self = .expired
        case .refunded: self = .refunded
        case .unrecognised: return nil
        }
    }

    /// The later of the stored and the observed status.
    public static func next(_ current: PaymentProgress?, observing observed: PaymentProgress) -> PaymentProgress {
        guard let current else { return observed }
        return observed.rank > current.rank ? observed : current
    }

    /// Funds reached us (the provider's own words for `partially_paid` and `finished`).
    public var moneyArrived: Bool { self == .partiallyPaid || self == .finished }

    /// Seen or expected on chain, not yet settled: the payment can still complete.
    public var isLive: Bool { rank <= PaymentProgress.sending.rank }

    /// Nothing more is expected from the provider without a new event (`partially_paid` may still be topped up).
    public var isFinal: Bool { self == .finished || self == .failed || self == .expired || self == .refunded }
}

/// Pure rules for orders and their payments.
public enum OrderRules {
    /// Whether `received` pays for `price`, accepting a shortfall of at most `tolerancePercent` of the price.
    public static func covers(received: Decimal, price: Decimal, tolerancePercent: Decimal) -> Bool {
        received > 0 && received * 100 >= price * (100 - tolerancePercent)
    }

    /// What arrived in US dollars: `actuallyPaid` at the payment's rate (`priceAmount` per `payAmount`),
    /// rounded down to the cent so the ledger never books a cent nobody paid. `nil` when there is no rate.
    public static func valueUSD(actuallyPaid: Decimal, priceAmount: Decimal?, payAmount: Decimal?) -> Decimal? {
        guard actuallyPaid > 0 else { return 0 }
        guard let priceAmount, let payAmount, priceAmount > 0, payAmount > 0 else { return nil }
        return DecimalText.rounded(priceAmount * actuallyPaid / payAmount, scale: 2, .down)
    }

    /// The order's status from its payments. A sale (`sold`) makes it paid; a cancelled order stays
    /// cancelled; otherwise money that arrived without covering it is `partially_paid`, a payment still in
    /// progress shows its progress, and only when every payment is over without money is the order closed.
    public static func status(current: OrderStatus, sold: Bool, received: Decimal, payments: [PaymentProgress]) -> OrderStatus {
        if sold { return .paid }
        if current == .cancelled { return .cancelled }
        if received > 0 { return .partiallyPaid }
        if let live = payments.filter(\.isLive).max(by: { $0.rank < $1.rank }) {
            switch live {
            case .waiting: return .waiting
            case .confirming: return .confirming
            case .confirmed: return .confirmed
            default: return .sending
            }
        }
        if payments.isEmpty { return current }
        if payments.contains(.failed) { return .failed }
        if payments.contains(.refunded) { return .refunded }
        return .expired
    }

    /// How long until a payment or an order is asked about again: a quarter of its age, at least
    /// `minimum`, at most six hours, so a buyer whose callbacks were lost is served within minutes while
    /// old ones cost little.
    public static func recheckDelay(age: TimeInterval, minimum: TimeInterval) -> TimeInterval {
        min(max(age / 4, minimum), 6 * 3600)
    }
}

/// The platform fee and the owner's share of a sale, in cents, always summing to the price.
public struct FeeSplit: Sendable, Hashable {
    public var gross: Decimal
    public var platformFee: Decimal
    public var ownerShare: Decimal

    /// The fee is `percent` of the gross rounded half-up to the cent; the owner gets exactly the rest, so
    /// the parts always sum to the whole.
    public init(gross: Decimal, feePercent: Decimal) {
        self.gross = gross
        self.platformFee = DecimalText.rounded(gross * feePercent / 100, scale: 2, .plain)
        self.ownerShare = gross - platformFee
    }
}

/// Reminder timing. (Grant and renewal expiry is computed in the upsert itself, so that concurrent grants
/// for one user and channel serialise on the row; see `SubscriptionStore`.)
public enum SubscriptionTerm {
    /// The configured lead times already reached before `expiry` and not yet sent, smallest first. The caller
    /// announces only the smallest and records them all, so a short subscription gets one reminder, not several.
    public static func dueReminders(expiry: Date, now: Date, leadDays: [Int], alreadySent: Set<Int>) -> [Int] {
        guard now < expiry else { return [] }
        return leadDays.filter { days in
            !alreadySent.contains(days) && now >= expiry.addingTimeInterval(-TimeInterval(days) * 86_400)
        }.sorted()
    }
}
