import AsyncHTTPClient
import FakeServing
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Payments

/// A stateful stand-in for the NOWPayments API, spoken to over real HTTP.
///
/// It checks `x-api-key`, validates `POST /v1/invoice` the way the real API documents (required fields,
/// supported currencies, http(s) URLs, no unknown fields, a minimum amount) and answers in its error shape,
/// keeps invoices and payments, serves `GET /v1/payment/{id}` and `GET /v1/status`, and drives a payment
/// through any sequence of statuses, posting each IPN signed the way NOWPayments signs it — or forged,
/// tampered with, unsigned, repeated or out of order, as a test asks. It can be told to fail (5xx, slow
/// answers) for provider-down tests. Unlike the real service it delivers IPNs to loopback addresses.
public actor FakeNOWPayments {
    /// An invoice as created through the API.
    public struct Invoice: Sendable, Hashable {
        public var id: String
        public var orderID: String?
        public var orderDescription: String?
        /// The amount's literal text exactly as the request carried it.
        public var priceAmount: String
        public var priceCurrency: String
        public var payCurrency: String?
        public var ipnCallbackURL: String?
        public var successURL: String?
        public var cancelURL: String?
        public var partiallyPaidURL: String?
        public var isFixedRate: Bool
        public var isFeePaidByUser: Bool
        public var createdAt: String
    }

    /// A payment made against an invoice.
    public struct Payment: Sendable, Hashable {
        public var id: Int64
        /// Set on a re-deposit to the same address: NOWPayments files it as a new payment under its parent.
        public var parentID: Int64?
        public var invoiceID: String
        /// The price this payment reports, when it differs from its invoice's (a test of the checks).
        public var priceAmountOverride: String?
        public var status: String
        public var payCurrency: String
        public var payAmount: Decimal
        public var actuallyPaid: Decimal
        public var payAddress: String
        public var createdAt: String
        public var updatedAt: String
    }

    /// One API call as received.
    public struct RecordedRequest: Sendable, Hashable {
        public var method: String
        public var path: String
        public var apiKey: String?
        public var body: String
    }

    /// How the next API answer (or every answer, during an outage) goes wrong.
    public enum Failure: Sendable, Hashable {
        /// This status with NOWPayments' JSON error shape.
        case serverError(Int)
        /// This status with an HTML page, as a proxy in front of the API would answer.
        case gatewayError(Int)
        /// The normal answer (and its effects, e.g. a created invoice), but only after this long.
        case slow(Duration)
    }

    /// An IPN as NOWPayments would post it: exact body bytes and the signature it computed.
    public struct IPN: Sendable, Hashable {
        public var url: String
        public var paymentID: Int64
        public var status: String
        public var body: [UInt8]
        public var signature: String

        public init(url: String, paymentID: Int64, status: String, body: [UInt8], signature: String) {
            self.url = url
            self.paymentID = paymentID
            self.status = status
            self.body = body
            self.signature = signature
        }
    }

    /// How an IPN is signed when delivered.
    public enum Signing: Sendable, Hashable {
        /// The correct signature in this serialisation variant.
        case valid(IPNSignatureVariant)
        /// Signed with another secret.
        case forged
        /// The original signature on a body whose `actually_paid` was raised afterwards.
        case tampered
        /// No `x-nowpayments-sig` header.
        case missing
    }

    public static let paymentStatuses: Set<String> = [
        "waiting", "confirming", "confirmed", "sending", "partially_paid", "finished", "failed", "refunded", "expired",
    ]
    public static let fiatCurrencies: Set<String> = ["usd", "eur", "gbp"]
    public static let cryptoCurrencies: Set<String> = ["btc", "eth", "ltc", "trx", "usdttrc20", "usdterc20", "usdc"]

    public nonisolated let apiKey: String
    public nonisolated let ipnSecret: String
    /// The account whose e-mail and password `POST /v1/auth` exchanges for a JWT (listing payments needs it).
    public nonisolated let account = (email: "owner@telepay.example", password: "fake-account-password")
    /// Smallest `price_amount` accepted; below it the API answers `AMOUNT_MINIMAL_ERROR`.
    public nonisolated let minimumPriceAmount: Decimal

    private(set) public var invoices: [String: Invoice] = [:]
    private(set) public var payments: [Int64: Payment] = [:]
    private(set) public var requests: [RecordedRequest] = []

    private var queuedFailures: [Failure] = []
    private var outage: Failure?
    private var nextInvoiceID: Int64 = 4_522_625_843
    private var nextPaymentID: Int64 = 5_077_125_051
    private let signer: IPNSignatureVerifier
    private var clock: @Sendable () -> Date = { Date() }
    private var settleOnChain: (@Sendable (Decimal) async throws -> Void)?
    /// Outcomes sent to the merchant, by payment.
    private(set) public var settledAmounts: [Int64: Decimal] = [:]
    /// The currency NOWPayments converts every payment into for the merchant (the platform's settlement asset).
    public nonisolated let settlementCurrency = "eth"
    /// How many units of the settlement currency one unit of a pay currency is worth, in this fake.
    public static let settlementRates: [String: Decimal] = [
        "eth": 1, "btc": 25, "ltc": Decimal(string: "0.03")!, "trx": Decimal(string: "0.00005")!,
        "usdttrc20": Decimal(string: "0.0004")!, "usdterc20": Decimal(string: "0.0004")!, "usdc": Decimal(string: "0.0004")!,
    ]
    /// JWTs issued by `POST /v1/auth`, with when they stop working (5 minutes, as documented).
    private var tokens: [String: ContinuousClock.Instant] = [:]

    public init(apiKey: String = "FAKE-NOWPAYMENTS-API-KEY", ipnSecret: String = "test-ipn-secret", minimumPriceAmount: Decimal = 1) {
        self.apiKey = apiKey
        self.ipnSecret = ipnSecret
        self.minimumPriceAmount = minimumPriceAmount
        self.signer = IPNSignatureVerifier(secret: ipnSecret)
    }

    // MARK: - Failure injection

    /// The next `failures.count` API calls fail in these ways, in order.
    public func failNext(_ failures: [Failure]) {
        queuedFailures += failures
    }

    /// Every API call fails this way until the outage is set to `nil`.
    public func setOutage(_ failure: Failure?) {
        outage = failure
    }

    // MARK: - Driving payments

    /// The buyer picks a coin on the invoice page: a payment in `waiting` appears.
    public func startPayment(invoiceID: String, payCurrency: String = "eth", payAmount: Decimal) throws -> Int64 {
        guard let invoice = invoices[invoiceID] else { throw FakeNOWPaymentsError.unknownInvoice(invoiceID) }
        guard Self.cryptoCurrencies.contains(payCurrency) else { throw FakeNOWPaymentsError.unsupportedCurrency(payCurrency) }
        if let fixed = invoice.payCurrency, fixed != payCurrency { throw FakeNOWPaymentsError.unsupportedCurrency(payCurrency) }
        let id = nextPaymentID
        nextPaymentID += 1
        let now = timestamp()
        payments[id] = Payment(
            id: id, parentID: nil, invoiceID: invoiceID, priceAmountOverride: nil, status: "waiting", payCurrency: payCurrency,
            payAmount: payAmount, actuallyPaid: 0, payAddress: "0xd1cDE08A07cD25adEbEd35c3867a59228C09B606", createdAt: now, updatedAt: now
        )
        return id
    }

    /// The buyer sends more to the address of `parentID`: NOWPayments makes it a new payment with
    /// `parent_payment_id`, in `status` (`finished` or `partially_paid`), carrying only the new deposit.
    public func reDeposit(parentID: Int64, actuallyPaid: Decimal, status: String = "finished") async throws -> IPN {
        guard let parent = payments[parentID] else { throw FakeNOWPaymentsError.unknownPayment(parentID) }
        let id = nextPaymentID
        nextPaymentID += 1
        let now = timestamp()
        payments[id] = Payment(
            id: id, parentID: parentID, invoiceID: parent.invoiceID, priceAmountOverride: nil, status: status, payCurrency: parent.payCurrency,
            payAmount: parent.payAmount, actuallyPaid: actuallyPaid, payAddress: parent.payAddress, createdAt: now, updatedAt: now
        )
        if status == "finished" { try await settle(id) }
        return try ipn(for: id)
    }

    /// Makes the payment report another price than its invoice's (what a mix-up or a forged order id looks like).
    public func reportPrice(_ paymentID: Int64, _ price: String) throws {
        guard payments[paymentID] != nil else { throw FakeNOWPaymentsError.unknownPayment(paymentID) }
        payments[paymentID]?.priceAmountOverride = price
    }

    /// Moves the payment to `status` (any documented status, in any order) and returns the IPN NOWPayments
    /// would post for it, without sending it. `actuallyPaid` defaults to nothing for `waiting`, `failed` and
    /// `expired`, half the amount for `partially_paid`, and the full amount otherwise.
    /// When the payment becomes `finished` for the first time, its outcome is sent to the merchant (on the local
    /// chain when `settleOnChain` is set) before the IPN is returned, as NOWPayments sends funds before it
    /// reports `finished`.
    public func setStatus(_ paymentID: Int64, _ status: String, actuallyPaid: Decimal? = nil) async throws -> IPN {
        guard var payment = payments[paymentID] else { throw FakeNOWPaymentsError.unknownPayment(paymentID) }
        guard Self.paymentStatuses.contains(status) else { throw FakeNOWPaymentsError.unknownStatus(status) }
        let settles = status == "finished" && payment.status != "finished"
        payment.status = status
        if let actuallyPaid {
            payment.actuallyPaid = actuallyPaid
        } else if ["waiting", "failed", "expired"].contains(status) {
            payment.actuallyPaid = 0
        } else if status == "partially_paid" {
            payment.actuallyPaid = payment.payAmount / 2
        } else {
            payment.actuallyPaid = payment.payAmount
        }
        payment.updatedAt = timestamp()
        payments[paymentID] = payment
        if settles { try await settle(paymentID) }
        return try ipn(for: paymentID)
    }

    /// Sends a finished payment's outcome to the merchant, when a test asked for it.
    func settle(_ paymentID: Int64) async throws {
        guard let settleOnChain, let payment = payments[paymentID] else { return }
        try await settleOnChain(outcomeAmount(payment))
        settledAmounts[paymentID] = outcomeAmount(payment)
    }

    /// Pays each finished payment's outcome (in the settlement currency) to the merchant; a test points it at
    /// the hot wallet on the local chain.
    public func settleOnChain(_ transfer: @escaping @Sendable (_ amount: Decimal) async throws -> Void) {
        settleOnChain = transfer
    }

    /// What NOWPayments sends the merchant for a payment: what arrived, converted into the settlement currency
    /// at a fixed test rate, less a 1 % fee.
    func outcomeAmount(_ payment: Payment) -> Decimal {
        let rate = Self.settlementRates[payment.payCurrency] ?? 1
        return DecimalRounding.down(payment.actuallyPaid * rate * Decimal(string: "0.99")!, scale: 18)
    }

    /// The IPN for the payment's current state.
    public func ipn(for paymentID: Int64) throws -> IPN {
        guard let payment = payments[paymentID], let invoice = invoices[payment.invoiceID] else {
            throw FakeNOWPaymentsError.unknownPayment(paymentID)
        }
        guard let url = invoice.ipnCallbackURL else { throw FakeNOWPaymentsError.noCallbackURL(invoice.id) }
        let body = ipnBody(payment, invoice)
        return IPN(url: url, paymentID: paymentID, status: payment.status, body: body.javaScriptText(), signature: signer.sign(body))
    }

    /// Posts the IPN to its callback URL; returns the HTTP status the receiver answered.
    @discardableResult
    public nonisolated func deliver(_ ipn: IPN, signing: Signing = .valid(.recursive)) async throws -> Int {
        var body = ipn.body
        var signature: String?
        switch signing {
        case .valid(let variant):
            signature = variant == .recursive ? ipn.signature : signer.sign(try ExactJSON.parse(ipn.body), variant: variant)
        case .forged:
            signature = IPNSignatureVerifier(secret: ipnSecret + "-forged").sign(try ExactJSON.parse(ipn.body))
        case .tampered:
            signature = ipn.signature
            body = Self.raisingActuallyPaid(try ExactJSON.parse(ipn.body)).javaScriptText()
        case .missing:
            signature = nil
        }
        var request = HTTPClientRequest(url: ipn.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let signature { request.headers.add(name: "x-nowpayments-sig", value: signature) }
        request.body = .bytes(ByteBuffer(bytes: body))
        // Generous: a machine running the whole suite in parallel has taken over 30 s to answer 50 callbacks at once.
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }

    /// Moves the payment through `statuses`, delivering each IPN as it happens; returns the answers.
    public func drive(_ paymentID: Int64, through statuses: [String]) async throws -> [Int] {
        var answers: [Int] = []
        for status in statuses {
            answers.append(try await deliver(try await setStatus(paymentID, status)))
        }
        return answers
    }

    // MARK: - HTTP

    /// Starts the server on a free loopback port; returns the API base URL (`http://127.0.0.1:<port>/v1`)
    /// and a task to cancel when done.
    public nonisolated func start() async throws -> (baseURL: String, server: Task<Void, any Error>) {
        let router = Router()
        router.get("v1/status") { request, _ in try await self.serve(request, path: "status", body: []) }
        router.post("v1/invoice") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 20)
            return try await self.serve(request, path: "invoice", body: Array(body.readableBytesView))
        }
        router.get("v1/payment/:id") { request, context in
            try await self.serve(request, path: "payment/" + (context.parameters.get("id") ?? ""), body: [])
        }
        router.get("v1/payment") { request, _ in
            try await self.serve(request, path: "payments?" + (request.uri.query ?? ""), body: [])
        }
        router.post("v1/auth") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            return try await self.serve(request, path: "auth", body: Array(body.readableBytesView))
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: Logger(label: "fake-nowpayments") { _ in SwiftLogNoOpLogHandler() }
        )
        let server = serveUntilCancelled(app, logger: app.logger)
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw FakeNOWPaymentsError.serverDidNotStart }
        return ("http://127.0.0.1:\(port)/v1", server)
    }

    nonisolated func serve(_ request: Request, path: String, body: [UInt8]) async throws -> Response {
        let key = request.headers[HTTPField.Name("x-api-key")!]
        let bearer = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        let (failure, answer) = await handle(method: request.method.rawValue, path: path, apiKey: key, bearer: bearer, body: body)
        switch failure {
        case .serverError(let status)?:
            return Self.response(status, Self.errorBody(status, code: "INTERNAL_ERROR", message: "Internal server error"))
        case .gatewayError(let status)?:
            return Response(
                status: .init(code: status), headers: [.contentType: "text/html"],
                body: .init(byteBuffer: ByteBuffer(string: "<html><body><h1>\(status) Bad Gateway</h1></body></html>"))
            )
        case .slow(let delay)?:
            try await Task.sleep(for: delay)
        case nil:
            break
        }
        return Self.response(answer.status, answer.body)
    }

    /// Records the call, picks any injected failure, and computes the normal answer (applying its effects
    /// unless the failure means the request never got through).
    func handle(method: String, path: String, apiKey key: String?, bearer: String? = nil, body: [UInt8]) -> (Failure?, (status: Int, body: ExactJSON))
    {
        requests.append(RecordedRequest(method: method, path: path, apiKey: key, body: String(decoding: body, as: UTF8.self)))
        let failure = outage ?? (queuedFailures.isEmpty ? nil : queuedFailures.removeFirst())
        switch failure {
        case .serverError?, .gatewayError?:
            return (failure, (0, .null))
        case .slow?, nil:
            return (failure, answer(method: method, path: path, apiKey: key, bearer: bearer, body: body))
        }
    }

    func answer(method: String, path: String, apiKey key: String?, bearer: String? = nil, body: [UInt8]) -> (status: Int, body: ExactJSON) {
        if path == "status" { return (200, .object([.init("message", .text("OK"))])) }
        if path == "auth" { return authenticate(body) }
        guard let key, key == apiKey else {
            return (401, Self.errorBody(401, code: "INVALID_API_KEY", message: "Invalid api key"))
        }
        if path == "invoice" { return createInvoice(body) }
        if path.hasPrefix("payments?") { return listPayments(query: String(path.dropFirst("payments?".count)), bearer: bearer) }
        let id = path.dropFirst("payment/".count)
        guard let number = Int64(id), let payment = payments[number], let invoice = invoices[payment.invoiceID] else {
            return (404, Self.errorBody(404, code: "PAYMENT_NOT_FOUND", message: "Payment \(id) not found"))
        }
        return (200, paymentBody(payment, invoice))
    }

    // MARK: - Account

    /// `POST /v1/auth {email, password}` → `{token}`, valid for 5 minutes.
    func authenticate(_ body: [UInt8]) -> (status: Int, body: ExactJSON) {
        guard let json = try? ExactJSON.parse(body), json["email"]?.stringValue == account.email,
            json["password"]?.stringValue == account.password
        else {
            return (401, Self.errorBody(401, code: "INVALID_CREDENTIALS", message: "Invalid email or password"))
        }
        let token = "jwt-" + String(UInt64.random(in: 1...UInt64.max), radix: 36)
        tokens[token] = .now + .seconds(300)
        return (200, .object([.init("token", .text(token))]))
    }

    /// Forgets every JWT, as if they all expired.
    public func expireTokens() {
        tokens.removeAll()
    }

    /// `GET /v1/payment/?invoiceId=…&limit=…&page=…` (x-api-key and a Bearer JWT): the invoice's payments.
    func listPayments(query: String, bearer: String?) -> (status: Int, body: ExactJSON) {
        guard let bearer, let expires = tokens[bearer], expires > .now else {
            return (401, Self.errorBody(401, code: "AUTH_REQUIRED", message: "Authorization header is empty (Bearer JWTtoken is required)"))
        }
        var parameters: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { parameters[String(parts[0])] = String(parts[1]) }
        }
        let limit = Int(parameters["limit"] ?? "10") ?? 0
        let page = Int(parameters["page"] ?? "0") ?? -1
        guard (1...500).contains(limit), page >= 0 else {
            return (400, Self.errorBody(400, code: "INVALID_REQUEST_PARAMS", message: "limit must be 1-500 and page at least 0"))
        }
        let matching = payments.values.filter { parameters["invoiceId"] == nil || $0.invoiceID == parameters["invoiceId"] }.sorted { $0.id < $1.id }
        let slice = matching.dropFirst(page * limit).prefix(limit)
        let data = slice.compactMap { payment in invoices[payment.invoiceID].map { paymentBody(payment, $0) } }
        let pages = (matching.count + limit - 1) / limit
        return (
            200,
            .object([
                .init("data", .array(data)),
                .init("limit", .number(JSONNumber(Int64(limit)))),
                .init("page", .number(JSONNumber(Int64(page)))),
                .init("pagesCount", .number(JSONNumber(Int64(pages)))),
                .init("total", .number(JSONNumber(Int64(matching.count)))),
            ])
        )
    }

    // MARK: - Invoices

    static let invoiceFields: Set<String> = [
        "price_amount", "price_currency", "pay_currency", "ipn_callback_url", "order_id", "order_description",
        "success_url", "cancel_url", "partially_paid_url", "is_fixed_rate", "is_fee_paid_by_user",
    ]

    func createInvoice(_ body: [UInt8]) -> (status: Int, body: ExactJSON) {
        func invalid(_ message: String) -> (status: Int, body: ExactJSON) {
            (400, Self.errorBody(400, code: "INVALID_REQUEST_PARAMS", message: message))
        }
        guard let json = try? ExactJSON.parse(body), case .object(let members) = json else {
            return invalid("Request body must be a JSON object")
        }
        if let unknown = members.first(where: { !Self.invoiceFields.contains($0.key.value) }) {
            return invalid("\"\(unknown.key.value)\" is not allowed")
        }
        guard let priceValue = json["price_amount"], !priceValue.isNull else { return invalid("\"price_amount\" is required") }
        guard let price = priceValue.numberValue, let amount = try? price.decimal() else { return invalid("\"price_amount\" must be a number") }
        guard amount > 0 else { return invalid("\"price_amount\" must be a positive number") }
        guard let priceCurrency = json["price_currency"]?.stringValue else { return invalid("\"price_currency\" is required") }
        guard Self.fiatCurrencies.contains(priceCurrency) || Self.cryptoCurrencies.contains(priceCurrency) else {
            return (400, Self.errorBody(400, code: "CURRENCY_UNAVAILABLE", message: "Currency \(priceCurrency) is unavailable"))
        }
        var texts: [String: String] = [:]
        for field in ["pay_currency", "order_id", "order_description", "ipn_callback_url", "success_url", "cancel_url", "partially_paid_url"] {
            guard let value = json[field], !value.isNull else { continue }
            guard let text = value.stringValue else { return invalid("\"\(field)\" must be a string") }
            texts[field] = text
        }
        for field in ["ipn_callback_url", "success_url", "cancel_url", "partially_paid_url"] {
            if let text = texts[field], !Self.isHTTPURL(text) {
                return invalid("\"\(field)\" must be a valid uri with a scheme matching the http|https pattern")
            }
        }
        if let pay = texts["pay_currency"], !Self.cryptoCurrencies.contains(pay) {
            return (400, Self.errorBody(400, code: "CURRENCY_UNAVAILABLE", message: "Currency \(pay) is unavailable"))
        }
        var flags: [String: Bool] = [:]
        for field in ["is_fixed_rate", "is_fee_paid_by_user"] {
            guard let value = json[field], !value.isNull else { continue }
            guard case .bool(let flag) = value else { return invalid("\"\(field)\" must be a boolean") }
            flags[field] = flag
        }
        guard amount >= minimumPriceAmount else {
            return (400, Self.errorBody(400, code: "AMOUNT_MINIMAL_ERROR", message: "amountTo is too small"))
        }
        let id = String(nextInvoiceID)
        nextInvoiceID += 1
        let invoice = Invoice(
            id: id, orderID: texts["order_id"], orderDescription: texts["order_description"], priceAmount: price.literal,
            priceCurrency: priceCurrency, payCurrency: texts["pay_currency"], ipnCallbackURL: texts["ipn_callback_url"],
            successURL: texts["success_url"], cancelURL: texts["cancel_url"], partiallyPaidURL: texts["partially_paid_url"],
            isFixedRate: flags["is_fixed_rate"] ?? false, isFeePaidByUser: flags["is_fee_paid_by_user"] ?? false, createdAt: timestamp()
        )
        invoices[id] = invoice
        return (201, invoiceBody(invoice))
    }

    func invoiceBody(_ invoice: Invoice) -> ExactJSON {
        func text(_ value: String?) -> ExactJSON { value.map { ExactJSON.text($0) } ?? .null }
        return .object([
            .init("id", .text(invoice.id)),
            .init("token_id", .text("tok" + invoice.id)),
            .init("order_id", text(invoice.orderID)),
            .init("order_description", text(invoice.orderDescription)),
            // The documented example returns the price as a string.
            .init("price_amount", .text(invoice.priceAmount)),
            .init("price_currency", .text(invoice.priceCurrency)),
            .init("pay_currency", text(invoice.payCurrency)),
            .init("ipn_callback_url", text(invoice.ipnCallbackURL)),
            .init("invoice_url", .text("https://nowpayments.io/payment/?iid=\(invoice.id)")),
            .init("success_url", text(invoice.successURL)),
            .init("cancel_url", text(invoice.cancelURL)),
            .init("partially_paid_url", text(invoice.partiallyPaidURL)),
            .init("payout_currency", .null),
            .init("created_at", .text(invoice.createdAt)),
            .init("updated_at", .text(invoice.createdAt)),
            .init("is_fixed_rate", .bool(invoice.isFixedRate)),
            .init("is_fee_paid_by_user", .bool(invoice.isFeePaidByUser)),
        ])
    }

    // MARK: - Payments

    /// `GET /v1/payment/{id}`, shaped like the documented example (ids as numbers).
    func paymentBody(_ payment: Payment, _ invoice: Invoice) -> ExactJSON {
        func text(_ value: String?) -> ExactJSON { value.map { ExactJSON.text($0) } ?? .null }
        return .object([
            .init("payment_id", .number(JSONNumber(payment.id))),
            .init("parent_payment_id", payment.parentID.map { .number(JSONNumber($0)) } ?? .null),
            .init("invoice_id", .number(JSONNumber(literal: invoice.id)!)),
            .init("payment_status", .text(payment.status)),
            .init("pay_address", .text(payment.payAddress)),
            .init("payin_extra_id", .null),
            .init("price_amount", .number(JSONNumber(literal: payment.priceAmountOverride ?? invoice.priceAmount)!)),
            .init("price_currency", .text(invoice.priceCurrency)),
            .init("pay_amount", .number(JSONNumber(payment.payAmount)!)),
            .init("actually_paid", .number(JSONNumber(payment.actuallyPaid)!)),
            .init("pay_currency", .text(payment.payCurrency)),
            .init("order_id", text(invoice.orderID)),
            .init("order_description", text(invoice.orderDescription)),
            .init("purchase_id", .number(JSONNumber(payment.id + 235_697_562))),
            .init("outcome_amount", .number(JSONNumber(outcomeAmount(payment))!)),
            .init("outcome_currency", .text(settlementCurrency)),
            .init("payout_hash", .null),
            .init("payin_hash", payment.status == "waiting" ? .null : .text("0x" + String(repeating: "ab", count: 32))),
            .init("created_at", .text(payment.createdAt)),
            .init("updated_at", .text(payment.updatedAt)),
            .init("burning_percent", .text("null")),
            .init("type", .text("crypto2crypto")),
            .init("payment_extra_ids", .array([.number(JSONNumber(payment.id + 436_213_102))])),
        ])
    }

    /// The IPN body, in the field order of the documented example, with a nested `fee` object whose small
    /// values exercise number formatting.
    func ipnBody(_ payment: Payment, _ invoice: Invoice) -> ExactJSON {
        func text(_ value: String?) -> ExactJSON { value.map { ExactJSON.text($0) } ?? .null }
        return .object([
            .init("payment_id", .number(JSONNumber(payment.id))),
            .init("parent_payment_id", payment.parentID.map { .number(JSONNumber($0)) } ?? .null),
            .init("invoice_id", .number(JSONNumber(literal: invoice.id)!)),
            .init("payment_status", .text(payment.status)),
            .init("pay_address", .text(payment.payAddress)),
            .init("payin_extra_id", .null),
            .init("price_amount", .number(JSONNumber(literal: payment.priceAmountOverride ?? invoice.priceAmount)!)),
            .init("price_currency", .text(invoice.priceCurrency)),
            .init("pay_amount", .number(JSONNumber(payment.payAmount)!)),
            .init("actually_paid", .number(JSONNumber(payment.actuallyPaid)!)),
            .init("actually_paid_at_fiat", .number(JSONNumber(0))),
            .init("pay_currency", .text(payment.payCurrency)),
            .init("order_id", text(invoice.orderID)),
            .init("order_description", text(invoice.orderDescription)),
            .init("purchase_id", .text(String(payment.id + 235_697_562))),
            .init("outcome_amount", .number(JSONNumber(outcomeAmount(payment))!)),
            .init("outcome_currency", .text(settlementCurrency)),
            .init("payment_extra_ids", .null),
            .init(
                "fee",
                .object([
                    .init("currency", .text(payment.payCurrency)),
                    .init("depositFee", .number(JSONNumber(literal: "0.0000123")!)),
                    .init("withdrawalFee", .number(JSONNumber(0))),
                    .init("serviceFee", .number(JSONNumber(literal: "0.00002071")!)),
                ])),
        ])
    }

    static func raisingActuallyPaid(_ body: ExactJSON) -> ExactJSON {
        guard case .object(var members) = body, let index = members.firstIndex(where: { $0.key.value == "actually_paid" }) else { return body }
        members[index].value = .number(JSONNumber(literal: "1000000")!)
        return .object(members)
    }

    // MARK: - Helpers

    static func errorBody(_ status: Int, code: String, message: String) -> ExactJSON {
        .object([
            .init("status", .bool(false)),
            .init("statusCode", .number(JSONNumber(Int64(status)))),
            .init("code", .text(code)),
            .init("message", .text(message)),
        ])
    }

    static func response(_ status: Int, _ body: ExactJSON) -> Response {
        Response(
            status: .init(code: status),
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: body.javaScriptText()))
        )
    }

    static func isHTTPURL(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else { return false }
        return scheme == "http" || scheme == "https"
    }

    /// The provider's "now", for `created_at` / `updated_at`.
    func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: clock())
    }

    /// Makes the provider's clock agree with a test's moved clock.
    public func useClock(_ clock: @escaping @Sendable () -> Date) {
        self.clock = clock
    }
}

/// Rounding for the fake's amounts.
enum DecimalRounding {
    static func down(_ value: Decimal, scale: Int) -> Decimal {
        var value = value
        var result = Decimal()
        NSDecimalRound(&result, &value, scale, .down)
        return result
    }
}

/// Misuse of the fake by a test.
public enum FakeNOWPaymentsError: Error, Sendable, Hashable {
    case unknownInvoice(String)
    case unknownPayment(Int64)
    case unknownStatus(String)
    case unsupportedCurrency(String)
    case noCallbackURL(String)
    case serverDidNotStart
}
