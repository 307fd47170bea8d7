import Foundation
import Logging
import Money
import PostgresNIO
import Storage

/// A channel's way to its threshold, from `owner_balances`: the converted balance (USDT, whole dollars and
/// cents) and what still waits for a conversion (pending and converting settlement asset, valued at payment
/// time).
public enum ThresholdProgressStore {
    public static func read(
        channelID: Int64, ownerUserID: Int64, on connection: PostgresConnection, logger: Logger
    ) async throws -> (convertedUSD: Decimal, waitingUSD: Decimal) {
        let usdt = SettlementAsset.usdt
        let (converted, waiting) =
            try await connection.first(
                """
                SELECT coalesce(sum(pending) FILTER (WHERE asset = \(usdt.asset)), 0)::text,
                       coalesce(sum(pending_usd + converting_usd) FILTER (WHERE asset NOT IN (\(LedgerAsset.usd), \(usdt.asset))), 0)::text
                FROM owner_balances WHERE channel_id = \(channelID) AND owner_user_id = \(ownerUserID)
                """,
                as: (String, String).self, logger: logger
            ) ?? ("0", "0")
        return (
            DecimalText.rounded(try DecimalText.require(converted, "converted") / usdt.unitsPerCoin, scale: 2, .down),
            try DecimalText.require(waiting, "waiting")
        )
    }
}
