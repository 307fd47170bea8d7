import Foundation
import Logging
import Money
import Payments
import PostgresNIO
import Storage

/// A provider payment as stored.
public struct StoredPayment: Sendable, Hashable {
    public var id: Int64
    public var providerPaymentID: String
    public var orderID: Int64?
    public var status: PaymentProgress
    public var priceAmount: Decimal?
    public var payAmount: Decimal?
    public var actuallyPaid: Decimal?
    public var valueUSD: Decimal
    public var creditedUSD: Decimal
    public var reviewReason: String?
    public var createdAt: Date
    /// How much of the payment's outcome the ledger has booked, in the settlement asset's smallest unit.
    public var settledUnits: Decimal
}

/// What the provider reported, merged into the stored row.
struct PaymentUpdate: Sendable {
    var status: PaymentProgress
    var orderID: Int64?
    var payment: Payment
    var actuallyPaid: Decimal?
    var valueUSD: Decimal
    var creditedUSD: Decimal
    var settledUnits: Decimal
    var reviewReason: String?
    var providerUpdatedAt: Date?
    var nextCheckAt: Date?
}

/// The `payments` table: one row per provider payment. Every query about payments lives here.
enum PaymentStore {
    static let columns = """
        id, provider_payment_id, order_id, status, price_amount::text, pay_amount::text, actually_paid::text, value_usd::text,
        credited_usd::text, review_reason, created_at, settled_units::text
        """

    typealias Row = (Int64, String, Int64?, String, String?, String?, String?, String, String, String?, Date, String)

    static func payment(_ row: Row) throws -> StoredPayment {
        let (id, providerID, order, status, price, pay, paid, value, credited, review, created, settled) = row
        guard let status = PaymentProgress(rawValue: status) else { throw PaymentStoreError.unknownStatus(status) }
        func amount(_ text: String?, _ what: String) throws -> Decimal? { try text.map { try DecimalText.require($0, what) } }
        return StoredPayment(
            id: id, providerPaymentID: providerID, orderID: order, status: status, priceAmount: try amount(price, "price_amount"),
            payAmount: try amount(pay, "pay_amount"), actuallyPaid: try amount(paid, "actually_paid"),
            valueUSD: try DecimalText.require(value, "value_usd"), creditedUSD: try DecimalText.require(credited, "credited_usd"),
            reviewReason: review, createdAt: created, settledUnits: try DecimalText.require(settled, "settled_units")
        )
    }

    /// The stored row of a provider payment, unlocked (to find its order before taking locks).
    static func find(provider: String, paymentID: String, on connection: PostgresConnection, logger: Logger) async throws -> StoredPayment? {
        try await connection.first(
            "SELECT \(unescaped: columns) FROM payments WHERE provider = \(provider) AND provider_payment_id = \(paymentID)",
            as: Row.self, logger: logger
        ).map(payment)
    }

    /// Locks the row of a provider payment, creating it first when it is new.
    static func lock(provider: String, paymentID: String, on connection: PostgresConnection, logger: Logger) async throws -> (
        StoredPayment, isNew: Bool
    ) {
        let inserted = try await connection.first(
            """
            INSERT INTO payments (provider, provider_payment_id, status) VALUES (\(provider), \(paymentID), \(PaymentProgress.waiting.rawValue))
            ON CONFLICT (provider, provider_payment_id) DO NOTHING RETURNING id
            """,
            as: Int64.self, logger: logger
        )
        guard
            let row = try await connection.first(
                "SELECT \(unescaped: columns) FROM payments WHERE provider = \(provider) AND provider_payment_id = \(paymentID) FOR UPDATE",
                as: Row.self, logger: logger
            )
        else { throw PaymentStoreError.vanished(paymentID) }
        return (try payment(row), inserted != nil)
    }

    static func update(_ id: Int64, _ update: PaymentUpdate, on connection: PostgresConnection, logger: Logger) async throws {
        let payment = update.payment
        func text(_ value: Decimal?) -> String? { value.map(DecimalText.plain) }
        try await connection.run(
            """
            UPDATE payments SET
                status = \(update.status.rawValue), order_id = \(update.orderID), parent_payment_id = \(payment.parentPaymentID),
                order_ref = \(payment.orderID.map { String($0.prefix(200)) }), invoice_id = \(payment.invoiceID),
                price_amount = \(text(payment.priceAmount))::numeric, price_currency = \(payment.priceCurrency.map { String($0.prefix(16)) }),
                pay_amount = \(text(payment.payAmount))::numeric, actually_paid = \(text(update.actuallyPaid))::numeric,
                pay_currency = \(payment.payCurrency.map { String($0.prefix(32)) }),
                outcome_amount = \(text(payment.outcomeAmount))::numeric, outcome_currency = \(payment.outcomeCurrency.map { String($0.prefix(32)) }),
                value_usd = \(DecimalText.plain(update.valueUSD))::numeric, credited_usd = \(DecimalText.plain(update.creditedUSD))::numeric,
                settled_units = \(DecimalText.plain(update.settledUnits))::numeric,
                review_reason = \(update.reviewReason.map { String($0.prefix(500)) }),
                provider_updated_at = coalesce(\(update.providerUpdatedAt), provider_updated_at), next_check_at = \(update.nextCheckAt)
            WHERE id = \(id)
            """,
            logger: logger
        )
    }

    /// The payments of an order, oldest first.
    static func ofOrder(_ orderID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> [StoredPayment] {
        try await connection.all(
            "SELECT \(unescaped: columns) FROM payments WHERE order_id = \(orderID) ORDER BY id", as: Row.self, logger: logger
        ).map(payment)
    }

    /// Payments due to be asked about again, with the order reference they came with.
    static func dueForCheck(now: Date, limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [(
        provider: String, paymentID: String, orderRef: String?
    )] {
        try await connection.all(
            """
            SELECT provider, provider_payment_id, order_ref FROM payments
            WHERE next_check_at <= \(now) ORDER BY next_check_at LIMIT \(Int32(limit))
            """,
            as: (String, String, String?).self, logger: logger
        ).map { (provider: $0.0, paymentID: $0.1, orderRef: $0.2) }
    }

    /// Puts a payment's next check off (after a failed look-up).
    static func postponeCheck(provider: String, paymentID: String, until date: Date, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            "UPDATE payments SET next_check_at = \(date) WHERE provider = \(provider) AND provider_payment_id = \(paymentID) AND next_check_at IS NOT NULL",
            logger: logger
        )
    }

    // MARK: - Inbox

    /// The stored callback `inboxID` (its table's home is `PaymentInboxStore`).
    static func inbox(_ inboxID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> (
        paymentID: String, orderRef: String?, processed: Bool
    )? {
        try await PaymentInboxStore.entry(inboxID, on: connection, logger: logger)
    }

    static func markProcessed(_ inboxID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await PaymentInboxStore.markProcessed(inboxID, on: connection, logger: logger)
    }
}

/// The payments table holds something the code does not know, or a row vanished under a lock.
public enum PaymentStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    case unknownStatus(String)
    case vanished(String)

    public var description: String {
        switch self {
        case .unknownStatus(let status): return "unknown payment status '\(status)'"
        case .vanished(let id): return "payment \(id) vanished"
        }
    }
}
