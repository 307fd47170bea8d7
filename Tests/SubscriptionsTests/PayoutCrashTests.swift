import BigInt
import Ethereum
import Foundation
import HotWallet
import Money
import Payouts
import PostgresNIO
import Storage
import Subscriptions
import TestPeers
import TestSupport
import Testing

/// Runs Tests/PayoutCrashChild (built next to the test bundle) against the test's database, chain and fake ChangeNOW.
struct PayoutCrashChildProcess {
    let environment: [String: String]
    let logPath: String

    static var executable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("PayoutCrashChild").path
    }

    func run(crashAt plan: String) async throws -> (Int32, String) {
        var environment = self.environment
        environment["CRASH_AT"] = plan
        let pid = try ProcessRunner.spawn(Self.executable, [], environment: environment, outputPath: logPath)
        let code = await ProcessRunner.waitForExit(pid)
        return (code, (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")
    }
}

@Suite("Payouts killed with SIGKILL at every step")
struct PayoutCrashTests {
    /// Each channel's settled share: 0.02 ETH of 0.0206 ETH settled (above the exchange's 0.01 minimum).
    static let share = Decimal(string: "20000000000000000")!
    static let settled = Decimal(string: "20600000000000000")!

    @Test(
        "killed at every step of direct and exchange payouts, then restarted: each channel is paid exactly once, one exchange funded per payout, gapless nonces, ledger equals chain"
    )
    func crashCampaign() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let secret = LocalChain.randomSecret()
        let key = try PrivateKey(bytes: secret)
        let gasMoney = LocalChain.ether
        let treasury = try await chain.fundedWallet(ether: 10)
        let usdc = try await chain.deployToken(name: "USD Coin", symbol: "USDC", decimals: 6, supply: BigUInt(10).power(15), holder: treasury.address)
        let fake = FakeChangeNow()
        await fake.settle(
            on: .init(rpc: chain.rpc, chainId: chain.chainId, treasury: treasury, tokens: ["usdc/eth": .init(address: usdc, decimals: 6)]))
        let server = try await TestPostgres.shared.server()
        let wallets = (0..<4).map { _ in LocalChain.randomAddress() }
        try await withMigratedDatabase { database in
            // Four owners, one channel each: 1 and 2 take ETH on Ethereum (direct), 3 and 4 USDC on Ethereum (exchange).
            try await database.withTransaction { connection in
                try await seedOwnerChannels(count: 4, userBase: 8000, chatBase: -1003000000000, on: connection)
                try await connection.run(
                    """
                    INSERT INTO channel_payout_settings (channel_id, currency_code, network_code, wallet_address)
                    SELECT g, CASE WHEN g <= 2 THEN 'ETH' ELSE 'USDC' END, 'ETH', (\(wallets.map(\.checksummed))::text[])[g] FROM generate_series(1, 4) AS g
                    """,
                    logger: quietLogger
                )
            }
            try await chain.fund(key.address, wei: gasMoney)
            // Each round settles another share for every channel (into the ledger and onto the chain), so every
            // run has payouts to take through every step — and a kill to meet.
            @Sendable func settleRound(_ round: Int) async throws {
                try await database.withTransaction { connection in
                    for channel in Int64(1)...4 {
                        try await LedgerStore.book(
                            .split, key: "crash-settled:\(round):\(channel)", orderID: nil, paymentID: nil,
                            entries: [
                                LedgerEntry(.hotWallet, asset: "ETH", Self.settled),
                                LedgerEntry(.platformFee, asset: "ETH", Self.share - Self.settled),
                                LedgerEntry(.ownerPayable, owner: 8000 + channel, channel: channel, asset: "ETH", -Self.share),
                            ],
                            on: connection, logger: quietLogger
                        )
                    }
                }
                try await chain.fund(key.address, wei: 4 * BigUInt(20_600_000_000_000_000))
            }
            let databaseName = try await database.withConnection { connection in
                try await connection.query("SELECT current_database()", logger: quietLogger).collect().first?.decode(String.self)
            }
            try await fake.serve { url in
                let child = PayoutCrashChildProcess(
                    environment: [
                        "CRASH_DB_SOCKET": server.cluster.socketPath, "CRASH_DB_USER": EmbeddedPostgres.username,
                        "CRASH_DB_NAME": try #require(databaseName), "CRASH_RPC_URL": chain.url, "CRASH_KEY": Hex.encodeData(secret),
                        "CRASH_CHAIN_ID": String(chain.chainId), "CRASH_CHANGENOW_URL": url, "CRASH_MAX_PASSES": "30",
                    ], logPath: try RepositoryPaths.makeTemporaryDirectory("payout-crash") + "/child.log")

                var rounds = 0
                var history: [String] = []
                var kills = 0
                var killedSteps: Set<String> = []
                // Every step, in the order a payout reaches them, each killed at its first and at a later occurrence.
                let plans = PayoutStep.allCases.filter { $0 != .failed }.flatMap { ["\($0.rawValue):1", "\($0.rawValue):2"] }
                var finished = false
                for plan in plans + Array(repeating: "", count: 4) where !finished {
                    if !plan.isEmpty && plan.hasSuffix(":1") {
                        rounds += 1
                        try await settleRound(rounds)
                    }
                    let (code, output) = try await child.run(crashAt: plan)
                    #expect([0, 3, 137].contains(code), "plan \(plan): exit \(code)\n\(output)")
                    if code == 137 {
                        kills += 1
                        killedSteps.insert(String(plan.split(separator: ":")[0]))
                    }
                    history.append("\(plan.isEmpty ? "-" : plan)→\(code)")
                    finished = code == 0 && plan.isEmpty
                }
                #expect(finished, "payouts still open: \(history)")
                #expect(kills >= 10, "only \(kills) runs were killed: \(history)")
                #expect(
                    killedSteps.isSuperset(of: ["planned", "intentRecorded", "exchangeCreated", "transferRecorded", "sending", "funded", "paid"]),
                    "\(history)")

                // Every payout paid, none failed; each channel got exactly what it earned.
                let states = try await database.withConnection { connection in
                    try await connection.all("SELECT DISTINCT state FROM payouts", as: String.self, logger: quietLogger)
                }
                #expect(states == ["paid"], "\(history)")
                let earned = Decimal(rounds) * Self.share
                let paidOut = try await database.withConnection { connection in
                    try await connection.all(
                        "SELECT paid_out::text FROM owner_balances WHERE asset = 'ETH' ORDER BY channel_id", as: String.self, logger: quietLogger)
                }
                #expect(paidOut == Array(repeating: DecimalText.plain(earned), count: 4), "\(history)")
                for wallet in wallets.prefix(2) {
                    let received = try await chain.rpc.balance(of: wallet, at: .latest)
                    #expect(received.description == DecimalText.plain(earned), "each direct owner got exactly their shares")
                }
                // Exactly the exchanges the payouts recorded were funded — one each — whatever creates a kill repeated.
                let exchanges = await fake.exchanges()
                var funded: [FakeChangeNow.FakeExchange] = []
                for exchange in exchanges
                where try await chain.rpc.balance(of: try Address(parsing: exchange.payinAddress), at: .latest) > 0 || exchange.amountFrom != nil {
                    funded.append(exchange)
                }
                let recorded = try await database.withConnection { connection in
                    try await connection.all(
                        "SELECT i.exchange_id FROM payouts p JOIN exchange_intents i ON i.id = p.exchange_intent_id WHERE p.route = 'exchange' ORDER BY 1",
                        as: String.self, logger: quietLogger
                    )
                }
                #expect(
                    funded.map(\.id).sorted() == recorded,
                    "created \(exchanges.count), funded \(funded.count), recorded \(recorded.count): \(history)")
                for wallet in wallets.suffix(2) {
                    let amounts = funded.filter { $0.payoutAddress == wallet.checksummed }.map { $0.amountTo ?? 0 }
                    let units = try TokenUnits.baseUnits(fromDecimal: "\(amounts.reduce(0, +))", decimals: 6)
                    let held = try await chain.rpc.tokenBalance(token: usdc, owner: wallet)
                    #expect(units > 0 && held == units, "each exchange owner got each funded exchange's amountTo once")
                }
                // One transfer per payout, gapless nonces, and the books equal the chain.
                let payoutCount = try await database.withConnection { connection in
                    try await connection.first("SELECT count(*)::int FROM payouts", as: Int32.self, logger: quietLogger)
                }
                let sender = TransferSender(
                    key: key, chainId: chain.chainId, rpc: chain.rpc, database: database, policy: SenderPolicy(confirmations: 1),
                    alerts: IgnoredWalletAlerts(), logger: quietLogger)
                let transfers = try await sender.transfers(in: TransferState.allCases)
                #expect(transfers.count == Int(payoutCount ?? -1) && transfers.allSatisfy { $0.state == .confirmed })
                #expect(transfers.compactMap(\.nonce).sorted() == Array(0..<UInt64(transfers.count)))
                #expect(try await chain.rpc.transactionCount(of: key.address, at: .latest) == UInt64(transfers.count))
                #expect(try await PayoutPropertyTests.broken(database).isEmpty)
                let ledgerHotWallet = try await database.withConnection { connection in
                    try await connection.first(
                        "SELECT sum(amount)::text FROM ledger_entries WHERE account = 'hot_wallet' AND asset = 'ETH'", as: String.self,
                        logger: quietLogger)
                }
                let onChain = try await chain.rpc.balance(of: key.address, at: .latest)
                let expected = (Decimal(string: ledgerHotWallet ?? "") ?? -1) + (Decimal(string: gasMoney.description) ?? 0)
                #expect(onChain.description == DecimalText.plain(expected), "chain \(onChain), ledger + gas money \(expected)")
            }
        }
    }
    @Test(
        "threshold payouts killed at every step of the conversion and of the USDT payouts, then restarted: every share converted once, one exchange funded per conversion and per payout, the USDT that arrived paid exactly once, ledger equals chain"
    )
    func thresholdCrashCampaign() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let secret = LocalChain.randomSecret()
        let key = try PrivateKey(bytes: secret)
        let gasMoney = LocalChain.ether
        let treasury = try await chain.fundedWallet(ether: 10)
        let usdt = try await chain.deployToken(
            name: "Tether USD", symbol: "USDT", decimals: 6, supply: BigUInt(10).power(15), holder: treasury.address)
        let usdc = try await chain.deployToken(name: "USD Coin", symbol: "USDC", decimals: 6, supply: BigUInt(10).power(15), holder: treasury.address)
        let fake = FakeChangeNow()
        await fake.settle(
            on: .init(
                rpc: chain.rpc, chainId: chain.chainId, treasury: treasury,
                tokens: ["usdt/eth": .init(address: usdt, decimals: 6), "usdc/eth": .init(address: usdc, decimals: 6)]
            ))
        let server = try await TestPostgres.shared.server()
        let wallets = (0..<2).map { _ in LocalChain.randomAddress() }
        try await withMigratedDatabase { database in
            // Two threshold owners ($10): channel 1 takes USDT on Ethereum (a token transfer), channel 2 USDC (an exchange from USDT).
            try await database.withTransaction { connection in
                try await seedOwnerChannels(count: 2, userBase: 8100, chatBase: -1004000000000, on: connection)
                try await connection.run(
                    """
                    INSERT INTO channel_payout_settings (channel_id, currency_code, network_code, wallet_address, strategy, threshold_usd)
                    SELECT g, CASE WHEN g = 1 THEN 'USDT' ELSE 'USDC' END, 'ETH', (\(wallets.map(\.checksummed))::text[])[g], 'threshold', 10
                    FROM generate_series(1, 2) AS g
                    """,
                    logger: quietLogger
                )
            }
            try await chain.fund(key.address, wei: gasMoney)
            // Each round: another $25 share for each channel (0.01 ETH each), so every run converts and pays.
            @Sendable func settleRound(_ round: Int) async throws {
                try await database.withTransaction { connection in
                    for channel in Int64(1)...2 {
                        try await LedgerStore.book(
                            .split, key: "threshold-crash:\(round):\(channel)", orderID: nil, paymentID: nil,
                            entries: [
                                LedgerEntry(.hotWallet, asset: "ETH", Self.settled),
                                LedgerEntry(.platformFee, asset: "ETH", Self.share - Self.settled),
                                LedgerEntry(.ownerPayable, owner: 8100 + channel, channel: channel, asset: "ETH", -Self.share, valueUSD: -50),
                            ],
                            on: connection, logger: quietLogger
                        )
                    }
                }
                try await chain.fund(key.address, wei: 2 * BigUInt(20_600_000_000_000_000))
            }
            let databaseName = try await database.withConnection { connection in
                try await connection.query("SELECT current_database()", logger: quietLogger).collect().first?.decode(String.self)
            }
            try await fake.serve { url in
                let child = PayoutCrashChildProcess(
                    environment: [
                        "CRASH_DB_SOCKET": server.cluster.socketPath, "CRASH_DB_USER": EmbeddedPostgres.username,
                        "CRASH_DB_NAME": try #require(databaseName), "CRASH_RPC_URL": chain.url, "CRASH_KEY": Hex.encodeData(secret),
                        "CRASH_CHAIN_ID": String(chain.chainId), "CRASH_CHANGENOW_URL": url, "CRASH_MAX_PASSES": "40",
                        "CRASH_MODE": "threshold", "CRASH_USDT": usdt.checksummed,
                    ], logPath: try RepositoryPaths.makeTemporaryDirectory("threshold-crash") + "/child.log")

                var rounds = 0
                var history: [String] = []
                var killedSteps: Set<String> = []
                let plans = PayoutStep.allCases.filter { $0 != .failed && $0 != .validated }.flatMap { ["\($0.rawValue):1", "\($0.rawValue):2"] }
                var finished = false
                for plan in plans + Array(repeating: "", count: 4) where !finished {
                    if !plan.isEmpty && plan.hasSuffix(":1") {
                        rounds += 1
                        try await settleRound(rounds)
                    }
                    let (code, output) = try await child.run(crashAt: plan)
                    #expect([0, 3, 137].contains(code), "plan \(plan): exit \(code)\n\(output)")
                    if code == 137 { killedSteps.insert(String(plan.split(separator: ":")[0])) }
                    history.append("\(plan.isEmpty ? "-" : plan)→\(code)")
                    finished = code == 0 && plan.isEmpty
                }
                #expect(finished, "still open: \(history)")
                #expect(
                    killedSteps.isSuperset(of: [
                        "planned", "estimated", "intentRecorded", "exchangeCreated", "transferRecorded", "sending", "funded", "paid",
                    ]), "\(history)")

                func strings(_ sql: PostgresQuery) async throws -> [String] {
                    try await database.withConnection { try await $0.all(sql, as: String.self, logger: quietLogger) }
                }
                #expect(try await strings("SELECT DISTINCT state FROM conversions") == ["converted"], "\(history)")
                #expect(try await strings("SELECT DISTINCT state FROM payouts") == ["paid"], "\(history)")
                // Every share converted once: the conversions took all of it (8 decimals: 0.02 ETH shares have no dust).
                #expect(
                    try await strings("SELECT sum(from_units)::text FROM conversion_parts") == [DecimalText.plain(Decimal(2 * rounds) * Self.share)])
                // What arrived is allocated exactly and paid exactly once.
                #expect(
                    try await strings(
                        "SELECT (sum(p.allocated_units) = c.received_units)::text FROM conversions c JOIN conversion_parts p ON p.conversion_id = c.id GROUP BY c.id"
                    )
                    .allSatisfy { $0 == "true" })
                let allocated = try await strings("SELECT sum(allocated_units)::text FROM conversion_parts GROUP BY channel_id ORDER BY channel_id")
                let paid = try await strings("SELECT paid_out::text FROM owner_balances WHERE asset = 'USDT' ORDER BY channel_id")
                #expect(allocated == paid, "allocated \(allocated), paid \(paid): \(history)")
                #expect(
                    try await chain.rpc.tokenBalance(token: usdt, owner: wallets[0]).description == allocated.first,
                    "the USDT owner got exactly their allocations")
                // Exactly the recorded exchanges were funded: one per conversion and one per USDC payout.
                let exchanges = await fake.exchanges()
                let funded = exchanges.filter { $0.amountFrom != nil }.map(\.id).sorted()
                let recorded = try await strings(
                    """
                    SELECT i.exchange_id FROM exchange_intents i
                    WHERE i.id IN (SELECT exchange_intent_id FROM conversions UNION SELECT exchange_intent_id FROM payouts WHERE route = 'exchange')
                    ORDER BY 1
                    """
                )
                #expect(funded == recorded, "created \(exchanges.count), funded \(funded.count), recorded \(recorded.count): \(history)")
                let usdcUnits = try TokenUnits.baseUnits(
                    fromDecimal:
                        "\(exchanges.filter { $0.payoutAddress == wallets[1].checksummed && $0.amountFrom != nil }.map { $0.amountTo ?? 0 }.reduce(0, +))",
                    decimals: 6
                )
                #expect(
                    try await chain.rpc.tokenBalance(token: usdc, owner: wallets[1]) == usdcUnits && usdcUnits > 0,
                    "the USDC owner got each funded exchange's amount once")
                // Gapless nonces, and the books equal the chain in ETH and USDT.
                let sender = TransferSender(
                    key: key, chainId: chain.chainId, rpc: chain.rpc, database: database, policy: SenderPolicy(confirmations: 1),
                    alerts: IgnoredWalletAlerts(), logger: quietLogger)
                let transfers = try await sender.transfers(in: TransferState.allCases)
                #expect(
                    transfers.allSatisfy { $0.state == .confirmed } && transfers.compactMap(\.nonce).sorted() == Array(0..<UInt64(transfers.count)))
                let broken = try await strings(
                    "SELECT channel_id::text || asset FROM owner_balances WHERE earned + received <> pending + converting + in_flight + paid_out + converted"
                )
                #expect(broken.isEmpty, "\(broken)")
                let ledgerEther =
                    Decimal(
                        string: try await strings("SELECT sum(amount)::text FROM ledger_entries WHERE account = 'hot_wallet' AND asset = 'ETH'").first
                            ?? "") ?? -1
                let onChain = try await chain.rpc.balance(of: key.address, at: .latest)
                #expect(
                    onChain.description == DecimalText.plain(ledgerEther + (Decimal(string: gasMoney.description) ?? 0)),
                    "ETH: chain \(onChain), ledger \(ledgerEther) + gas money")
                let ledgerTether = try await strings(
                    "SELECT coalesce(sum(amount), 0)::text FROM ledger_entries WHERE account = 'hot_wallet' AND asset = 'USDT'"
                ).first
                #expect(
                    try await chain.rpc.tokenBalance(token: usdt, owner: key.address).description == ledgerTether, "USDT: the ledger equals the chain"
                )
            }
        }
    }
}
