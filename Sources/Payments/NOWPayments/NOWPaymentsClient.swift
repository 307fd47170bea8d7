import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Resilience

/// The NOWPayments REST API on AsyncHTTPClient. The base URL decides production or
/// sandbox; every call carries `x-api-key`, has a deadline, and reads amounts exactly from the JSON text.
/// Reads are retried on network errors, 429 and 5xx; `POST /invoice` is sent once, because it is not
/// idempotent.
public struct NOWPaymentsClient: PaymentProvider {
    /// Where and how to call the API.
    public struct Configuration: Sendable {
        /// e.g. `https://api.nowpayments.io/v1` or `https://api-sandbox.nowpayments.io/v1`.
        public var baseURL: URL
        public var apiKey: String
        /// Deadline for one HTTP exchange, body included.
        public var requestTimeout: Duration
        public var retry: RetryPolicy
        /// The account's e-mail and password: listing an invoice's payments needs a JWT from `POST /auth`.
        public var account: (email: String, password: String)?

        public init(
            baseURL: URL, apiKey: String, requestTimeout: Duration = .seconds(10), retry: RetryPolicy = .standard,
            account: (email: String, password: String)? = nil
        ) {
            self.baseURL = baseURL
            self.apiKey = apiKey
            self.requestTimeout = requestTimeout
            self.retry = retry
            self.account = account
        }
    }

    /// How reads are retried: capped exponential backoff with jitter.
    public struct RetryPolicy: Sendable {
        /// Total tries, including the first.
        public var maxAttempts: Int
        public var baseDelay: Duration
        public var maxDelay: Duration

        public static let standard = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(250), maxDelay: .seconds(4))
        public static let none = RetryPolicy(maxAttempts: 1, baseDelay: .zero, maxDelay: .zero)

        public init(maxAttempts: Int, baseDelay: Duration, maxDelay: Duration) {
            self.maxAttempts = max(1, maxAttempts)
            self.baseDelay = baseDelay
            self.maxDelay = maxDelay
        }

        /// A random delay between half and all of base × 2^(attempt−1), capped at `maxDelay`.
        func delay(afterAttempt attempt: Int) -> Duration {
            Backoff(initial: baseDelay, maximum: max(baseDelay, maxDelay), jitter: .upperHalf).delay(afterAttempt: attempt)
        }
    }

    public let configuration: Configuration
    private let httpClient: HTTPClient
    private let logger: Logger
    private let token = BearerToken()

    /// Larger answers are refused; real ones are a few kilobytes.
    static let maxResponseBytes = 1 << 20

    public init(configuration: Configuration, httpClient: HTTPClient = .shared, logger: Logger) {
        var configuration = configuration
        var base = configuration.baseURL.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        configuration.baseURL = URL(string: base) ?? configuration.baseURL
        self.configuration = configuration
        self.httpClient = httpClient
        self.logger = logger
    }

    public func createInvoice(_ request: InvoiceRequest) async throws(PaymentProviderError) -> Invoice {
        let body = try Self.invoiceBody(request)
        let json = try await exchange(.POST, "invoice", body: body.javaScriptText(), expecting: [200, 201])
        let invoice = try Self.decodeInvoice(json)
        logger.info("NOWPayments invoice created", metadata: ["invoice_id": "\(invoice.id)", "order_id": "\(request.orderID)"])
        return invoice
    }

    public func payment(id: String) async throws(PaymentProviderError) -> Payment {
        guard !id.isEmpty, id.utf8.count <= 64, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw .invalidRequest(reason: "payment id '\(id.prefix(64))' is not of letters, digits, '-' or '_'")
        }
        return try Self.decodePayment(try await read("payment/\(id)"))
    }

    /// `GET /payment/?invoiceId=…` (x-api-key and a Bearer JWT), every page. The JWT lasts 5 minutes; it
    /// is reused for 4 and fetched again once when the API says it is no longer valid.
    public func payments(invoiceID: String) async throws(PaymentProviderError) -> [Payment]? {
        guard configuration.account != nil else { return nil }
        guard !invoiceID.isEmpty, invoiceID.utf8.count <= 64, invoiceID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw .invalidRequest(reason: "invoice id '\(invoiceID.prefix(64))' is not of letters and digits")
        }
        var payments: [Payment] = []
        var page = 0
        while true {
            let path = "payment/?invoiceId=\(invoiceID)&limit=100&page=\(page)"
            let json: ExactJSON
            do {
                json = try await read(path, bearer: try await bearer(renew: false))
            } catch {
                guard case .unauthorized = error else { throw error }
                json = try await read(path, bearer: try await bearer(renew: true))
            }
            guard case .array(let items)? = json["data"] else { throw .invalidResponse(description: "payment list has no \"data\" array") }
            for item in items { payments.append(try Self.decodePayment(item)) }
            let pages = json["pagesCount"]?.numberValue.flatMap { Int($0.literal) } ?? 1
            page += 1
            if page >= pages || items.isEmpty { return payments }
        }
    }

    /// A JWT for the account, from the cache when it is younger than 4 minutes.
    func bearer(renew: Bool) async throws(PaymentProviderError) -> String {
        if !renew, let cached = await token.current(maxAge: .seconds(240)) { return cached }
        guard let account = configuration.account else { throw .invalidRequest(reason: "no NOWPayments account configured") }
        let body = ExactJSON.object([.init("email", .text(account.email)), .init("password", .text(account.password))])
        let json = try await exchange(.POST, "auth", body: body.javaScriptText(), expecting: [200, 201], bearer: nil)
        guard let value = json["token"]?.stringValue, !value.isEmpty else { throw .invalidResponse(description: "auth answer has no \"token\"") }
        await token.store(value)
        return value
    }

    /// `GET /status`: whether the API answers at all (it does not check the key).
    public func status() async throws(PaymentProviderError) -> String {
        let json = try await read("status")
        guard let message = json["message"]?.stringValue else {
            throw .invalidResponse(description: "status answer has no \"message\"")
        }
        return message
    }

    // MARK: - Requests

    /// A safe read, retried within the policy on transient failures.
    func read(_ path: String, bearer: String? = nil) async throws(PaymentProviderError) -> ExactJSON {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await exchange(.GET, path, body: nil, expecting: [200], bearer: bearer)
            } catch {
                guard error.isTransient, attempt < configuration.retry.maxAttempts else {
                    if error.isTransient {
                        logger.warning("NOWPayments read gave up", metadata: ["path": "\(path)", "attempts": "\(attempt)", "error": "\(error)"])
                    }
                    throw error
                }
                logger.info("NOWPayments read failed; retrying", metadata: ["path": "\(path)", "attempt": "\(attempt)", "error": "\(error)"])
                do {
                    try await Task.sleep(for: configuration.retry.delay(afterAttempt: attempt))
                } catch {
                    throw .network(description: "cancelled while waiting to retry")
                }
            }
        }
    }

    /// One HTTP exchange: sends, maps the status to success or a typed error, parses the JSON body.
    func exchange(_ method: HTTPMethod, _ path: String, body: [UInt8]?, expecting: Set<Int>, bearer: String? = nil) async throws(PaymentProviderError)
        -> ExactJSON
    {
        var request = HTTPClientRequest(url: configuration.baseURL.absoluteString + "/" + path)
        request.method = method
        request.headers.add(name: "x-api-key", value: configuration.apiKey)
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let timeout = configuration.requestTimeout
        let status: Int
        let bytes: [UInt8]
        do {
            let response = try await httpClient.execute(request, timeout: .nanoseconds(Self.nanoseconds(timeout)), logger: logger)
            status = Int(response.status.code)
            bytes = Array(try await response.body.collect(upTo: Self.maxResponseBytes).readableBytesView)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw .timedOut(after: timeout)
        } catch is NIOTooManyBytesError {
            throw .invalidResponse(description: "answer larger than \(Self.maxResponseBytes) bytes")
        } catch is CancellationError {
            throw .network(description: "cancelled")
        } catch {
            throw .network(description: String(describing: error))
        }
        logger.debug("NOWPayments call", metadata: ["method": "\(method)", "path": "\(path)", "status": "\(status)"])
        guard expecting.contains(status) else {
            throw Self.classify(status: status, body: bytes)
        }
        do {
            return try ExactJSON.parse(bytes)
        } catch {
            throw .invalidResponse(description: "\(error)")
        }
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    /// Maps an error answer, reading `{"statusCode":…,"code":"…","message":"…"}` when it has that shape.
    static func classify(status: Int, body: [UInt8]) -> PaymentProviderError {
        let json = try? ExactJSON.parse(body)
        let code = json?["code"]?.stringValue
        let message =
            json?["message"]?.stringValue
            ?? String(decoding: body.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        switch status {
        case 401, 403: return .unauthorized(code: code, message: message)
        case 404: return .notFound(code: code, message: message)
        case 429: return .rateLimited(message: message)
        case 400..<500:
            return code == "INVALID_API_KEY" ? .unauthorized(code: code, message: message) : .rejected(status: status, code: code, message: message)
        case 500..<600: return .server(status: status, message: message)
        default: return .invalidResponse(description: "unexpected HTTP status \(status): \(message)")
        }
    }

    // MARK: - Bodies

    static func invoiceBody(_ request: InvoiceRequest) throws(PaymentProviderError) -> ExactJSON {
        guard let amount = JSONNumber(request.priceAmount) else {
            throw .invalidRequest(reason: "price amount \(request.priceAmount) is not a finite number")
        }
        var members: [ExactJSON.Member] = [
            .init("price_amount", .number(amount)),
            .init("price_currency", .text(request.priceCurrency)),
            .init("order_id", .text(request.orderID)),
        ]
        func add(_ key: String, _ value: String?) {
            if let value { members.append(.init(key, .text(value))) }
        }
        add("pay_currency", request.payCurrency)
        add("order_description", request.orderDescription)
        add("ipn_callback_url", request.ipnCallbackURL?.absoluteString)
        add("success_url", request.successURL?.absoluteString)
        add("cancel_url", request.cancelURL?.absoluteString)
        add("partially_paid_url", request.partiallyPaidURL?.absoluteString)
        if let fixed = request.isFixedRate { members.append(.init("is_fixed_rate", .bool(fixed))) }
        if let feeByUser = request.isFeePaidByUser { members.append(.init("is_fee_paid_by_user", .bool(feeByUser))) }
        return .object(members)
    }

    static func decodeInvoice(_ json: ExactJSON) throws(PaymentProviderError) -> Invoice {
        let fields = ResponseFields(json: json, what: "invoice")
        let urlText = try fields.requiredString("invoice_url")
        guard let url = URL(string: urlText), url.scheme == "https" || url.scheme == "http" else {
            throw .invalidResponse(description: "invoice_url '\(urlText.prefix(200))' is not an http(s) URL")
        }
        return Invoice(
            id: try fields.requiredID("id"),
            orderID: try fields.string("order_id"),
            priceAmount: try fields.requiredDecimal("price_amount"),
            priceCurrency: try fields.requiredString("price_currency"),
            payCurrency: try fields.string("pay_currency"),
            invoiceURL: url,
            createdAt: try fields.string("created_at")
        )
    }

    /// Decodes a payment from `GET /payment/{id}` or an IPN body (the IPN is "similar to" the former).
    public static func decodePayment(_ json: ExactJSON) throws(PaymentProviderError) -> Payment {
        let fields = ResponseFields(json: json, what: "payment")
        return Payment(
            id: try fields.requiredID("payment_id"),
            invoiceID: try fields.id("invoice_id"),
            parentPaymentID: try fields.id("parent_payment_id"),
            status: PaymentStatus(rawValue: try fields.requiredString("payment_status")),
            orderID: try fields.string("order_id"),
            priceAmount: try fields.decimal("price_amount"),
            priceCurrency: try fields.string("price_currency"),
            payAmount: try fields.decimal("pay_amount"),
            actuallyPaid: try fields.decimal("actually_paid"),
            payCurrency: try fields.string("pay_currency"),
            outcomeAmount: try fields.decimal("outcome_amount"),
            outcomeCurrency: try fields.string("outcome_currency"),
            updatedAt: try fields.string("updated_at")
        )
    }
}

/// The account's JWT and when it was obtained.
actor BearerToken {
    private var value: String?
    private var obtained = ContinuousClock.now

    func current(maxAge: Duration) -> String? {
        guard let value, ContinuousClock.now - obtained < maxAge else { return nil }
        return value
    }

    func store(_ token: String) {
        value = token
        obtained = .now
    }
}

/// Typed reads of a response object's fields, naming the field in every error.
struct ResponseFields {
    let json: ExactJSON
    let what: String

    func fail(_ key: String, _ problem: String) -> PaymentProviderError {
        .invalidResponse(description: "\(what) field \"\(key)\" \(problem)")
    }

    func value(_ key: String) throws(PaymentProviderError) -> ExactJSON? {
        guard case .object = json else { throw .invalidResponse(description: "\(what) is not a JSON object") }
        guard let value = json[key], !value.isNull else { return nil }
        return value
    }

    func string(_ key: String) throws(PaymentProviderError) -> String? {
        guard let value = try value(key) else { return nil }
        guard let text = value.stringValue else { throw fail(key, "is not a string") }
        return text
    }

    func requiredString(_ key: String) throws(PaymentProviderError) -> String {
        guard let text = try string(key), !text.isEmpty else { throw fail(key, "is missing") }
        return text
    }

    /// Ids are documented as strings in some answers and numbers in others (§2.3); both give the digits.
    func id(_ key: String) throws(PaymentProviderError) -> String? {
        guard let value = try value(key) else { return nil }
        switch value {
        case .string(let text) where !text.value.isEmpty: return text.value
        case .number(let number) where number.isIntegerLiteral && !number.literal.hasPrefix("-"): return number.literal
        default: throw fail(key, "is not an id (a string or a whole number)")
        }
    }

    func requiredID(_ key: String) throws(PaymentProviderError) -> String {
        guard let id = try id(key) else { throw fail(key, "is missing") }
        return id
    }

    /// Amounts arrive as numbers (`0.00414231`) or strings (`"1000"`); both are read from their text.
    func decimal(_ key: String) throws(PaymentProviderError) -> Decimal? {
        guard let value = try value(key) else { return nil }
        let text: String
        switch value {
        case .number(let number): text = number.literal
        case .string(let string): text = string.value
        default: throw fail(key, "is not an amount")
        }
        do {
            return try ExactDecimal.parse(text)
        } catch {
            throw fail(key, "is not an exact amount: \(error)")
        }
    }

    func requiredDecimal(_ key: String) throws(PaymentProviderError) -> Decimal {
        guard let amount = try decimal(key) else { throw fail(key, "is missing") }
        return amount
    }
}
