import Exchange
import ExchangeOrders
import Foundation
import PostgresNIO
import Storage
import TestPeers
import TestSupport
import Testing

private let ethToUSDTOnTron = ExchangePair(from: ExchangeLeg(currency: "eth", network: "eth"), to: ExchangeLeg(currency: "usdt", network: "trx"))
private let ownerWallet = "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf"
private let hotWallet = "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"

private func request(_ key: String, amount: String = "0.1") -> ExchangeIntentRequest {
    ExchangeIntentRequest(
        idempotencyKey: key, pair: ethToUSDTOnTron, fromAmount: Decimal(string: amount, locale: Locale(identifier: "en_US_POSIX"))!,
        payoutAddress: ownerWallet, refundAddress: hotWallet
    )
}

/// A fresh database and a fresh fake, with the order book wired to both.
private func withOrders<Result: Sendable>(_ body: @Sendable (ExchangeOrderService, FakeChangeNow, Database) async throws -> Result) async throws
    -> Result
{
    let fake = FakeChangeNow()
    return try await fake.serve { url in
        try await withMigratedDatabase { database in
            let orders = ExchangeOrderService(
                database: database, api: ChangeNowClient(baseURL: url, apiKey: "test-api-key", timeout: .seconds(30)), logger: quietLogger)
            return try await body(orders, fake, database)
        }
    }
}

@Suite("Exchange intents in PostgreSQL: an intent funds at most one exchange")
struct ExchangeOrderServiceTests {
    @Test("recording is idempotent by key; the same key with other terms is refused")
    func idempotentRecord() async throws {
        try await withOrders { orders, fake, _ in
            let first = try await orders.record(request("payout:1"))
            let again = try await orders.record(request("payout:1"))
            #expect(first == again)
            #expect(first.state == .pending && first.exchangeId == nil)
            await #expect {
                _ = try await orders.record(request("payout:1", amount: "0.2"))
            } throws: { error in
                guard case ExchangeOrderError.idempotencyKeyReused("payout:1") = error else { return false }
                return true
            }
            #expect(await fake.requestLog.isEmpty)
        }
    }

    @Test("the exchange is created once; asking again returns it without calling ChangeNOW")
    func createOnce() async throws {
        try await withOrders { orders, fake, _ in
            let intent = try await orders.record(request("payout:2"))
            let created = try await orders.ensureExchange(intentId: intent.id)
            #expect(created.state == .created)
            let exchangeId = try #require(created.exchangeId)
            let again = try await orders.ensureExchange(intentId: intent.id)
            #expect(again.exchangeId == exchangeId)
            #expect(await fake.exchanges().map(\.id) == [exchangeId])
            #expect(await fake.exchange(exchangeId)?.payoutAddress == ownerWallet)
            #expect(created.expectedToAmount == Decimal(string: "249.025"))
            #expect(try await orders.unreconciledCreateAttempts().isEmpty)
        }
    }

    @Test("a create whose answer is lost is retried; only the exchange recorded for the intent is funded, the orphan is listed")
    func lostAnswerFundsOnlyOne() async throws {
        try await withOrders { orders, fake, _ in
            let intent = try await orders.record(request("payout:3"))
            await fake.dropNextCreateResponses()
            await #expect {
                _ = try await orders.ensureExchange(intentId: intent.id)
            } throws: { error in
                guard case ExchangeOrderError.createOutcomeUnknown = error else { return false }
                return true
            }
            #expect(try await orders.intent(id: intent.id).state == .pending)

            let recorded = try await orders.ensureExchange(intentId: intent.id)
            let exchanges = await fake.exchanges()
            #expect(exchanges.count == 2)
            #expect(recorded.exchangeId == exchanges[1].id)

            let funding = try await orders.funding(intentId: intent.id)
            #expect(funding.exchangeId == exchanges[1].id)
            #expect(funding.payinAddress == exchanges[1].payinAddress)
            #expect(funding.payinAddress != exchanges[0].payinAddress)
            #expect(funding.amount == Decimal(string: "0.1"))
            #expect(try await orders.funding(intentId: intent.id) == funding)
            #expect(try await orders.intent(id: intent.id).state == .funding)

            let orphans = try await orders.unreconciledCreateAttempts()
            #expect(orphans.count == 1)
            #expect(orphans.first?.intentId == intent.id && orphans.first?.attempt == 1 && orphans.first?.outcome == .unknown)
        }
    }

    @Test("a refused create leaves the intent pending and creates nothing to reconcile")
    func rejectedCreate() async throws {
        try await withOrders { orders, fake, _ in
            let intent = try await orders.record(request("payout:4", amount: "0.001"))
            await #expect {
                _ = try await orders.ensureExchange(intentId: intent.id)
            } throws: { error in
                guard case ExchangeOrderError.createRejected(.rejected(_, .outOfRange, _)) = error else { return false }
                return true
            }
            let after = try await orders.intent(id: intent.id)
            #expect(after.state == .pending && after.exchangeId == nil)
            #expect(after.lastError?.contains("out_of_range") == true)
            #expect(try await orders.unreconciledCreateAttempts().isEmpty)
            #expect(await fake.exchanges().isEmpty)
            await #expect {
                _ = try await orders.funding(intentId: intent.id)
            } throws: { error in
                guard case ExchangeOrderError.notFundable(.pending) = error else { return false }
                return true
            }
        }
    }

    @Test("two workers creating at once record one exchange; the other is superseded and listed")
    func concurrentCreates() async throws {
        try await withOrders { orders, fake, _ in
            let intent = try await orders.record(request("payout:5"))
            async let first = orders.ensureExchange(intentId: intent.id)
            async let second = orders.ensureExchange(intentId: intent.id)
            let (a, b) = try await (first, second)
            #expect(a.exchangeId != nil && a.exchangeId == b.exchangeId)
            let made = await fake.exchanges().count
            let orphans = try await orders.unreconciledCreateAttempts()
            // Either the second worker saw the recorded exchange, or it made one that is never used.
            #expect(orphans.count == made - 1)
            #expect(orphans.allSatisfy { $0.outcome == .superseded && $0.exchangeId != a.exchangeId })
        }
    }

    @Test("the database refuses to point an intent at a second exchange once one is recorded")
    func exchangeIsFrozen() async throws {
        try await withOrders { orders, _, database in
            let intent = try await orders.record(request("payout:6"))
            let created = try await orders.ensureExchange(intentId: intent.id)
            await #expect(throws: (any Error).self) {
                try await database.withConnection { connection in
                    try await connection.query(
                        "UPDATE exchange_intents SET exchange_id = 'other', payin_address = '0xother' WHERE id = \(intent.id)", logger: quietLogger)
                }
            }
            #expect(try await orders.intent(id: intent.id).exchangeId == created.exchangeId)
        }
    }

    @Test("status polling follows the exchange to finished")
    func statusToFinished() async throws {
        try await withOrders { orders, fake, _ in
            let intent = try await orders.record(request("payout:7"))
            let created = try await orders.ensureExchange(intentId: intent.id)
            let exchangeId = try #require(created.exchangeId)
            _ = try await orders.funding(intentId: intent.id)
            try await fake.setStatus(exchangeId, "exchanging")
            var refreshed = try await orders.refreshStatus(intentId: intent.id)
            #expect(refreshed.state == .funding && refreshed.exchangeStatus == "exchanging")
            try await fake.setStatus(exchangeId, "finished")
            refreshed = try await orders.refreshStatus(intentId: intent.id)
            #expect(refreshed.state == .finished && refreshed.exchangeStatus == "finished")
        }
    }
}
