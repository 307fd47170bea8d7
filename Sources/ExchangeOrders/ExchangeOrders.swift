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
    case database(any Error)

    public var description: String {
        switch self {
        case .idempotencyKeyReused(let key): return "idempotency key '\(key)' already names a different exchange intent"
        case .intentNotFound(let id): return "no exchange intent \(id)"
        case .createRejected(let error): return "ChangeNOW refused the exchange: \(error)"
        case .createOutcomeUnknown(let error): return "the exchange may or may not have been created (\(error)); retry"
        case .notFundable(let state): return "an intent in state \(state.rawValue) cannot be funded"
        case .statusUnavailable(let error): return "cannot read the exchange status: \(error)"
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
    private let logger: Logger

    public init(database: Database, api: any ChangeNowAPI, logger: Logger) {
        self.database = database
        self.api = api
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

    /// Reads the exchange's status from ChangeNOW and records it; a final status ends the intent.
    public func refreshStatus(intentId: Int64) async throws -> ExchangeIntent {
        let intent = try await intent(id: intentId)
        guard let exchangeId = intent.exchangeId else { return intent }
        let report: ExchangeStatusReport
        do {
            report = try await api.exchangeStatus(id: exchangeId)
        } catch {
            throw ExchangeOrderError.statusUnavailable(error)
        }
        let state: ExchangeIntent.State = switch report.status {
        case .finished: .finished
        case .failed: .failed
        case .refunded: .refunded
        default: intent.state
        }
        return try await stored { connection in
            let rows = try await connection.query("""
                UPDATE exchange_intents SET exchange_status = \(report.status.rawValue), state = \(state.rawValue)
                WHERE id = \(intentId) RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            guard let updated = try await Self.decode(rows).first else { throw ExchangeOrderError.intentNotFound(intentId) }
            return updated
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
