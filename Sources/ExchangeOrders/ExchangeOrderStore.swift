import Exchange
import Foundation
import Logging
import Money
import PostgresNIO
import Storage

/// Every query on `exchange_intents` and `exchange_create_attempts`, their only writer. Intent states, create
/// outcomes and exchange statuses are bound from their enums, never spelled in the SQL.
enum ExchangeOrderStore {
    private static let columns = """
        id, idempotency_key, from_currency, from_network, to_currency, to_network, from_amount::text, payout_address, \
        payout_extra_id, refund_address, state, exchange_id, payin_address, payin_extra_id, expected_to_amount::text, \
        exchange_status, funding_transfer_key, last_error
        """

    private typealias IntentRow = (
        Int64, String, String, String?, String, String?, String, String, String?, String?, String, String?, String?, String?, String?,
        String?, String?, String?
    )

    /// ChangeNOW statuses after which an exchange changes no more; must match `exchange_intents_tracking_idx`.
    private static let finalStatuses = [ExchangeStatus.finished, .failed, .refunded].map(\.rawValue)

    /// Create outcomes that may have left an exchange nobody funds.
    private static let unreconciledOutcomes = [ExchangeCreateOutcome.superseded, .unknown].map(\.rawValue)

    // MARK: - Intents

    /// Inserts the intent; `nil` when its idempotency key is already taken.
    static func insertIntent(_ request: ExchangeIntentRequest, on connection: PostgresConnection, logger: Logger) async throws -> ExchangeIntent? {
        try await connection.first(
            """
            INSERT INTO exchange_intents (idempotency_key, from_currency, from_network, to_currency, to_network, from_amount,
                                          payout_address, payout_extra_id, refund_address)
            VALUES (\(request.idempotencyKey), \(request.pair.from.currency), \(request.pair.from.network), \(request.pair.to.currency),
                    \(request.pair.to.network), \(DecimalText.plain(request.fromAmount))::numeric, \(request.payoutAddress),
                    \(request.payoutExtraId), \(request.refundAddress))
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING \(unescaped: columns)
            """,
            as: IntentRow.self, logger: logger
        ).map(intent)
    }

    static func intent(idempotencyKey: String, on connection: PostgresConnection, logger: Logger) async throws -> ExchangeIntent? {
        try await connection.first(
            "SELECT \(unescaped: columns) FROM exchange_intents WHERE idempotency_key = \(idempotencyKey)", as: IntentRow.self, logger: logger
        ).map(intent)
    }

    /// The intent; with `lock`, its row stays locked until the transaction ends.
    static func intent(id: Int64, lock: Bool = false, on connection: PostgresConnection, logger: Logger) async throws -> ExchangeIntent? {
        let query: PostgresQuery =
            lock
            ? "SELECT \(unescaped: columns) FROM exchange_intents WHERE id = \(id) FOR UPDATE"
            : "SELECT \(unescaped: columns) FROM exchange_intents WHERE id = \(id)"
        return try await connection.first(query, as: IntentRow.self, logger: logger).map(intent)
    }

    /// Writes the first exchange whose create answered onto the intent (a trigger refuses any later change).
    static func recordCreated(_ created: CreatedExchange, intentId: Int64, on connection: PostgresConnection, logger: Logger) async throws
        -> ExchangeIntent?
    {
        try await connection.first(
            """
            UPDATE exchange_intents SET state = \(ExchangeIntent.State.created.rawValue), exchange_id = \(created.id),
                payin_address = \(created.payinAddress), payin_extra_id = \(created.payinExtraId),
                expected_to_amount = \(DecimalText.plain(created.toAmount))::numeric,
                exchange_status = \(ExchangeStatus.new.rawValue), last_error = NULL
            WHERE id = \(intentId)
            RETURNING \(unescaped: columns)
            """,
            as: IntentRow.self, logger: logger
        ).map(intent)
    }

    static func recordLastError(_ message: String, intentId: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("UPDATE exchange_intents SET last_error = \(message) WHERE id = \(intentId)", logger: logger)
    }

    /// Gives a fundable intent its funding key (once) and moves a `created` one to `funding`; `nil` when the
    /// intent has no exchange or is in a state that cannot be funded.
    static func claimFunding(intentId: Int64, on connection: PostgresConnection, logger: Logger) async throws -> ExchangeIntent? {
        let fundable = [ExchangeIntent.State.created, .funding, .finished].map(\.rawValue)
        return try await connection.first(
            """
            UPDATE exchange_intents
            SET funding_transfer_key = COALESCE(funding_transfer_key, 'exchange-intent:' || id::text),
                state = CASE WHEN state = \(ExchangeIntent.State.created.rawValue) THEN \(ExchangeIntent.State.funding.rawValue) ELSE state END
            WHERE id = \(intentId) AND exchange_id IS NOT NULL AND state = ANY(\(fundable))
            RETURNING \(unescaped: columns)
            """,
            as: IntentRow.self, logger: logger
        ).map(intent)
    }

    // MARK: - Create attempts

    /// Records the next create attempt for the intent, before the call is made; returns its number.
    static func insertCreateAttempt(intentId: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        try await connection.first(
            """
            INSERT INTO exchange_create_attempts (intent_id, attempt)
            SELECT \(intentId), COALESCE(MAX(attempt), 0) + 1 FROM exchange_create_attempts WHERE intent_id = \(intentId)
            RETURNING attempt
            """,
            as: Int.self, logger: logger
        ) ?? 1
    }

    /// Records how a create call ended: the exchange it made, or the error.
    static func finishCreateAttempt(
        _ attempt: Int, intentId: Int64, outcome: ExchangeCreateOutcome, exchangeId: String? = nil, error: String? = nil,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        try await connection.run(
            """
            UPDATE exchange_create_attempts SET outcome = \(outcome.rawValue), exchange_id = \(exchangeId), error = \(error), finished_at = now()
            WHERE intent_id = \(intentId) AND attempt = \(attempt)
            """,
            logger: logger
        )
    }

    /// Create calls that may have left an unused exchange at ChangeNOW, oldest first.
    static func unreconciledCreateAttempts(on connection: PostgresConnection, logger: Logger) async throws -> [UnreconciledCreateAttempt] {
        try await connection.all(
            """
            SELECT intent_id, attempt, outcome, exchange_id, started_at FROM exchange_create_attempts
            WHERE outcome IS NULL OR outcome = ANY(\(unreconciledOutcomes))
            ORDER BY started_at, intent_id, attempt
            """,
            as: (Int64, Int, String?, String?, Date).self, logger: logger
        ).map { intent, attempt, outcome, exchange, started in
            UnreconciledCreateAttempt(
                intentId: intent, attempt: attempt, outcome: try outcome.map { try createOutcome($0, intentId: intent) }, exchangeId: exchange,
                startedAt: started
            )
        }
    }

    // MARK: - Status

    /// What the status check needs of the intent, its row locked until the transaction ends.
    static func lockStatus(
        intentId: Int64, verifyingAlertAfter threshold: Duration, on connection: PostgresConnection, logger: Logger
    ) async throws -> (exchangeId: String?, status: String?, alerted: Bool, overdue: Bool, since: Date?)? {
        let thresholdSeconds = Double(threshold.components.seconds) + Double(threshold.components.attoseconds) / 1e18
        return try await connection.first(
            """
            SELECT exchange_id, exchange_status, verifying_alerted_at IS NOT NULL,
                   COALESCE(status_changed_at <= now() - \(thresholdSeconds) * interval '1 second', false), status_changed_at
            FROM exchange_intents WHERE id = \(intentId) FOR UPDATE
            """,
            as: (String?, String?, Bool, Bool, Date?).self, logger: logger
        ).map { (exchangeId: $0.0, status: $0.1, alerted: $0.2, overdue: $0.3, since: $0.4) }
    }

    /// Stores a status answer: the status, the intent state it ends in (if final), and any amounts and hashes it
    /// carries; amounts and hashes are filled in, never erased by an answer that leaves them out.
    static func recordStatus(
        _ status: ExchangeStatus, report: ExchangeStatusReport, changed: Bool, alertVerifying: Bool, intentId: Int64,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> ExchangeIntent? {
        let state: ExchangeIntent.State? =
            switch status {
            case .finished: .finished
            case .failed: .failed
            case .refunded: .refunded
            default: nil
            }
        let amountFrom = report.amountFrom.map(DecimalText.plain)
        let amountTo = report.amountTo.map(DecimalText.plain)
        let refundAmount = report.refundAmount.map(DecimalText.plain)
        let createdAt = report.createdAt.flatMap(ChangeNowTimestamp.parse)
        let updatedAt = report.updatedAt.flatMap(ChangeNowTimestamp.parse)
        return try await connection.first(
            """
            UPDATE exchange_intents SET
                exchange_status = \(status.rawValue), state = COALESCE(\(state?.rawValue), state),
                status_changed_at = CASE WHEN \(changed) THEN now() ELSE status_changed_at END,
                verifying_alerted_at = CASE WHEN \(changed) THEN NULL WHEN \(alertVerifying) THEN now() ELSE verifying_alerted_at END,
                status_checked_at = now(), last_error = NULL,
                amount_from = COALESCE(\(amountFrom)::numeric, amount_from), amount_to = COALESCE(\(amountTo)::numeric, amount_to),
                payin_hash = COALESCE(\(report.payinHash), payin_hash), payout_hash = COALESCE(\(report.payoutHash), payout_hash),
                refund_hash = COALESCE(\(report.refundHash), refund_hash), refund_amount = COALESCE(\(refundAmount)::numeric, refund_amount),
                exchange_created_at = COALESCE(\(createdAt), exchange_created_at), exchange_updated_at = COALESCE(\(updatedAt), exchange_updated_at)
            WHERE id = \(intentId) RETURNING \(unescaped: columns)
            """,
            as: IntentRow.self, logger: logger
        ).map(intent)
    }

    /// Notes a status read; `error` is why it failed, if it did, so the poller moves on to other exchanges
    /// before trying this one again.
    @discardableResult
    static func markStatusChecked(intentId: Int64, error: String? = nil, on connection: PostgresConnection, logger: Logger) async throws
        -> ExchangeIntent?
    {
        let query: PostgresQuery =
            if let error {
                "UPDATE exchange_intents SET status_checked_at = now(), last_error = \(error) WHERE id = \(intentId) RETURNING \(unescaped: columns)"
            } else {
                "UPDATE exchange_intents SET status_checked_at = now() WHERE id = \(intentId) RETURNING \(unescaped: columns)"
            }
        return try await connection.first(query, as: IntentRow.self, logger: logger).map(intent)
    }

    /// The tracking details of an intent's exchange, as last recorded.
    static func tracking(intentId: Int64, on connection: PostgresConnection, logger: Logger) async throws -> ExchangeTracking? {
        typealias Row = (String?, String?, String?, String?, String?, String?, String?, Date?, Date?, Date?, Date?, Date?)
        return try await connection.first(
            """
            SELECT exchange_status, amount_from::text, amount_to::text, payin_hash, payout_hash, refund_hash, refund_amount::text,
                   exchange_created_at, exchange_updated_at, status_checked_at, status_changed_at, verifying_alerted_at
            FROM exchange_intents WHERE id = \(intentId)
            """,
            as: Row.self, logger: logger
        ).map { row in
            ExchangeTracking(
                status: row.0.map(ExchangeStatus.init(rawValue:)), amountFrom: row.1.flatMap(DecimalText.parse),
                amountTo: row.2.flatMap(DecimalText.parse),
                payinHash: row.3, payoutHash: row.4, refundHash: row.5, refundAmount: row.6.flatMap(DecimalText.parse),
                exchangeCreatedAt: row.7, exchangeUpdatedAt: row.8, statusCheckedAt: row.9, statusChangedAt: row.10, verifyingAlertedAt: row.11
            )
        }
    }

    /// Intents whose exchange is not in a final status, least recently read first.
    static func unsettled(limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [Int64] {
        try await connection.all(
            """
            SELECT id FROM exchange_intents
            WHERE exchange_id IS NOT NULL AND (exchange_status IS NULL OR exchange_status <> ALL(\(finalStatuses)))
            ORDER BY status_checked_at NULLS FIRST, id
            LIMIT \(limit)
            """,
            as: Int64.self, logger: logger
        )
    }

    // MARK: - Reconciliation

    /// Intents whose exchange is listed or was created since `since`.
    static func recordedExchanges(since: Date, listedIDs: [String], on connection: PostgresConnection, logger: Logger) async throws
        -> [RecordedExchange]
    {
        try await connection.all(
            """
            SELECT id, idempotency_key, exchange_id, state, created_at FROM exchange_intents
            WHERE exchange_id IS NOT NULL AND (exchange_id = ANY(\(listedIDs)) OR created_at >= \(since))
            ORDER BY id
            """,
            as: (Int64, String, String, String, Date).self, logger: logger
        ).map { id, key, exchange, state, created in
            RecordedExchange(
                intentId: id, idempotencyKey: key, exchangeId: exchange, state: try ExchangeIntent.State(storedValue: state), createdAt: created)
        }
    }

    /// Create attempts that may have left an orphan, with their intent's terms to match on.
    static func createAttemptCandidates(on connection: PostgresConnection, logger: Logger) async throws -> [CreateAttemptCandidate] {
        try await connection.all(
            """
            SELECT a.intent_id, i.idempotency_key, a.attempt, a.outcome, a.exchange_id, i.payout_address, i.from_amount::text
            FROM exchange_create_attempts a JOIN exchange_intents i ON i.id = a.intent_id
            WHERE a.outcome IS NULL OR a.outcome = ANY(\(unreconciledOutcomes))
            ORDER BY a.started_at, a.intent_id, a.attempt
            """,
            as: (Int64, String, Int, String?, String?, String, String).self, logger: logger
        ).map { intent, key, attempt, outcome, exchange, payout, amount in
            CreateAttemptCandidate(
                intentId: intent, idempotencyKey: key, attempt: attempt, outcome: try outcome.map { try createOutcome($0, intentId: intent) },
                exchangeId: exchange,
                payoutAddress: payout, fromAmount: try DecimalText.require(amount, "intent amount")
            )
        }
    }

    // MARK: - Decoding

    private static func intent(_ row: IntentRow) throws -> ExchangeIntent {
        let (
            id, key, fromCurrency, fromNetwork, toCurrency, toNetwork, amount, payout, payoutExtra, refund, state, exchange, payin, payinExtra,
            expected, status, fundingKey, lastError
        ) = row
        guard let fromAmount = DecimalText.parse(amount), let intentState = ExchangeIntent.State(rawValue: state) else {
            throw ExchangeOrderError.database(ExchangeIntentCorruptRow(id: id))
        }
        return ExchangeIntent(
            id: id, idempotencyKey: key,
            pair: ExchangePair(
                from: ExchangeLeg(currency: fromCurrency, network: fromNetwork), to: ExchangeLeg(currency: toCurrency, network: toNetwork)),
            fromAmount: fromAmount, payoutAddress: payout, payoutExtraId: payoutExtra, refundAddress: refund, state: intentState,
            exchangeId: exchange, payinAddress: payin, payinExtraId: payinExtra, expectedToAmount: expected.flatMap(DecimalText.parse),
            exchangeStatus: status, fundingTransferKey: fundingKey, lastError: lastError
        )
    }

    private static func createOutcome(_ text: String, intentId: Int64) throws -> ExchangeCreateOutcome {
        guard let outcome = ExchangeCreateOutcome(rawValue: text) else { throw ExchangeOrderError.database(ExchangeIntentCorruptRow(id: intentId)) }
        return outcome
    }
}

/// A stored row that breaks the schema's promises.
struct ExchangeIntentCorruptRow: Error {
    let id: Int64
}
