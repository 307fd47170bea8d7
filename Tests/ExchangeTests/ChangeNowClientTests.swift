import Exchange
import Foundation
import TestPeers
import Testing

private let ethToUSDTOnTron = ExchangePair(from: ExchangeLeg(currency: "eth", network: "eth"), to: ExchangeLeg(currency: "usdt", network: "trx"))
private let tronAddress = "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf"
private let hotWallet = "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"

private func decimal(_ text: String) -> Decimal {
    Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))!
}

/// Runs `body` with a client pointed at a fresh fake.
@discardableResult
private func withFake<Result: Sendable>(
    apiKey: String = "test-api-key", _ body: @Sendable (ChangeNowClient, FakeChangeNow) async throws -> Result
) async throws -> Result {
    let fake = FakeChangeNow()
    return try await fake.serve { url in
        try await body(ChangeNowClient(baseURL: url, apiKey: apiKey, timeout: .seconds(30)), fake)
    }
}

private func rejection(_ error: any Error) -> (Int, ChangeNowErrorCode, String)? {
    guard case ChangeNowError.rejected(let status, let code, let message) = error else { return nil }
    return (status, code, message)
}

@Suite("ChangeNOW v2 client against the fake")
struct ChangeNowClientTests {
    @Test("min-amount reads the pair's minimum exactly")
    func minimumAmount() async throws {
        try await withFake { client, _ in
            let minimum = try await client.minimumAmount(pair: ethToUSDTOnTron, flow: .standard)
            #expect(minimum.minAmount == decimal("0.005"))
            let btc = try await client.minimumAmount(
                pair: ExchangePair(from: ExchangeLeg(currency: "eth", network: "eth"), to: ExchangeLeg(currency: "btc", network: "btc")),
                flow: .fixedRate)
            #expect(btc.minAmount == decimal("0.0002787"))
        }
    }

    @Test("a standard direct estimate gives the amount to receive, in exact decimals")
    func directEstimate() async throws {
        try await withFake { client, _ in
            let estimate = try await client.estimate(EstimateRequest(pair: ethToUSDTOnTron, flow: .standard, amount: .sending(decimal("0.1"))))
            // 0.1 × 2500.25 − 1 fee: a Double would not give exactly this.
            #expect(estimate.fromAmount == decimal("0.1"))
            #expect(estimate.toAmount == decimal("249.025"))
            #expect(estimate.withdrawalFee == decimal("1"))
            #expect(estimate.rateId == nil)
        }
    }

    @Test("a reverse estimate gives the amount to send for a wanted payout")
    func reverseEstimate() async throws {
        try await withFake { client, _ in
            let estimate = try await client.estimate(EstimateRequest(pair: ethToUSDTOnTron, flow: .standard, amount: .receiving(decimal("100"))))
            #expect(estimate.toAmount == decimal("100"))
            // (100 + 1 fee) / 2500.25, rounded up at the 8th decimal so the payout is covered.
            #expect(estimate.fromAmount == decimal("0.04039597"))
        }
    }

    @Test("a fixed-rate estimate with useRateId returns a rateId that a fixed-rate create accepts")
    func fixedRateFlow() async throws {
        try await withFake { client, fake in
            let estimate = try await client.estimate(
                EstimateRequest(pair: ethToUSDTOnTron, flow: .fixedRate, amount: .sending(decimal("0.2")), useRateId: true))
            let rateId = try #require(estimate.rateId)
            #expect(estimate.validUntil != nil)
            let created = try await client.createExchange(
                CreateExchangeRequest(
                    pair: ethToUSDTOnTron, flow: .fixedRate, amount: .sending(decimal("0.2")), address: tronAddress,
                    refundAddress: hotWallet, rateId: rateId
                ))
            #expect(created.flow == .fixedRate)
            #expect(created.rateId == rateId)
            #expect(created.toAmount == estimate.toAmount)
            #expect(await fake.exchange(created.id)?.flow == "fixed-rate")
        }
    }

    @Test("a fixed-rate create without a rateId is refused before anything is sent")
    func fixedRateNeedsRateId() async throws {
        try await withFake { client, fake in
            await #expect {
                _ = try await client.createExchange(
                    CreateExchangeRequest(pair: ethToUSDTOnTron, flow: .fixedRate, amount: .sending(decimal("0.2")), address: tronAddress))
            } throws: { error in
                guard case ChangeNowError.invalidRequest = error else { return false }
                return true
            }
            #expect(await fake.requestLog.isEmpty)
        }
    }

    @Test("create sends amounts as strings and returns the payin address; by-id follows the status enum")
    func createAndTrack() async throws {
        try await withFake { client, fake in
            let created = try await client.createExchange(
                CreateExchangeRequest(
                    pair: ethToUSDTOnTron, flow: .standard, amount: .sending(decimal("0.0123456789")), address: tronAddress, refundAddress: hotWallet
                ))
            #expect(created.fromAmount == decimal("0.0123456789"))
            #expect(created.payoutAddress == tronAddress)
            #expect(created.payinAddress.hasPrefix("0x") && created.payinAddress.count == 42)
            #expect(created.refundAddress == hotWallet)

            var report = try await client.exchangeStatus(id: created.id)
            #expect(report.status == .new)
            #expect(report.amountFrom == nil)
            #expect(report.expectedAmountFrom == decimal("0.0123456789"))
            for status in ["waiting", "confirming", "exchanging", "sending"] {
                try await fake.setStatus(created.id, status)
                report = try await client.exchangeStatus(id: created.id)
                #expect(report.status.rawValue == status)
                #expect(!report.status.isFinal)
            }
            try await fake.setStatus(created.id, "finished")
            report = try await client.exchangeStatus(id: created.id)
            #expect(report.status == .finished && report.status.isFinal)
            #expect(report.amountFrom == decimal("0.0123456789"))
            #expect(report.amountTo == created.toAmount)
            #expect(report.payoutHash != nil)
        }
    }

    @Test("address validation answers true or false with ChangeNOW's message")
    func validateAddress() async throws {
        try await withFake { client, _ in
            #expect(try await client.validateAddress(network: "trx", address: tronAddress).isValid)
            #expect(try await client.validateAddress(network: "eth", address: hotWallet).isValid)
            let invalid = try await client.validateAddress(network: "eth", address: "0x1234")
            #expect(!invalid.isValid)
            #expect(invalid.message == "Invalid address")
        }
    }

    @Test("an amount below the minimum is out_of_range with ChangeNOW's message")
    func outOfRange() async throws {
        try await withFake { client, _ in
            await #expect {
                _ = try await client.estimate(EstimateRequest(pair: ethToUSDTOnTron, flow: .standard, amount: .sending(decimal("0.001"))))
            } throws: { error in
                guard let (status, code, message) = rejection(error) else { return false }
                return status == 400 && code == .outOfRange && message == "Amount is less then minimal: 0.005 ETH"
            }
        }
    }

    @Test("an unknown pair is pair_is_inactive; a bad payout address is not_valid_params")
    func invalidPairAndAddress() async throws {
        try await withFake { client, _ in
            let unknown = ExchangePair(from: ExchangeLeg(currency: "eth", network: "eth"), to: ExchangeLeg(currency: "doge", network: "doge"))
            await #expect {
                _ = try await client.minimumAmount(pair: unknown, flow: .standard)
            } throws: { error in
                rejection(error).map { $0.1 == .pairIsInactive } ?? false
            }
            await #expect {
                _ = try await client.createExchange(
                    CreateExchangeRequest(pair: ethToUSDTOnTron, flow: .standard, amount: .sending(decimal("0.1")), address: "0xnot-a-tron-address"))
            } throws: { error in
                rejection(error).map { $0.1 == .notValidParams && $0.2 == "Invalid address" } ?? false
            }
        }
    }

    @Test("a zero or negative amount is refused locally")
    func nonPositiveAmounts() async throws {
        try await withFake { client, fake in
            for amount in [Decimal(0), decimal("-1")] {
                await #expect {
                    _ = try await client.estimate(EstimateRequest(pair: ethToUSDTOnTron, flow: .standard, amount: .sending(amount)))
                } throws: { error in
                    guard case ChangeNowError.invalidRequest = error else { return false }
                    return true
                }
            }
            #expect(await fake.requestLog.isEmpty)
        }
    }

    @Test("a wrong API key is unauthorized; an unknown id is not_found; another key's exchange is forbidden")
    func authorization() async throws {
        let fake = FakeChangeNow(apiKeys: ["key-a", "key-b"])
        try await fake.serve { url in
            let clientA = ChangeNowClient(baseURL: url, apiKey: "key-a")
            let clientB = ChangeNowClient(baseURL: url, apiKey: "key-b")
            let stranger = ChangeNowClient(baseURL: url, apiKey: "wrong")
            await #expect {
                _ = try await stranger.minimumAmount(pair: ethToUSDTOnTron, flow: .standard)
            } throws: { error in
                rejection(error).map { $0.0 == 401 && $0.1 == .unauthorized } ?? false
            }
            await #expect {
                _ = try await clientA.exchangeStatus(id: "ffffffffffffff")
            } throws: { error in
                rejection(error).map { $0.0 == 404 && $0.1 == .notFound } ?? false
            }
            let created = try await clientA.createExchange(
                CreateExchangeRequest(pair: ethToUSDTOnTron, flow: .standard, amount: .sending(decimal("0.1")), address: tronAddress))
            await #expect {
                _ = try await clientB.exchangeStatus(id: created.id)
            } throws: { error in
                rejection(error).map { $0.0 == 403 && $0.1 == .forbidden && $0.2 == "The transaction was made from another api key" } ?? false
            }
        }
    }

    @Test("a create whose answer is lost is an unknown outcome, yet the exchange exists at ChangeNOW")
    func lostCreateResponse() async throws {
        try await withFake { client, fake in
            await fake.dropNextCreateResponses()
            await #expect {
                _ = try await client.createExchange(
                    CreateExchangeRequest(pair: ethToUSDTOnTron, flow: .standard, amount: .sending(decimal("0.1")), address: tronAddress))
            } throws: { error in
                (error as? ChangeNowError)?.outcomeUnknown == true
            }
            #expect(await fake.exchanges().count == 1)
        }
    }

    @Test("a non-JSON error page is an HTTP status error; an unreachable server is a transport error")
    func nonAPIFailures() async throws {
        let offline = ChangeNowClient(baseURL: "http://127.0.0.1:9", apiKey: "k", timeout: .seconds(1))
        await #expect {
            _ = try await offline.minimumAmount(pair: ethToUSDTOnTron, flow: .standard)
        } throws: { error in
            guard case ChangeNowError.transport = error else { return false }
            return (error as? ChangeNowError)?.outcomeUnknown == true
        }
        try await FakeChangeNow().serve { url in
            let misrouted = ChangeNowClient(baseURL: url + "/not-the-api", apiKey: "test-api-key")
            await #expect {
                _ = try await misrouted.exchangeStatus(id: "x")
            } throws: { error in
                guard case ChangeNowError.httpStatus(404, _) = error else { return false }
                return true
            }
        }
    }
}
