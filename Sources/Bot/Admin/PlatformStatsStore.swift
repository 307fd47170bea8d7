import Foundation
import Jobs
import Logging
import PostgresNIO
import Storage
import Subscriptions

/// The admin's numbers, read in one statement. Each count uses an index (or a small table), so it stays
/// fast as orders grow.
public struct PlatformStats: Sendable, Hashable {
    public var users = 0
    public var blockedUsers = 0
    public var owners = 0
    public var activeChannels = 0
    public var pausedChannels = 0
    public var activeSubscriptions = 0
    public var newSubscriptionsWeek = 0
    public var churnedSubscriptionsWeek = 0
    public var revenueToday: Decimal = 0
    public var revenueWeek: Decimal = 0
    public var revenueMonth: Decimal = 0
    public var failedJobs = 0
    /// Seconds the oldest job due now has waited; `nil` when none waits.
    public var oldestWaitingSeconds: Int?

    var arguments: [String: String] {
        [
            "users": String(users), "blocked": String(blockedUsers), "owners": String(owners),
            "channels_active": String(activeChannels), "channels_paused": String(pausedChannels),
            "subscriptions": String(activeSubscriptions), "new_week": String(newSubscriptionsWeek),
            "churned_week": String(churnedSubscriptionsWeek),
            "revenue_today": "\(revenueToday)", "revenue_week": "\(revenueWeek)", "revenue_month": "\(revenueMonth)",
            "failed_jobs": String(failedJobs), "oldest_waiting": oldestWaitingSeconds.map { "\($0) s" } ?? "—",
        ]
    }
}

/// Reads `PlatformStats`.
public struct PlatformStatsStore: Sendable {
    let database: Database
    let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    public func read() async throws -> PlatformStats {
        let active = SubscriptionStatus.active.rawValue, expired = SubscriptionStatus.expired.rawValue
        let paid = OrderStatus.paid.rawValue
        return try await database.withConnection { connection in
            let rows = try await connection.query("""
                SELECT
                    (SELECT count(*) FROM telegram_users),
                    (SELECT count(*) FROM telegram_users WHERE blocked_bot_at IS NOT NULL),
                    (SELECT count(*) FROM owners),
                    (SELECT count(*) FROM channels WHERE deleted_at IS NULL AND status = \(ChannelStatus.active.rawValue)),
                    (SELECT count(*) FROM channels WHERE deleted_at IS NULL AND status = \(ChannelStatus.paused.rawValue)),
                    (SELECT count(*) FROM subscriptions WHERE status = \(active)),
                    (SELECT count(*) FROM subscriptions WHERE started_at > now() - interval '7 days'),
                    (SELECT count(*) FROM subscriptions WHERE status = \(expired) AND expires_at > now() - interval '7 days'),
                    (SELECT COALESCE(sum(price_usd), 0)::text FROM orders WHERE status = \(paid) AND paid_at >= date_trunc('day', now())),
                    (SELECT COALESCE(sum(price_usd), 0)::text FROM orders WHERE status = \(paid) AND paid_at > now() - interval '7 days'),
                    (SELECT COALESCE(sum(price_usd), 0)::text FROM orders WHERE status = \(paid) AND paid_at > now() - interval '30 days'),
                    (SELECT count(*) FROM jobs WHERE state = \(JobState.failed.rawValue)),
                    (SELECT extract(epoch FROM now() - min(run_at))::bigint FROM jobs WHERE state = \(JobState.available.rawValue) AND run_at <= now())
                """, logger: logger)
            var stats = PlatformStats()
            for try await row in rows.decode((Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, String, String, String, Int64, Int64?).self) {
                stats = PlatformStats(
                    users: Int(row.0), blockedUsers: Int(row.1), owners: Int(row.2), activeChannels: Int(row.3), pausedChannels: Int(row.4),
                    activeSubscriptions: Int(row.5), newSubscriptionsWeek: Int(row.6), churnedSubscriptionsWeek: Int(row.7),
                    revenueToday: Decimal(string: row.8) ?? 0, revenueWeek: Decimal(string: row.9) ?? 0, revenueMonth: Decimal(string: row.10) ?? 0,
                    failedJobs: Int(row.11), oldestWaitingSeconds: row.12.map(Int.init)
                )
            }
            return stats
        }
    }
}
