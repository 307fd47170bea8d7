import Exchange
import ExchangeOrders
import Foundation
import Jobs
import Money
import Payouts
import PostgresNIO
import Storage
import Subscriptions
import Synchronization
import TestPeers
import TestSupport
import Testing

/// Random sales, refunds, transfer failures, exchange endings and operator releases, with the books checked
/// after every payout pass.
@Suite("Payouts: random interleavings")
struct PayoutPropertyTests {
    static let owners = 6

    static func seed(_ database: Database, generator: inout SeededGenerator) async throws {
        var routes: [String] = []
        for _ in 0..<owners { routes.append(Bool.random(using: &generator) ? "ETH" : "USDC") }
        try await database.withTransaction { connection in
            try await seedOwnerChannels(count: owners, userBase: 7000, chatBase: -1_002_000_000_000, on: connection)
            try await connection.run(
                """
                INSERT INTO channel_payout_settings (channel_id, currency_code, network_code, wallet_address)
                SELECT g, (\(routes)::text[])[g], 'ETH', '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed' FROM generate_series(1, \(Int32(owners))) AS g
                """,
                logger: quietLogger
            )
        }
    }

    /// The books' promises; returns what is broken.
    static func broken(_ database: Database) async throws -> [String] {
        try await database.withConnection { connection in
            var problems = try await connection.all(
                "SELECT 'unbalanced transaction ' || transaction_id FROM ledger_entries GROUP BY transaction_id, asset HAVING sum(amount) <> 0",
                as: String.self, logger: quietLogger
            )
            problems += try await connection.all(
                """
                SELECT 'channel ' || b.channel_id || ' ' || b.asset || ': earned ' || b.earned || ' pending ' || b.pending || ' in flight ' || b.in_flight
                       || ' paid out ' || b.paid_out || ' ledger pending ' || coalesce(e.pending, 0) || ' ledger in flight ' || coalesce(e.in_flight, 0)
                FROM owner_balances b
                LEFT JOIN (SELECT owner_user_id, channel_id, asset,
                                  -coalesce(sum(amount) FILTER (WHERE account = 'owner_payable'), 0) AS pending,
                                  -coalesce(sum(amount) FILTER (WHERE account = 'owner_in_flight'), 0) AS in_flight
                           FROM ledger_entries WHERE channel_id IS NOT NULL GROUP BY 1, 2, 3) e
                  ON e.owner_user_id = b.owner_user_id AND e.channel_id = b.channel_id AND e.asset = b.asset
                WHERE b.earned <> b.pending + b.in_flight + b.paid_out OR b.pending <> coalesce(e.pending, 0) OR b.in_flight <> coalesce(e.in_flight, 0)
                   OR b.paid_out <> (SELECT coalesce(sum(amount), 0) FROM payouts p WHERE p.state = 'paid' AND p.channel_id = b.channel_id AND p.asset = b.asset)
                   OR b.in_flight <> (SELECT coalesce(sum(amount), 0) FROM payouts p
                                      WHERE p.state IN ('planned', 'sending', 'exchanging', 'held') AND p.channel_id = b.channel_id AND p.asset = b.asset)
                """,
                as: String.self, logger: quietLogger
            )
            problems += try await connection.all(
                """
                SELECT 'channel ' || channel_id || ' has ' || count(*) || ' open payouts' FROM payouts
                WHERE state IN ('planned', 'sending', 'exchanging', 'held') GROUP BY channel_id HAVING count(*) > 1
                """,
                as: String.self, logger: quietLogger
            )
            return problems
        }
    }

    @Test(
        "per owner and channel earned = pending + in flight + paid out to the wei, every transaction sums to zero per asset, one open payout per channel",
        arguments: [11, 29, 47])
    func randomInterleavings(seed: Int) async throws {
        try await withMigratedDatabase(poolSize: 6) { database in
            var generator = SeededGenerator(state: UInt64(seed))
            try await Self.seed(database, generator: &generator)
            // Per key (transfer, exchange) outcomes drawn from the seed up front, so they do not depend on timing.
            let transferFailures = Set((0..<400).filter { _ in Int.random(in: 0..<6, using: &generator) == 0 })
            let endings: [PayoutPropertyTests.Ending] = (0..<400).map { _ in
                switch Int.random(in: 0..<8, using: &generator) {
                case 0: .refunded
                case 1: .failed
                default: .finished
                }
            }
            let wallet = InstantWallet { key in
                let number = Int(key.split(separator: ":").last ?? "") ?? 0
                return transferFailures.contains(number % 400) ? .failed(reason: "scripted", gas: 0) : .confirmed(gas: 21_000_000_000_000)
            }
            let counter = EndingCounter(endings: endings)
            let exchange = InProcessChangeNow { id in counter.next(for: id) }
            let service = PayoutService(
                database: database, queue: JobQueue(database: database, logger: quietLogger), wallet: wallet, settlement: .ether,
                exchange: PayoutExchange(
                    orders: ExchangeOrderService(database: database, api: exchange, logger: quietLogger), api: exchange,
                    refundAddress: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
                logger: quietLogger
            )
            var splits: [Int64] = []
            for step in 0..<60 {
                switch Int.random(in: 0..<10, using: &generator) {
                case 0..<5:
                    let channel = Int64.random(in: 1...Int64(Self.owners), using: &generator)
                    let units = Decimal(Int.random(in: 1...3_000_000, using: &generator)) * 1_000_000_000
                    let fee = Decimal(Int.random(in: 0...20, using: &generator))
                    let parts = Allocation.largestRemainder(units, weights: [fee, 100 - fee])
                    let id = try await database.withTransaction { connection in
                        try await LedgerStore.book(
                            .split, key: "property:\(seed):\(step)", orderID: nil, paymentID: nil,
                            entries: [
                                LedgerEntry(.buyerCredit, asset: "ETH", units),
                                LedgerEntry(.platformFee, asset: "ETH", -parts[0]),
                                LedgerEntry(.ownerPayable, owner: 7000 + channel, channel: channel, asset: "ETH", -parts[1]),
                            ],
                            on: connection, logger: quietLogger
                        )
                    }
                    if let id { splits.append(id) }
                case 5:
                    // A refund after the sale: the split is reversed, whether or not its share was paid out.
                    if let id = splits.randomElement(using: &generator) {
                        splits.removeAll { $0 == id }
                        try await database.withTransaction { try await LedgerStore.reverse(id, on: $0, logger: quietLogger) }
                    }
                case 6:
                    let failed = try await service.desk.payouts(in: [.failed], limit: 20)
                    if let payout = failed.randomElement(using: &generator) { _ = try await service.desk.release(payoutID: payout.id) }
                default:
                    try await service.runPass()
                }
                let problems = try await Self.broken(database)
                #expect(problems.isEmpty, "seed \(seed) step \(step): \(problems)")
                if !problems.isEmpty { return }
            }
            for _ in 0..<6 { try await service.runPass() }
            #expect(try await Self.broken(database).isEmpty)
            let paid = try await database.withConnection {
                try await $0.first("SELECT count(*)::int FROM payouts WHERE state = 'paid'", as: Int32.self, logger: quietLogger)
            }
            #expect((paid ?? 0) > 0, "the run paid something")
        }
    }

    typealias Ending = InProcessChangeNow.Ending
}

/// Hands out scripted endings, one per exchange id, in order of first ask.
final class EndingCounter: Sendable {
    private let state: Mutex<(assigned: [String: InProcessChangeNow.Ending], next: Int)>
    private let endings: [InProcessChangeNow.Ending]

    init(endings: [InProcessChangeNow.Ending]) {
        self.endings = endings
        self.state = Mutex(([:], 0))
    }

    func next(for id: String) -> InProcessChangeNow.Ending {
        state.withLock { state in
            if let ending = state.assigned[id] { return ending }
            let ending = endings[state.next % endings.count]
            state.next += 1
            state.assigned[id] = ending
            return ending
        }
    }
}
