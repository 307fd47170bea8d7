import Exchange
import ExchangeOrders
import Foundation
import Jobs
import Logging
import Money
import Payouts
import PostgresNIO
import Storage
import Subscriptions
import Synchronization
import TestPeers

/// Payout planning and ledger throughput: `owners` owners, one channel each (half paid in ETH directly, half in
/// USDC through the exchange), `payments` settled shares booked as split transactions, then payout passes
/// until every payout is paid — the hot wallet and ChangeNOW faked in process, so the figures are TelePay's
/// and PostgreSQL's. Then the ledger is grown to `ledgerEntries` entries and `telepay ledger`'s summary is
/// timed, cold and warm.
struct PayoutBenchmark {
    var owners = 1_000
    var payments = 10_000
    var ledgerEntries = 1_000_000

    func run(database: Database, logger: Logger) async throws -> String {
        try await seed(database: database, logger: logger)
        var lines: [String] = []

        // 1. Settled shares into the ledger: one split transaction per payment.
        let share = Decimal(string: "4000000000000000")!
        let bookingStart = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            let perWorker = payments / 8
            for worker in 0..<8 {
                group.addTask {
                    for index in 0..<perWorker {
                        let payment = worker * perWorker + index
                        let channel = Int64(payment % owners) + 1
                        let owner = 5_000_000 + channel
                        try await database.withTransaction { connection in
                            try await LedgerStore.book(
                                .split, key: "bench-split:\(payment)", orderID: nil, paymentID: nil,
                                entries: [
                                    LedgerEntry(.buyerCredit, asset: "ETH", share + 120_000_000_000_000),
                                    LedgerEntry(.platformFee, asset: "ETH", -120_000_000_000_000),
                                    LedgerEntry(.ownerPayable, owner: owner, channel: channel, asset: "ETH", -share),
                                ],
                                on: connection, logger: logger
                            )
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let booking = ContinuousClock.now - bookingStart
        lines.append(
            "payouts: \(payments) splits booked across \(owners) channels in \(format(booking)) (\(rate(payments, booking)) transactions/s, 8 writers)"
        )

        // 2. Payout passes until every channel is paid.
        let exchange = InProcessChangeNow()
        let orders = ExchangeOrderService(database: database, api: exchange, logger: logger)
        let service = PayoutService(
            database: database, queue: JobQueue(database: database, logger: logger), wallet: InstantWallet(), settlement: .ether,
            exchange: PayoutExchange(orders: orders, api: exchange, refundAddress: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            logger: logger
        )
        let passStart = ContinuousClock.now
        var planned = 0
        var planning = Duration.zero
        var paid = 0
        var passes = 0
        while paid < owners && passes < 50 {
            let started = ContinuousClock.now
            let pass = try await service.runPass(batch: owners)
            if pass.planned > 0 { planning += ContinuousClock.now - started }
            planned += pass.planned
            paid += pass.paid
            passes += 1
        }
        let payingTime = ContinuousClock.now - passStart
        let pending = try await database.withConnection { connection in
            try await connection.first(
                "SELECT coalesce(sum(pending), 0)::text FROM owner_balances WHERE asset = 'ETH'", as: String.self, logger: logger) ?? "?"
        }
        lines.append(
            "payouts: \(planned) payouts (\(owners / 2) direct, \(owners / 2) through the exchange) planned and paid in \(passes) passes, \(format(payingTime)); "
                + "first pass (plans all and moves each one step) \(format(planning)), \(rate(planned, planning)) payouts/s; ETH still pending afterwards: \(pending)"
        )

        // 3. The ledger at a million entries.
        let existing = try await count(database, logger)
        if existing < ledgerEntries {
            let fillStart = ContinuousClock.now
            try await fill(database: database, entries: ledgerEntries - existing, logger: logger)
            lines.append("ledger: grown to \(try await count(database, logger)) entries in \(format(ContinuousClock.now - fillStart))")
        }
        for attempt in ["first", "second", "third"] {
            let start = ContinuousClock.now
            let summary = try await database.withConnection { try await LedgerStore.summary(on: $0, logger: logger) }
            let took = ContinuousClock.now - start
            lines.append(
                "ledger: `telepay ledger` summary (\(attempt) run) \(format(took)) — \(summary.balances.count) balances, \(summary.owners.count) owner balances"
            )
        }
        return lines.joined(separator: "\n")
    }

    func count(_ database: Database, _ logger: Logger) async throws -> Int {
        try await database.withConnection { connection in
            Int(try await connection.first("SELECT count(*)::int FROM ledger_entries", as: Int32.self, logger: logger) ?? Int32(0))
        }
    }

    /// Balanced receipt-and-sale-like transactions in bulk: 4 entries each, 10,000 transactions per statement.
    func fill(database: Database, entries: Int, logger: Logger) async throws {
        let transactions = entries / 4
        var done = 0
        while done < transactions {
            let batch = min(10_000, transactions - done)
            let first = done
            try await database.withTransaction { connection in
                try await connection.run(
                    """
                    WITH t AS (
                        INSERT INTO ledger_transactions (kind, idempotency_key)
                        SELECT 'receipt', 'bench-fill:' || g FROM generate_series(\(first), \(first + batch - 1)) AS g
                        RETURNING id)
                    INSERT INTO ledger_entries (transaction_id, account, asset, amount)
                    SELECT t.id, a.account, a.asset, a.amount FROM t
                    CROSS JOIN (VALUES ('provider_clearing', 'USD', 10.00), ('buyer_credit', 'USD', -10.00),
                                       ('hot_wallet', 'ETH', 4059000000000000), ('buyer_credit', 'ETH', -4059000000000000)) AS a(account, asset, amount)
                    """,
                    logger: logger
                )
            }
            done += batch
        }
    }

    func seed(database: Database, logger: Logger) async throws {
        try await database.withTransaction { connection in
            try await connection.run(
                """
                INSERT INTO telegram_users (id, first_name, telegram_language)
                SELECT 5000000 + g, 'Owner ' || g, 'en' FROM generate_series(1, \(owners)) AS g
                """,
                logger: logger
            )
            try await connection.run("INSERT INTO owners (user_id) SELECT 5000000 + g FROM generate_series(1, \(owners)) AS g", logger: logger)
            try await connection.run(
                """
                INSERT INTO channels (id, owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, status)
                OVERRIDING SYSTEM VALUE
                SELECT g, 5000000 + g, -1001000000000 - 2 * g, 'Closed ' || g, -1001000000001 - 2 * g, 'Open ' || g, 'active'
                FROM generate_series(1, \(owners)) AS g
                """,
                logger: logger
            )
            try await connection.run(
                """
                INSERT INTO channel_payout_settings (channel_id, currency_code, network_code, wallet_address)
                SELECT g, CASE WHEN g % 2 = 0 THEN 'ETH' ELSE 'USDC' END, 'ETH', '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed'
                FROM generate_series(1, \(owners)) AS g
                """,
                logger: logger
            )
        }
    }

    func format(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds < 1 ? String(format: "%.0f ms", seconds * 1000) : String(format: "%.2f s", seconds)
    }

    func rate(_ count: Int, _ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds > 0 ? String(format: "%.0f", Double(count) / seconds) : "-"
    }
}
