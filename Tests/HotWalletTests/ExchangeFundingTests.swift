import BigInt
import Ethereum
import Exchange
import ExchangeOrders
import Foundation
import HotWallet
import Money
import TestPeers
import TestSupport
import Testing

@Suite("Funding exchanges from the hot wallet")
struct ExchangeFundingTests {
    @Test("a create whose answer was lost is retried, and only the recorded exchange is ever paid on chain")
    func lostCreateFundsOneExchange() async throws {
        try await withSenderFixture { fixture in
            let fake = FakeChangeNow()
            try await fake.serve { url in
                let orders = ExchangeOrderService(
                    database: fixture.database, api: ChangeNowClient(baseURL: url, apiKey: "test-api-key"), logger: quietLogger)
                let sender = fixture.sender()
                try await sender.start()
                let intent = try await orders.record(
                    ExchangeIntentRequest(
                        idempotencyKey: "payout:owner-7",
                        pair: ExchangePair(from: ExchangeLeg(currency: "eth", network: "eth"), to: ExchangeLeg(currency: "usdt", network: "trx")),
                        fromAmount: Decimal(string: "0.0123")!, payoutAddress: "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf",
                        refundAddress: fixture.key.address.checksummed
                    ))
                await fake.dropNextCreateResponses()
                await #expect(throws: ExchangeOrderError.self) { _ = try await orders.ensureExchange(intentId: intent.id) }
                _ = try await orders.ensureExchange(intentId: intent.id)

                // The payout engine may ask for the funding and send it any number of times.
                for _ in 0..<3 {
                    let funding = try await orders.funding(intentId: intent.id)
                    _ = try await sender.send(
                        TransferRequest(
                            idempotencyKey: funding.transferKey, asset: .ether, recipient: try Address(parsing: funding.payinAddress),
                            amount: try TokenUnits.baseUnits(fromDecimal: DecimalText.plain(funding.amount), decimals: 18)
                        ))
                }

                let exchanges = await fake.exchanges()
                #expect(exchanges.count == 2)
                let funded = try await orders.intent(id: intent.id)
                let paid = try #require(exchanges.first { $0.id == funded.exchangeId })
                let orphan = try #require(exchanges.first { $0.id != funded.exchangeId })
                let wei = try TokenUnits.baseUnits(fromDecimal: "0.0123", decimals: 18)
                #expect(try await fixture.chain.rpc.balance(of: try Address(parsing: paid.payinAddress), at: .latest) == wei)
                #expect(try await fixture.chain.rpc.balance(of: try Address(parsing: orphan.payinAddress), at: .latest) == 0)
                #expect(try await fixture.chain.rpc.transactionCount(of: fixture.key.address, at: .latest) == 1)
            }
        }
    }
}
