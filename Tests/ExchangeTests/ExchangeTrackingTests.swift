import Exchange
import ExchangeOrders
import Foundation
import Jobs
import PostgresNIO
import Storage
import Synchronization
import TestPeers
import TestSupport
import Testing

private let ethToUSDTOnTron = ExchangePair(from: ExchangeLeg(currency: "eth", network: "eth"), to: ExchangeLeg(currency: "usdt", network: "trx"))

private func request(_ key: String) -> ExchangeIntentRequest {
    ExchangeIntentRequest(
        idempotencyKey: key, pair: ethToUSDTOnTron, fromAmount: Decimal(string: "0.1")!,
        payoutAddress: "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf", refundAddress: "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"
    )
}

/// Keeps every alert raised, in order.
final class CollectingExchangeAlerts: ExchangeAlertSink {
    let alerts = Mutex<[ExchangeAlert]>([])

    func raise(_ alert: ExchangeAlert) async {
        alerts.withLock { $0.append(alert) }
    }

    var raised: [ExchangeAlert] { alerts.withLock { $0 } }
}

/// A clock the test sets by hand.
final class FixedClock: WallClock {
    let date: Date

    init(_ date: Date) {
        self.date = date
    }

    func now() -> Date { date }
}

private struct Fixture: Sendable {
    let orders: ExchangeOrderService
    let fake: FakeChangeNow
    let database: Database
    let alerts: CollectingExchangeAlerts

    func tracker(verifyingAlertAfter: Duration = .seconds(3600)) -> ExchangeTracker {
        ExchangeTracker(
            orders: orders, settings: ExchangeTrackingSettings(requestsPerSecond: 30, verifyingAlertAfter: verifyingAlertAfter), logger: quietLogger)
    }

    /// Records an intent and creates its exchange; returns the intent id and exchange id.
    func createdExchange(_ key: String) async throws -> (Int64, String) {
        let intent = try await orders.record(request(key))
        let created = try await orders.ensureExchange(intentId: intent.id)
        return (intent.id, try #require(created.exchangeId))
    }

    func byIDCalls() async -> Int {
        await fake.requestLog.filter { $0 == "GET /v2/exchange/by-id" }.count
    }
}

private func withFixture<Result: Sendable>(_ body: @Sendable (Fixture) async throws -> Result) async throws -> Result {
    let fake = FakeChangeNow()
    return try await fake.serve { url in
        try await withMigratedDatabase { database in
            let alerts = CollectingExchangeAlerts()
            let orders = ExchangeOrderService(
                database: database, api: ChangeNowClient(baseURL: url, apiKey: "test-api-key", timeout: .seconds(30)), alerts: alerts,
                logger: quietLogger
            )
            return try await body(Fixture(orders: orders, fake: fake, database: database, alerts: alerts))
        }
    }
}

@Suite("Exchange status tracking")
struct ExchangeTrackingTests {
    @Test("statuses only move forward; verifying may start anywhere and ends at confirming or later; final is final")
    func forwardOnly() {
        let path: [ExchangeStatus] = [.new, .waiting, .confirming, .exchanging, .sending, .finished]
        for (i, stored) in path.enumerated() {
            for (j, reported) in path.enumerated() {
                let change = ExchangeStatusProgress.decide(stored: stored, reported: reported)
                if i == j {
                    #expect(change == .unchanged)
                } else if j > i {
                    #expect(change == .advance(reported), "\(stored) → \(reported)")
                } else {
                    #expect(change == .ignoredBackward(stored: stored, reported: reported), "\(stored) → \(reported)")
                }
            }
        }
        for stored in [ExchangeStatus.new, .waiting, .confirming, .exchanging, .sending, .verifying] {
            #expect(ExchangeStatusProgress.decide(stored: stored, reported: .failed) == .advance(.failed))
            #expect(ExchangeStatusProgress.decide(stored: stored, reported: .refunded) == .advance(.refunded))
        }
        for stored in [ExchangeStatus.new, .waiting, .confirming, .exchanging, .sending] {
            #expect(ExchangeStatusProgress.decide(stored: stored, reported: .verifying) == .advance(.verifying))
        }
        #expect(ExchangeStatusProgress.decide(stored: .verifying, reported: .exchanging) == .advance(.exchanging))
        #expect(ExchangeStatusProgress.decide(stored: .verifying, reported: .confirming) == .advance(.confirming))
        #expect(ExchangeStatusProgress.decide(stored: .verifying, reported: .waiting) == .ignoredBackward(stored: .verifying, reported: .waiting))
        for final in [ExchangeStatus.finished, .failed, .refunded] {
            for other in [ExchangeStatus.new, .waiting, .sending, .verifying, .finished, .failed, .refunded] where other != final {
                #expect(ExchangeStatusProgress.decide(stored: final, reported: other) == .ignoredBackward(stored: final, reported: other))
            }
        }
        #expect(ExchangeStatusProgress.decide(stored: .waiting, reported: .other("expired")) == .ignoredUnknown("expired"))
        #expect(ExchangeStatusProgress.decide(stored: nil, reported: .waiting) == .advance(.waiting))
    }

    @Test("polling follows an exchange through every status to finished, storing amounts, payout hash and timestamps, then stops asking")
    func followsToFinished() async throws {
        try await withFixture { fixture in
            let (intentId, exchangeId) = try await fixture.createdExchange("payout:track-1")
            _ = try await fixture.orders.funding(intentId: intentId)
            let tracker = fixture.tracker()
            for status in ["waiting", "confirming", "exchanging", "sending"] {
                try await fixture.fake.setStatus(exchangeId, status)
                let pass = try await tracker.poll(until: Date().addingTimeInterval(30))
                #expect(pass.polled == 1 && pass.advanced == 1, "\(status)")
                #expect(try await fixture.orders.intent(id: intentId).exchangeStatus == status)
            }
            var tracking = try await fixture.orders.tracking(intentId: intentId)
            #expect(tracking.amountFrom == Decimal(string: "0.1"), "the deposit amount is known once it is confirming")
            #expect(tracking.amountTo == nil && tracking.payoutHash == nil)

            try await fixture.fake.setStatus(exchangeId, "finished")
            _ = try await tracker.poll(until: Date().addingTimeInterval(30))
            let intent = try await fixture.orders.intent(id: intentId)
            #expect(intent.state == .finished && intent.exchangeStatus == "finished")
            tracking = try await fixture.orders.tracking(intentId: intentId)
            let served = try #require(await fixture.fake.exchange(exchangeId))
            #expect(tracking.status == .finished)
            #expect(tracking.amountTo == served.expectedAmountTo)
            #expect(tracking.payoutHash == served.payoutHash && tracking.payoutHash != nil)
            #expect(tracking.exchangeCreatedAt != nil && tracking.exchangeUpdatedAt != nil)
            #expect(tracking.statusCheckedAt != nil && tracking.statusChangedAt != nil)
            #expect(fixture.alerts.raised.isEmpty, "a finished exchange raises nothing")

            let calls = await fixture.byIDCalls()
            let pass = try await tracker.poll(until: Date().addingTimeInterval(30))
            #expect(pass.polled == 0)
            #expect(await fixture.byIDCalls() == calls, "a final exchange is not polled again")
        }
    }

    @Test("a stale answer that would move the exchange back is not stored")
    func staleAnswerIgnored() async throws {
        try await withFixture { fixture in
            let (intentId, exchangeId) = try await fixture.createdExchange("payout:track-2")
            try await fixture.fake.setStatus(exchangeId, "sending")
            _ = try await fixture.tracker().poll(until: Date().addingTimeInterval(30))
            try await fixture.fake.setStatus(exchangeId, "waiting")
            let record = try #require(try await fixture.orders.refresh(intentId: intentId, verifyingAlertAfter: .seconds(3600)))
            #expect(record.change == .ignoredBackward(stored: .sending, reported: .waiting))
            #expect(record.intent.exchangeStatus == "sending")
        }
    }

    @Test("failed and refunded raise one alert each, and a final status never changes afterwards")
    func failedAndRefundedAlertOnce() async throws {
        try await withFixture { fixture in
            let (failedIntent, failedExchange) = try await fixture.createdExchange("payout:track-3")
            let (refundedIntent, refundedExchange) = try await fixture.createdExchange("payout:track-4")
            try await fixture.fake.setStatus(failedExchange, "failed")
            try await fixture.fake.setStatus(refundedExchange, "confirming")
            try await fixture.fake.setStatus(refundedExchange, "refunded")
            let tracker = fixture.tracker()
            let pass = try await tracker.poll(until: Date().addingTimeInterval(30))
            #expect(pass.polled == 2 && pass.advanced == 2)
            #expect(try await fixture.orders.intent(id: failedIntent).state == .failed)
            #expect(try await fixture.orders.intent(id: refundedIntent).state == .refunded)
            let refundHash = await fixture.fake.exchange(refundedExchange)?.refundHash
            let raised = Set(fixture.alerts.raised)
            #expect(
                raised == [
                    .exchangeFailed(ExchangeAlertSubject(intentId: failedIntent, idempotencyKey: "payout:track-3", exchangeId: failedExchange)),
                    .exchangeRefunded(
                        ExchangeAlertSubject(intentId: refundedIntent, idempotencyKey: "payout:track-4", exchangeId: refundedExchange),
                        refundHash: refundHash),
                ])
            #expect(try await fixture.orders.tracking(intentId: refundedIntent).refundHash == refundHash)

            // Asked again by hand, and even told otherwise by a confused answer: nothing changes, nothing is raised.
            _ = try await fixture.orders.refreshStatus(intentId: failedIntent)
            try await fixture.fake.setStatus(failedExchange, "sending")
            let record = try #require(try await fixture.orders.refresh(intentId: failedIntent, verifyingAlertAfter: .seconds(3600)))
            #expect(record.change == .ignoredBackward(stored: .failed, reported: .sending))
            #expect(record.intent.state == .failed)
            #expect(fixture.alerts.raised.count == 2)
        }
    }

    @Test("an exchange held in verifying past the threshold raises one alert per hold")
    func verifyingTooLong() async throws {
        try await withFixture { fixture in
            let (intentId, exchangeId) = try await fixture.createdExchange("payout:track-5")
            let tracker = fixture.tracker(verifyingAlertAfter: .zero)
            try await fixture.fake.setStatus(exchangeId, "verifying")
            _ = try await tracker.poll(until: Date().addingTimeInterval(30))
            #expect(fixture.alerts.raised.isEmpty, "entering verifying is not yet too long")
            _ = try await tracker.poll(until: Date().addingTimeInterval(30))
            _ = try await tracker.poll(until: Date().addingTimeInterval(30))
            let subject = ExchangeAlertSubject(intentId: intentId, idempotencyKey: "payout:track-5", exchangeId: exchangeId)
            let raised = fixture.alerts.raised
            #expect(raised.count == 1)
            guard case .verifyingTooLong(subject, _)? = raised.first else {
                Issue.record("expected a verifying alert, got \(raised)")
                return
            }
            #expect(try await fixture.orders.tracking(intentId: intentId).verifyingAlertedAt != nil)

            try await fixture.fake.setStatus(exchangeId, "exchanging")
            _ = try await tracker.poll(until: Date().addingTimeInterval(30))
            #expect(try await fixture.orders.tracking(intentId: intentId).verifyingAlertedAt == nil, "leaving the hold resets it")
            #expect(fixture.alerts.raised.count == 1)
        }
    }

    @Test("a poll whose slot is already over leaves its work to the next slot")
    func deadlineStopsThePoll() async throws {
        try await withFixture { fixture in
            _ = try await fixture.createdExchange("payout:track-6")
            let pass = try await fixture.tracker().poll(until: Date().addingTimeInterval(-1))
            #expect(pass.polled == 0 && pass.leftForLater == 1)
            #expect(await fixture.byIDCalls() == 0)
        }
    }

    @Test("two instances' schedulers enqueue one poll per slot, and that job records the status")
    func oneJobPerSlot() async throws {
        try await withFixture { fixture in
            let (intentId, exchangeId) = try await fixture.createdExchange("payout:track-7")
            try await fixture.fake.setStatus(exchangeId, "waiting")
            let clock = FixedClock(Date(timeIntervalSince1970: 1_767_225_605))
            let queue = JobQueue(database: fixture.database, logger: quietLogger)
            let schedulers = try (0..<2).map { _ in
                try PeriodicScheduler(
                    tasks: [try ExchangeStatusPoller.periodicTask(every: .seconds(30))], queue: queue, clock: clock, logger: quietLogger)
            }
            async let first = schedulers[0].enqueueDueSlots()
            async let second = schedulers[1].enqueueDueSlots()
            let slots = await first + second
            #expect(slots.count == 1)
            let payloads = try await fixture.database.withConnection { connection in
                let rows = try await connection.query(
                    "SELECT payload::text FROM jobs WHERE kind = \(ExchangeStatusPollJob.kind)", logger: quietLogger)
                var payloads: [String] = []
                for try await payload in rows.decode(String.self) { payloads.append(payload) }
                return payloads
            }
            #expect(payloads.count == 1)
            let job = try JSONDecoder().decode(ExchangeStatusPollJob.self, from: Data(try #require(payloads.first).utf8))
            #expect(job.slot == slots.first)

            // The job's poll runs until its slot ends; this slot lies in the past, so poll an open one.
            #expect(try await fixture.tracker().poll(until: job.slot.end).polled == 0, "an ended slot polls nothing")
            #expect(try await fixture.tracker().poll(until: Date().addingTimeInterval(30)).advanced == 1)
            #expect(try await fixture.orders.intent(id: intentId).exchangeStatus == "waiting")
        }
    }
}
