import BigInt
import Ethereum
import Foundation
import HotWallet
import PostgresNIO
import Storage
import TestPeers
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs Tests/SenderCrashChild (built next to the test bundle) against the test's database and chain.
struct CrashChild {
    let environment: [String: String]
    let logPath: String

    static var executable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("SenderCrashChild").path
    }

    /// Returns the exit code (128 + 9 when it killed itself) and what it printed.
    func run(crashAt plan: String) async throws -> (Int32, String) {
        var environment = self.environment
        environment["CRASH_AT"] = plan
        let pid = try ProcessRunner.spawn(Self.executable, [], environment: environment, outputPath: logPath)
        let code = await ProcessRunner.waitForExit(pid)
        return (code, (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")
    }
}

@Suite("Hot-wallet sender killed with SIGKILL at every step")
struct SenderCrashTests {
    @Test("after many SIGKILLs between signing, broadcast, recording and replacement, each intent is paid exactly once with gapless nonces")
    func crashCampaign() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        // The child gets the key as production does: hex in its environment.
        let secret = LocalChain.randomSecret()
        let key = try PrivateKey(bytes: secret)
        try await chain.fund(key.address, wei: 20 * LocalChain.ether)
        let token = try await chain.deployToken(supply: 1_000_000_000, holder: key.address)
        let server = try await TestPostgres.shared.server()
        try await withMigratedDatabase { database in
            let sender = TransferSender(
                key: key, chainId: chain.chainId, rpc: chain.rpc, database: database, policy: SenderPolicy(confirmations: 1),
                alerts: RecordingAlerts(), logger: quietLogger
            )
            try await sender.start()
            var requests: [TransferRequest] = []
            func submitNext() async throws {
                let index = requests.count
                let asset: TransferAsset = index % 4 == 3 ? .token(token) : .ether
                let amount = index % 4 == 3 ? BigUInt(123_456 + index) : LocalChain.ether / 100 + BigUInt(index)
                let request = TransferRequest(idempotencyKey: "crash:\(index)", asset: asset, recipient: LocalChain.randomAddress(), amount: amount)
                _ = try await sender.submit(request)
                requests.append(request)
            }
            for _ in 0..<4 { try await submitNext() }

            let databaseName = try await database.withConnection { connection in
                try await connection.query("SELECT current_database()", logger: quietLogger).collect().first?.decode(String.self)
            }
            let child = CrashChild(
                environment: [
                    "CRASH_DB_SOCKET": server.cluster.socketPath, "CRASH_DB_USER": EmbeddedPostgres.username,
                    "CRASH_DB_NAME": try #require(databaseName), "CRASH_RPC_URL": chain.url,
                    "CRASH_KEY": Hex.encodeData(secret), "CRASH_CHAIN_ID": String(chain.chainId),
                    "CRASH_STUCK_MS": "150", "CRASH_CONFIRMATIONS": "1", "CRASH_MAX_PASSES": "12",
                ], logPath: try RepositoryPaths.makeTemporaryDirectory("crash-child") + "/child.log")

            let seed = UInt64.random(in: 1...UInt64.max)
            var random = SeededGenerator(state: seed)
            var kills = 0
            var killedSteps: Set<String> = []
            var history: [String] = []
            func run(_ plan: String) async throws -> Int32 {
                let started = ContinuousClock.now
                let (code, output) = try await child.run(crashAt: plan)
                let took = ContinuousClock.now - started
                #expect([0, 3, 137].contains(code), "seed \(seed), plan \(plan): exit \(code)\n\(output)")
                if code == 137 {
                    kills += 1
                    killedSteps.insert(String(plan.split(separator: ":")[0]))
                }
                history.append(
                    "\(plan.isEmpty ? "-" : plan)→\(code) \(took.components.seconds * 1000 + took.components.attoseconds / 1_000_000_000_000_000)ms")
                return code
            }

            // Automine: a kill right after each step of sending.
            for plan in [
                "attemptStored:1", "broadcastAccepted:1", "broadcastRecorded:1", "receiptRecorded:1", "attemptStored:1", "broadcastAccepted:1",
            ] {
                _ = try await run(plan)
            }
            // The network ignores the wallet: new transfers get stuck and are replaced at their nonce,
            // and the kills land around replacements. Now and then a block mines whichever version of
            // each nonce the node's pool holds.
            try await chain.hold(key.address)
            let stuckSteps = [
                "replacementStored", "replacementStored", "replacementAccepted", "replacementAccepted", "attemptStored", "broadcastAccepted",
                "receiptRecorded",
            ]
            for plan in ["replacementStored:1", "replacementAccepted:1", "replacementStored:2", "replacementAccepted:2"] {
                try await submitNext()
                _ = try await run(plan)
            }
            for round in 0..<12 {
                if round % 2 == 0 || random.next() % 2 == 0 { try await submitNext() }
                let step = stuckSteps[Int(random.next() % UInt64(stuckSteps.count))]
                _ = try await run("\(step):\(1 + random.next() % 2)")
                if random.next() % 4 == 0 { try await chain.mineSender(key.address) }
            }
            try await chain.hold(key.address, false)
            var finished = false
            for _ in 0..<5 where !finished {
                finished = try await run("") == 0
            }
            #expect(finished, "seed \(seed): transfers still open: \(history)")
            #expect(kills >= 10, "seed \(seed): only \(kills) runs were killed: \(history)")
            #expect(
                killedSteps.isSuperset(of: ["attemptStored", "broadcastAccepted", "broadcastRecorded", "replacementStored", "replacementAccepted"]),
                "seed \(seed): \(history)")

            // Each intent paid exactly once, and nothing else left the wallet.
            let transfers = try await sender.transfers(in: TransferState.allCases)
            #expect(transfers.count == requests.count)
            #expect(transfers.allSatisfy { $0.state == .confirmed }, "seed \(seed): \(transfers.map(\.state))")
            for request in requests {
                switch request.asset {
                case .ether: #expect(try await chain.rpc.balance(of: request.recipient, at: .latest) == request.amount, "seed \(seed)")
                case .token(let contract):
                    #expect(try await chain.rpc.tokenBalance(token: contract, owner: request.recipient) == request.amount, "seed \(seed)")
                }
            }
            #expect(try await chain.rpc.transactionCount(of: key.address, at: .latest) == UInt64(requests.count))
            #expect(transfers.compactMap(\.nonce).sorted() == Array(0..<UInt64(requests.count)))
            #expect(try await sender.storedNextNonce() == UInt64(requests.count))
            for transfer in transfers {
                let hash = try #require(transfer.minedTransactionHash)
                let mined = try await #require(chain.rpc.transaction(hash))
                #expect(mined.from == key.address && mined.nonce == transfer.nonce)
            }
        }
    }
}
