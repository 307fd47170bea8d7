import Foundation
import Logging
import PostgresNIO
import Storage

/// What happened to an accepted IPN.
public enum IPNReceipt: Sendable, Hashable {
    /// Stored as a new inbox row.
    case stored(inboxID: Int64, PaymentNotification)
    /// This exact callback (the same signed body) was stored before; nothing changed.
    case duplicate(PaymentNotification)
}

/// Why an IPN was refused. Nothing is stored for any of these.
public enum IPNRejection: Error, Sendable, Hashable, CustomStringConvertible {
    /// Missing, malformed or wrong `x-nowpayments-sig` (HTTP 401).
    case signature(IPNSignatureError)
    /// The body is not JSON (HTTP 400).
    case invalidJSON(JSONSyntaxError)
    /// Signed correctly but not a payment callback we can file, e.g. no `payment_id` (HTTP 400).
    case invalidNotification(reason: String)
    /// Shaped unlike any callback (too many values or too deep), refused before the signature is checked
    /// so that re-serialising it in every signature variant cannot be made expensive (HTTP 400).
    case unlikeAnyCallback(reason: String)

    public var description: String {
        switch self {
        case .signature(let error): return "\(error)"
        case .invalidJSON(let error): return "body is not JSON: \(error)"
        case .invalidNotification(let reason): return reason
        case .unlikeAnyCallback(let reason): return reason
        }
    }
}

/// Receives NOWPayments IPNs: checks the signature (`x-nowpayments-sig`, HMAC-SHA512 of the body re-serialised with sorted keys), then files the callback in the
/// inbox with one statement that also enqueues its processing job (migration 0011's trigger). Processing
/// happens later, so the answer is fast and a crash after the answer loses nothing.
public struct NOWPaymentsIPNReceiver: Sendable {
    public static let provider = "nowpayments"
    /// A real callback is a flat object of about 30 values with one small nested object (`fee`); these
    /// bounds are generous for that and keep the signature variants of anything else cheap.
    public static let maximumValues = 1_000
    public static let maximumDepth = 8

    /// Runs after a newly stored callback committed (to wake the workers for the processing job that
    /// migration 0011's trigger enqueued with the inbox row), in a task of its own that the answer does not
    /// wait for.
    public typealias CommittedHook = @Sendable (_ inboxID: Int64) async -> Void

    private let verifier: IPNSignatureVerifier
    private let database: Database
    private let onCommitted: CommittedHook?
    private let logger: Logger

    public init(secret: String, database: Database, onCommitted: CommittedHook? = nil, logger: Logger) {
        self.verifier = IPNSignatureVerifier(secret: secret)
        self.database = database
        self.onCommitted = onCommitted
        self.logger = logger
    }

    /// Verifies and stores one callback. Throws `IPNRejection` for a refused callback (logged here) and
    /// database errors as they come.
    public func receive(body: [UInt8], signature: String?) async throws -> IPNReceipt {
        if signature?.trimmingCharacters(in: .whitespaces).isEmpty ?? true {
            logger.warning("rejected NOWPayments IPN without a signature", metadata: ["body_bytes": "\(body.count)"])
            throw IPNRejection.signature(.missing)
        }
        let json: ExactJSON
        do {
            json = try ExactJSON.parse(body)
        } catch {
            logger.warning("rejected NOWPayments IPN whose body is not JSON", metadata: ["error": "\(error)", "body_bytes": "\(body.count)"])
            throw IPNRejection.invalidJSON(error)
        }
        guard case .object = json else {
            logger.warning("rejected NOWPayments IPN whose body is not a JSON object", metadata: ["body_bytes": "\(body.count)"])
            throw IPNRejection.invalidNotification(reason: "body is not a JSON object")
        }
        if let reason = Self.unlikeAnyCallback(json) {
            logger.warning("rejected NOWPayments IPN shaped unlike any callback", metadata: ["reason": "\(reason)", "body_bytes": "\(body.count)"])
            throw IPNRejection.unlikeAnyCallback(reason: reason)
        }
        let variant: IPNSignatureVariant
        do {
            variant = try verifier.verify(body: json, signature: signature)
        } catch {
            // The claimed payment id helps trace a misconfigured secret; it is not trusted for anything else.
            logger.warning(
                "rejected NOWPayments IPN with a bad signature",
                metadata: [
                    "reason": "\(error)", "claimed_payment_id": "\(Self.loggable(json["payment_id"]))", "body_bytes": "\(body.count)",
                ])
            throw IPNRejection.signature(error)
        }
        let notification: PaymentNotification
        do {
            notification = try Self.notification(from: json, variant: variant, payload: String(decoding: body, as: UTF8.self))
        } catch {
            logger.warning("rejected signed NOWPayments IPN that is not a payment callback", metadata: ["reason": "\(error)"])
            throw error
        }
        if variant != .recursive {
            logger.notice("NOWPayments IPN matched a fallback signature variant", metadata: ["variant": "\(variant.rawValue)"])
        }
        let logger = self.logger
        // One statement, atomic on its own: the inbox row and (by trigger) its processing job.
        let inserted = try await database.withConnection { connection in
            try await PaymentInboxStore.record(notification, on: connection, logger: logger)
        }
        if let inserted {
            // The answer does not wait for the wake-up: it needs a second pooled connection, and a lost one
            // only delays the job to the workers' next poll.
            if let onCommitted { Task { await onCommitted(inserted) } }
            logger.info(
                "NOWPayments IPN stored",
                metadata: [
                    "inbox_id": "\(inserted)", "payment_id": "\(notification.paymentID)", "status": "\(notification.status)",
                ])
            return .stored(inboxID: inserted, notification)
        }
        logger.debug("NOWPayments IPN already stored", metadata: ["payment_id": "\(notification.paymentID)", "status": "\(notification.status)"])
        return .duplicate(notification)
    }

    /// Pulls the inbox's key fields out of a verified body.
    static func notification(from json: ExactJSON, variant: IPNSignatureVariant, payload: String) throws(IPNRejection) -> PaymentNotification {
        let paymentID: String
        switch json["payment_id"] {
        case .string(let text)?: paymentID = text.value
        case .number(let number)? where number.isIntegerLiteral: paymentID = number.literal
        case nil, .null?: throw .invalidNotification(reason: "payment_id is missing")
        default: throw .invalidNotification(reason: "payment_id is not a string or a whole number")
        }
        guard (1...64).contains(paymentID.utf8.count),
            paymentID.utf8.allSatisfy({ Self.isIDByte($0) })
        else {
            throw .invalidNotification(reason: "payment_id must be 1–64 of A-Z a-z 0-9 _ -")
        }
        guard let statusText = json["payment_status"]?.stringValue else {
            throw .invalidNotification(reason: "payment_status is missing or not a string")
        }
        guard (1...32).contains(statusText.utf8.count), statusText.utf8.allSatisfy({ (0x61...0x7A).contains($0) || $0 == 0x5F }) else {
            throw .invalidNotification(reason: "payment_status must be 1–32 of a-z and _")
        }
        let orderID = try optionalID(json["order_id"], name: "order_id", maxLength: 200)
        let invoiceID = try optionalID(json["invoice_id"], name: "invoice_id", maxLength: 64)
        return PaymentNotification(
            provider: provider, paymentID: paymentID, status: PaymentStatus(rawValue: statusText),
            orderID: orderID, invoiceID: invoiceID, signatureVariant: variant.rawValue, payload: payload
        )
    }

    /// Why `json` cannot be a payment callback, judged on its shape alone; nil when it could be one.
    static func unlikeAnyCallback(_ json: ExactJSON) -> String? {
        var values = 0
        var deepest = 0
        var pending: [(ExactJSON, Int)] = [(json, 1)]
        while let (value, depth) = pending.popLast() {
            values += 1
            deepest = max(deepest, depth)
            if values > maximumValues { return "body has more than \(maximumValues) JSON values; a payment callback has a few dozen" }
            if deepest > maximumDepth { return "body nests deeper than \(maximumDepth) levels; a payment callback nests two" }
            switch value {
            case .object(let members): pending += members.map { ($0.value, depth + 1) }
            case .array(let elements): pending += elements.map { ($0, depth + 1) }
            default: break
            }
        }
        return nil
    }

    static func optionalID(_ value: ExactJSON?, name: String, maxLength: Int) throws(IPNRejection) -> String? {
        let text: String
        switch value {
        case nil, .null?: return nil
        case .string(let string)?: text = string.value
        case .number(let number)? where number.isIntegerLiteral: text = number.literal
        default: throw .invalidNotification(reason: "\(name) is not a string or a whole number")
        }
        guard text.unicodeScalars.count <= maxLength else { throw .invalidNotification(reason: "\(name) is longer than \(maxLength) characters") }
        // PostgreSQL text cannot hold U+0000; stored, it would fail on every re-send, forever.
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .invalidNotification(reason: "\(name) contains a control character (such as U+0000)")
        }
        return text
    }

    static func isIDByte(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2D || byte == 0x5F
    }

    static func loggable(_ value: ExactJSON?) -> String {
        switch value {
        case .string(let text)?: return String(text.value.prefix(64))
        case .number(let number)?: return String(number.literal.prefix(64))
        default: return "-"
        }
    }
}
