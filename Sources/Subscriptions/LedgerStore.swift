import Foundation
import Logging
import Money
import PostgresNIO
import Storage

/// The `ledger_transactions` and `ledger_entries` tables. Entries are never changed or deleted (a trigger
/// refuses it); each transaction sums to zero per asset (checked at commit); an idempotency key books each
/// business event once.
public enum LedgerStore {
    /// Books `entries` as one transaction unless `key` was booked before; returns the new transaction's id.
    @discardableResult
    public static func book(
        _ kind: LedgerTransactionKind, key: String, orderID: Int64?, paymentID: Int64?, reverses: Int64? = nil,
        entries: [LedgerEntry], on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64? {
        guard
            let id = try await connection.first(
                """
                INSERT INTO ledger_transactions (kind, idempotency_key, order_id, payment_id, reverses)
                VALUES (\(kind.rawValue), \(key), \(orderID), \(paymentID), \(reverses))
                ON CONFLICT (idempotency_key) DO NOTHING RETURNING id
                """,
                as: Int64.self, logger: logger
            )
        else { return nil }
        let lines = entries.filter { $0.amount != 0 }
        // One statement for all the lines: a sale or a split is one round trip, not one per entry. An owner's
        // entry without a channel takes the order's.
        try await connection.run(
            """
            INSERT INTO ledger_entries (transaction_id, order_id, account, owner_user_id, channel_id, asset, amount, value_usd)
            SELECT \(id), \(orderID), e.account, NULLIF(e.owner, 0),
                   CASE WHEN e.account = ANY(\(LedgerAccount.allCases.filter(\.isOwners).map(\.rawValue)))
                        THEN coalesce(NULLIF(e.channel, 0), (SELECT channel_id FROM orders WHERE id = \(orderID))) END,
                   e.asset, e.amount::numeric, NULLIF(e.value, '')::numeric
            FROM unnest(\(lines.map(\.account.rawValue))::text[], \(lines.map { $0.ownerUserID ?? 0 })::bigint[],
                        \(lines.map { $0.channelID ?? 0 })::bigint[],
                        \(lines.map(\.asset))::text[], \(lines.map { DecimalText.plain($0.amount) })::text[],
                        \(lines.map { $0.valueUSD.map(DecimalText.plain) ?? "" })::text[])
                 AS e(account, owner, channel, asset, amount, value)
            """,
            logger: logger
        )
        return id
    }

    /// Books the exact negation of transaction `id` (once); returns the reversal's id.
    @discardableResult
    public static func reverse(_ id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Int64? {
        guard
            let (orderID, paymentID) = try await connection.first(
                "SELECT order_id, payment_id FROM ledger_transactions WHERE id = \(id)", as: (Int64?, Int64?).self, logger: logger
            )
        else { return nil }
        let entries = try await connection.all(
            "SELECT account, owner_user_id, channel_id, asset, amount::text, value_usd::text FROM ledger_entries WHERE transaction_id = \(id) ORDER BY id",
            as: (String, Int64?, Int64?, String, String, String?).self, logger: logger
        ).map { account, owner, channel, asset, amount, value throws in
            guard let account = LedgerAccount(rawValue: account) else { throw LedgerError.unknownAccount(account) }
            return LedgerEntry(
                account, owner: owner, channel: channel, asset: asset, -(try DecimalText.require(amount, "ledger amount")),
                valueUSD: try value.map { -(try DecimalText.require($0, "ledger value")) }
            )
        }
        return try await book(
            .reversal, key: "reversal:\(id)", orderID: orderID, paymentID: paymentID, reverses: id, entries: entries, on: connection, logger: logger)
    }

    /// Transactions of `kind` about payment `paymentID` not yet reversed, oldest first.
    public static func unreversed(_ kind: LedgerTransactionKind, paymentID: Int64, on connection: PostgresConnection, logger: Logger) async throws
        -> [Int64]
    {
        try await connection.all(
            """
            SELECT t.id FROM ledger_transactions t
            WHERE t.payment_id = \(paymentID) AND t.kind = \(kind.rawValue)
              AND NOT EXISTS (SELECT 1 FROM ledger_transactions r WHERE r.reverses = t.id)
            ORDER BY t.id
            """,
            as: Int64.self, logger: logger
        )
    }

    /// The order's transactions of `kind` (sales, splits) not yet reversed, oldest first; and how many it ever had.
    public static func transactions(_ kind: LedgerTransactionKind, orderID: Int64, on connection: PostgresConnection, logger: Logger) async throws
        -> (open: [Int64], total: Int)
    {
        let rows = try await connection.all(
            """
            SELECT t.id, EXISTS (SELECT 1 FROM ledger_transactions r WHERE r.reverses = t.id)
            FROM ledger_transactions t WHERE t.order_id = \(orderID) AND t.kind = \(kind.rawValue) ORDER BY t.id
            """,
            as: (Int64, Bool).self, logger: logger
        )
        return (rows.filter { !$0.1 }.map(\.0), rows.count)
    }

    /// The order's settled units split so far and not reversed (what its earlier splits took from the buyer's credit).
    public static func splitUnits(orderID: Int64, asset: String, on connection: PostgresConnection, logger: Logger) async throws -> Decimal {
        let text =
            try await connection.first(
                """
                SELECT coalesce(sum(e.amount), 0)::text FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
                WHERE t.order_id = \(orderID) AND t.kind = \(LedgerTransactionKind.split.rawValue) AND e.account = \(LedgerAccount.buyerCredit.rawValue) AND e.asset = \(asset)
                  AND NOT EXISTS (SELECT 1 FROM ledger_transactions r WHERE r.reverses = t.id)
                """,
                as: String.self, logger: logger
            ) ?? "0"
        return try DecimalText.require(text, "split units")
    }

    /// The balance (debits minus credits) of `account` in `asset` over the order's entries.
    public static func balance(_ account: LedgerAccount, orderID: Int64, asset: String, on connection: PostgresConnection, logger: Logger)
        async throws -> Decimal
    {
        let text =
            try await connection.first(
                """
                SELECT coalesce(sum(amount), 0)::text FROM ledger_entries
                WHERE order_id = \(orderID) AND account = \(account.rawValue) AND asset = \(asset)
                """,
                as: String.self, logger: logger
            ) ?? "0"
        return try DecimalText.require(text, "ledger balance")
    }

    /// The owner's pending payout balance in `asset` (what they are owed and not yet paid).
    public static func ownerBalance(_ ownerUserID: Int64, asset: String = LedgerAsset.usd, on connection: PostgresConnection, logger: Logger)
        async throws -> Decimal
    {
        let text =
            try await connection.first(
                """
                SELECT coalesce(-sum(amount), 0)::text FROM ledger_entries
                WHERE account = \(LedgerAccount.ownerPayable.rawValue) AND owner_user_id = \(ownerUserID) AND asset = \(asset)
                """,
                as: String.self, logger: logger
            ) ?? "0"
        return try DecimalText.require(text, "owner balance")
    }
}

extension LedgerStore {
    /// Moves the checkpoint to the newest entry: adds the entries since the last one to its balances. Holds a
    /// SHARE lock on `ledger_entries` for its transaction (writers wait that long), so no entry below the new
    /// checkpoint can commit after it.
    public static func advanceCheckpoint(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.withTransaction(logger: logger) { transaction in
            try await transaction.run("LOCK TABLE ledger_entries IN SHARE MODE", logger: logger)
            guard
                let through = try await transaction.first(
                    "SELECT through_entry_id FROM ledger_checkpoint FOR UPDATE", as: Int64.self, logger: logger
                )
            else { return }
            let newest = try await transaction.first("SELECT coalesce(max(id), 0) FROM ledger_entries", as: Int64.self, logger: logger) ?? through
            guard newest > through else { return }
            try await transaction.run(
                """
                INSERT INTO ledger_checkpoint_balances AS b (account, asset, amount)
                SELECT account, asset, sum(amount) FROM ledger_entries WHERE id > \(through) AND id <= \(newest) GROUP BY account, asset
                ON CONFLICT (account, asset) DO UPDATE SET amount = b.amount + EXCLUDED.amount
                """,
                logger: logger
            )
            try await transaction.run("UPDATE ledger_checkpoint SET through_entry_id = \(newest), taken_at = now()", logger: logger)
        }
    }

    /// Entries past the checkpoint above which a summary advances it first.
    public static let checkpointLag = 50_000

    /// Reads the ledger summary; `heldLimit` bounds the list of payments held for review. Balances are the
    /// checkpoint's plus the entries after it (advanced first when more than `checkpointLag` entries behind).
    public static func summary(heldLimit: Int = 50, on connection: PostgresConnection, logger: Logger) async throws -> LedgerSummary {
        let lag =
            try await connection.first(
                "SELECT coalesce((SELECT max(id) FROM ledger_entries), 0) - (SELECT through_entry_id FROM ledger_checkpoint)",
                as: Int64.self, logger: logger
            ) ?? Int64(0)
        if lag > checkpointLag {
            try await advanceCheckpoint(on: connection, logger: logger)
        }
        let balances = try await connection.all(
            """
            SELECT account, asset, sum(amount)::text FROM (
                SELECT account, asset, amount FROM ledger_checkpoint_balances
                UNION ALL
                SELECT account, asset, amount FROM ledger_entries WHERE id > (SELECT through_entry_id FROM ledger_checkpoint)
            ) AS e
            GROUP BY account, asset ORDER BY asset, account
            """,
            as: (String, String, String).self, logger: logger
        ).map { LedgerSummary.Balance(account: $0.0, asset: $0.1, amount: try DecimalText.require($0.2, "balance")) }
        let owners = try await connection.all(
            """
            SELECT owner_user_id, asset, sum(pending)::text FROM owner_balances
            GROUP BY owner_user_id, asset HAVING sum(pending) <> 0 ORDER BY owner_user_id, asset
            """,
            as: (Int64, String, String).self, logger: logger
        ).map { LedgerSummary.OwnerBalance(ownerUserID: $0.0, asset: $0.1, pending: try DecimalText.require($0.2, "owner balance")) }
        let (owing, owed) =
            try await connection.first(
                """
                SELECT count(*)::int, coalesce(sum(owed), 0)::text FROM (
                    SELECT -sum(amount) AS owed FROM ledger_entries
                    WHERE account = \(LedgerAccount.buyerCredit.rawValue) AND asset = \(LedgerAsset.usd) AND order_id IS NOT NULL
                    GROUP BY order_id HAVING sum(amount) <> 0) AS o
                """,
                as: (Int32, String).self, logger: logger
            ) ?? (Int32(0), "0")
        let held = try await connection.all(
            """
            SELECT provider_payment_id, order_ref, value_usd::text, review_reason, created_at FROM payments
            WHERE review_reason IS NOT NULL ORDER BY id DESC LIMIT \(Int32(heldLimit))
            """,
            as: (String, String?, String, String, Date).self, logger: logger
        ).map {
            LedgerSummary.HeldPayment(
                providerPaymentID: $0.0, orderRef: $0.1, valueUSD: try DecimalText.require($0.2, "value"), reason: $0.3, receivedAt: $0.4)
        }
        return LedgerSummary(
            balances: balances, owners: owners, ordersOwingBuyers: Int(owing), owedToBuyersUSD: try DecimalText.require(owed, "owed"), held: held
        )
    }
}
