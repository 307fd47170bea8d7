import Exchange
import ExchangeOrders
import Foundation
import Storage
import TestPeers
import TestSupport
import Testing

private let ethToUSDTOnTron = ExchangePair(from: ExchangeLeg(currency: "eth", network: "eth"), to: ExchangeLeg(currency: "usdt", network: "trx"))
private let ownerWallet = "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf"
private let otherOwner = "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"

private func request(_ key: String, amount: String = "0.1", payout: String = ownerWallet) -> ExchangeIntentRequest {
    ExchangeIntentRequest(
        idempotencyKey: key, pair: ethToUSDTOnTron, fromAmount: Decimal(string: amount)!,
        payoutAddress: payout, refundAddress: "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"
    )
}

@Suite("Exchange listing and orphan reconciliation")
struct ExchangeReconciliationTests {
    @Test("only the private key may list; a standard key gets forbidden, an unknown key unauthorized")
    func onlyPrivateKeyLists() async throws {
        let fake = FakeChangeNow()
        try await fake.serve { url in
            let standard = ChangeNowClient(baseURL: url, apiKey: "test-api-key")
            for amount in ["0.1", "0.2", "0.3"] {
                _ = try await standard.createExchange(
                    CreateExchangeRequest(pair: ethToUSDTOnTron, flow: .standard, amount: .sending(Decimal(string: amount)!), address: ownerWallet))
            }
            await #expect {
                _ = try await standard.listExchanges(ExchangeListQuery())
            } throws: { error in
                guard let error = error as? ChangeNowError, case .rejected(403, .forbidden, _) = error else { return false }
                return error.cannotList
            }
            await #expect {
                _ = try await ChangeNowClient(baseURL: url, apiKey: "nobody").listExchanges(ExchangeListQuery())
            } throws: { error in
                guard let error = error as? ChangeNowError, case .rejected(401, .unauthorized, _) = error else { return false }
                return error.cannotList
            }

            let lister = ChangeNowClient(baseURL: url, apiKey: "test-private-key")
            let first = try await lister.listExchanges(ExchangeListQuery(limit: 2, createdFrom: Date().addingTimeInterval(-60)))
            let second = try await lister.listExchanges(ExchangeListQuery(limit: 2, offset: 2, createdFrom: Date().addingTimeInterval(-60)))
            #expect(first.count == 3 && first.exchanges.count == 2 && second.exchanges.count == 1)
            let served = await fake.exchanges()
            #expect((first.exchanges + second.exchanges).map(\.id) == served.map(\.id), "oldest first, by the id by-id takes")
            let listed = try #require(first.exchanges.first)
            #expect(listed.status == .new && listed.payinExpectedAmount == Decimal(string: "0.1") && listed.payoutAddress == ownerWallet)
            #expect(listed.payinAddress == served.first?.payinAddress && !listed.isFunded)
            #expect(try await lister.listExchanges(ExchangeListQuery(createdFrom: Date().addingTimeInterval(60))).exchanges.isEmpty)
            await #expect(throws: ChangeNowError.self) { _ = try await lister.listExchanges(ExchangeListQuery(limit: 101)) }
        }
    }

    @Test("reconciliation lists orphans with their likely origin, flags a funded one, and finds recorded exchanges ChangeNOW does not list")
    func reconcilesOrphansAndMissing() async throws {
        let fake = FakeChangeNow(apiKeys: ["test-api-key", "old-api-key"])
        try await fake.serve { url in
            try await withMigratedDatabase { database in
                let standard = ChangeNowClient(baseURL: url, apiKey: "test-api-key", timeout: .seconds(30))
                let orders = ExchangeOrderService(database: database, api: standard, logger: quietLogger)
                let start = Date().addingTimeInterval(-60)

                let clean = try await orders.record(request("payout:clean"))
                let cleanExchange = try #require(try await orders.ensureExchange(intentId: clean.id).exchangeId)

                let lost = try await orders.record(request("payout:lost", amount: "0.25"))
                await fake.dropNextCreateResponses()
                await #expect(throws: ExchangeOrderError.self) { _ = try await orders.ensureExchange(intentId: lost.id) }
                let lostRecorded = try #require(try await orders.ensureExchange(intentId: lost.id).exchangeId)

                let stranger = try await standard.createExchange(
                    CreateExchangeRequest(
                        pair: ethToUSDTOnTron, flow: .standard, amount: .sending(Decimal(string: "0.5")!), address: otherOwner
                    ))
                try await fake.setStatus(stranger.id, "confirming")

                // Recorded under a key the private key does not belong to, as after a key change.
                let oldOrders = ExchangeOrderService(
                    database: database, api: ChangeNowClient(baseURL: url, apiKey: "old-api-key"), logger: quietLogger)
                let old = try await oldOrders.record(request("payout:old-key", amount: "0.3"))
                let oldExchange = try #require(try await oldOrders.ensureExchange(intentId: old.id).exchangeId)

                let result = try await orders.reconcile(lister: ChangeNowClient(baseURL: url, apiKey: "test-private-key"), since: start)
                let lostOrphan = try #require(
                    await fake.exchanges().first {
                        $0.payoutAddress == ownerWallet && $0.expectedAmountFrom == Decimal(string: "0.25") && $0.id != lostRecorded
                    })
                #expect(result.listed == 4 && result.matched == 2)
                #expect(result.orphans.map(\.exchange.id) == [lostOrphan.id, stranger.id])
                #expect(result.orphans.map(\.origin) == [.lostAnswer(intentId: lost.id, idempotencyKey: "payout:lost", attempt: 1), .unknown])
                #expect(result.orphans.map(\.exchange.isFunded) == [false, true])
                #expect(result.missing.map(\.exchangeId) == [oldExchange])
                #expect(!result.missing.map(\.exchangeId).contains(cleanExchange))

                let report = result.reportLines
                #expect(report.contains { $0.contains(lostOrphan.id) && $0.contains("whose answer was lost") })
                #expect(report.contains { $0.contains(stranger.id) && $0.contains("FUNDED") })
                #expect(report.contains { $0.contains(oldExchange) && $0.contains("payout:old-key") })
            }
        }
    }

    @Test("a key that cannot list gets a clear error naming the private key variable")
    func standardKeyCannotReconcile() async throws {
        let fake = FakeChangeNow()
        try await fake.serve { url in
            try await withMigratedDatabase { database in
                let standard = ChangeNowClient(baseURL: url, apiKey: "test-api-key")
                let orders = ExchangeOrderService(database: database, api: standard, logger: quietLogger)
                await #expect {
                    _ = try await orders.reconcile(lister: standard, since: Date().addingTimeInterval(-60))
                } throws: { error in
                    guard case ReconciliationError.keyCannotList = error else { return false }
                    return "\(error)".contains("TELEPAY_CHANGENOW_PRIVATE_API_KEY")
                }
            }
        }
    }

    @Test("an orphan whose id a superseded attempt recorded is attributed to it; lost answers match one attempt each")
    func comparePure() {
        let since = Date(timeIntervalSince1970: 1_767_225_600)
        func listed(_ id: String, amount: String, payout: String = ownerWallet) -> ListedExchange {
            ListedExchange(id: id, status: .waiting, payinExpectedAmount: Decimal(string: amount), payoutAddress: payout)
        }
        let attempts = [
            CreateAttemptCandidate(
                intentId: 1, idempotencyKey: "a", attempt: 1, outcome: .superseded, exchangeId: "s1", payoutAddress: ownerWallet, fromAmount: 1),
            CreateAttemptCandidate(
                intentId: 2, idempotencyKey: "b", attempt: 1, outcome: .unknown, exchangeId: nil, payoutAddress: ownerWallet, fromAmount: 2),
        ]
        let recorded = [
            RecordedExchange(intentId: 1, idempotencyKey: "a", exchangeId: "r1", state: .funding, createdAt: since),
            RecordedExchange(intentId: 3, idempotencyKey: "c", exchangeId: "gone", state: .created, createdAt: since.addingTimeInterval(-1)),
        ]
        let result = ExchangeReconciliation.compare(
            since: since, listed: [listed("r1", amount: "1"), listed("s1", amount: "1"), listed("l1", amount: "2"), listed("l2", amount: "2")],
            recorded: recorded, attempts: attempts
        )
        #expect(
            result.orphans.map(\.origin) == [
                .supersededAttempt(intentId: 1, idempotencyKey: "a", attempt: 1),
                .lostAnswer(intentId: 2, idempotencyKey: "b", attempt: 1),
                .unknown,
            ])
        #expect(result.matched == 1)
        #expect(result.missing.isEmpty, "a recorded exchange older than the window is not reported missing")
    }
}
