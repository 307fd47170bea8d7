import Exchange
import Foundation
import Payouts
import Synchronization

/// A hot wallet whose every transfer is final at once, for 21,000 gas at 1 gwei.
public final class InstantWallet: PayoutWallet {
    private let keys = Mutex<[String: PayoutTransferOutcome]>([:])
    /// Decides each new transfer's outcome (by default: confirmed for 21,000 gas at 1 gwei).
    private let decide: @Sendable (String) -> PayoutTransferOutcome

    public init(decide: @escaping @Sendable (String) -> PayoutTransferOutcome = { _ in .confirmed(gas: 21_000_000_000_000) }) {
        self.decide = decide
    }

    public func submit(key: String, recipient: String, units: Decimal) async throws {
        keys.withLock { keys in
            if keys[key] == nil { keys[key] = decide(key) }
        }
    }

    public func outcome(key: String) async throws -> PayoutTransferOutcome? {
        keys.withLock { $0[key] }
    }
}

/// ChangeNOW in process: a 0.001 minimum, 2,500 per unit, every exchange waiting when first read and, on the
/// next read, ended as `ending` decides (by default finished; a refund returns 99 % of the deposit).
public final class InProcessChangeNow: ChangeNowAPI {
    public enum Ending: Sendable { case finished, refunded, failed }
    private let ending: @Sendable (String) -> Ending

    public init(ending: @escaping @Sendable (String) -> Ending = { _ in .finished }) {
        self.ending = ending
    }

    private let exchanges = Mutex<[String: (request: CreateExchangeRequest, amount: Decimal, reads: Int)]>([:])

    public func minimumAmount(pair: ExchangePair, flow: ExchangeFlow) async throws(ChangeNowError) -> MinimumAmount {
        MinimumAmount(pair: pair, flow: flow, minAmount: Decimal(string: "0.001")!)
    }

    public func estimate(_ request: EstimateRequest) async throws(ChangeNowError) -> Estimate {
        guard case .sending(let amount) = request.amount else { throw .invalidRequest("sending only") }
        return Estimate(
            pair: request.pair, flow: request.flow, fromAmount: amount, toAmount: amount * 2500, rateId: nil, validUntil: nil,
            transactionSpeedForecast: nil, warningMessage: nil, depositFee: nil, withdrawalFee: nil
        )
    }

    public func createExchange(_ request: CreateExchangeRequest) async throws(ChangeNowError) -> CreatedExchange {
        guard case .sending(let amount) = request.amount else { throw .invalidRequest("sending only") }
        let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(14).lowercased()
        exchanges.withLock { $0[String(id)] = (request, amount, 0) }
        return CreatedExchange(
            id: String(id), fromAmount: amount, toAmount: amount * 2500, flow: request.flow, payinAddress: "0x" + String(repeating: "a", count: 40),
            payinExtraId: nil, payoutAddress: request.address, payoutExtraId: request.extraId, pair: request.pair,
            refundAddress: request.refundAddress, rateId: nil
        )
    }

    public func exchangeStatus(id: String) async throws(ChangeNowError) -> ExchangeStatusReport {
        guard
            let (request, amount, reads) = exchanges.withLock({ exchanges -> (CreateExchangeRequest, Decimal, Int)? in
                guard let entry = exchanges[id] else { return nil }
                exchanges[id] = (entry.request, entry.amount, entry.reads + 1)
                return (entry.request, entry.amount, entry.reads)
            })
        else { throw .rejected(status: 404, code: .notFound, message: "Transaction not found") }
        let ended = reads > 0 ? ending(id) : nil
        let status: ExchangeStatus =
            switch ended {
            case nil: .waiting
            case .finished?: .finished
            case .refunded?: .refunded
            case .failed?: .failed
            }
        let finished = ended == .finished
        return ExchangeStatusReport(
            id: id, status: status, pair: request.pair, expectedAmountFrom: amount, expectedAmountTo: amount * 2500,
            amountFrom: ended == nil ? nil : amount, amountTo: finished ? amount * 2500 : nil, payinAddress: "0x" + String(repeating: "a", count: 40),
            payoutAddress: request.address, payinHash: nil, payoutHash: finished ? Self.payoutHash(of: id) : nil,
            refundHash: ended == .refunded ? "0x" + String(repeating: "c", count: 64) : nil,
            refundAmount: ended == .refunded ? amount * Decimal(string: "0.99")! : nil, createdAt: nil, updatedAt: nil
        )
    }

    /// The payout transaction hash a finished exchange reports: its own, so what arrived can be told apart.
    public static func payoutHash(of id: String) -> String {
        "0x" + id + String(repeating: "b", count: max(64 - id.count, 0))
    }

    /// What the exchange whose payout transaction is `hash` reported sending, in coins; `nil` for an unknown hash.
    public func reportedAmountTo(hash: String) -> Decimal? {
        exchanges.withLock { exchanges in
            exchanges.first { Self.payoutHash(of: $0.key) == hash }.map { $0.value.amount * 2500 }
        }
    }

    public func validateAddress(network: String, address: String) async throws(ChangeNowError) -> AddressValidation {
        AddressValidation(isValid: true, message: nil, isActivated: nil)
    }

    public func listExchanges(_ query: ExchangeListQuery) async throws(ChangeNowError) -> ExchangeListPage {
        throw .invalidRequest("not listed in the benchmark")
    }
}
