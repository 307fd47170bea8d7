import Foundation
import Logging
import Money
import PostgresNIO
import Storage
import Subscriptions

/// An owner's numbers for one channel.
public struct ChannelStats: Sendable, Hashable {
    /// Subscriptions started (new or returning) and ended in one 7-day window; week 0 ends now.
    public struct Week: Sendable, Hashable {
        public var weeksAgo: Int
        public var started: Int
        public var ended: Int
    }

    /// Paid orders of one tier: revenue in USD over 7 days, 30 days and all time.
    public struct Tier: Sendable, Hashable {
        public var position: Int
        public var orders: Int
        public var lastWeek: Decimal
        public var lastMonth: Decimal
        public var allTime: Decimal
    }

    /// Paid donations: how many, and USD over 7 days, 30 days and all time.
    public struct Donations: Sendable, Hashable {
        public var count: Int
        public var lastWeek: Decimal
        public var lastMonth: Decimal
        public var allTime: Decimal
    }

    /// The owner's money from this channel in one asset: earned, pending (owed, not yet on its way), converting
    /// (taken by a conversion that has not ended), in flight (a payout is moving it) and paid out.
    public struct Balance: Sendable, Hashable {
        public var asset: String
        public var earned: Decimal
        public var pending: Decimal
        public var converting: Decimal
        public var inFlight: Decimal
        public var paidOut: Decimal
    }

    public var activeSubscribers: Int
    public var weeks: [Week]
    public var tiers: [Tier]
    public var donations = Donations(count: 0, lastWeek: 0, lastMonth: 0, allTime: 0)
    public var balances: [Balance] = []
}

/// Reads `ChannelStats`.
public struct ChannelStatsStore: Sendable {
    public static let weeksShown = 4

    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func read(channelID: Int64, on connection: PostgresConnection) async throws -> ChannelStats {
        let active = SubscriptionStatus.active.rawValue, expired = SubscriptionStatus.expired.rawValue
        let activeCount =
            try await connection.first(
                "SELECT count(*) FROM subscriptions WHERE channel_id = \(channelID) AND status = \(active)", as: Int64.self, logger: logger
            ) ?? Int64(0)
        let weeks = try await connection.all(
            """
            SELECT w,
                (SELECT count(*) FROM subscriptions WHERE channel_id = \(channelID)
                   AND started_at > now() - make_interval(days => 7 * (w + 1)) AND started_at <= now() - make_interval(days => 7 * w)),
                (SELECT count(*) FROM subscriptions WHERE channel_id = \(channelID) AND status = \(expired)
                   AND expires_at > now() - make_interval(days => 7 * (w + 1)) AND expires_at <= now() - make_interval(days => 7 * w))
            FROM generate_series(0, \(Int32(Self.weeksShown - 1))) AS w ORDER BY w
            """,
            as: (Int32, Int64, Int64).self, logger: logger
        ).map { week, started, ended in ChannelStats.Week(weeksAgo: Int(week), started: Int(started), ended: Int(ended)) }
        let tiers = try await connection.all(
            """
            SELECT tier_position, count(*),
                COALESCE(sum(price_usd) FILTER (WHERE paid_at > now() - interval '7 days'), 0)::text,
                COALESCE(sum(price_usd) FILTER (WHERE paid_at > now() - interval '30 days'), 0)::text,
                sum(price_usd)::text
            FROM orders WHERE channel_id = \(channelID) AND status = \(OrderStatus.paid.rawValue) AND kind = \(OrderKind.subscription.rawValue)
            GROUP BY tier_position ORDER BY tier_position
            """,
            as: (Int16, Int64, String, String, String).self, logger: logger
        ).map { position, count, week, month, all in
            ChannelStats.Tier(
                position: Int(position), orders: Int(count), lastWeek: try DecimalText.require(week, "tier revenue"),
                lastMonth: try DecimalText.require(month, "tier revenue"), allTime: try DecimalText.require(all, "tier revenue")
            )
        }
        var stats = ChannelStats(activeSubscribers: Int(activeCount), weeks: weeks, tiers: tiers)
        if let (count, week, month, all) = try await connection.first(
            """
            SELECT count(*),
                COALESCE(sum(price_usd) FILTER (WHERE paid_at > now() - interval '7 days'), 0)::text,
                COALESCE(sum(price_usd) FILTER (WHERE paid_at > now() - interval '30 days'), 0)::text,
                COALESCE(sum(price_usd), 0)::text
            FROM orders WHERE channel_id = \(channelID) AND status = \(OrderStatus.paid.rawValue) AND kind = \(OrderKind.donation.rawValue)
            """,
            as: (Int64, String, String, String).self, logger: logger
        ) {
            stats.donations = .init(
                count: Int(count), lastWeek: try DecimalText.require(week, "donations"), lastMonth: try DecimalText.require(month, "donations"),
                allTime: try DecimalText.require(all, "donations")
            )
        }
        return stats
    }
}
