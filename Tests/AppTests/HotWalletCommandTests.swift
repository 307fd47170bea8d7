import App
import BigInt
import Ethereum
import Foundation
import HotWallet
import OperatorCommands
import PostgresNIO
import Storage
import TestPeers
import TestSupport
import Testing

/// A `DATABASE_URL` for the test's database on the shared embedded server (through its socket).
private func databaseURL(for database: Database) async throws -> String {
    let socket = try await TestPostgres.shared.server().cluster.socketPath
    let folder = URL(fileURLWithPath: socket).deletingLastPathComponent().path
    let port = try #require(socket.components(separatedBy: ".s.PGSQL.").last)
    let name = try await database.withConnection { connection in
        try await connection.query("SELECT current_database()", logger: quietLogger).collect().first?.decode(String.self)
    }
    return "postgres://\(EmbeddedPostgres.username)@/\(try #require(name))?host=\(folder)&port=\(port)"
}

private func configuration(_ variables: [String: String]) throws -> Configuration {
    try Configuration.load(environment: ["TELEPAY_RESOURCES_DIR": RepositoryPaths.root, "TELEPAY_HTTP_PORT": "0"].merging(variables) { $1 })
}

@Suite("Hot wallet in the CLI: doctor, wallet and serve")
struct HotWalletCommandTests {
    @Test("doctor checks the node's chain id and the wallet balance, and only when a key is configured")
    func doctorEthereum() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let secret = LocalChain.randomSecret()
        let key = try PrivateKey(bytes: secret)
        try await chain.fund(key.address, wei: LocalChain.ether * 3 / 2)
        let base = ["TELEPAY_ETH_RPC_URL": chain.url, "TELEPAY_ETH_PRIVATE_KEY": Hex.encodeData(secret)]

        let good = await Doctor.checkEthereum(try configuration(base.merging(["TELEPAY_ETH_CHAIN_ID": String(chain.chainId)]) { $1 }))
        #expect(good.outcome == .ok)
        #expect(good.detail == "chain \(chain.chainId), wallet \(key.address) holds 1.5 ETH")

        let wrong = await Doctor.checkEthereum(try configuration(base.merging(["TELEPAY_ETH_CHAIN_ID": "1"]) { $1 }))
        #expect(wrong.outcome == .failed)
        #expect(wrong.detail.contains("serves chain \(chain.chainId) but TELEPAY_ETH_CHAIN_ID is 1"))

        let none = await Doctor.checkEthereum(try configuration(["TELEPAY_ETH_RPC_URL": chain.url]))
        #expect(none.outcome == .skipped)
    }

    @Test("doctor proves the ChangeNOW key with an authenticated call")
    func doctorChangeNow() async throws {
        try await FakeChangeNow(apiKeys: ["good-key"]).serve { url in
            let accepted = await Doctor.checkChangeNow(
                try configuration(["TELEPAY_CHANGENOW_API_URL": url, "TELEPAY_CHANGENOW_API_KEY": "good-key"]))
            #expect(accepted.outcome == .ok)
            let refused = await Doctor.checkChangeNow(try configuration(["TELEPAY_CHANGENOW_API_URL": url, "TELEPAY_CHANGENOW_API_KEY": "bad-key"]))
            #expect(refused.outcome == .failed)
            #expect(refused.detail.hasPrefix("ChangeNOW refused TELEPAY_CHANGENOW_API_KEY"))
            #expect(!refused.detail.contains("bad-key"))
            let unset = await Doctor.checkChangeNow(try configuration(["TELEPAY_CHANGENOW_API_URL": url]))
            #expect(unset.outcome == .skipped)
        }
    }

    @Test("telepay wallet shows the address, ETH and token balances, nonces and transfers not yet final")
    func walletReport() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let secret = LocalChain.randomSecret()
        let key = try PrivateKey(bytes: secret)
        try await chain.fund(key.address, wei: 2 * LocalChain.ether)
        let token = try await chain.deployToken(supply: 1_000_500_000, holder: key.address)
        try await withMigratedDatabase { database in
            let sender = TransferSender(
                key: key, chainId: chain.chainId, rpc: chain.rpc, database: database, alerts: LoggingWalletAlerts(logger: quietLogger),
                logger: quietLogger)
            try await sender.start()
            try await chain.hold(key.address)
            _ = try await sender.send(
                TransferRequest(
                    idempotencyKey: "payout:wallet-view", asset: .ether, recipient: LocalChain.randomAddress(), amount: LocalChain.ether / 4))

            let lines = try await WalletReport.build(
                configuration: try configuration([
                    "TELEPAY_ETH_RPC_URL": chain.url, "TELEPAY_ETH_PRIVATE_KEY": Hex.encodeData(secret),
                    "TELEPAY_ETH_CHAIN_ID": String(chain.chainId), "DATABASE_URL": try await databaseURL(for: database),
                ]),
                tokens: [token.checksummed], logger: quietLogger
            )
            let text = lines.joined(separator: "\n")
            #expect(text.contains("address       \(key.address)"))
            #expect(text.contains("token         \(token): 1000.5 (1000500000 base units, 6 decimals)"))
            #expect(text.contains("node nonce    0 mined, 1 with pending"))
            #expect(text.contains("stored nonce  1 next"))
            #expect(text.contains("pending       1 transfer(s)"))
            #expect(text.contains("broadcast payout:wallet-view  0.25 ETH"))
            try await chain.mineSender(key.address)
        }
    }

    @Test("serve refuses to start the hot wallet against a node on another chain")
    func serveRefusesOtherChain() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        try await withMigratedDatabase { database in
            let application = try await TelePayApplication.build(
                configuration: try configuration([
                    "TELEPAY_ETH_RPC_URL": chain.url, "TELEPAY_ETH_PRIVATE_KEY": Hex.encodeData(LocalChain.randomSecret()),
                    "TELEPAY_ETH_CHAIN_ID": "1", "DATABASE_URL": try await databaseURL(for: database),
                ]),
                logger: quietLogger, gracefulShutdownSignals: []
            )
            await #expect {
                try await application.run()
            } throws: { error in
                "\(error)".contains("the Ethereum node serves chain \(chain.chainId), but chain 1 is configured")
            }
        }
    }
}
