import Foundation
import Logging
import PostgresNIO
import Storage

/// A verified provider callback, as the inbox stores it.
public struct PaymentNotification: Sendable, Hashable {
    public var provider: String
    public var paymentID: String
    public var status: PaymentStatus
    public var orderID: String?
    public var invoiceID: String?
    public var signatureVariant: String
    /// The body exactly as received.
    public var payload: String

    public init(
        provider: String, paymentID: String, status: PaymentStatus, orderID: String?, invoiceID: String?,
        signatureVariant: String, payload: String
    ) {
        self.provider = provider
        self.paymentID = paymentID
        self.status = status
        self.orderID = orderID
        self.invoiceID = invoiceID
        self.signatureVariant = signatureVariant
        self.payload = payload
    }
}

/// The `payment_inbox` table: callbacks kept until they are processed, one row per provider and signed
/// body, so a re-sent or concurrently repeated callback changes nothing while a new report about the same
/// payment — a top-up announced with the same status — is a new row and is processed.
public enum PaymentInbox {
    /// Inserts the notification on `connection` (a trigger enqueues its processing job in the same statement); returns the new row's
    /// id, or `nil` when the same provider and body is already stored.
    public static func record(_ notification: PaymentNotification, on connection: PostgresConnection, logger: Logger) async throws -> Int64? {
        let rows = try await connection.query(
            """
            INSERT INTO payment_inbox (provider, payment_id, payment_status, order_id, invoice_id, signature_variant, payload, payload_sha256)
            VALUES (\(notification.provider), \(notification.paymentID), \(notification.status.rawValue), \(notification.orderID),
                    \(notification.invoiceID), \(notification.signatureVariant), \(notification.payload),
                    sha256(convert_to(\(notification.payload), 'UTF8')))
            ON CONFLICT ON CONSTRAINT payment_inbox_once DO NOTHING
            RETURNING id
            """,
            logger: logger
        )
        var inserted: Int64?
        for try await (id) in rows.decode(Int64.self) { inserted = id }
        return inserted
    }
}
