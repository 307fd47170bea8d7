import Foundation

/// A currency on a network, as ChangeNOW names them: lowercase tickers (`eth`, `usdt`) and networks
/// (`eth`, `bsc`, `trx`). A `nil` network lets ChangeNOW pick the ticker's default network.
public struct ExchangeLeg: Sendable, Hashable {
    public var currency: String
    public var network: String?

    public init(currency: String, network: String?) {
        self.currency = currency
        self.network = network
    }
}

/// What is swapped into what.
public struct ExchangePair: Sendable, Hashable {
    public var from: ExchangeLeg
    public var to: ExchangeLeg

    public init(from: ExchangeLeg, to: ExchangeLeg) {
        self.from = from
        self.to = to
    }
}

/// `standard` floats the rate until the deposit arrives; `fixed-rate` freezes it with a `rateId`.
public enum ExchangeFlow: String, Sendable, Hashable, Codable {
    case standard
    case fixedRate = "fixed-rate"
}

/// Which amount the caller fixes: what is sent (`direct`) or what must arrive (`reverse`).
public enum ExchangeAmount: Sendable, Hashable {
    case sending(Decimal)
    case receiving(Decimal)

    var type: String {
        switch self {
        case .sending: return "direct"
        case .receiving: return "reverse"
        }
    }
}

/// `GET /v2/exchange/min-amount`.
public struct MinimumAmount: Sendable, Hashable {
    public var pair: ExchangePair
    public var flow: ExchangeFlow
    public var minAmount: Decimal

    public init(pair: ExchangePair, flow: ExchangeFlow, minAmount: Decimal) {
        self.pair = pair
        self.flow = flow
        self.minAmount = minAmount
    }
}

/// A request for `GET /v2/exchange/estimated-amount`.
public struct EstimateRequest: Sendable, Hashable {
    public var pair: ExchangePair
    public var flow: ExchangeFlow
    public var amount: ExchangeAmount
    /// Fixed-rate only: ask for a `rateId` that holds the quote until `validUntil`.
    public var useRateId: Bool

    public init(pair: ExchangePair, flow: ExchangeFlow, amount: ExchangeAmount, useRateId: Bool = false) {
        self.pair = pair
        self.flow = flow
        self.amount = amount
        self.useRateId = useRateId
    }
}

/// A quote. In a direct estimate `toAmount` is the estimate; in a reverse one `fromAmount` is.
public struct Estimate: Sendable, Hashable {
    public var pair: ExchangePair
    public var flow: ExchangeFlow
    public var fromAmount: Decimal
    public var toAmount: Decimal
    public var rateId: String?
    public var validUntil: String?
    public var transactionSpeedForecast: String?
    public var warningMessage: String?
    public var depositFee: Decimal?
    public var withdrawalFee: Decimal?

    public init(
        pair: ExchangePair, flow: ExchangeFlow, fromAmount: Decimal, toAmount: Decimal, rateId: String? = nil, validUntil: String? = nil,
        transactionSpeedForecast: String? = nil, warningMessage: String? = nil, depositFee: Decimal? = nil, withdrawalFee: Decimal? = nil
    ) {
        self.pair = pair
        self.flow = flow
        self.fromAmount = fromAmount
        self.toAmount = toAmount
        self.rateId = rateId
        self.validUntil = validUntil
        self.transactionSpeedForecast = transactionSpeedForecast
        self.warningMessage = warningMessage
        self.depositFee = depositFee
        self.withdrawalFee = withdrawalFee
    }
}

/// A request for `POST /v2/exchange`.
public struct CreateExchangeRequest: Sendable, Hashable {
    public var pair: ExchangePair
    public var flow: ExchangeFlow
    public var amount: ExchangeAmount
    /// Where ChangeNOW pays out.
    public var address: String
    /// Memo or destination tag of the payout address, for networks that need one.
    public var extraId: String?
    /// Where ChangeNOW returns the deposit if the swap fails.
    public var refundAddress: String?
    public var refundExtraId: String?
    /// Required with `fixed-rate`: the `rateId` of a fresh estimate.
    public var rateId: String?

    public init(
        pair: ExchangePair, flow: ExchangeFlow, amount: ExchangeAmount, address: String, extraId: String? = nil,
        refundAddress: String? = nil, refundExtraId: String? = nil, rateId: String? = nil
    ) {
        self.pair = pair
        self.flow = flow
        self.amount = amount
        self.address = address
        self.extraId = extraId
        self.refundAddress = refundAddress
        self.refundExtraId = refundExtraId
        self.rateId = rateId
    }
}

/// ChangeNOW's answer to a create: where to send `fromAmount` so the swap starts.
public struct CreatedExchange: Sendable, Hashable {
    public var id: String
    public var fromAmount: Decimal
    public var toAmount: Decimal
    public var flow: ExchangeFlow
    public var payinAddress: String
    public var payinExtraId: String?
    public var payoutAddress: String
    public var payoutExtraId: String?
    public var pair: ExchangePair
    public var refundAddress: String?
    public var rateId: String?

    public init(
        id: String, fromAmount: Decimal, toAmount: Decimal, flow: ExchangeFlow, payinAddress: String, payinExtraId: String? = nil,
        payoutAddress: String, payoutExtraId: String? = nil, pair: ExchangePair, refundAddress: String? = nil, rateId: String? = nil
    ) {
        self.id = id
        self.fromAmount = fromAmount
        self.toAmount = toAmount
        self.flow = flow
        self.payinAddress = payinAddress
        self.payinExtraId = payinExtraId
        self.payoutAddress = payoutAddress
        self.payoutExtraId = payoutExtraId
        self.pair = pair
        self.refundAddress = refundAddress
        self.rateId = rateId
    }
}

/// The official v2 status enum; anything newer is kept as `.other` rather than failing the poll.
public enum ExchangeStatus: Sendable, Hashable, CustomStringConvertible {
    case new, waiting, confirming, exchanging, sending, finished, failed, refunded, verifying
    case other(String)

    public init(rawValue: String) {
        switch rawValue {
        case "new": self = .new
        case "waiting": self = .waiting
        case "confirming": self = .confirming
        case "exchanging": self = .exchanging
        case "sending": self = .sending
        case "finished": self = .finished
        case "failed": self = .failed
        case "refunded": self = .refunded
        case "verifying": self = .verifying
        default: self = .other(rawValue)
        }
    }

    public var rawValue: String {
        switch self {
        case .new: return "new"
        case .waiting: return "waiting"
        case .confirming: return "confirming"
        case .exchanging: return "exchanging"
        case .sending: return "sending"
        case .finished: return "finished"
        case .failed: return "failed"
        case .refunded: return "refunded"
        case .verifying: return "verifying"
        case .other(let value): return value
        }
    }

    /// No further status change is expected.
    public var isFinal: Bool {
        switch self {
        case .finished, .failed, .refunded: return true
        default: return false
        }
    }

    public var description: String { rawValue }
}

/// `GET /v2/exchange/by-id`.
public struct ExchangeStatusReport: Sendable, Hashable {
    public var id: String
    public var status: ExchangeStatus
    public var pair: ExchangePair
    public var expectedAmountFrom: Decimal?
    public var expectedAmountTo: Decimal?
    /// Actual amounts, known once the deposit arrives and the payout is sent.
    public var amountFrom: Decimal?
    public var amountTo: Decimal?
    public var payinAddress: String
    public var payoutAddress: String
    public var payinHash: String?
    public var payoutHash: String?
    public var refundHash: String?
    public var refundAmount: Decimal?
    public var createdAt: String?
    public var updatedAt: String?

    public init(
        id: String, status: ExchangeStatus, pair: ExchangePair, expectedAmountFrom: Decimal? = nil, expectedAmountTo: Decimal? = nil,
        amountFrom: Decimal? = nil, amountTo: Decimal? = nil, payinAddress: String, payoutAddress: String, payinHash: String? = nil,
        payoutHash: String? = nil, refundHash: String? = nil, refundAmount: Decimal? = nil, createdAt: String? = nil, updatedAt: String? = nil
    ) {
        self.id = id
        self.status = status
        self.pair = pair
        self.expectedAmountFrom = expectedAmountFrom
        self.expectedAmountTo = expectedAmountTo
        self.amountFrom = amountFrom
        self.amountTo = amountTo
        self.payinAddress = payinAddress
        self.payoutAddress = payoutAddress
        self.payinHash = payinHash
        self.payoutHash = payoutHash
        self.refundHash = refundHash
        self.refundAmount = refundAmount
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// `GET /v2/validate/address`.
public struct AddressValidation: Sendable, Hashable {
    public var isValid: Bool
    /// Why the address is invalid, when ChangeNOW says.
    public var message: String?
    public var isActivated: Bool?

    public init(isValid: Bool, message: String? = nil, isActivated: Bool? = nil) {
        self.isValid = isValid
        self.message = message
        self.isActivated = isActivated
    }
}

/// A page request for `GET /v2/exchanges`, oldest created first.
public struct ExchangeListQuery: Sendable, Hashable {
    /// 1–100 (ChangeNOW's bounds).
    public var limit: Int
    public var offset: Int
    /// Only exchanges created at or after this moment.
    public var createdFrom: Date?
    public var createdTo: Date?

    public init(limit: Int = 100, offset: Int = 0, createdFrom: Date? = nil, createdTo: Date? = nil) {
        self.limit = limit
        self.offset = offset
        self.createdFrom = createdFrom
        self.createdTo = createdTo
    }
}

/// One exchange of `GET /v2/exchanges`. The list nests the legs (`payin`, `payout`) where `by-id` has
/// flat fields.
public struct ListedExchange: Sendable, Hashable {
    /// The transaction id `by-id` and `create` use (the list's `requestId`).
    public var id: String
    public var status: ExchangeStatus
    public var flow: String?
    public var createdAt: String?
    public var updatedAt: String?
    public var payinCurrency: String?
    public var payinAddress: String?
    /// The deposit actually received, once there is one.
    public var payinAmount: Decimal?
    public var payinExpectedAmount: Decimal?
    public var payinHash: String?
    public var payoutCurrency: String?
    public var payoutAddress: String?
    public var payoutExtraId: String?
    public var payoutHash: String?

    public init(
        id: String, status: ExchangeStatus, flow: String? = nil, createdAt: String? = nil, updatedAt: String? = nil,
        payinCurrency: String? = nil, payinAddress: String? = nil, payinAmount: Decimal? = nil, payinExpectedAmount: Decimal? = nil,
        payinHash: String? = nil, payoutCurrency: String? = nil, payoutAddress: String? = nil, payoutExtraId: String? = nil, payoutHash: String? = nil
    ) {
        self.id = id
        self.status = status
        self.flow = flow
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.payinCurrency = payinCurrency
        self.payinAddress = payinAddress
        self.payinAmount = payinAmount
        self.payinExpectedAmount = payinExpectedAmount
        self.payinHash = payinHash
        self.payoutCurrency = payoutCurrency
        self.payoutAddress = payoutAddress
        self.payoutExtraId = payoutExtraId
        self.payoutHash = payoutHash
    }

    /// A deposit reached the exchange: it left `new`/`waiting`, or names a deposit amount or hash.
    public var isFunded: Bool {
        switch status {
        case .new, .waiting: return payinAmount != nil || payinHash != nil
        case .failed: return payinAmount != nil || payinHash != nil
        default: return true
        }
    }
}

/// One page of `GET /v2/exchanges`.
public struct ExchangeListPage: Sendable, Hashable {
    /// ChangeNOW's `count`: how many exchanges match the query.
    public var count: Int?
    public var exchanges: [ListedExchange]
}
