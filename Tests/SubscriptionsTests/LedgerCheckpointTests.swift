import Foundation
import Money
import PostgresNIO
import Storage
import Subscriptions
import TestSupport
import Testing

@Suite("The ledger summary from a checkpoint")
struct LedgerCheckpointTests {
    /// Every balance by a full scan, as the summary must report it.
    static func fullScan(_ database: Database) async throws -> [String] {
        try await database.withConnection { connection in
            try await connection.all(
                "SELECT account || ' ' || asset || ' ' || sum(amount)::text FROM ledger_entries GROUP BY account, asset ORDER BY asset, account",
                as: String.self, logger: quietLogger
            )
        }
    }

    @Test("checkpoints advanced while four writers book equal a full scan of the ledger, to the last unit")
    func checkpointUnderConcurrentWrites() async throws {
        try await withMigratedDatabase(poolSize: 8) { database in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        var generator = SeededGenerator(state: UInt64(writer + 1))
                        for index in 0..<150 {
                            let usd = Decimal(Int.random(in: 1...100_000, using: &generator)) / 100
                            let wei = Decimal(Int.random(in: 1...1_000_000_000, using: &generator)) * 1_000_000
                            try await database.withTransaction { connection in
                                try await LedgerStore.book(
                                    .receipt, key: "checkpoint-test:\(writer):\(index)", orderID: nil, paymentID: nil,
                                    entries: LedgerBookings.receipt(usd, inReview: index % 7 == 0)
                                        + LedgerBookings.settlement(wei, asset: "ETH", inReview: false),
                                    on: connection, logger: quietLogger
                                )
                            }
                        }
                    }
                }
                group.addTask {
                    for _ in 0..<30 {
                        try await database.withConnection { try await LedgerStore.advanceCheckpoint(on: $0, logger: quietLogger) }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
                try await group.waitForAll()
            }
            let summary = try await database.withConnection { try await LedgerStore.summary(on: $0, logger: quietLogger) }
            let reported = summary.balances.map { "\($0.account) \($0.asset) \(DecimalText.plain($0.amount))" }
            let scanned = try await Self.fullScan(database).map { line in
                // The full scan prints NUMERIC sums with the column's scale; compare as decimals.
                let parts = line.split(separator: " ")
                return "\(parts[0]) \(parts[1]) \(DecimalText.plain(Decimal(string: String(parts[2]))!))"
            }
            #expect(reported == scanned)
            let through = try await database.withConnection { connection in
                try await connection.first("SELECT through_entry_id FROM ledger_checkpoint", as: Int64.self, logger: quietLogger)
            }
            #expect((through ?? 0) > 0, "the checkpoint moved")
        }
    }
}
