import Channels
import Foundation
import Logging
import Money
import PostgresNIO
import Storage

/// What a buyer sees before an order exists: a channel's offer, and their own subscriptions. The queries of
/// the purchase screens live here.
enum OfferStore {
    /// The active channel whose offer token is `token`, or the active channel `channelID`, with its enabled tiers.
    static func offer(token: String?, channelID: Int64?, on connection: PostgresConnection, logger: Logger) async throws -> Offer? {
        let rows = try await connection.all(
            """
            SELECT c.id, c.closed_title, c.closed_description, c.open_title, t.position, t.price_usd::text, t.duration_days
            FROM channels c LEFT JOIN channel_tiers t ON t.channel_id = c.id AND t.enabled
            WHERE c.status = \(ChannelStatus.active.rawValue) AND (c.offer_token = \(token ?? "") OR c.id = \(channelID ?? 0))
            ORDER BY t.position
            """,
            as: (Int64, String, String, String, Int16?, String?, Int32?).self, logger: logger
        )
        guard let (id, closedTitle, description, openTitle, _, _, _) = rows.first else { return nil }
        var offer = Offer(channelID: id, closedTitle: closedTitle, closedDescription: description, openTitle: openTitle, tiers: [])
        for (_, _, _, _, position, price, days) in rows {
            guard let position, let price, let days else { continue }
            offer.tiers.append(Offer.Tier(position: Int(position), priceUSD: try DecimalText.require(price, "tier price"), durationDays: Int(days)))
        }
        return offer
    }

    /// The user's subscriptions, newest expiry first.
    static func subscriptions(of userID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> [SubscriptionSummary] {
        try await connection.all(
            """
            SELECT s.id, s.channel_id, c.closed_title, s.status = \(SubscriptionStatus.active.rawValue), s.expires_at
            FROM subscriptions s JOIN channels c ON c.id = s.channel_id
            WHERE s.user_id = \(userID) ORDER BY s.expires_at DESC
            """,
            as: (Int64, Int64, String, Bool, Date).self, logger: logger
        ).map { SubscriptionSummary(id: $0.0, channelID: $0.1, title: $0.2, isActive: $0.3, expiresAt: $0.4) }
    }
}
