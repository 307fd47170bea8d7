import BigInt
import Ethereum
import Foundation
import Logging
import Money
import NOWPaymentsFake
import TestPeers

/// The local chain the sandbox's hot wallet lives on: the py-evm node the tests use
/// (`Tests/EthereumNode/eth_test_node.py`), started when its Python packages are installed.
public struct SandboxChain: Sendable {
    public let chain: LocalChain
    let secret: [UInt8]
    public let hotWallet: Address
    /// The ETH the hot wallet starts with, for gas.
    static let gasEther = 10

    /// Starts the node (it exits with this process) and funds a fresh hot wallet with 10 ETH for gas; or says
    /// why there is no chain.
    public static func start(logger: Logger) async -> Result<SandboxChain, SandboxChainUnavailable> {
        do {
            let chain = try await EthereumTestNode.shared.chain()
            let secret = LocalChain.randomSecret()
            let key = try PrivateKey(bytes: secret)
            try await chain.fund(key.address, wei: BigUInt(gasEther) * LocalChain.ether)
            logger.notice(
                "local chain started", metadata: ["rpc": "\(chain.url)", "chain_id": "\(chain.chainId)", "hot_wallet": "\(key.address.checksummed)"])
            return .success(SandboxChain(chain: chain, secret: secret, hotWallet: key.address))
        } catch {
            let firstLine = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
            return .failure(SandboxChainUnavailable(reason: firstLine))
        }
    }

    /// What TelePay's configuration gets: the node, the hot-wallet key, the chain id, one confirmation (the node
    /// mines a block per transaction and no more).
    var environment: [String: String] {
        [
            "TELEPAY_ETH_RPC_URL": chain.url,
            "TELEPAY_ETH_PRIVATE_KEY": Hex.encodeData(secret),
            "TELEPAY_ETH_CHAIN_ID": "\(chain.chainId)",
            "TELEPAY_ETH_CONFIRMATIONS": "1",
        ]
    }

    /// ChangeNOW simulated on this chain: the fake exchange (the tests' own) watches its pay-in addresses for
    /// deposits and pays out from a treasury holding ETH and two tokens deployed here, USDT and USDC, so
    /// exchange payouts and threshold conversions are paid on the chain. Serves until `server` is cancelled.
    public func startExchange(logger: Logger) async throws -> (environment: [String: String], server: Task<Void, any Error>) {
        let treasury = try await chain.fundedWallet(ether: 50)
        let usdt = try await chain.deployToken(
            name: "Tether USD", symbol: "USDT", decimals: 6, supply: BigUInt(10).power(15), holder: treasury.address)
        let usdc = try await chain.deployToken(name: "USD Coin", symbol: "USDC", decimals: 6, supply: BigUInt(10).power(15), holder: treasury.address)
        let exchange = FakeChangeNow()
        await exchange.settle(
            on: .init(
                rpc: chain.rpc, chainId: chain.chainId, treasury: treasury,
                tokens: ["usdt/eth": .init(address: usdt, decimals: 6), "usdc/eth": .init(address: usdc, decimals: 6)]
            ))
        let (urls, continuation) = AsyncStream.makeStream(of: String.self)
        let server = Task {
            try await exchange.serve { url in
                continuation.yield(url)
                continuation.finish()
                while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
            }
        }
        var iterator = urls.makeAsyncIterator()
        guard let url = await iterator.next() else {
            server.cancel()
            throw SandboxChainUnavailable(reason: "the simulated exchange did not start")
        }
        logger.notice("simulated exchange started", metadata: ["url": "\(url)", "usdt": "\(usdt.checksummed)", "usdc": "\(usdc.checksummed)"])
        let apiKey = await exchange.apiKeys.sorted().first ?? ""
        let privateKey = await exchange.privateKeys.keys.sorted().first ?? ""
        return (
            [
                "TELEPAY_CHANGENOW_API_URL": url,
                "TELEPAY_CHANGENOW_API_KEY": apiKey,
                "TELEPAY_CHANGENOW_PRIVATE_API_KEY": privateKey,
                "TELEPAY_USDT_CONTRACT": usdt.checksummed,
                // Conversions and threshold payouts run every minute rather than every 15 and 5.
                "TELEPAY_CONVERSION_MINUTES": "1",
                "TELEPAY_THRESHOLD_PAYOUT_MINUTES": "1",
            ], server
        )
    }

    /// NOWPayments pays each finished payment's outcome into the hot wallet on this chain, as it would on mainnet.
    func settle(_ payments: FakeNOWPayments) async {
        let chain = self.chain
        let hotWallet = self.hotWallet
        await payments.settleOnChain { amount in
            try await chain.fund(hotWallet, wei: try TokenUnits.baseUnits(fromDecimal: DecimalText.plain(amount), decimals: 18))
        }
    }

    func describeBalances() async -> String {
        do {
            let wei = try await chain.rpc.balance(of: hotWallet, at: .latest)
            return "Hot wallet \(hotWallet.checksummed) on the local chain (id \(chain.chainId)): "
                + "\(TokenUnits.decimalString(fromBaseUnits: wei, decimals: 18)) ETH"
        } catch {
            return "Hot wallet \(hotWallet.checksummed): the local chain does not answer (\(error))"
        }
    }
}

/// Why the sandbox runs without a chain.
public struct SandboxChainUnavailable: Error, Sendable, CustomStringConvertible {
    public let reason: String

    public var description: String {
        "Payouts are waiting: the local chain could not start (\(reason)); `scripts/run sandbox` installs its Python packages. "
            + "TelePay runs without a hot wallet, so owners' shares stay pending balances."
    }
}
