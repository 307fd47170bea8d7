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

/// What reached the hot wallet for a conversion, as scripted: what the in-process exchange reported, or
/// (for the hashes the seed picks) a little less.
final class ScriptedArrivals: ConversionArrivals {
    let exchange: InProcessChangeNow
    let short: @Sendable (String) -> Bool

    init(exchange: InProcessChangeNow, short: @escaping @Sendable (String) -> Bool) {
        self.exchange = exchange
        self.short = short
    }

    func received(transaction hash: String) async throws -> Decimal? {
        guard let reported = exchange.reportedAmountTo(hash: hash) else { return 0 }
        let units = SettlementAsset.usdt.units(reported)
        return short(hash) ? max(units - 17, 1) : units
    }
}

/// Random payments, refunds, thresholds, strategy switches, transfer failures and exchange endings through
/// the batch conversion and both payout services, with the books checked after every step.
@Suite("Threshold payouts: random interleavings")
struct ThresholdPropertyTests {
    static let owners = 5

    /// The promises; returns what is broken.
    static func broken(_ database: Database) async throws -> [String] {
        try await database.withConnection { connection in
            var problems = try await connection.all(
                "SELECT 'unbalanced transaction ' || transaction_id FROM ledger_entries GROUP BY transaction_id, asset HAVING sum(amount) <> 0",
                as: String.self, logger: quietLogger
            )
            // converted + pending + in flight + paid = earned, per owner, channel and asset, and the balances equal the ledger.
            problems += try await connection.all(
                """
                SELECT 'channel ' || b.channel_id || ' ' || b.asset || ': earned ' || b.earned || ' received ' || b.received || ' pending ' || b.pending
                       || ' converting ' || b.converting || ' in flight ' || b.in_flight || ' paid out ' || b.paid_out || ' converted ' || b.converted
                FROM owner_balances b
                LEFT JOIN (SELECT owner_user_id, channel_id, asset,
                                  -coalesce(sum(amount) FILTER (WHERE account = 'owner_payable'), 0) AS pending,
                                  -coalesce(sum(amount) FILTER (WHERE account = 'owner_in_flight'), 0) AS in_flight,
                                  -coalesce(sum(amount) FILTER (WHERE account = 'owner_converting'), 0) AS converting,
                                  -coalesce(sum(value_usd) FILTER (WHERE account = 'owner_payable'), 0) AS pending_usd
                           FROM ledger_entries WHERE channel_id IS NOT NULL GROUP BY 1, 2, 3) e
                  ON e.owner_user_id = b.owner_user_id AND e.channel_id = b.channel_id AND e.asset = b.asset
                WHERE b.earned + b.received <> b.pending + b.converting + b.in_flight + b.paid_out + b.converted
                   OR b.pending <> coalesce(e.pending, 0) OR b.in_flight <> coalesce(e.in_flight, 0) OR b.converting <> coalesce(e.converting, 0)
                   OR b.pending_usd <> coalesce(e.pending_usd, 0)
                """,
                as: String.self, logger: quietLogger
            )
            // Allocations sum to what arrived.
            problems += try await connection.all(
                """
                SELECT 'conversion ' || c.id || ' allocated ' || sum(p.allocated_units) || ' of ' || c.received_units
                FROM conversions c JOIN conversion_parts p ON p.conversion_id = c.id
                WHERE c.state = 'converted' GROUP BY c.id, c.received_units HAVING sum(p.allocated_units) <> c.received_units
                """,
                as: String.self, logger: quietLogger
            )
            // Nobody is paid above their converted balance.
            problems += try await connection.all(
                """
                SELECT 'channel ' || a.channel_id || ' paid ' || coalesce(p.total, 0) || ' USDT units of ' || a.total || ' converted'
                FROM (SELECT channel_id, sum(allocated_units) AS total FROM conversion_parts GROUP BY 1) a
                LEFT JOIN (SELECT channel_id, sum(amount) AS total FROM payouts WHERE asset = 'USDT' AND state <> 'failed' GROUP BY 1) p
                  ON p.channel_id = a.channel_id
                WHERE coalesce(p.total, 0) > coalesce(a.total, 0)
                """,
                as: String.self, logger: quietLogger
            )
            problems += try await connection.all(
                """
                SELECT 'channel ' || channel_id || ' has ' || count(*) || ' open payouts in ' || asset FROM payouts
                WHERE state IN ('planned', 'sending', 'exchanging', 'held') GROUP BY channel_id, asset HAVING count(*) > 1
                """,
                as: String.self, logger: quietLogger
            )
            return problems
        }
    }

    @Test(
        "earned + received = pending + converting + in flight + paid out + converted to the unit, allocations sum to what arrived, nobody paid above their converted balance",
        arguments: [5, 23, 71])
    func randomInterleavings(seed: Int) async throws {
        try await withMigratedDatabase(poolSize: 6) { database in
            var generator = SeededGenerator(state: UInt64(seed))
            var coins: [String] = []
            var thresholds: [Int] = []
            for _ in 0..<Self.owners {
                coins.append(Bool.random(using: &generator) ? "USDT" : "USDC")
                thresholds.append(Int.random(in: 10...120, using: &generator))
            }
            try await database.withTransaction { connection in
                try await seedOwnerChannels(count: Self.owners, userBase: 7500, chatBase: -1_005_000_000_000, on: connection)
                try await connection.run(
                    """
                    INSERT INTO channel_payout_settings (channel_id, currency_code, network_code, wallet_address, strategy, threshold_usd)
                    SELECT g, (\(coins)::text[])[g], 'ETH', '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', 'threshold', (\(thresholds)::int[])[g]
                    FROM generate_series(1, \(Int32(Self.owners))) AS g
                    """,
                    logger: quietLogger
                )
            }
            let transferFailures = Set((0..<400).filter { _ in Int.random(in: 0..<7, using: &generator) == 0 })
            let endings: [InProcessChangeNow.Ending] = (0..<400).map { _ in
                switch Int.random(in: 0..<10, using: &generator) {
                case 0: .refunded
                default: .finished
                }
            }
            let shortSeed = UInt64(seed)
            let wallet = InstantWallet { key in
                let number = Int(key.split(separator: ":").last ?? "") ?? 0
                return transferFailures.contains(number % 400) ? .failed(reason: "scripted", gas: 0) : .confirmed(gas: 21_000_000_000_000)
            }
            let counter = EndingCounter(endings: endings)
            let exchange = InProcessChangeNow { id in counter.next(for: id) }
            let orders = ExchangeOrderService(database: database, api: exchange, logger: quietLogger)
            let queue = JobQueue(database: database, logger: quietLogger)
            let hot = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
            let conversions = ConversionService(
                database: database, queue: queue, wallet: wallet,
                arrivals: ScriptedArrivals(exchange: exchange) { hash in hash.utf8.reduce(shortSeed) { $0 &* 31 &+ UInt64($1) } % 5 == 0 },
                settlement: .ether, exchange: PayoutExchange(orders: orders, api: exchange, refundAddress: hot, minimumLifetime: .zero),
                hotWallet: hot,
                settings: ConversionSettings(minimumUSD: 20, interval: .zero), logger: quietLogger
            )
            let thresholdPayouts = PayoutService(
                database: database, queue: queue, wallet: wallet, settlement: .usdt,
                exchange: PayoutExchange(
                    orders: orders, api: exchange, refundAddress: hot, from: ExchangeLeg(currency: "usdt", network: "eth"), minimumLifetime: .zero),
                planning: .converted(unitsPerUSD: SettlementAsset.usdt.unitsPerCoin), logger: quietLogger
            )
            let instantPayouts = PayoutService(
                database: database, queue: queue, wallet: wallet, settlement: .ether,
                exchange: PayoutExchange(orders: orders, api: exchange, refundAddress: hot, minimumLifetime: .zero), logger: quietLogger
            )
            var splits: [Int64] = []
            for step in 0..<80 {
                switch Int.random(in: 0..<14, using: &generator) {
                case 0..<6:
                    // A payment: 0.001–0.02 ETH at $2,500, 3 % fee, the owner's part valued at its dollars.
                    let channel = Int64.random(in: 1...Int64(Self.owners), using: &generator)
                    let units = Decimal(Int.random(in: 100_000...2_000_000, using: &generator)) * 10_000_000_000
                    let parts = Allocation.largestRemainder(units, weights: [3, 97])
                    let value = DecimalText.rounded(parts[1] / SettlementAsset.ether.unitsPerCoin * 2500, scale: 2, .down)
                    let id = try await database.withTransaction { connection in
                        try await LedgerStore.book(
                            .split, key: "threshold-property:\(seed):\(step)", orderID: nil, paymentID: nil,
                            entries: [
                                LedgerEntry(.hotWallet, asset: "ETH", units),
                                LedgerEntry(.platformFee, asset: "ETH", -parts[0]),
                                LedgerEntry(.ownerPayable, owner: 7500 + channel, channel: channel, asset: "ETH", -parts[1], valueUSD: -value),
                            ],
                            on: connection, logger: quietLogger
                        )
                    }
                    if let id { splits.append(id) }
                case 6:
                    // A refund after the split: reversed whatever became of the share.
                    if let id = splits.randomElement(using: &generator) {
                        splits.removeAll { $0 == id }
                        try await database.withTransaction { try await LedgerStore.reverse(id, on: $0, logger: quietLogger) }
                    }
                case 7:
                    // An owner switches strategy (or threshold) mid-flight.
                    let channel = Int64.random(in: 1...Int64(Self.owners), using: &generator)
                    let instant = Int.random(in: 0..<3, using: &generator) == 0
                    let threshold = Int.random(in: 10...120, using: &generator)
                    try await database.withConnection { connection in
                        try await connection.run(
                            """
                            UPDATE channel_payout_settings SET strategy = \(instant ? "instant" : "threshold"),
                                threshold_usd = \(instant ? nil : threshold)::numeric WHERE channel_id = \(channel)
                            """,
                            logger: quietLogger
                        )
                    }
                case 8:
                    for desk in [thresholdPayouts.desk] {
                        if let payout = try await desk.payouts(in: [.failed], limit: 20).randomElement(using: &generator) {
                            _ = try await desk.release(payoutID: payout.id)
                        }
                    }
                default:
                    try await conversions.runPass()
                    try await thresholdPayouts.runPass()
                    try await instantPayouts.runPass()
                }
                let problems = try await Self.broken(database)
                #expect(problems.isEmpty, "seed \(seed) step \(step): \(problems)")
                if !problems.isEmpty { return }
            }
            for _ in 0..<8 {
                try await conversions.runPass()
                try await thresholdPayouts.runPass()
                try await instantPayouts.runPass()
            }
            #expect(try await Self.broken(database).isEmpty)
            let converted = try await database.withConnection {
                try await $0.first("SELECT count(*)::int FROM conversions WHERE state = 'converted'", as: Int32.self, logger: quietLogger)
            }
            let paid = try await database.withConnection {
                try await $0.first("SELECT count(*)::int FROM payouts WHERE state = 'paid' AND asset = 'USDT'", as: Int32.self, logger: quietLogger)
            }
            #expect((converted ?? 0) > 0 && (paid ?? 0) > 0, "the run converted \(converted ?? 0) times and paid \(paid ?? 0) USDT payouts")
        }
    }
}
