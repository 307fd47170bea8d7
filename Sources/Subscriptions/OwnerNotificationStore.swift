import Foundation
import Logging
import Money
import PostgresNIO
import Storage

/// The reads behind owner notifications (channel settings, the order, the recipient, the owner's balance).
public enum OwnerNotificationStore {
    /// `nil` when the channel has notifications off (or no payout settings yet): nothing is sent.
    public static func facts(for job: OwnerNotificationJob, on connection: PostgresConnection, logger: Logger) async throws -> OwnerNotificationFacts?
    {
        guard
            let (recipient, title, owner, strategy, currency, network, wallet, threshold) = try await connection.first(
                """
                SELECT coalesce(s.notification_user_id, c.owner_user_id), c.closed_title, c.owner_user_id, s.strategy, s.currency_code,
                       s.network_code, s.wallet_address, s.threshold_usd::text
                FROM channels c JOIN channel_payout_settings s ON s.channel_id = c.id
                WHERE c.id = \(job.channelID) AND s.notifications_enabled
                """,
                as: (Int64, String, Int64, String, String, String, String, String?).self, logger: logger
            )
        else { return nil }
        let language = try await connection.first(
            "SELECT chosen_language, telegram_language FROM telegram_users WHERE id = \(recipient)", as: (String?, String?).self, logger: logger
        )
        let progress = try await ThresholdProgressStore.read(channelID: job.channelID, ownerUserID: owner, on: connection, logger: logger)
        var facts = OwnerNotificationFacts(
            recipientID: recipient, recipientChosenLanguage: language?.0, recipientTelegramLanguage: language?.1, channelTitle: title, order: nil,
            payout: OwnerNotificationFacts.Payout(
                strategy: strategy, currency: currency, network: network, wallet: wallet,
                thresholdUSD: try threshold.map { try DecimalText.require($0, "threshold") }, convertedUSD: progress.convertedUSD,
                waitingUSD: progress.waitingUSD
            )
        )
        let orderID: Int64? =
            switch job.notification {
            case .sale(let id, _), .donation(let id), .refund(let id): id
            default: nil
            }
        if let orderID,
            let (kind, tier, price, days, buyer, name, username) = try await connection.first(
                """
                SELECT o.kind, o.tier_position::int, o.price_usd::text, o.duration_days, o.user_id, coalesce(u.first_name, ''), u.username
                FROM orders o LEFT JOIN telegram_users u ON u.id = o.user_id WHERE o.id = \(orderID)
                """,
                as: (String, Int?, String, Int32?, Int64, String, String?).self, logger: logger
            )
        {
            guard let kind = OrderKind(rawValue: kind) else { throw OrderStoreError.unknownKind(kind) }
            facts.order = OwnerNotificationFacts.Order(
                kind: kind, tier: tier, priceUSD: try DecimalText.require(price, "order price"), durationDays: days.map(Int.init), buyerID: buyer,
                buyerName: name.isEmpty ? (username.map { "@" + $0 } ?? String(buyer)) : name
            )
        }
        return facts
    }
}
