import Foundation
import Logging
import Money
import PostgresNIO
import Storage
import Subscriptions

/// Where a payout is (the `payouts.state` column; the migration defines each).
public enum PayoutState: String, Sendable, Hashable, CaseIterable, Codable {
    case planned, sending, paid, failed
}

/// A payout as stored.
public struct Payout: Sendable, Hashable {
    public var id: Int64
    public var splitID: Int64
    public var ownerUserID: Int64
    public var channelID: Int64
    public var asset: String
    /// Smallest units of `asset` (wei).
    public var amount: Decimal
    public var walletAddress: String
    public var state: PayoutState
    public var failure: String?

    /// The hot-wallet transfer that pays it; its idempotency key.
    public var transferKey: String { "payout:\(id)" }
}

/// A split's owner share that no live payout pays yet.
struct PayableShare: Sendable {
    var splitID: Int64
    var ownerUserID: Int64
    var channelID: Int64
    var amount: Decimal
    var currency: String
    var network: String
    var wallet: String
}

/// The `payouts` table: every query about payouts lives here.
enum PayoutStore {
    static let columns = "id, split_id, owner_user_id, channel_id, asset, amount::text, wallet_address, state, failure"
    typealias Row = (Int64, Int64, Int64, Int64, String, String, String, String, String?)

    static func payout(_ row: Row) throws -> Payout {
        let (id, split, owner, channel, asset, amount, wallet, state, failure) = row
        guard let state = PayoutState(rawValue: state) else { throw PayoutError.unknownState(state) }
        return Payout(
            id: id, splitID: split, ownerUserID: owner, channelID: channel, asset: asset,
            amount: try DecimalText.require(amount, "payout amount"), walletAddress: wallet, state: state, failure: failure
        )
    }

    /// Owner shares of sold orders, in `asset`, whose channel pays instantly to `currency` on `network`,
    /// that no payout pays yet (a failed payout's share waits for an operator; it is not re-planned here).
    static func payableShares(
        asset: String, currency: String, network: String, strategy: PayoutStrategy, limit: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> [PayableShare] {
        try await connection.all(
            """
            SELECT t.id, e.owner_user_id, o.channel_id, (-e.amount)::text, s.currency_code, s.network_code, s.wallet_address
            FROM ledger_transactions t
            JOIN ledger_entries e ON e.transaction_id = t.id AND e.account = \(LedgerAccount.ownerPayable.rawValue)
                AND e.asset = \(asset) AND e.amount < 0
            JOIN orders o ON o.id = t.order_id
            JOIN channel_payout_settings s ON s.channel_id = o.channel_id
            WHERE t.kind = \(LedgerTransactionKind.split.rawValue) AND s.strategy = \(strategy.rawValue)
              AND s.currency_code = \(currency) AND s.network_code = \(network)
              AND NOT EXISTS (SELECT 1 FROM ledger_transactions r WHERE r.reverses = t.id)
              AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.split_id = t.id)
            ORDER BY t.id LIMIT \(Int32(limit))
            """,
            as: (Int64, Int64, Int64, String, String, String, String).self, logger: logger
        ).map { split, owner, channel, amount, currency, network, wallet in
            PayableShare(
                splitID: split, ownerUserID: owner, channelID: channel, amount: try DecimalText.require(amount, "share"),
                currency: currency, network: network, wallet: wallet
            )
        }
    }

    static func insert(_ share: PayableShare, asset: String, on connection: PostgresConnection, logger: Logger) async throws -> Payout? {
        try await connection.first(
            """
            INSERT INTO payouts (split_id, owner_user_id, channel_id, asset, amount, currency_code, network_code, wallet_address, state)
            VALUES (\(share.splitID), \(share.ownerUserID), \(share.channelID), \(asset), \(DecimalText.plain(share.amount))::numeric,
                    \(share.currency), \(share.network), \(share.wallet), \(PayoutState.planned.rawValue))
            ON CONFLICT DO NOTHING
            RETURNING \(unescaped: columns)
            """,
            as: Row.self, logger: logger
        ).map(payout)
    }

    static func inState(_ state: PayoutState, limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [Payout] {
        try await connection.all(
            "SELECT \(unescaped: columns) FROM payouts WHERE state = \(state.rawValue) ORDER BY id LIMIT \(Int32(limit))", as: Row.self, logger: logger
        ).map(payout)
    }

    /// Moves a payout from `from` to `to`; returns whether it was in `from` (so two workers cannot both move it).
    static func move(_ id: Int64, from: PayoutState, to: PayoutState, failure: String? = nil, gas: Decimal? = nil,
                     on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.run(
            """
            UPDATE payouts SET state = \(to.rawValue), failure = coalesce(\(failure.map { String($0.prefix(2000)) }), failure),
                gas_units = coalesce(\(gas.map(DecimalText.plain))::numeric, gas_units),
                paid_at = CASE WHEN \(to == .paid) THEN now() END
            WHERE id = \(id) AND state = \(from.rawValue)
            RETURNING 1
            """,
            logger: logger
        ) == 1
    }

    /// Per owner and asset: paid out (confirmed payouts) — pending and in flight come from the ledger.
    static func paidOut(ownerUserID: Int64, asset: String, on connection: PostgresConnection, logger: Logger) async throws -> Decimal {
        let text = try await connection.first(
            "SELECT coalesce(sum(amount), 0)::text FROM payouts WHERE owner_user_id = \(ownerUserID) AND asset = \(asset) AND state = \(PayoutState.paid.rawValue)",
            as: String.self, logger: logger
        ) ?? "0"
        return try DecimalText.require(text, "paid out")
    }
}

/// The payouts table holds something the code does not know.
public enum PayoutError: Error, Sendable, Hashable, CustomStringConvertible {
    case unknownState(String)

    public var description: String {
        switch self {
        case .unknownState(let state): return "unknown payout state '\(state)'"
        }
    }
}
