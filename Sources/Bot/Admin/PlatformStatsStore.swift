import Channels
import Foundation
import Jobs
import Localization
import Logging
import Money
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

    /// The platform's fees booked in one asset (USD, or a chain asset in its smallest unit).
    public struct Fees: Sendable, Hashable {
        public var asset: String
        public var today: Decimal
        public var week: Decimal
        public var month: Decimal

        public init(asset: String, today: Decimal, week: Decimal, month: Decimal) {
            self.asset = asset
            self.today = today
            self.week = week
            self.month = month
        }
    }

    /// What owners are owed in one asset: pending (not yet on its way), converting (taken by a conversion that
    /// has not ended), in flight (a payout is moving it) and paid out, summed over every owner and channel.
    public struct Payable: Sendable, Hashable {
        public var asset: String
        public var pending: Decimal
        public var converting: Decimal
        public var inFlight: Decimal
        public var paidOut: Decimal

        public init(asset: String, pending: Decimal, converting: Decimal = 0, inFlight: Decimal, paidOut: Decimal) {
            self.asset = asset
            self.pending = pending
            self.converting = converting
            self.inFlight = inFlight
            self.paidOut = paidOut
        }
    }

    public struct AssetAmount: Sendable, Hashable {
        public var asset: String
        public var amount: Decimal

        public init(asset: String, amount: Decimal) {
            self.asset = asset
            self.amount = amount
        }
    }

    public var fees: [Fees] = []
    public var payables: [Payable] = []
    /// What the hot wallet should hold per asset, by the ledger (checkpoint plus the entries after it).
    public var hotWallet: [AssetAmount] = []

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
            let row = try await connection.first(
                """
                SELECT
                    (SELECT count(*) FROM telegram_users),
                    (SELECT count(*) FROM telegram_users WHERE blocked_bot_at IS NOT NULL),
                    (SELECT count(*) FROM owners),
                    (SELECT count(*) FROM channels WHERE deleted_at IS NULL AND status = \(ChannelStatus.active.rawValue)),
                    (SELECT count(*) FROM channels WHERE deleted_at IS NULL AND status = \(ChannelStatus.paused.rawValue)),
                    (SELECT count(*) FROM subscriptions WHERE status = \(active)),
                    (SELECT count(*) FROM subscriptions WHERE started_at > now() - interval '7 days'),
                    (SELECT count(*) FROM subscriptions WHERE status = \(expired) AND expires_at > now() - interval '7 days'),
                    revenue.today, revenue.week, revenue.month,
                    (SELECT count(*) FROM jobs WHERE state = \(JobState.failed.rawValue)),
                    (SELECT extract(epoch FROM now() - min(run_at))::bigint FROM jobs WHERE state = \(JobState.available.rawValue) AND run_at <= now())
                FROM (
                    -- One pass over the last 30 days of paid orders, index only (Migrations/0052).
                    SELECT COALESCE(sum(price_usd) FILTER (WHERE paid_at >= date_trunc('day', now())), 0)::text AS today,
                           COALESCE(sum(price_usd) FILTER (WHERE paid_at > now() - interval '7 days'), 0)::text AS week,
                           COALESCE(sum(price_usd), 0)::text AS month
                    FROM orders WHERE status = \(paid) AND paid_at > now() - interval '30 days'
                ) AS revenue
                """,
                as: (Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, String, String, String, Int64, Int64?).self, logger: logger
            )
            var stats = PlatformStats()
            if let row {
                stats = PlatformStats(
                    users: Int(row.0), blockedUsers: Int(row.1), owners: Int(row.2), activeChannels: Int(row.3), pausedChannels: Int(row.4),
                    activeSubscriptions: Int(row.5), newSubscriptionsWeek: Int(row.6), churnedSubscriptionsWeek: Int(row.7),
                    revenueToday: try DecimalText.require(row.8, "revenue"), revenueWeek: try DecimalText.require(row.9, "revenue"),
                    revenueMonth: try DecimalText.require(row.10, "revenue"),
                    failedJobs: Int(row.11), oldestWaitingSeconds: row.12.map(Int.init)
                )
            }
            // Fees read the partial index on fee entries by time (Migrations/0052): only the last 30 days' rows.
            stats.fees = try await connection.all(
                """
                SELECT asset,
                    COALESCE(sum(-amount) FILTER (WHERE created_at >= date_trunc('day', now())), 0)::text,
                    COALESCE(sum(-amount) FILTER (WHERE created_at > now() - interval '7 days'), 0)::text,
                    COALESCE(sum(-amount), 0)::text
                FROM ledger_entries WHERE account = \(LedgerAccount.platformFee.rawValue) AND created_at > now() - interval '30 days'
                GROUP BY asset ORDER BY asset
                """,
                as: (String, String, String, String).self, logger: logger
            ).map {
                PlatformStats.Fees(
                    asset: $0.0, today: try DecimalText.require($0.1, "fees"), week: try DecimalText.require($0.2, "fees"),
                    month: try DecimalText.require($0.3, "fees"))
            }
            // One row per owner, channel and asset, kept by the ledger's trigger: small next to the orders.
            stats.payables = try await connection.all(
                """
                SELECT asset, sum(pending)::text, sum(converting)::text, sum(in_flight)::text, sum(paid_out)::text FROM owner_balances
                GROUP BY asset ORDER BY asset
                """,
                as: (String, String, String, String, String).self, logger: logger
            ).map {
                PlatformStats.Payable(
                    asset: $0.0, pending: try DecimalText.require($0.1, "pending"), converting: try DecimalText.require($0.2, "converting"),
                    inFlight: try DecimalText.require($0.3, "in flight"), paidOut: try DecimalText.require($0.4, "paid out")
                )
            }
            let lag =
                try await connection.first(
                    "SELECT coalesce((SELECT max(id) FROM ledger_entries), 0) - (SELECT through_entry_id FROM ledger_checkpoint)",
                    as: Int64.self, logger: logger
                ) ?? Int64(0)
            if lag > LedgerStore.checkpointLag {
                try await LedgerStore.advanceCheckpoint(on: connection, logger: logger)
            }
            stats.hotWallet = try await connection.all(
                """
                SELECT asset, sum(amount)::text FROM (
                    SELECT asset, amount FROM ledger_checkpoint_balances WHERE account = \(LedgerAccount.hotWallet.rawValue)
                    UNION ALL
                    SELECT asset, amount FROM ledger_entries
                    WHERE id > (SELECT through_entry_id FROM ledger_checkpoint) AND account = \(LedgerAccount.hotWallet.rawValue)
                ) AS e GROUP BY asset ORDER BY asset
                """,
                as: (String, String).self, logger: logger
            ).map { PlatformStats.AssetAmount(asset: $0.0, amount: try DecimalText.require($0.1, "hot wallet")) }
            return stats
        }
    }
}

extension BroadcastCommands {
    /// The admin's stats: the counts, then fees, owner payables and hot-wallet balances per asset, and open
    /// payouts. Each line is localized with its values escaped; joined without escaping them again.
    static func renderMoney(_ stats: PlatformStats, openPayouts: [(state: String, count: Int)], context: UpdateContext) -> String {
        var lines = [context.text(L10n.adminStats, stats.arguments), "", context.text(L10n.adminStatsFees)]
        if stats.fees.isEmpty { lines.append("—") }
        for fee in stats.fees {
            lines.append(
                context.text(L10n.adminStatsFeeLine, ["asset": fee.asset, "today": "\(fee.today)", "week": "\(fee.week)", "month": "\(fee.month)"]))
        }
        lines.append(context.text(L10n.adminStatsPayables))
        if stats.payables.isEmpty { lines.append("—") }
        for payable in stats.payables {
            lines.append(
                context.text(
                    L10n.adminStatsPayableLine,
                    [
                        "asset": payable.asset, "pending": "\(payable.pending)", "converting": "\(payable.converting)",
                        "in_flight": "\(payable.inFlight)",
                        "paid": "\(payable.paidOut)",
                    ]))
        }
        lines.append(
            context.text(
                L10n.adminStatsOpenPayouts,
                [
                    "payouts": openPayouts.isEmpty ? "—" : openPayouts.map { "\($0.state) \($0.count)" }.joined(separator: ", ")
                ]))
        lines.append(context.text(L10n.adminStatsHotWallet))
        if stats.hotWallet.isEmpty { lines.append("—") }
        for balance in stats.hotWallet {
            lines.append(context.text(L10n.adminStatsHotWalletLine, ["asset": balance.asset, "amount": "\(balance.amount)"]))
        }
        return lines.joined(separator: "\n")
    }
}
