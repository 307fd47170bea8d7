import Exchange
import ExchangeOrders
import Foundation
import Logging
import Money

/// The ChangeNOW steps between "this money should be exchanged" and "the hot wallet may fund the exchange",
/// shared by owner payouts and batch conversions. Each step is recorded before the next call:
///
/// 1. an estimate (a pair out of range or inactive now is a refusal that releases the money, not a failure);
/// 2. the exchange intent, under the caller's key, before any create call (a create whose answer was lost is
///    never followed by a second funded exchange);
/// 3. the exchange, created once;
/// 4. a check that it waits for our deposit (`new`/`waiting`), in our asset, at the recorded pay-in
///    address, of our amount;
/// 5. the intent's one funding: exactly its amount to its pay-in address.
///
/// A step ChangeNOW could not answer now (429, 5xx, a timeout, an unknown outcome) waits for the next pass.
struct ExchangeSteps: Sendable {
    let exchange: PayoutExchange
    let logger: Logger

    /// What is being exchanged.
    struct Subject: Sendable {
        /// The intent's idempotency key (`payout:12`, `conversion:3`).
        var key: String
        var pair: ExchangePair
        /// In whole coins of the pair's `from` side.
        var fromAmount: Decimal
        var payoutAddress: String
        var payoutMemo: String?
        /// The intent already recorded for it, if any.
        var intentID: Int64?
    }

    enum Outcome: Sendable {
        /// The exchange waits for exactly this funding.
        case ready(ExchangeFunding)
        /// ChangeNOW could not answer a step now; try again next pass.
        case later
        /// ChangeNOW will not do this exchange: nothing was funded. `ownerFixable`: the payout address is
        /// rejected; `release`: the amount is fine to try again as soon as the exchange takes it (out of range).
        case refused(reason: String, ownerFixable: Bool, release: Bool)
    }

    /// Runs the steps not yet done. `recorded` is called once the intent exists (with the estimate's
    /// `toAmount`) so the caller can store it before anything is created; `reached` reports progress.
    func run(
        _ subject: Subject, recorded: @Sendable (Int64, Decimal?) async throws -> Void, reached: @Sendable (PayoutStep) async -> Void
    ) async throws -> Outcome {
        var intentID = subject.intentID
        if intentID == nil {
            let estimate: Estimate
            do {
                estimate = try await exchange.api.estimate(EstimateRequest(pair: subject.pair, flow: .standard, amount: .sending(subject.fromAmount)))
            } catch {
                if case .rejected(_, let code, let message) = error, code == .outOfRange || code == .pairIsInactive {
                    let reason =
                        "ChangeNOW will not exchange \(DecimalText.plain(subject.fromAmount)) \(subject.pair.from.currency) now (\(code)): \(message)"
                    return .refused(reason: reason, ownerFixable: false, release: true)
                }
                return later(subject, step: "estimate", error)
            }
            await reached(.estimated)
            let intent = try await exchange.orders.record(
                ExchangeIntentRequest(
                    idempotencyKey: subject.key, pair: subject.pair, fromAmount: subject.fromAmount, payoutAddress: subject.payoutAddress,
                    payoutExtraId: subject.payoutMemo, refundAddress: exchange.refundAddress
                ))
            try await recorded(intent.id, estimate.toAmount)
            intentID = intent.id
            await reached(.intentRecorded)
        }
        guard let intentID else { return .later }

        let intent: ExchangeIntent
        do {
            intent = try await exchange.orders.ensureExchange(intentId: intentID)
        } catch let error as ExchangeOrderError {
            if case .createRejected(let cause) = error, !Self.isTransient(cause) {
                var fixable = false
                var release = false
                if case .rejected(_, let code, _) = cause {
                    fixable = code == .notValidParams && "\(cause)".localizedCaseInsensitiveContains("address")
                    release = code == .outOfRange
                }
                return .refused(reason: "ChangeNOW refused the exchange: \(cause)", ownerFixable: fixable, release: release)
            }
            logger.warning("exchange not created yet; trying again next pass", metadata: ["key": "\(subject.key)", "error": "\(error)"])
            return .later
        }
        guard let exchangeID = intent.exchangeId, let payin = intent.payinAddress else { return .later }
        await reached(.exchangeCreated)

        if intent.state == .created {
            let report: ExchangeStatusReport
            do {
                report = try await exchange.api.exchangeStatus(id: exchangeID)
            } catch {
                return later(subject, step: "check the exchange", error)
            }
            let problems = Self.problems(report, exchangeID: exchangeID, from: exchange.from, payin: payin, amount: subject.fromAmount)
            guard problems.isEmpty else {
                return .refused(
                    reason: "exchange \(exchangeID) is not the one to fund: " + problems.joined(separator: "; "), ownerFixable: false, release: false)
            }
            try await exchange.orders.recordStatus(report, intentId: intentID, verifyingAlertAfter: exchange.verifyingAlertAfter)
            await reached(.exchangeVerified)
        }

        let funding = try await exchange.orders.funding(intentId: intentID)
        guard funding.amount == subject.fromAmount, funding.payinAddress == payin else {
            return .refused(reason: "the exchange's funding does not match what is exchanged", ownerFixable: false, release: false)
        }
        return .ready(funding)
    }

    /// What makes an exchange not the one to fund: another id, a status past waiting, another pay-in asset or
    /// address, another amount.
    static func problems(_ report: ExchangeStatusReport, exchangeID: String, from: ExchangeLeg, payin: String, amount: Decimal) -> [String] {
        var problems: [String] = []
        if report.id != exchangeID { problems.append("the status is for exchange \(report.id)") }
        if report.status != .new && report.status != .waiting { problems.append("its status is \(report.status), not waiting") }
        if report.pair.from.currency.lowercased() != from.currency
            || (report.pair.from.network ?? report.pair.from.currency).lowercased() != from.network
        {
            problems.append("it takes \(report.pair.from.currency) on \(report.pair.from.network ?? "?")")
        }
        if report.payinAddress.lowercased() != payin.lowercased() { problems.append("its pay-in address changed") }
        if let expected = report.expectedAmountFrom, expected != amount {
            problems.append("it expects \(DecimalText.plain(expected)), not \(DecimalText.plain(amount))")
        }
        return problems
    }

    /// A refusal that says "not now" (rate limited, unauthorised while a key rotates) rather than "never".
    static func isTransient(_ error: ChangeNowError) -> Bool {
        if case .rejected(let status, let code, _) = error {
            return status == 429 || status >= 500 || code == .unauthorized
        }
        return error.outcomeUnknown
    }

    func later(_ subject: Subject, step: String, _ error: any Error) -> Outcome {
        logger.warning("exchange step postponed", metadata: ["key": "\(subject.key)", "step": "\(step)", "error": "\(error)"])
        return .later
    }
}
