import Foundation

/// A crypto payment provider as TelePay uses it: hosted invoices out, a payment's current state in.
/// NOWPayments is the production implementation; tests run it against a fake server.
public protocol PaymentProvider: Sendable {
    /// Creates a hosted invoice. Never retried inside: a repeat could leave two invoices for one order,
    /// so the caller records the attempt and decides.
    func createInvoice(_ request: InvoiceRequest) async throws(PaymentProviderError) -> Invoice

    /// The payment's current state as the provider reports it now. Safe to repeat; transient failures
    /// are retried inside.
    func payment(id: String) async throws(PaymentProviderError) -> Payment

    /// Every payment made against invoice `invoiceID`, to find payments whose callbacks never arrived.
    /// `nil` when this provider is not set up to list them.
    func payments(invoiceID: String) async throws(PaymentProviderError) -> [Payment]?
}

/// What an invoice asks for. Amounts are `Decimal` and travel as exact JSON number literals.
public struct InvoiceRequest: Sendable, Hashable {
    public var priceAmount: Decimal
    /// Lower-case currency code of the price, e.g. `usd`.
    public var priceCurrency: String
    /// When `nil`, the buyer picks the coin on the invoice page.
    public var payCurrency: String?
    /// Our order's id; the provider echoes it in callbacks.
    public var orderID: String
    public var orderDescription: String?
    public var ipnCallbackURL: URL?
    public var successURL: URL?
    public var cancelURL: URL?
    public var partiallyPaidURL: URL?
    public var isFixedRate: Bool?
    public var isFeePaidByUser: Bool?

    public init(
        priceAmount: Decimal, priceCurrency: String, payCurrency: String? = nil, orderID: String, orderDescription: String? = nil,
        ipnCallbackURL: URL? = nil, successURL: URL? = nil, cancelURL: URL? = nil, partiallyPaidURL: URL? = nil,
        isFixedRate: Bool? = nil, isFeePaidByUser: Bool? = nil
    ) {
        self.priceAmount = priceAmount
        self.priceCurrency = priceCurrency
        self.payCurrency = payCurrency
        self.orderID = orderID
        self.orderDescription = orderDescription
        self.ipnCallbackURL = ipnCallbackURL
        self.successURL = successURL
        self.cancelURL = cancelURL
        self.partiallyPaidURL = partiallyPaidURL
        self.isFixedRate = isFixedRate
        self.isFeePaidByUser = isFeePaidByUser
    }
}

/// A created invoice: where to send the buyer.
public struct Invoice: Sendable, Hashable {
    public var id: String
    public var orderID: String?
    public var priceAmount: Decimal
    public var priceCurrency: String
    public var payCurrency: String?
    public var invoiceURL: URL
    public var createdAt: String?

    public init(id: String, orderID: String?, priceAmount: Decimal, priceCurrency: String, payCurrency: String?, invoiceURL: URL, createdAt: String?)
    {
        self.id = id
        self.orderID = orderID
        self.priceAmount = priceAmount
        self.priceCurrency = priceCurrency
        self.payCurrency = payCurrency
        self.invoiceURL = invoiceURL
        self.createdAt = createdAt
    }
}

/// A payment as the provider reports it. Every amount is exact; absent or `null` amounts are `nil`.
public struct Payment: Sendable, Hashable {
    /// Ids arrive as JSON numbers or strings depending on the endpoint; both become the same digits.
    public var id: String
    public var invoiceID: String?
    public var parentPaymentID: String?
    public var status: PaymentStatus
    public var orderID: String?
    public var priceAmount: Decimal?
    public var priceCurrency: String?
    public var payAmount: Decimal?
    public var actuallyPaid: Decimal?
    public var payCurrency: String?
    public var outcomeAmount: Decimal?
    public var outcomeCurrency: String?
    public var updatedAt: String?

    public init(
        id: String, invoiceID: String? = nil, parentPaymentID: String? = nil, status: PaymentStatus, orderID: String? = nil,
        priceAmount: Decimal? = nil, priceCurrency: String? = nil, payAmount: Decimal? = nil, actuallyPaid: Decimal? = nil,
        payCurrency: String? = nil, outcomeAmount: Decimal? = nil, outcomeCurrency: String? = nil, updatedAt: String? = nil
    ) {
        self.id = id
        self.invoiceID = invoiceID
        self.parentPaymentID = parentPaymentID
        self.status = status
        self.orderID = orderID
        self.priceAmount = priceAmount
        self.priceCurrency = priceCurrency
        self.payAmount = payAmount
        self.actuallyPaid = actuallyPaid
        self.payCurrency = payCurrency
        self.outcomeAmount = outcomeAmount
        self.outcomeCurrency = outcomeCurrency
        self.updatedAt = updatedAt
    }
}

/// NOWPayments' `payment_status` values. A value we do not know is kept, not
/// guessed at, so the state machine can refuse to act on it.
public enum PaymentStatus: Sendable, Hashable, CustomStringConvertible {
    case waiting, confirming, confirmed, sending, partiallyPaid, finished, failed, refunded, expired, cancelled
    case unrecognised(String)

    public static let known: [PaymentStatus] = [
        .waiting, .confirming, .confirmed, .sending, .partiallyPaid, .finished, .failed, .refunded, .expired, .cancelled,
    ]

    public init(rawValue: String) {
        self = Self.known.first { $0.rawValue == rawValue } ?? .unrecognised(rawValue)
    }

    public var rawValue: String {
        switch self {
        case .waiting: return "waiting"
        case .confirming: return "confirming"
        case .confirmed: return "confirmed"
        case .sending: return "sending"
        case .partiallyPaid: return "partially_paid"
        case .finished: return "finished"
        case .failed: return "failed"
        case .refunded: return "refunded"
        case .expired: return "expired"
        case .cancelled: return "cancelled"
        case .unrecognised(let value): return value
        }
    }

    public var description: String { rawValue }
}

/// A failed provider call, classified by what the caller can do about it. Provider answers keep the
/// HTTP status, NOWPayments' error `code` and its message; transport failures keep their cause.
public enum PaymentProviderError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Refused before sending, e.g. an amount that is not finite or an id that cannot be part of a URL.
    case invalidRequest(reason: String)
    /// 401 or 403: the API key is missing, wrong or revoked.
    case unauthorized(code: String?, message: String)
    /// 404: no such payment for this API key.
    case notFound(code: String?, message: String)
    /// Another 4xx, e.g. `AMOUNT_MINIMAL_ERROR`, `CURRENCY_UNAVAILABLE`, `INVALID_REQUEST_PARAMS`.
    case rejected(status: Int, code: String?, message: String)
    /// 429.
    case rateLimited(message: String)
    /// 5xx.
    case server(status: Int, message: String)
    /// No complete answer in time. For an invoice the outcome is unknown: it may have been created.
    case timedOut(after: Duration)
    /// The connection could not be made or broke; for an invoice the outcome is unknown too.
    case network(description: String)
    /// A success status with a body that is not what the API documents.
    case invalidResponse(description: String)

    /// Whether repeating the same call later may succeed. Only safe calls (reads) repeat on their own.
    public var isTransient: Bool {
        switch self {
        case .rateLimited, .server, .timedOut, .network: return true
        default: return false
        }
    }

    public var description: String {
        func coded(_ code: String?, _ message: String) -> String { code.map { "\($0): \(message)" } ?? message }
        switch self {
        case .invalidRequest(let reason): return "invalid request: \(reason)"
        case .unauthorized(let code, let message): return "unauthorized (check TELEPAY_NOWPAYMENTS_API_KEY): \(coded(code, message))"
        case .notFound(let code, let message): return "not found: \(coded(code, message))"
        case .rejected(let status, let code, let message): return "rejected with \(status): \(coded(code, message))"
        case .rateLimited(let message): return "rate limited: \(message)"
        case .server(let status, let message): return "provider error \(status): \(message)"
        case .timedOut(let after): return "no answer within \(after)"
        case .network(let description): return "network error: \(description)"
        case .invalidResponse(let description): return "invalid response: \(description)"
        }
    }
}
