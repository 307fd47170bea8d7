import Foundation

/// ChangeNOW's v1 fixed-rate flow, the fallback when v2's fixed-rate is unavailable to the key.
///
/// v1 names a currency by its legacy ticker (`eth`, `btc`, `usdttrc20`), which v2's `by-id` reports as
/// `fromLegacyTicker`/`toLegacyTicker`, and authenticates with the key in the path or query. Like v2's
/// create, a v1 create is not idempotent: record an intent before calling it.
public protocol ChangeNowV1FixedRateAPI: Sendable {
    /// `GET /v1/exchange-range/fixed-rate/{from}_{to}`.
    func v1FixedRateRange(from: String, to: String) async throws(ChangeNowError) -> FixedRateRange
    /// `GET /v1/exchange-amount/fixed-rate/…` (direct) or `/v1/exchange-deposit/fixed-rate/…` (reverse),
    /// with `useRateId=true` so the quote can be frozen by the create.
    func v1FixedRateEstimate(from: String, to: String, amount: ExchangeAmount) async throws(ChangeNowError) -> V1FixedRateEstimate
    /// `POST /v1/transactions/fixed-rate/{key}` (direct) or `…/fixed-rate/from-result/{key}` (reverse).
    func v1CreateFixedRateExchange(_ request: V1FixedRateExchangeRequest) async throws(ChangeNowError) -> V1FixedRateExchange
}

/// The amounts a fixed-rate pair accepts; `maxAmount` is `nil` when ChangeNOW sets none.
public struct FixedRateRange: Sendable, Hashable {
    public var minAmount: Decimal
    public var maxAmount: Decimal?
}

/// A v1 fixed-rate quote. Direct: `amount` is what arrives, after `networkFee`. Reverse: `amount` is
/// the deposit needed for the wanted result.
public struct V1FixedRateEstimate: Sendable, Hashable {
    public var amount: Decimal
    public var networkFee: Decimal?
    /// Pass it to the create to hold this quote until `validUntil`.
    public var rateId: String?
    public var validUntil: String?
    public var transactionSpeedForecast: String?
    public var warningMessage: String?
}

/// A v1 fixed-rate create. `.sending` fixes the deposit (`amount`), `.receiving` the payout (`result`).
public struct V1FixedRateExchangeRequest: Sendable, Hashable {
    public var from: String
    public var to: String
    public var amount: ExchangeAmount
    public var address: String
    public var extraId: String?
    public var refundAddress: String?
    public var refundExtraId: String?
    /// The `rateId` of a fresh `v1FixedRateEstimate`; without one ChangeNOW fixes the rate at creation.
    public var rateId: String?

    public init(
        from: String, to: String, amount: ExchangeAmount, address: String, extraId: String? = nil,
        refundAddress: String? = nil, refundExtraId: String? = nil, rateId: String? = nil
    ) {
        self.from = from
        self.to = to
        self.amount = amount
        self.address = address
        self.extraId = extraId
        self.refundAddress = refundAddress
        self.refundExtraId = refundExtraId
        self.rateId = rateId
    }
}

/// ChangeNOW's answer to a v1 fixed-rate create: send the deposit to `payinAddress` before `validUntil`.
public struct V1FixedRateExchange: Sendable, Hashable {
    public var id: String
    public var payinAddress: String
    public var payoutAddress: String
    public var payoutExtraId: String?
    public var fromTicker: String
    public var toTicker: String
    /// What ChangeNOW expects to pay out: the create's `amount` (direct) or `result` (reverse). The deposit
    /// is the request's amount (direct) or the reverse estimate's (reverse).
    public var amount: Decimal?
    public var refundAddress: String?
    public var validUntil: String?
    public var rateId: String?
}

extension ChangeNowClient: ChangeNowV1FixedRateAPI {
    public func v1FixedRateRange(from: String, to: String) async throws(ChangeNowError) -> FixedRateRange {
        let operation = "v1 fixed-rate range"
        let pair = try Self.v1Pair(from, to)
        let raw: RawV1Range = try await get(
            "/v1/exchange-range/fixed-rate/\(pair)", query: [("api_key", apiKey)], operation: operation, keyInHeader: false)
        return FixedRateRange(minAmount: try raw.minAmount.required("minAmount", operation), maxAmount: raw.maxAmount?.value)
    }

    public func v1FixedRateEstimate(from: String, to: String, amount: ExchangeAmount) async throws(ChangeNowError) -> V1FixedRateEstimate {
        let operation = "v1 fixed-rate estimate"
        let pair = try Self.v1Pair(from, to)
        let query = [("api_key", apiKey), ("useRateId", "true")]
        switch amount {
        case .sending(let value):
            let text = try Self.wireAmount(value, "send_amount")
            let raw: RawV1Estimate = try await get(
                "/v1/exchange-amount/fixed-rate/\(text)/\(pair)", query: query, operation: operation, keyInHeader: false)
            return V1FixedRateEstimate(
                amount: try raw.estimatedAmount.required("estimatedAmount", operation), networkFee: raw.networkFee?.value,
                rateId: raw.rateId.nonEmpty, validUntil: raw.validUntil, transactionSpeedForecast: raw.transactionSpeedForecast,
                warningMessage: raw.warningMessage
            )
        case .receiving(let value):
            let text = try Self.wireAmount(value, "result amount")
            let raw: RawV1Estimate = try await get(
                "/v1/exchange-deposit/fixed-rate/\(text)/\(pair)", query: query, operation: operation, keyInHeader: false)
            return V1FixedRateEstimate(
                amount: try raw.estimatedDeposit.required("estimatedDeposit", operation), networkFee: raw.networkFee?.value,
                rateId: raw.rateId.nonEmpty, validUntil: raw.validUntil, transactionSpeedForecast: raw.transactionSpeedForecast,
                warningMessage: raw.warningMessage
            )
        }
    }

    public func v1CreateFixedRateExchange(_ request: V1FixedRateExchangeRequest) async throws(ChangeNowError) -> V1FixedRateExchange {
        let operation = "v1 fixed-rate create"
        _ = try Self.v1Pair(request.from, request.to)
        var body: [String: String] = [
            "from": request.from, "to": request.to, "address": request.address, "extraId": request.extraId ?? "",
            "refundAddress": request.refundAddress ?? "", "refundExtraId": request.refundExtraId ?? "",
            "userId": "", "contactEmail": "", "rateId": request.rateId ?? "",
        ]
        let path: String
        switch request.amount {
        case .sending(let value):
            body["amount"] = try Self.wireAmount(value, "amount")
            path = "/v1/transactions/fixed-rate/\(Self.percentEncode(apiKey))"
        case .receiving(let value):
            body["result"] = try Self.wireAmount(value, "result")
            path = "/v1/transactions/fixed-rate/from-result/\(Self.percentEncode(apiKey))"
        }
        let raw: RawV1Created = try await send(.POST, path, query: [], body: body, operation: operation, keyInHeader: false)
        return V1FixedRateExchange(
            id: try Self.required(raw.id, "id", operation),
            payinAddress: try Self.required(raw.payinAddress, "payinAddress", operation),
            payoutAddress: try Self.required(raw.payoutAddress, "payoutAddress", operation),
            payoutExtraId: raw.payoutExtraId.nonEmpty,
            fromTicker: raw.fromCurrency ?? request.from, toTicker: raw.toCurrency ?? request.to,
            amount: (raw.amount ?? raw.result)?.value, refundAddress: raw.refundAddress.nonEmpty,
            validUntil: raw.validUntil, rateId: raw.rateId.nonEmpty
        )
    }

    /// `{from}_{to}` in a path: legacy tickers are lowercase letters and digits, so nothing needs escaping.
    static func v1Pair(_ from: String, _ to: String) throws(ChangeNowError) -> String {
        for ticker in [from, to] {
            guard (2...20).contains(ticker.count), ticker.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber) }) else {
                throw .invalidRequest("'\(ticker)' is not a ChangeNOW v1 ticker (lowercase letters and digits)")
            }
        }
        return "\(from)_\(to)"
    }
}

private struct RawV1Range: Decodable {
    let minAmount: WireDecimal?
    let maxAmount: WireDecimal?
}

private struct RawV1Estimate: Decodable {
    let estimatedAmount: WireDecimal?
    let estimatedDeposit: WireDecimal?
    let networkFee: WireDecimal?
    let rateId: String?
    let validUntil: String?
    let transactionSpeedForecast: String?
    let warningMessage: String?
}

private struct RawV1Created: Decodable {
    let id: String?
    let payinAddress: String?
    let payoutAddress: String?
    let payoutExtraId: String?
    let fromCurrency: String?
    let toCurrency: String?
    let amount: WireDecimal?
    let result: WireDecimal?
    let refundAddress: String?
    let validUntil: String?
    let rateId: String?
}
