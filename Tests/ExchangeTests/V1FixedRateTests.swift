import Exchange
import Foundation
import TestPeers
import Testing

private let tronAddress = "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf"
private let hotWallet = "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"

private func decimal(_ text: String) -> Decimal {
    Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))!
}

private func withFake<Result: Sendable>(
    apiKey: String = "test-api-key", _ body: @Sendable (ChangeNowClient, FakeChangeNow) async throws -> Result
) async throws -> Result {
    let fake = FakeChangeNow()
    return try await fake.serve { url in
        try await body(ChangeNowClient(baseURL: url, apiKey: apiKey, timeout: .seconds(30)), fake)
    }
}

@Suite("ChangeNOW v1 fixed-rate fallback against the fake")
struct V1FixedRateTests {
    @Test("the fixed-rate range gives the pair's minimum and its maximum, or none")
    func range() async throws {
        try await withFake { client, _ in
            let tron = try await client.v1FixedRateRange(from: "eth", to: "usdttrc20")
            #expect(tron.minAmount == decimal("0.005") && tron.maxAmount == 50)
            let btc = try await client.v1FixedRateRange(from: "eth", to: "btc")
            #expect(btc.minAmount == decimal("0.0002787") && btc.maxAmount == nil)
        }
    }

    @Test("a direct estimate's rateId freezes the quote for the create, and v2 by-id follows the exchange")
    func directCreate() async throws {
        try await withFake { client, fake in
            let estimate = try await client.v1FixedRateEstimate(from: "eth", to: "usdttrc20", amount: .sending(decimal("0.1")))
            #expect(estimate.amount == decimal("249.025") && estimate.networkFee == 1)
            let rateId = try #require(estimate.rateId)
            let created = try await client.v1CreateFixedRateExchange(
                V1FixedRateExchangeRequest(
                    from: "eth", to: "usdttrc20", amount: .sending(decimal("0.1")), address: tronAddress, refundAddress: hotWallet, rateId: rateId
                ))
            #expect(created.amount == estimate.amount && created.rateId == rateId && created.payoutAddress == tronAddress)
            #expect(created.fromTicker == "eth" && created.toTicker == "usdttrc20" && created.validUntil != nil)
            let served = try #require(await fake.exchange(created.id))
            #expect(served.flow == "fixed-rate" && served.expectedAmountFrom == decimal("0.1") && served.payinAddress == created.payinAddress)

            let status = try await client.exchangeStatus(id: created.id)
            #expect(status.status == .new && status.payinAddress == created.payinAddress)
        }
    }

    @Test("a reverse create fixes the payout: the deposit comes from the reverse estimate, the answer carries the result")
    func reverseCreate() async throws {
        try await withFake { client, fake in
            let estimate = try await client.v1FixedRateEstimate(from: "eth", to: "usdttrc20", amount: .receiving(decimal("249.025")))
            #expect(estimate.amount == decimal("0.1"))
            let created = try await client.v1CreateFixedRateExchange(
                V1FixedRateExchangeRequest(
                    from: "eth", to: "usdttrc20", amount: .receiving(decimal("249.025")), address: tronAddress, rateId: estimate.rateId
                ))
            #expect(created.amount == decimal("249.025"))
            let served = try #require(await fake.exchange(created.id))
            #expect(served.type == "reverse" && served.expectedAmountFrom == decimal("0.1"))
            #expect(await fake.requestLog.last == "POST /v1/transactions/fixed-rate/from-result/{api_key}")
        }
    }

    @Test("ChangeNOW's refusals come back typed, and a key in the path never reaches an error")
    func errors() async throws {
        try await withFake { client, _ in
            await #expect {
                _ = try await client.v1FixedRateEstimate(from: "eth", to: "usdttrc20", amount: .sending(decimal("0.001")))
            } throws: { error in
                guard case ChangeNowError.rejected(400, .outOfRange, let message) = error else { return false }
                return message.contains("0.005")
            }
            await #expect {
                _ = try await client.v1CreateFixedRateExchange(
                    V1FixedRateExchangeRequest(
                        from: "eth", to: "usdttrc20", amount: .sending(decimal("0.1")), address: tronAddress, rateId: "not-a-rate"
                    ))
            } throws: { error in
                guard case ChangeNowError.rejected(400, .notValidParams, _) = error else { return false }
                return true
            }
            await #expect {
                _ = try await client.v1FixedRateRange(from: "eth", to: "doge")
            } throws: { error in
                guard case ChangeNowError.rejected(_, .pairIsInactive, _) = error else { return false }
                return true
            }
        }
        try await withFake(apiKey: "wrong-secret-key") { client, fake in
            await #expect {
                _ = try await client.v1CreateFixedRateExchange(
                    V1FixedRateExchangeRequest(
                        from: "eth", to: "btc", amount: .sending(decimal("0.1")), address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"))
            } throws: { error in
                guard case ChangeNowError.rejected(401, .unauthorized, _) = error else { return false }
                return !"\(error)".contains("wrong-secret-key")
            }
            #expect(await fake.exchanges().isEmpty)
        }
    }

    @Test("a ticker that is not lowercase letters and digits is refused before anything is sent")
    func tickersCheckedLocally() async throws {
        try await withFake { client, fake in
            for (from, to) in [("ETH", "btc"), ("eth", "btc/../x"), ("e", "btc")] {
                await #expect(throws: ChangeNowError.self) { _ = try await client.v1FixedRateRange(from: from, to: to) }
            }
            #expect(await fake.requestLog.isEmpty)
        }
    }
}
