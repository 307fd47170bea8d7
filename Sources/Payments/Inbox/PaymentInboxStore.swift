import Foundation
import Logging
import PostgresNIO
import Storage

/// Every query on the `payment_inbox` table, its only writer: callbacks kept until they are processed, one row
/// per provider and signed body, so a re-sent or concurrently repeated callback changes nothing while a new report
/// about the same payment — a top-up announced with the same status — is a new row and is processed.
public enum PaymentInboxStore {
    /// Inserts the notification on `connection` (a trigger enqueues its processing job in the same statement); returns the new row's
    /// id, or `nil` when the same provider and body is already stored.
    public static func record(_ notification: PaymentNotification, on connection: PostgresConnection, logger: Logger) async throws -> Int64? {
        try await connection.first(
            """
            INSERT INTO payment_inbox (provider, payment_id, payment_status, order_id, invoice_id, signature_variant, payload, payload_sha256)
            VALUES (\(notification.provider), \(notification.paymentID), \(notification.status.rawValue), \(notification.orderID),
                    \(notification.invoiceID), \(notification.signatureVariant), \(notification.payload),
                    sha256(convert_to(\(notification.payload), 'UTF8')))
            ON CONFLICT ON CONSTRAINT payment_inbox_once DO NOTHING
            RETURNING id
            """,
            as: Int64.self, logger: logger
        )
    }

    /// The stored callback `inboxID`: which payment it is about, and whether it was processed.
    public static func entry(_ inboxID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> (
        paymentID: String, orderRef: String?, processed: Bool
    )? {
        try await connection.first(
            "SELECT payment_id, order_id, processed_at IS NOT NULL FROM payment_inbox WHERE id = \(inboxID)",
            as: (String, String?, Bool).self, logger: logger
        ).map { (paymentID: $0.0, orderRef: $0.1, processed: $0.2) }
    }

    public static func markProcessed(_ inboxID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("UPDATE payment_inbox SET processed_at = now() WHERE id = \(inboxID) AND processed_at IS NULL", logger: logger)
    }
}
