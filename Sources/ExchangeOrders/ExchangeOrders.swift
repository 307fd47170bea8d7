import Money
import Exchange
import Foundation
import Logging
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

    public init(idempotencyKey: String, pair: ExchangePair, fromAmount: Decimal, payoutAddress: String, payoutExtraId: String? = nil, refundAddress: String? = nil) {
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
    public var outcome: String?
    /// Known for `superseded` attempts only.
    public var exchangeId: String?
    public var startedAt: Date
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
public struct ExchangeOrders: Sendable {
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

    private static let columns = """
        id, idempotency_key, from_currency, from_network, to_currency, to_network, from_amount::text, payout_address, \
        payout_extra_id, refund_address, state, exchange_id, payin_address, payin_extra_id, expected_to_amount::text, \
        exchange_status, funding_transfer_key, last_error
        """

    /// Records the intent, or returns the one already recorded under its key. Calls nothing outside.
    public func record(_ request: ExchangeIntentRequest) async throws -> ExchangeIntent {
        guard request.fromAmount > 0 else { throw ExchangeOrderError.createRejected(.invalidRequest("fromAmount must be positive")) }
        let intent = try await stored { connection in
            let rows = try await connection.query("""
                INSERT INTO exchange_intents (idempotency_key, from_currency, from_network, to_currency, to_network, from_amount,
                                              payout_address, payout_extra_id, refund_address)
                VALUES (\(request.idempotencyKey), \(request.pair.from.currency), \(request.pair.from.network), \(request.pair.to.currency),
                        \(request.pair.to.network), \(DecimalText.plain(request.fromAmount))::numeric, \(request.payoutAddress),
                        \(request.payoutExtraId), \(request.refundAddress))
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            if let inserted = try await Self.decode(rows).first { return inserted }
            let existing = try await connection.query("SELECT \(unescaped: Self.columns) FROM exchange_intents WHERE idempotency_key = \(request.idempotencyKey)", logger: logger)
            guard let intent = try await Self.decode(existing).first else { throw ExchangeOrderError.idempotencyKeyReused(request.idempotencyKey) }
            return intent
        }
        guard intent.pair == request.pair, intent.fromAmount == request.fromAmount, intent.payoutAddress == request.payoutAddress,
              intent.payoutExtraId == request.payoutExtraId, intent.refundAddress == request.refundAddress
        else { throw ExchangeOrderError.idempotencyKeyReused(request.idempotencyKey) }
        return intent
    }

    public func intent(id: Int64) async throws -> ExchangeIntent {
        try await stored { connection in
            let rows = try await connection.query("SELECT \(unescaped: Self.columns) FROM exchange_intents WHERE id = \(id)", logger: logger)
            guard let intent = try await Self.decode(rows).first else { throw ExchangeOrderError.intentNotFound(id) }
            return intent
        }
    }

    /// Makes sure the intent has its exchange: returns the recorded one without calling ChangeNOW, or
    /// records a create attempt, calls create, and records the answer. Safe to call again after any
    /// failure or crash.
    public func ensureExchange(intentId: Int64) async throws -> ExchangeIntent {
        let (intent, attempt): (ExchangeIntent, Int?) = try await stored { connection in
            try await connection.withTransaction(logger: logger) { transaction in
                let rows = try await transaction.query("SELECT \(unescaped: Self.columns) FROM exchange_intents WHERE id = \(intentId) FOR UPDATE", logger: logger)
                guard let intent = try await Self.decode(rows).first else { throw ExchangeOrderError.intentNotFound(intentId) }
                guard intent.exchangeId == nil, intent.state == .pending else { return (intent, nil) }
                let numbers = try await transaction.query("""
                    INSERT INTO exchange_create_attempts (intent_id, attempt)
                    SELECT \(intentId), COALESCE(MAX(attempt), 0) + 1 FROM exchange_create_attempts WHERE intent_id = \(intentId)
                    RETURNING attempt
                    """, logger: logger)
                var attempt = 1
                for try await number in numbers.decode(Int.self) { attempt = number }
                return (intent, attempt)
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
            let outcome = error.outcomeUnknown ? "unknown" : "rejected"
            try await stored { connection in
                try await connection.withTransaction(logger: logger) { transaction in
                    try await transaction.query("""
                        UPDATE exchange_create_attempts SET outcome = \(outcome), error = \(String(describing: error)), finished_at = now()
                        WHERE intent_id = \(intentId) AND attempt = \(attempt)
                        """, logger: logger)
                    try await transaction.query("UPDATE exchange_intents SET last_error = \(String(describing: error)) WHERE id = \(intentId)", logger: logger)
                }
            }
            logger.warning("exchange create failed", metadata: ["intent": "\(intent.idempotencyKey)", "attempt": "\(attempt)", "outcome": "\(outcome)", "error": "\(error)"])
            throw error.outcomeUnknown ? ExchangeOrderError.createOutcomeUnknown(error) : ExchangeOrderError.createRejected(error)
        }

        return try await stored { connection in
            try await connection.withTransaction(logger: logger) { transaction in
                let rows = try await transaction.query("SELECT \(unescaped: Self.columns) FROM exchange_intents WHERE id = \(intentId) FOR UPDATE", logger: logger)
                guard let current = try await Self.decode(rows).first else { throw ExchangeOrderError.intentNotFound(intentId) }
                // Another worker's create answered first: this exchange stays unfunded.
                let outcome = current.exchangeId == nil ? "created" : "superseded"
                try await transaction.query("""
                    UPDATE exchange_create_attempts SET outcome = \(outcome), exchange_id = \(created.id), finished_at = now()
                    WHERE intent_id = \(intentId) AND attempt = \(attempt)
                    """, logger: logger)
                guard current.exchangeId == nil else { return current }
                let updated = try await transaction.query("""
                    UPDATE exchange_intents SET state = 'created', exchange_id = \(created.id), payin_address = \(created.payinAddress),
                        payin_extra_id = \(created.payinExtraId), expected_to_amount = \(DecimalText.plain(created.toAmount))::numeric,
                        exchange_status = 'new', last_error = NULL
                    WHERE id = \(intentId)
                    RETURNING \(unescaped: Self.columns)
                    """, logger: logger)
                guard let recorded = try await Self.decode(updated).first else { throw ExchangeOrderError.intentNotFound(intentId) }
                logger.info("exchange created", metadata: ["intent": "\(recorded.idempotencyKey)", "exchange": "\(created.id)", "attempt": "\(attempt)"])
                return recorded
            }
        }
    }

    /// The payment that funds the intent's recorded exchange. The first call moves the intent to
    /// `funding`; every call returns the same key, address and amount.
    public func funding(intentId: Int64) async throws -> ExchangeFunding {
        let intent = try await stored { connection in
            let rows = try await connection.query("""
                UPDATE exchange_intents
                SET funding_transfer_key = COALESCE(funding_transfer_key, 'exchange-intent:' || id::text),
                    state = CASE WHEN state = 'created' THEN 'funding' ELSE state END
                WHERE id = \(intentId) AND exchange_id IS NOT NULL AND state IN ('created', 'funding', 'finished')
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            if let intent = try await Self.decode(rows).first { return intent }
            let current = try await connection.query("SELECT \(unescaped: Self.columns) FROM exchange_intents WHERE id = \(intentId)", logger: logger)
            guard let intent = try await Self.decode(current).first else { throw ExchangeOrderError.intentNotFound(intentId) }
            throw ExchangeOrderError.notFundable(intent.state)
        }
        guard let key = intent.fundingTransferKey, let exchangeId = intent.exchangeId, let payin = intent.payinAddress else {
            throw ExchangeOrderError.notFundable(intent.state)
        }
        return ExchangeFunding(intentId: intent.id, transferKey: key, exchangeId: exchangeId, payinAddress: payin, payinExtraId: intent.payinExtraId, amount: intent.fromAmount)
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
    public func recordStatus(_ report: ExchangeStatusReport, intentId: Int64, verifyingAlertAfter: Duration = .seconds(3600)) async throws -> StatusRecord {
        let thresholdSeconds = Double(verifyingAlertAfter.components.seconds) + Double(verifyingAlertAfter.components.attoseconds) / 1e18
        let (record, alerts): (StatusRecord, [ExchangeAlert]) = try await stored { connection in
            try await connection.withTransaction(logger: logger) { transaction in
                let rows = try await transaction.query("""
                    SELECT exchange_id, exchange_status, verifying_alerted_at IS NOT NULL,
                           COALESCE(status_changed_at <= now() - \(thresholdSeconds) * interval '1 second', false), status_changed_at
                    FROM exchange_intents WHERE id = \(intentId) FOR UPDATE
                    """, logger: logger)
                var current: (exchangeId: String?, status: String?, alerted: Bool, overdue: Bool, since: Date?)?
                for try await row in rows.decode((String?, String?, Bool, Bool, Date?).self) { current = row }
                guard let current else { throw ExchangeOrderError.intentNotFound(intentId) }
                guard current.exchangeId == report.id else {
                    throw ExchangeOrderError.statusForAnotherExchange(intentId: intentId, recorded: current.exchangeId, reported: report.id)
                }
                let change = ExchangeStatusProgress.decide(stored: current.status.map(ExchangeStatus.init(rawValue:)), reported: report.status)
                let updated: PostgresRowSequence
                var alertVerifying = false
                switch change {
                case .advance, .unchanged:
                    let status: ExchangeStatus
                    if case .advance(let next) = change { status = next } else { status = report.status }
                    let changed = status != current.status.map(ExchangeStatus.init(rawValue:))
                    alertVerifying = !changed && status == .verifying && current.overdue && !current.alerted
                    let state: String? = switch status {
                    case .finished: "finished"
                    case .failed: "failed"
                    case .refunded: "refunded"
                    default: nil
                    }
                    let amountFrom = report.amountFrom.map(DecimalText.plain)
                    let amountTo = report.amountTo.map(DecimalText.plain)
                    let refundAmount = report.refundAmount.map(DecimalText.plain)
                    let createdAt = report.createdAt.flatMap(ChangeNowTimestamp.parse)
                    let updatedAt = report.updatedAt.flatMap(ChangeNowTimestamp.parse)
                    // Amounts and hashes are filled in, never erased by an answer that leaves them out.
                    updated = try await transaction.query("""
                        UPDATE exchange_intents SET
                            exchange_status = \(status.rawValue), state = COALESCE(\(state), state),
                            status_changed_at = CASE WHEN \(changed) THEN now() ELSE status_changed_at END,
                            verifying_alerted_at = CASE WHEN \(changed) THEN NULL WHEN \(alertVerifying) THEN now() ELSE verifying_alerted_at END,
                            status_checked_at = now(), last_error = NULL,
                            amount_from = COALESCE(\(amountFrom)::numeric, amount_from), amount_to = COALESCE(\(amountTo)::numeric, amount_to),
                            payin_hash = COALESCE(\(report.payinHash), payin_hash), payout_hash = COALESCE(\(report.payoutHash), payout_hash),
                            refund_hash = COALESCE(\(report.refundHash), refund_hash), refund_amount = COALESCE(\(refundAmount)::numeric, refund_amount),
                            exchange_created_at = COALESCE(\(createdAt), exchange_created_at), exchange_updated_at = COALESCE(\(updatedAt), exchange_updated_at)
                        WHERE id = \(intentId) RETURNING \(unescaped: Self.columns)
                        """, logger: logger)
                case .ignoredBackward, .ignoredUnknown:
                    updated = try await transaction.query("""
                        UPDATE exchange_intents SET status_checked_at = now() WHERE id = \(intentId) RETURNING \(unescaped: Self.columns)
                        """, logger: logger)
                }
                guard let intent = try await Self.decode(updated).first else { throw ExchangeOrderError.intentNotFound(intentId) }
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
            logger.info("exchange status advanced", metadata: ["intent": "\(record.intent.idempotencyKey)", "exchange": "\(report.id)", "status": "\(status)"])
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
            try await connection.query("""
                UPDATE exchange_intents SET status_checked_at = now(), last_error = \(String(describing: error)) WHERE id = \(intentId)
                """, logger: logger)
        }
    }

    /// The tracking details of an intent's exchange, as last recorded.
    public func tracking(intentId: Int64) async throws -> ExchangeTracking {
        try await stored { connection in
            let rows = try await connection.query("""
                SELECT exchange_status, amount_from::text, amount_to::text, payin_hash, payout_hash, refund_hash, refund_amount::text,
                       exchange_created_at, exchange_updated_at, status_checked_at, status_changed_at, verifying_alerted_at
                FROM exchange_intents WHERE id = \(intentId)
                """, logger: logger)
            typealias Row = (String?, String?, String?, String?, String?, String?, String?, Date?, Date?, Date?, Date?, Date?)
            for try await row in rows.decode(Row.self) {
                return ExchangeTracking(
                    status: row.0.map(ExchangeStatus.init(rawValue:)), amountFrom: row.1.flatMap(DecimalText.parse), amountTo: row.2.flatMap(DecimalText.parse),
                    payinHash: row.3, payoutHash: row.4, refundHash: row.5, refundAmount: row.6.flatMap(DecimalText.parse),
                    exchangeCreatedAt: row.7, exchangeUpdatedAt: row.8, statusCheckedAt: row.9, statusChangedAt: row.10, verifyingAlertedAt: row.11
                )
            }
            throw ExchangeOrderError.intentNotFound(intentId)
        }
    }

    /// Intents whose exchange is not in a final status, least recently read first: the poller's work list.
    public func unsettledExchanges(limit: Int) async throws -> [Int64] {
        try await stored { connection in
            let rows = try await connection.query("""
                SELECT id FROM exchange_intents
                WHERE exchange_id IS NOT NULL AND (exchange_status IS NULL OR exchange_status NOT IN ('finished', 'failed', 'refunded'))
                ORDER BY status_checked_at NULLS FIRST, id
                LIMIT \(limit)
                """, logger: logger)
            var ids: [Int64] = []
            for try await id in rows.decode(Int64.self) { ids.append(id) }
            return ids
        }
    }

    /// Create calls that may have left an unused exchange at ChangeNOW, oldest first.
    public func unreconciledCreateAttempts() async throws -> [UnreconciledCreateAttempt] {
        try await stored { connection in
            let rows = try await connection.query("""
                SELECT intent_id, attempt, outcome, exchange_id, started_at FROM exchange_create_attempts
                WHERE outcome IS NULL OR outcome IN ('superseded', 'unknown')
                ORDER BY started_at, intent_id, attempt
                """, logger: logger)
            var attempts: [UnreconciledCreateAttempt] = []
            for try await (intent, attempt, outcome, exchange, started) in rows.decode((Int64, Int, String?, String?, Date).self) {
                attempts.append(UnreconciledCreateAttempt(intentId: intent, attempt: attempt, outcome: outcome, exchangeId: exchange, startedAt: started))
            }
            return attempts
        }
    }

    private static func decode(_ rows: PostgresRowSequence) async throws -> [ExchangeIntent] {
        typealias Row = (Int64, String, String, String?, String, String?, String, String, String?, String?, String, String?, String?, String?, String?, String?, String?, String?)
        var intents: [ExchangeIntent] = []
        for try await row in rows.decode(Row.self) {
            let (id, key, fromCurrency, fromNetwork, toCurrency, toNetwork, amount, payout, payoutExtra, refund, state, exchange, payin, payinExtra, expected, status, fundingKey, lastError) = row
            guard let fromAmount = DecimalText.parse(amount), let intentState = ExchangeIntent.State(rawValue: state) else {
                throw ExchangeOrderError.database(ExchangeOrdersCorruptRow(id: id))
            }
            intents.append(ExchangeIntent(
                id: id, idempotencyKey: key,
                pair: ExchangePair(from: ExchangeLeg(currency: fromCurrency, network: fromNetwork), to: ExchangeLeg(currency: toCurrency, network: toNetwork)),
                fromAmount: fromAmount, payoutAddress: payout, payoutExtraId: payoutExtra, refundAddress: refund, state: intentState,
                exchangeId: exchange, payinAddress: payin, payinExtraId: payinExtra, expectedToAmount: expected.flatMap(DecimalText.parse),
                exchangeStatus: status, fundingTransferKey: fundingKey, lastError: lastError
            ))
        }
        return intents
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

/// A stored row that breaks the schema's promises.
struct ExchangeOrdersCorruptRow: Error {
    let id: Int64
}
