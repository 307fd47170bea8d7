import BigInt
import Ethereum
import Exchange
import Foundation
import Logging
import Sandbox
import TestPeers
import TestSupport
import Testing

@Suite("The sandbox's simulated exchange")
struct SandboxExchangeTests {
    @Test("the sandbox's ChangeNOW settles on its local chain: an exchange funded from the chain pays USDT there, and TelePay is configured for it")
    func exchangeSettlesOnTheChain() async throws {
        guard case .success(let chain) = await SandboxChain.start(logger: quietLogger) else {
            Issue.record("the local chain did not start")
            return
        }
        let exchange = try await chain.startExchange(logger: quietLogger)
        defer { exchange.server.cancel() }
        let environment = exchange.environment
        let url = try #require(environment["TELEPAY_CHANGENOW_API_URL"])
        #expect(url.hasPrefix("http://127.0.0.1:"))
        #expect(environment["TELEPAY_CHANGENOW_PRIVATE_API_KEY"]?.isEmpty == false && environment["TELEPAY_CONVERSION_MINUTES"] == "1")
        let usdt = try Address(parsing: try #require(environment["TELEPAY_USDT_CONTRACT"]))

        let client = ChangeNowClient(baseURL: url, apiKey: try #require(environment["TELEPAY_CHANGENOW_API_KEY"]), timeout: .seconds(10))
        let recipient = LocalChain.randomAddress()
        let created = try await client.createExchange(
            CreateExchangeRequest(
                pair: ExchangePair(from: ExchangeLeg(currency: "eth", network: "eth"), to: ExchangeLeg(currency: "usdt", network: "eth")),
                flow: .standard, amount: .sending(Decimal(string: "0.01")!), address: recipient.checksummed,
                refundAddress: chain.hotWallet.checksummed
            ))
        try await chain.chain.fund(try Address(parsing: created.payinAddress), wei: BigUInt(10).power(16))
        var status = ExchangeStatus.new
        for _ in 0..<20 where status != .finished {
            status = try await client.exchangeStatus(id: created.id).status
        }
        #expect(status == .finished)
        let paid = try await chain.chain.rpc.tokenBalance(token: usdt, owner: recipient)
        #expect(paid > 0, "USDT reached the recipient on the sandbox's chain")
    }
}
