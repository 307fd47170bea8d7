import Foundation
import PostgresNIO
import Storage
import TestSupport
import Testing

/// Migration 0012 rewrites live money tables (orders' payment columns into `payments`, ledger entries into
/// balanced transactions); it must carry a database that already holds sales over intact.
@Suite("Migrating orders and the ledger to per-payment rows and transactions")
struct PaymentsMigrationTests {
    @Test("a paid order and its three ledger entries written before 0012 become a payment row and one balanced sale")
    func legacyDataSurvives() async throws {
        try await withTestDatabase { database in
            let all = try Migration.load(directory: RepositoryPaths.migrations)
            try await MigrationRunner(migrations: all.filter { $0.version <= 11 }, logger: quietLogger).apply(on: database)
            try await database.withTransaction { connection in
                for statement in [
                    "INSERT INTO telegram_users (id, first_name) VALUES (1, 'Anna'), (2, 'Olga')",
                    "INSERT INTO owners (user_id) VALUES (2)",
                    """
                    INSERT INTO channels (id, owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, status)
                    OVERRIDING SYSTEM VALUE VALUES (7, 2, -1001000000001, 'Club', -1001000000002, 'Open', 'active')
                    """,
                    """
                    INSERT INTO orders (id, public_id, user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days,
                                        closed_chat_id, closed_title, status, invoice_id, payment_id, payment_status, pay_currency,
                                        pay_amount, actually_paid, paid_at)
                    OVERRIDING SYSTEM VALUE VALUES
                        (11, 'tp-AAAAAAAAAAAAAAAAAAAAAA', 1, 7, 2, 1, 10.00, 30, -1001000000001, 'Club', 'paid', '4522625843', '5077125051',
                         'finished', 'eth', 0.0041, 0.0041, now()),
                        (12, 'tp-BBBBBBBBBBBBBBBBBBBBBB', 1, 7, 2, 1, 10.00, 30, -1001000000001, 'Club', 'awaiting_payment', '4522625844',
                         NULL, NULL, NULL, NULL, NULL, NULL)
                    """,
                    """
                    INSERT INTO ledger_entries (order_id, entry, account, owner_user_id, amount_usd) VALUES
                        (11, 'gross', 'provider_clearing', NULL, 10.00), (11, 'platform_fee', 'platform_fee', NULL, -0.30),
                        (11, 'owner_share', 'owner_payable', 2, -9.70)
                    """,
                ] {
                    try await connection.run(PostgresQuery(unsafeSQL: statement), logger: quietLogger)
                }
            }
            let applied = try await MigrationRunner(migrations: all, logger: quietLogger).apply(on: database)
            #expect(applied.first?.version == 12)
            try await database.withConnection { connection in
                let payment = try await connection.first(
                    "SELECT provider_payment_id, order_id, status, credited_usd::text, actually_paid::text FROM payments",
                    as: (String, Int64?, String, String, String?).self, logger: quietLogger
                )
                #expect(
                    payment?.0 == "5077125051" && payment?.1 == 11 && payment?.2 == "finished" && payment?.3 == "10.00"
                        && payment?.4 == "0.004100000000000000")
                let orders = try await connection.all(
                    "SELECT status || ' ' || sold || ' ' || received_usd FROM orders ORDER BY id", as: String.self, logger: quietLogger
                )
                #expect(orders == ["paid true 10.00", "awaiting_payment false 0.00"])
                let transactions = try await connection.all(
                    """
                    SELECT t.kind, t.idempotency_key, count(e.id)::int, sum(e.amount)::text FROM ledger_transactions t
                    JOIN ledger_entries e ON e.transaction_id = t.id GROUP BY t.id ORDER BY t.id
                    """,
                    as: (String, String, Int32, String).self, logger: quietLogger
                )
                #expect(transactions.count == 1)
                #expect(transactions.first.map { "\($0.0) \($0.1) \($0.2) \($0.3)" } == "sale sale:order:11:1 3 0.00")
                let balances = try await connection.all(
                    "SELECT asset || ' ' || balance FROM owner_pending_balances WHERE owner_user_id = 2", as: String.self, logger: quietLogger
                )
                #expect(balances == ["USD 9.70"])
                // 0060: the owner's entry names the order's channel, and the balances table starts from the ledger.
                let perChannel = try await connection.all(
                    """
                    SELECT b.channel_id::text || ' ' || b.asset || ' ' || b.earned::text || ' ' || b.pending::text || ' ' || b.in_flight::text
                    FROM owner_balances b JOIN ledger_entries e ON e.channel_id = b.channel_id AND e.account = 'owner_payable'
                    WHERE b.owner_user_id = 2
                    """,
                    as: String.self, logger: quietLogger
                )
                let channel = try await connection.first("SELECT channel_id::text FROM orders WHERE id = 11", as: String.self, logger: quietLogger)
                #expect(perChannel == ["\(channel ?? "?") USD 9.70 9.70 0"])
                // Entries are immutable now: a correction is a reversal, never an edit.
                await #expect(throws: PSQLError.self) {
                    try await connection.run("UPDATE ledger_entries SET amount = 0", logger: quietLogger)
                }
            }
        }
    }
}
