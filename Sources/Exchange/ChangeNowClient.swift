import AsyncHTTPClient
import Foundation
import Money
import NIOCore
import NIOHTTP1

/// The ChangeNOW v2 calls TelePay makes. `ChangeNowClient` is the production implementation; tests
/// run it against a fake that enforces the documented rules.
public protocol ChangeNowAPI: Sendable {
    func minimumAmount(pair: ExchangePair, flow: ExchangeFlow) async throws(ChangeNowError) -> MinimumAmount
    func estimate(_ request: EstimateRequest) async throws(ChangeNowError) -> Estimate
    /// Not idempotent: ChangeNOW has no idempotency key, so a retry after a lost answer creates a
    /// second exchange. Callers record an intent first (see `ExchangeOrderService`).
    func createExchange(_ request: CreateExchangeRequest) async throws(ChangeNowError) -> CreatedExchange
    func exchangeStatus(id: String) async throws(ChangeNowError) -> ExchangeStatusReport
    /// `network` is ChangeNOW's network code (`eth`, `trx`, `btc`, …).
    func validateAddress(network: String, address: String) async throws(ChangeNowError) -> AddressValidation
    /// The partner's exchanges. Only ChangeNOW's *private* API key may list; any other key gets
    /// `.rejected(code: .forbidden)` (see `ChangeNowError.cannotList`).
    func listExchanges(_ query: ExchangeListQuery) async throws(ChangeNowError) -> ExchangeListPage
}

/// ChangeNOW API v2 over AsyncHTTPClient, authenticated with the `x-changenow-api-key` header (and the v1
/// fixed-rate fallback, whose key goes in the path or query; see `ChangeNowV1FixedRateAPI`).
/// Amounts travel as decimal strings and are read back as `Decimal` from the JSON number's digits.
public final class ChangeNowClient: ChangeNowAPI {
    public let baseURL: String
    public let timeout: Duration
    let apiKey: String
    private let httpClient: HTTPClient
    private let maximumResponseBytes = 1024 * 1024

    /// - Parameters:
    ///   - baseURL: `https://api.changenow.io` in production; without a trailing slash.
    ///   - apiKey: sent only in the header; never logged or put in an error.
    public init(baseURL: String, apiKey: String, timeout: Duration = .seconds(20), httpClient: HTTPClient = .shared) {
        var trimmed = baseURL
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.baseURL = trimmed
        self.apiKey = apiKey
        self.timeout = timeout
        self.httpClient = httpClient
    }

    public func minimumAmount(pair: ExchangePair, flow: ExchangeFlow) async throws(ChangeNowError) -> MinimumAmount {
        let operation = "min-amount"
        let raw: RawMinimumAmount = try await get(
            "/v2/exchange/min-amount", query: Self.pairQuery(pair) + [("flow", flow.rawValue)], operation: operation)
        return MinimumAmount(pair: pair, flow: flow, minAmount: try raw.minAmount.required("minAmount", operation))
    }

    public func estimate(_ request: EstimateRequest) async throws(ChangeNowError) -> Estimate {
        let operation = "estimated-amount"
        var query = Self.pairQuery(request.pair) + [("flow", request.flow.rawValue), ("type", request.amount.type)]
        switch request.amount {
        case .sending(let amount): query.append(("fromAmount", try Self.wireAmount(amount, "fromAmount")))
        case .receiving(let amount): query.append(("toAmount", try Self.wireAmount(amount, "toAmount")))
        }
        if request.useRateId {
            guard request.flow == .fixedRate else { throw .invalidRequest("useRateId applies to the fixed-rate flow only") }
            query.append(("useRateId", "true"))
        }
        let raw: RawEstimate = try await get("/v2/exchange/estimated-amount", query: query, operation: operation)
        return Estimate(
            pair: request.pair, flow: request.flow,
            fromAmount: try raw.fromAmount.required("fromAmount", operation),
            toAmount: try raw.toAmount.required("toAmount", operation),
            rateId: raw.rateId, validUntil: raw.validUntil,
            transactionSpeedForecast: raw.transactionSpeedForecast, warningMessage: raw.warningMessage,
            depositFee: raw.depositFee?.value, withdrawalFee: raw.withdrawalFee?.value
        )
    }

    public func createExchange(_ request: CreateExchangeRequest) async throws(ChangeNowError) -> CreatedExchange {
        let operation = "create exchange"
        if request.flow == .fixedRate && (request.rateId ?? "").isEmpty {
            throw .invalidRequest("a fixed-rate exchange needs the rateId of an estimate")
        }
        var fromAmount = ""
        var toAmount = ""
        switch request.amount {
        case .sending(let amount): fromAmount = try Self.wireAmount(amount, "fromAmount")
        case .receiving(let amount): toAmount = try Self.wireAmount(amount, "toAmount")
        }
        // The documented body sends every field, unused ones as empty strings.
        let body: [String: String] = [
            "fromCurrency": request.pair.from.currency, "fromNetwork": request.pair.from.network ?? "",
            "toCurrency": request.pair.to.currency, "toNetwork": request.pair.to.network ?? "",
            "fromAmount": fromAmount, "toAmount": toAmount,
            "address": request.address, "extraId": request.extraId ?? "",
            "refundAddress": request.refundAddress ?? "", "refundExtraId": request.refundExtraId ?? "",
            "userId": "", "payload": "", "contactEmail": "",
            "flow": request.flow.rawValue, "type": request.amount.type, "rateId": request.rateId ?? "",
        ]
        let raw: RawCreatedExchange = try await send(.POST, "/v2/exchange", query: [], body: body, operation: operation)
        guard let flow = ExchangeFlow(rawValue: raw.flow ?? request.flow.rawValue) else {
            throw .invalidResponse(operation: operation, reason: "unknown flow \(raw.flow ?? "")")
        }
        return CreatedExchange(
            id: try Self.required(raw.id, "id", operation),
            fromAmount: try raw.fromAmount.required("fromAmount", operation),
            toAmount: try raw.toAmount.required("toAmount", operation),
            flow: flow,
            payinAddress: try Self.required(raw.payinAddress, "payinAddress", operation),
            payinExtraId: raw.payinExtraId.nonEmpty,
            payoutAddress: try Self.required(raw.payoutAddress, "payoutAddress", operation),
            payoutExtraId: raw.payoutExtraId.nonEmpty,
            pair: ExchangePair(
                from: ExchangeLeg(currency: raw.fromCurrency ?? request.pair.from.currency, network: raw.fromNetwork ?? request.pair.from.network),
                to: ExchangeLeg(currency: raw.toCurrency ?? request.pair.to.currency, network: raw.toNetwork ?? request.pair.to.network)
            ),
            refundAddress: raw.refundAddress.nonEmpty,
            rateId: raw.rateId.nonEmpty
        )
    }

    public func exchangeStatus(id: String) async throws(ChangeNowError) -> ExchangeStatusReport {
        let operation = "exchange status"
        guard !id.isEmpty else { throw .invalidRequest("empty exchange id") }
        let raw: RawStatus = try await get("/v2/exchange/by-id", query: [("id", id)], operation: operation)
        return ExchangeStatusReport(
            id: try Self.required(raw.id, "id", operation),
            status: ExchangeStatus(rawValue: try Self.required(raw.status, "status", operation)),
            pair: ExchangePair(
                from: ExchangeLeg(currency: raw.fromCurrency ?? "", network: raw.fromNetwork),
                to: ExchangeLeg(currency: raw.toCurrency ?? "", network: raw.toNetwork)
            ),
            expectedAmountFrom: raw.expectedAmountFrom?.value, expectedAmountTo: raw.expectedAmountTo?.value,
            amountFrom: raw.amountFrom?.value, amountTo: raw.amountTo?.value,
            payinAddress: raw.payinAddress ?? "", payoutAddress: raw.payoutAddress ?? "",
            payinHash: raw.payinHash.nonEmpty, payoutHash: raw.payoutHash.nonEmpty, refundHash: raw.refundHash.nonEmpty,
            refundAmount: raw.refundAmount?.value, createdAt: raw.createdAt, updatedAt: raw.updatedAt
        )
    }

    public func validateAddress(network: String, address: String) async throws(ChangeNowError) -> AddressValidation {
        let raw: RawValidation = try await get(
            "/v2/validate/address", query: [("currency", network), ("address", address)], operation: "validate address")
        return AddressValidation(isValid: raw.result, message: raw.message, isActivated: raw.isActivated)
    }

    public func listExchanges(_ query: ExchangeListQuery) async throws(ChangeNowError) -> ExchangeListPage {
        let operation = "list exchanges"
        guard (1...100).contains(query.limit) else { throw .invalidRequest("limit must be 1–100, not \(query.limit)") }
        guard query.offset >= 0 else { throw .invalidRequest("offset must not be negative") }
        var parameters = [
            ("limit", String(query.limit)), ("offset", String(query.offset)),
            ("sortDirection", "ASC"), ("sortField", "createdAt"), ("dateField", "createdAt"),
        ]
        if let from = query.createdFrom { parameters.append(("dateFrom", Self.listDate(from))) }
        if let to = query.createdTo { parameters.append(("dateTo", Self.listDate(to))) }
        let raw: RawExchangeList = try await get("/v2/exchanges", query: parameters, operation: operation)
        var exchanges: [ListedExchange] = []
        for item in raw.exchanges ?? [] {
            // `requestId` is documented as the transaction id; `exchangeId` is a second, internal id.
            guard let id = item.requestId.nonEmpty ?? item.exchangeId.nonEmpty else {
                throw .invalidResponse(operation: operation, reason: "an exchange without requestId")
            }
            exchanges.append(
                ListedExchange(
                    id: id, status: ExchangeStatus(rawValue: try Self.required(item.status, "status", operation)), flow: item.flow,
                    createdAt: item.createdAt, updatedAt: item.updatedAt,
                    payinCurrency: item.payin?.currency, payinAddress: item.payin?.address, payinAmount: item.payin?.amount?.value,
                    payinExpectedAmount: item.payin?.expectedAmount?.value, payinHash: item.payin?.hash.nonEmpty,
                    payoutCurrency: item.payout?.currency, payoutAddress: item.payout?.address, payoutExtraId: item.payout?.extraId.nonEmpty,
                    payoutHash: item.payout?.hash.nonEmpty
                ))
        }
        return ExchangeListPage(count: raw.count, exchanges: exchanges)
    }

    /// The list's date format, `YYYY-MM-DDTHH:mm:ss.sssZ`.
    static func listDate(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    // MARK: - Transport

    func get<Result: Decodable>(
        _ path: String, query: [(String, String)], operation: String, keyInHeader: Bool = true
    ) async throws(ChangeNowError) -> Result {
        try await send(.GET, path, query: query, body: nil as [String: String]?, operation: operation, keyInHeader: keyInHeader)
    }

    /// v2 authenticates with the header; v1 callers put the key in the path or query themselves and pass
    /// `keyInHeader: false`. The URL is never put in an error, so a key in it cannot leak that way.
    func send<Result: Decodable, Body: Encodable>(
        _ method: HTTPMethod, _ path: String, query: [(String, String)], body: Body?, operation: String, keyInHeader: Bool = true
    ) async throws(ChangeNowError) -> Result {
        var url = baseURL + path
        if !query.isEmpty {
            url += "?" + query.map { "\($0.0)=\(Self.percentEncode($0.1))" }.joined(separator: "&")
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        if keyInHeader { request.headers.add(name: "x-changenow-api-key", value: apiKey) }
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            do {
                request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
            } catch {
                throw .invalidRequest("cannot encode the body: \(error)")
            }
            request.headers.add(name: "Content-Type", value: "application/json")
        }

        let status: HTTPResponseStatus
        let data: Data
        do {
            let response = try await httpClient.execute(request, timeout: .nanoseconds(Int64(timeout.nanoseconds)))
            status = response.status
            data = Data(try await response.body.collect(upTo: maximumResponseBytes).readableBytesView)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw .timedOut(operation: operation)
        } catch {
            throw .transport(operation: operation, cause: error)
        }

        let decoder = JSONDecoder()
        guard (200..<300).contains(status.code) else {
            if let failure = try? decoder.decode(RawError.self, from: data) {
                throw .rejected(status: Int(status.code), code: ChangeNowErrorCode(failure.error), message: failure.message ?? "")
            }
            throw .httpStatus(code: Int(status.code), body: String(decoding: data.prefix(500), as: UTF8.self))
        }
        do {
            return try decoder.decode(Result.self, from: data)
        } catch {
            throw .invalidResponse(operation: operation, reason: "\(error)")
        }
    }

    private static func pairQuery(_ pair: ExchangePair) -> [(String, String)] {
        var query = [("fromCurrency", pair.from.currency), ("toCurrency", pair.to.currency)]
        if let network = pair.from.network { query.append(("fromNetwork", network)) }
        if let network = pair.to.network { query.append(("toNetwork", network)) }
        return query
    }

    /// Plain decimal notation, never an exponent; ChangeNOW rejects zero and negative amounts, so we do first.
    static func wireAmount(_ amount: Decimal, _ field: String) throws(ChangeNowError) -> String {
        guard amount > 0, amount.isFinite else { throw .invalidRequest("\(field) must be a positive amount, not \(amount)") }
        return DecimalText.plain(amount)
    }

    static func required(_ value: String?, _ field: String, _ operation: String) throws(ChangeNowError) -> String {
        guard let value, !value.isEmpty else { throw .invalidResponse(operation: operation, reason: "no \(field)") }
        return value
    }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    static func percentEncode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }
}

/// An amount ChangeNOW sends as a JSON number (documented) or a string (seen from some endpoints).
struct WireDecimal: Decodable {
    let value: Decimal

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            guard let parsed = DecimalText.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a decimal amount")
            }
            value = parsed
        } else {
            value = try container.decode(Decimal.self)
        }
    }
}

extension Optional where Wrapped == WireDecimal {
    func required(_ field: String, _ operation: String) throws(ChangeNowError) -> Decimal {
        guard let self else { throw .invalidResponse(operation: operation, reason: "no \(field)") }
        return self.value
    }
}

extension Optional where Wrapped == String {
    var nonEmpty: String? {
        guard let self, !self.isEmpty else { return nil }
        return self
    }
}

extension Duration {
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

private struct RawError: Decodable {
    let error: String
    let message: String?
}

private struct RawMinimumAmount: Decodable {
    let minAmount: WireDecimal?
}

private struct RawEstimate: Decodable {
    let fromAmount: WireDecimal?
    let toAmount: WireDecimal?
    let rateId: String?
    let validUntil: String?
    let transactionSpeedForecast: String?
    let warningMessage: String?
    let depositFee: WireDecimal?
    let withdrawalFee: WireDecimal?
}

private struct RawCreatedExchange: Decodable {
    let id: String?
    let fromAmount: WireDecimal?
    let toAmount: WireDecimal?
    let flow: String?
    let payinAddress: String?
    let payinExtraId: String?
    let payoutAddress: String?
    let payoutExtraId: String?
    let fromCurrency: String?
    let fromNetwork: String?
    let toCurrency: String?
    let toNetwork: String?
    let refundAddress: String?
    let rateId: String?
}

private struct RawStatus: Decodable {
    let id: String?
    let status: String?
    let fromCurrency: String?
    let fromNetwork: String?
    let toCurrency: String?
    let toNetwork: String?
    let expectedAmountFrom: WireDecimal?
    let expectedAmountTo: WireDecimal?
    let amountFrom: WireDecimal?
    let amountTo: WireDecimal?
    let payinAddress: String?
    let payoutAddress: String?
    let payinHash: String?
    let payoutHash: String?
    let refundHash: String?
    let refundAmount: WireDecimal?
    let createdAt: String?
    let updatedAt: String?
}

private struct RawExchangeList: Decodable {
    struct Leg: Decodable {
        let currency: String?
        let address: String?
        let extraId: String?
        let amount: WireDecimal?
        let expectedAmount: WireDecimal?
        let hash: String?
    }

    struct Item: Decodable {
        let requestId: String?
        let exchangeId: String?
        let status: String?
        let flow: String?
        let createdAt: String?
        let updatedAt: String?
        let payin: Leg?
        let payout: Leg?
    }

    let count: Int?
    let exchanges: [Item]?
}

private struct RawValidation: Decodable {
    let result: Bool
    let message: String?
    let isActivated: Bool?
}
