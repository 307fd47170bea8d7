import Bot
import Foundation
import Logging
import PostgresNIO
import Storage

/// The admin's stats on a big database: 100,000 users, 1,000 channels, 1,000,000 orders (90% paid, payment times
/// spread over a year), 300,000 subscriptions and 3,000,000 ledger entries (a sale of gross, fee and owner
/// share per paid order, plus hot-wallet receipts), then `PlatformStatsStore.read()` timed several times.
/// Seeding books balanced entries with the ledger's per-row triggers off (they check what the seed already
/// guarantees) and fills `owner_balances` from them, as the triggers would; then VACUUM ANALYZE, the state
/// autovacuum keeps a busy database in.
struct AdminStatsBenchmark {
    var orders = 1_000_000
    var runs = 7

    func run(database: Database, logger: Logger) async throws -> String {
        let seedStart = ContinuousClock.now
        let orders = Int32(self.orders)
        try await database.withConnection { connection in
            let statements: [PostgresQuery] = [
                "INSERT INTO telegram_users (id, first_name, username) SELECT n, 'User ' || n, 'u' || n FROM generate_series(1, 100000) AS n",
                "INSERT INTO owners (user_id) SELECT n FROM generate_series(1, 1000) AS n",
                """
                INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, status, paused_reason)
                SELECT n, -1001000000000 - 2 * n, 'Closed ' || n, -1001000000001 - 2 * n, 'Open ' || n,
                       CASE WHEN n % 10 = 0 THEN 'paused' ELSE 'active' END, CASE WHEN n % 10 = 0 THEN 'owner' END
                FROM generate_series(1, 1000) AS n
                """,
                """
                INSERT INTO orders (user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title,
                                    status, paid_at, received_usd, sold, created_at)
                SELECT 1001 + n % 99000, c.id, c.owner_user_id, 1 + n % 3, 9.99 + (n % 3) * 10, 30, c.closed_chat_id, c.closed_title,
                       CASE WHEN n % 10 = 0 THEN 'expired' ELSE 'paid' END,
                       CASE WHEN n % 10 = 0 THEN NULL ELSE now() - make_interval(secs => (n * 31.536)::float8) END,
                       CASE WHEN n % 10 = 0 THEN 0 ELSE 9.99 + (n % 3) * 10 END, n % 10 <> 0,
                       now() - make_interval(secs => (n * 31.536)::float8)
                FROM generate_series(1, \(orders)) AS n JOIN channels c ON c.id = 1 + n % 1000
                """,
                """
                INSERT INTO subscriptions (user_id, channel_id, status, started_at, expires_at, last_order_id)
                SELECT DISTINCT ON (user_id, channel_id) user_id, channel_id,
                       CASE WHEN paid_at > now() - interval '30 days' THEN 'active' ELSE 'expired' END, paid_at, paid_at + interval '30 days', id
                FROM orders WHERE status = 'paid' AND id % 3 = 0 ORDER BY user_id, channel_id, id DESC
                """,
                "ALTER TABLE ledger_entries DISABLE TRIGGER USER",
                """
                INSERT INTO ledger_transactions (kind, idempotency_key, order_id, created_at)
                SELECT 'sale', 'sale:order:' || id, id, paid_at FROM orders WHERE status = 'paid'
                """,
                """
                INSERT INTO ledger_entries (transaction_id, order_id, account, asset, amount, owner_user_id, channel_id, created_at)
                SELECT t.id, o.id, e.account, 'USD', e.amount, e.owner, e.channel, o.paid_at
                FROM ledger_transactions t JOIN orders o ON o.id = t.order_id,
                LATERAL (VALUES ('provider_clearing', o.price_usd, NULL::bigint, NULL::bigint),
                                ('platform_fee', -round(o.price_usd * 0.1, 2), NULL, NULL),
                                ('owner_payable', -(o.price_usd - round(o.price_usd * 0.1, 2)), o.owner_user_id, o.channel_id)) AS e(account, amount, owner, channel)
                """,
                """
                INSERT INTO ledger_transactions (kind, idempotency_key, created_at)
                SELECT 'receipt', 'receipt:bench:' || n, now() - make_interval(hours => n) FROM generate_series(1, 50000) AS n
                """,
                """
                INSERT INTO ledger_entries (transaction_id, account, asset, amount, created_at)
                SELECT t.id, e.account, 'ETH', e.amount, t.created_at
                FROM ledger_transactions t, LATERAL (VALUES ('hot_wallet', 3000000000000000::numeric), ('buyer_credit', -3000000000000000::numeric)) AS e(account, amount)
                WHERE t.kind = 'receipt'
                """,
                "ALTER TABLE ledger_entries ENABLE TRIGGER USER",
                """
                INSERT INTO owner_balances (owner_user_id, channel_id, asset, earned, pending)
                SELECT owner_user_id, channel_id, asset, -sum(amount), -sum(amount) FROM ledger_entries WHERE account = 'owner_payable'
                GROUP BY owner_user_id, channel_id, asset
                ON CONFLICT (owner_user_id, channel_id, asset) DO UPDATE SET earned = EXCLUDED.earned, pending = EXCLUDED.pending
                """,
                "VACUUM ANALYZE",
            ]
            for statement in statements {
                try await connection.query(statement, logger: logger)
            }
        }
        let seeded = ContinuousClock.now - seedStart
        let counts = try await database.withConnection { connection in
            try await connection.first(
                "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM ledger_entries), (SELECT count(*) FROM subscriptions)",
                as: (Int64, Int64, Int64).self, logger: logger
            )
        }
        let store = PlatformStatsStore(database: database, logger: logger)
        var times: [Duration] = []
        var stats: PlatformStats?
        for _ in 0..<runs {
            let start = ContinuousClock.now
            stats = try await store.read()
            times.append(ContinuousClock.now - start)
        }
        let milliseconds = times.map { Double($0.components.seconds) * 1000 + Double($0.components.attoseconds) / 1e15 }
        let sorted = milliseconds.sorted()
        return """
            admin stats: \(counts.map { "\($0.0) orders, \($0.1) ledger entries, \($0.2) subscriptions" } ?? "?") seeded in \(seeded)
              read() \(runs) times: first \(String(format: "%.1f", milliseconds[0])) ms (moves the ledger checkpoint), then min \(String(format: "%.1f", sorted[0])) ms, \
            median \(String(format: "%.1f", sorted[sorted.count / 2])) ms, max \(String(format: "%.1f", sorted.last ?? 0)) ms
              revenue 30 d \(stats?.revenueMonth ?? 0) USD, fees 30 d \((stats?.fees ?? []).map { "\($0.month) \($0.asset)" }.joined(separator: ", ")), \
            active subscriptions \(stats?.activeSubscriptions ?? 0)
            """
    }
}
