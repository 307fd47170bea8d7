import Foundation
import Payments

/// Where an order stands. After the invoice, the payment's statuses only move it forward, in this order:
/// a late `confirming` never undoes `paid`, and a closed order is reopened only by money that arrived.
public enum OrderStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case created
    case invoiceFailed = "invoice_failed"
    case awaitingPayment = "awaiting_payment"
    case waiting, confirming, confirmed, sending
    case partiallyPaid = "partially_paid"
    case expired, failed, refunded
    case paid

    /// Position in the forward-only order. Ranks make the machine a maximum, so the same set of observed
    /// statuses ends in the same state whatever order they arrive in.
    var rank: Int {
        switch self {
        case .created, .invoiceFailed: return 0
        case .awaitingPayment: return 1
        case .waiting: return 2
        case .confirming: return 3
        case .confirmed: return 4
        case .sending: return 5
        case .partiallyPaid: return 6
        case .expired: return 7
        case .failed: return 8
        case .refunded: return 9
        case .paid: return 10
        }
    }

    /// What a provider status means for an order. `nil` for statuses we do not act on (`cancelled` is
    /// merchant-set; unknown ones are refused rather than guessed at).
    public init?(payment status: PaymentStatus) {
        switch status {
        case .waiting: self = .waiting
        case .confirming: self = .confirming
        case .confirmed: self = .confirmed
        case .sending: self = .sending
        case .partiallyPaid: self = .partiallyPaid
        case .finished: self = .paid
        case .failed: self = .failed
        case .expired, .cancelled: self = .expired
        case .refunded: self = .refunded
        case .unrecognised: return nil
        }
    }
}

/// The payment state machine, without I/O.
public enum PaymentStateMachine {
    /// The order's next status after observing `observed`: the later of the two in the forward order.
    public static func next(_ current: OrderStatus, observing observed: OrderStatus) -> OrderStatus {
        observed.rank > current.rank ? observed : current
    }

    /// The status a provider payment stands for, accepting a `partially_paid` whose shortfall is within
    /// `tolerancePercent` of the amount asked as paid.
    public static func observed(_ payment: Payment, tolerancePercent: Decimal) -> OrderStatus? {
        guard var status = OrderStatus(payment: payment.status) else { return nil }
        if status == .partiallyPaid, tolerancePercent > 0, let asked = payment.payAmount, let paid = payment.actuallyPaid, asked > 0,
           paid * 100 >= asked * (100 - tolerancePercent) {
            status = .paid
        }
        return status
    }
}

/// The platform fee and the owner's share of a payment, in cents, always summing to the gross.
public struct FeeSplit: Sendable, Hashable {
    public var gross: Decimal
    public var platformFee: Decimal
    public var ownerShare: Decimal

    /// The fee is `percent` of the gross rounded half-up to the cent; the owner gets exactly the rest, so
    /// the parts always sum to the whole.
    public init(gross: Decimal, feePercent: Decimal) {
        self.gross = gross
        var raw = gross * feePercent / 100
        var fee = Decimal()
        NSDecimalRound(&fee, &raw, 2, .plain)
        self.platformFee = fee
        self.ownerShare = gross - fee
    }
}

/// Reminder timing. (Grant and renewal expiry is computed in the upsert itself, so that concurrent grants
/// for one user and channel serialise on the row; see `SubscriptionGrants`.)
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

/// Decimal as plain digits for the database, the wire and messages.
public enum DecimalText {
    public static func plain(_ value: Decimal) -> String {
        var value = value
        var rounded = Decimal()
        NSDecimalRound(&rounded, &value, 18, .plain)
        return "\(rounded)"
    }

    public static func parse(_ text: String) -> Decimal? {
        Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))
    }

    /// Dollars with two decimals, e.g. `9.90`.
    public static func usd(_ value: Decimal) -> String {
        var value = value
        var rounded = Decimal()
        NSDecimalRound(&rounded, &value, 2, .plain)
        let text = "\(rounded)"
        guard let dot = text.firstIndex(of: ".") else { return text + ".00" }
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        return decimals >= 2 ? text : text + String(repeating: "0", count: 2 - decimals)
    }
}
