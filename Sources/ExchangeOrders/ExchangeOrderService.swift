import Exchange
import Foundation
import Logging
import Money
import PostgresNIO
import Storage

/// A swap TelePay wants made: send `fromAmount` of the `from` leg, pay the result to `payoutAddress`.
public struct ExchangeIntentRequest: Sendable, Hashable {
    /// The caller's business id (e.g. `payout:42`); a second request with it returns the first intent.
    public var idempotencyKey: String
    public var pair: ExchangePair
    public var fromAmount: Decimal
    public var payoutAddress: String
    public var payoutExtraId: String?
    /// Where ChangeNOW returns the deposit if the swap fails: the hot wallet.
    public var refundAddress: String?

    public init(
        idempotencyKey: String, pair: ExchangePair, fromAmount: Decimal, payoutAddress: String, payoutExtraId: String? = nil,
        refundAddress: String? = nil
    ) {
        self.idempotencyKey = idempotencyKey
        self.pair = pair
        self.fromAmount = fromAmount
        self.payoutAddress = payoutAddress
        self.payoutExtraId = payoutExtraId
        self.refundAddress = refundAddress
    }
}

/// An exchange intent as stored. `exchangeId` and `payinAddress` are set once, by the first create
/// whose answer arrived, and never change.
public struct ExchangeIntent: Sendable, Hashable {
    public enum State: String, Sendable, Hashable {
        case pending, created, funding, finished, failed, refunded, abandoned
    }

    public var id: Int64
    public var idempotencyKey: String
    public var pair: ExchangePair
    public var fromAmount: Decimal
    public var payoutAddress: String
    public var payoutExtraId: String?
    public var refundAddress: String?
    public var state: State
    public var exchangeId: String?
    public var payinAddress: String?
    public var payinExtraId: String?
    public var expectedToAmount: Decimal?
    public var exchangeStatus: String?
    public var fundingTransferKey: String?
    public var lastError: String?
}

/// The one payment that may fund an intent's exchange. `transferKey` is the hot-wallet idempotency
/// key, so however often this is asked for and sent, at most one payment is made.
public struct ExchangeFunding: Sendable, Hashable {
    public var intentId: Int64
    public var transferKey: String
    public var exchangeId: String
    public var payinAddress: String
    public var payinExtraId: String?
    public var amount: Decimal
}

/// A create call that may have left an exchange at ChangeNOW that TelePay does not use. Such
/// exchanges are never funded and expire there; this list is for reconciliation.
public struct UnreconciledCreateAttempt: Sendable, Hashable {
    public var intentId: Int64
    public var attempt: Int
    /// `nil` when the call was in flight as the process died, else `superseded` or `unknown`.
    public var outcome: ExchangeCreateOutcome?
    /// Known for `superseded` attempts only.
    public var exchangeId: String?
    public var startedAt: Date
}

/// How a recorded create call ended.
public enum ExchangeCreateOutcome: String, Sendable, Hashable {
    /// Its exchange is the intent's.
    case created
    /// It made an exchange, but another create for the intent answered first; that exchange is never funded.
    case superseded
    /// ChangeNOW refused it; nothing was made.
    case rejected
    /// No usable answer: an exchange may or may not exist.
    case unknown
}

/// Why an exchange order step failed.
public enum ExchangeOrderError: Error, Sendable, CustomStringConvertible {
    case idempotencyKeyReused(String)
    case intentNotFound(Int64)
    /// ChangeNOW refused the create; nothing was created, and a retry would be refused the same way
    /// unless the cause (amount, address, pair) changes.
    case createRejected(ChangeNowError)
    /// No usable answer: an exchange may or may not exist at ChangeNOW. Retrying is safe, because
    /// only the exchange recorded for the intent is ever funded.
    case createOutcomeUnknown(ChangeNowError)
    case notFundable(ExchangeIntent.State)
    case statusUnavailable(ChangeNowError)
    /// A status answer names another exchange than the one recorded for the intent.
    case statusForAnotherExchange(intentId: Int64, recorded: String?, reported: String)
    case database(any Error)

    public var description: String {
        switch self {
        case .idempotencyKeyReused(let key): return "idempotency key '\(key)' already names a different exchange intent"
        case .intentNotFound(let id): return "no exchange intent \(id)"
        case .createRejected(let error): return "ChangeNOW refused the exchange: \(error)"
        case .createOutcomeUnknown(let error): return "the exchange may or may not have been created (\(error)); retry"
        case .notFundable(let state): return "an intent in state \(state.rawValue) cannot be funded"
        case .statusUnavailable(let error): return "cannot read the exchange status: \(error)"
        case .statusForAnotherExchange(let intent, let recorded, let reported):
            return "intent \(intent) records exchange \(recorded ?? "none"), not \(reported); the status is not recorded"
        case .database(let error): return "database: \(String(reflecting: error))"
        }
    }
}

/// Exchange intents in PostgreSQL, the only way TelePay creates ChangeNOW exchanges.
///
/// ChangeNOW has no idempotency key, so the guarantee is ours: an intent is recorded before any create
/// call, each create call is recorded before it is made, the first exchange whose answer arrives is
/// written to the intent once (a trigger refuses any change), and funding names only that exchange.
/// A create whose answer was lost may be retried; the exchange it may have made is never funded.
public struct ExchangeOrderService: Sendable {
    private let database: Database
    private let api: any ChangeNowAPI
    private let alertSink: (any ExchangeAlertSink)?
    private let logger: Logger

    /// - Parameter alerts: hears about failed and refunded exchanges and long `verifying` holds.
    public init(database: Database, api: any ChangeNowAPI, alerts: (any ExchangeAlertSink)? = nil, logger: Logger) {
        self.database = database
        self.api = api
        self.alertSink = alerts
        self.logger = logger
    }

    /// Records the intent, or returns the one already recorded under its key. Calls nothing outside.
    public func record(_ request: ExchangeIntentRequest) async throws -> ExchangeIntent {
        guard request.fromAmount > 0 else { throw ExchangeOrderError.createRejected(.invalidRequest("fromAmount must be positive")) }
        let intent = try await stored { connection in
            if let inserted = try await ExchangeOrderStore.insertIntent(request, on: connection, logger: logger) { return inserted }
            guard let intent = try await ExchangeOrderStore.intent(idempotencyKey: request.idempotencyKey, on: connection, logger: logger) else {
                throw ExchangeOrderError.idempotencyKeyReused(request.idempotencyKey)
            }
            return intent
        }
        guard intent.pair == request.pair, intent.fromAmount == request.fromAmount, intent.payoutAddress == request.payoutAddress,
            intent.payoutExtraId == request.payoutExtraId, intent.refundAddress == request.refundAddress
        else { throw ExchangeOrderError.idempotencyKeyReused(request.idempotencyKey) }
        return intent
    }

    public func intent(id: Int64) async throws -> ExchangeIntent {
        try await stored { connection in
            guard let intent = try await ExchangeOrderStore.intent(id: id, on: connection, logger: logger) else {
                throw ExchangeOrderError.intentNotFound(id)
            }
            return intent
        }
    }

    /// Makes sure the intent has its exchange: returns the recorded one without calling ChangeNOW, or
    /// records a create attempt, calls create, and records the answer. Safe to call again after any
    /// failure or crash.
    public func ensureExchange(intentId: Int64) async throws -> ExchangeIntent {
        let (intent, attempt): (ExchangeIntent, Int?) = try await stored { connection in
            try await connection.withTransaction(logger: logger) { transaction in
                guard let intent = try await ExchangeOrderStore.intent(id: intentId, lock: true, on: transaction, logger: logger) else {
                    throw ExchangeOrderError.intentNotFound(intentId)
                }
                guard intent.exchangeId == nil, intent.state == .pending else { return (intent, nil) }
                return (intent, try await ExchangeOrderStore.insertCreateAttempt(intentId: intentId, on: transaction, logger: logger))
            }
        }
        guard let attempt else { return intent }

        let request = CreateExchangeRequest(
            pair: intent.pair, flow: .standard, amount: .sending(intent.fromAmount), address: intent.payoutAddress,
            extraId: intent.payoutExtraId, refundAddress: intent.refundAddress
        )
        let created: CreatedExchange
        do {
            created = try await api.createExchange(request)
        } catch {
            let outcome: ExchangeCreateOutcome = error.outcomeUnknown ? .unknown : .rejected
            try await stored { connection in
                try await connection.withTransaction(logger: logger) { transaction in
                    try await ExchangeOrderStore.finishCreateAttempt(
                        attempt, intentId: intentId, outcome: outcome, error: String(describing: error), on: transaction, logger: logger
                    )
                    try await ExchangeOrderStore.recordLastError(String(describing: error), intentId: intentId, on: transaction, logger: logger)
                }
            }
            logger.warning(
                "exchange create failed",
                metadata: ["intent": "\(intent.idempotencyKey)", "attempt": "\(attempt)", "outcome": "\(outcome)", "error": "\(error)"])
            throw error.outcomeUnknown ? ExchangeOrderError.createOutcomeUnknown(error) : ExchangeOrderError.createRejected(error)
        }

        return try await stored { connection in
            try await connection.withTransaction(logger: logger) { transaction in
                guard let current = try await ExchangeOrderStore.intent(id: intentId, lock: true, on: transaction, logger: logger) else {
                    throw ExchangeOrderError.intentNotFound(intentId)
                }
                // Another worker's create answered first: this exchange stays unfunded.
                let outcome: ExchangeCreateOutcome = current.exchangeId == nil ? .created : .superseded
                try await ExchangeOrderStore.finishCreateAttempt(
                    attempt, intentId: intentId, outcome: outcome, exchangeId: created.id, on: transaction, logger: logger
                )
                guard current.exchangeId == nil else { return current }
                guard let recorded = try await ExchangeOrderStore.recordCreated(created, intentId: intentId, on: transaction, logger: logger) else {
                    throw ExchangeOrderError.intentNotFound(intentId)
                }
                logger.info(
                    "exchange created", metadata: ["intent": "\(recorded.idempotencyKey)", "exchange": "\(created.id)", "attempt": "\(attempt)"])
                return recorded
            }
        }
    }

    /// The payment that funds the intent's recorded exchange. The first call moves the intent to
    /// `funding`; every call returns the same key, address and amount.
    public func funding(intentId: Int64) async throws -> ExchangeFunding {
        let intent = try await stored { connection in
            if let intent = try await ExchangeOrderStore.claimFunding(intentId: intentId, on: connection, logger: logger) { return intent }
            guard let intent = try await ExchangeOrderStore.intent(id: intentId, on: connection, logger: logger) else {
                throw ExchangeOrderError.intentNotFound(intentId)
            }
            throw ExchangeOrderError.notFundable(intent.state)
        }
        guard let key = intent.fundingTransferKey, let exchangeId = intent.exchangeId, let payin = intent.payinAddress else {
            throw ExchangeOrderError.notFundable(intent.state)
        }
        return ExchangeFunding(
            intentId: intent.id, transferKey: key, exchangeId: exchangeId, payinAddress: payin, payinExtraId: intent.payinExtraId,
            amount: intent.fromAmount)
    }

    /// Reads the exchange's status from ChangeNOW and records it (see `recordStatus`); a final status
    /// ends the intent. Alerts the transition raises go to the sink after the commit.
    public func refreshStatus(intentId: Int64, verifyingAlertAfter: Duration = .seconds(3600)) async throws -> ExchangeIntent {
        if let record = try await refresh(intentId: intentId, verifyingAlertAfter: verifyingAlertAfter) { return record.intent }
        return try await intent(id: intentId)
    }

    /// `refreshStatus` with what the answer did; `nil` when the intent has no exchange yet.
    public func refresh(intentId: Int64, verifyingAlertAfter: Duration) async throws -> StatusRecord? {
        let intent = try await intent(id: intentId)
        guard let exchangeId = intent.exchangeId else { return nil }
        let report: ExchangeStatusReport
        do {
            report = try await api.exchangeStatus(id: exchangeId)
        } catch {
            try? await markStatusChecked(intentId: intentId, error: error)
            throw ExchangeOrderError.statusUnavailable(error)
        }
        return try await recordStatus(report, intentId: intentId, verifyingAlertAfter: verifyingAlertAfter)
    }

    /// Records a `by-id` answer on the intent, forward only: a status that would move the exchange
    /// back (a stale answer) or that ChangeNOW has not documented is not stored, amounts and hashes are
    /// only ever filled in, and a final status never changes. Raises `exchangeFailed`/`exchangeRefunded`
    /// on the transition into those statuses, and `verifyingTooLong` once per stay in `verifying` longer
    /// than `verifyingAlertAfter`. Only the transaction that made the change raises its alert.
    @discardableResult
    public func recordStatus(_ report: ExchangeStatusReport, intentId: Int64, verifyingAlertAfter: Duration = .seconds(3600)) async throws
        -> StatusRecord
    {
        let (record, alerts): (StatusRecord, [ExchangeAlert]) = try await stored { connection in
            try await connection.withTransaction(logger: logger) { transaction in
                guard
                    let current = try await ExchangeOrderStore.lockStatus(
                        intentId: intentId, verifyingAlertAfter: verifyingAlertAfter, on: transaction, logger: logger
                    )
                else { throw ExchangeOrderError.intentNotFound(intentId) }
                guard current.exchangeId == report.id else {
                    throw ExchangeOrderError.statusForAnotherExchange(intentId: intentId, recorded: current.exchangeId, reported: report.id)
                }
                let change = ExchangeStatusProgress.decide(stored: current.status.map(ExchangeStatus.init(rawValue:)), reported: report.status)
                let updated: ExchangeIntent?
                var alertVerifying = false
                switch change {
                case .advance, .unchanged:
                    let status: ExchangeStatus
                    if case .advance(let next) = change { status = next } else { status = report.status }
                    let changed = status != current.status.map(ExchangeStatus.init(rawValue:))
                    alertVerifying = !changed && status == .verifying && current.overdue && !current.alerted
                    updated = try await ExchangeOrderStore.recordStatus(
                        status, report: report, changed: changed, alertVerifying: alertVerifying, intentId: intentId, on: transaction, logger: logger
                    )
                case .ignoredBackward, .ignoredUnknown:
                    updated = try await ExchangeOrderStore.markStatusChecked(intentId: intentId, on: transaction, logger: logger)
                }
                guard let intent = updated else { throw ExchangeOrderError.intentNotFound(intentId) }
                let subject = ExchangeAlertSubject(intentId: intent.id, idempotencyKey: intent.idempotencyKey, exchangeId: report.id)
                var alerts: [ExchangeAlert] = []
                if case .advance(.failed) = change { alerts.append(.exchangeFailed(subject)) }
                if case .advance(.refunded) = change { alerts.append(.exchangeRefunded(subject, refundHash: report.refundHash)) }
                if alertVerifying { alerts.append(.verifyingTooLong(subject, since: current.since ?? Date())) }
                return (StatusRecord(intent: intent, change: change), alerts)
            }
        }
        switch record.change {
        case .advance(let status):
            logger.info(
                "exchange status advanced",
                metadata: ["intent": "\(record.intent.idempotencyKey)", "exchange": "\(report.id)", "status": "\(status)"])
        case .ignoredBackward(let stored, let reported):
            logger.notice("stale exchange status ignored", metadata: ["exchange": "\(report.id)", "stored": "\(stored)", "reported": "\(reported)"])
        case .ignoredUnknown(let reported):
            logger.warning("undocumented exchange status ignored", metadata: ["exchange": "\(report.id)", "reported": "\(reported)"])
        case .unchanged:
            break
        }
        if let alertSink {
            for alert in alerts { await alertSink.raise(alert) }
        }
        return record
    }

    /// Notes a failed status read, so the poller moves on to other exchanges before trying this one again.
    private func markStatusChecked(intentId: Int64, error: ChangeNowError) async throws {
        _ = try await stored { connection in
            try await ExchangeOrderStore.markStatusChecked(intentId: intentId, error: String(describing: error), on: connection, logger: logger)
        }
    }

    /// The tracking details of an intent's exchange, as last recorded.
    public func tracking(intentId: Int64) async throws -> ExchangeTracking {
        try await stored { connection in
            guard let tracking = try await ExchangeOrderStore.tracking(intentId: intentId, on: connection, logger: logger) else {
                throw ExchangeOrderError.intentNotFound(intentId)
            }
            return tracking
        }
    }

    /// Intents whose exchange is not in a final status, least recently read first: the poller's work list.
    public func unsettledExchanges(limit: Int) async throws -> [Int64] {
        try await stored { connection in
            try await ExchangeOrderStore.unsettled(limit: limit, on: connection, logger: logger)
        }
    }

    /// Create calls that may have left an unused exchange at ChangeNOW, oldest first.
    public func unreconciledCreateAttempts() async throws -> [UnreconciledCreateAttempt] {
        try await stored { connection in
            try await ExchangeOrderStore.unreconciledCreateAttempts(on: connection, logger: logger)
        }
    }

    /// `stored` for code in other files of this module, with the logger.
    func withDatabase<Value: Sendable>(_ body: @Sendable (PostgresConnection, Logger) async throws -> Value) async throws -> Value {
        let logger = self.logger
        return try await stored { connection in try await body(connection, logger) }
    }

    private func stored<Value: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> Value) async throws -> Value {
        do {
            return try await database.withConnection(body)
        } catch let error as ExchangeOrderError {
            throw error
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError as? ExchangeOrderError { throw inner }
            throw ExchangeOrderError.database(error)
        } catch {
            throw ExchangeOrderError.database(error)
        }
    }
}
