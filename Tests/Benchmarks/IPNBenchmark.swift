import App
import AsyncHTTPClient
import Foundation
import Hummingbird
import Jobs
import Logging
import NIOCore
import Payments
import Storage
import Subscriptions

/// NOWPayments callbacks through TelePay's real HTTP route: signature check over the re-sorted body, the
/// inbox insert and its processing job in one transaction (as TelePay wires it), the 200. No worker runs,
/// so the figures are the callback path alone. Two runs: as fast as `concurrency` senders go (closed
/// loop), then a steady offered rate (open loop, latency measured from each callback's scheduled time so
/// queueing is not hidden). Every callback is a different payment, so every one is a real insert.
struct IPNBenchmark {
    var closedLoopCallbacks: Int
    var concurrency: Int
    var offeredRate: Int
    var offeredSeconds: Int

    struct AlwaysReady: ReadinessProbe {
        func check() async -> Readiness { .ready }
    }

    func run(database: Database, logger: Logger) async throws -> String {
        let secret = "bench-ipn-secret"
        let queue = JobQueue(database: database, logger: logger)
        let router = HTTPRoutes.buildRouter(
            readiness: AlwaysReady(), telemetry: Telemetry(), maxBodyBytes: 1 << 20,
            nowPaymentsIPN: NOWPaymentsIPNReceiver.processing(secret: secret, database: database, queue: queue, logger: logger),
            logger: logger
        )
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger
        )
        let server = Task { try await app.runService() }
        defer { server.cancel() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { return "ipn: server did not start" }
        let url = "http://127.0.0.1:\(port)/payments/nowpayments/ipn"

        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(concurrency, 64)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let result = try await measure(client: client, url: url, secret: secret, database: database, logger: logger)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    func measure(client: HTTPClient, url: String, secret: String, database: Database, logger: Logger) async throws -> String {
        let signer = IPNSignatureVerifier(secret: secret)
        let offeredCount = offeredRate * offeredSeconds
        let total = closedLoopCallbacks + offeredCount
        let callbacks: [(body: [UInt8], signature: String)] = (0..<total).map { index in
            let body = Self.body(paymentID: 7_000_000_000 + Int64(index))
            return (body.javaScriptText(), signer.sign(body))
        }

        // Closed loop: `concurrency` senders, each sending its next callback as soon as the last is answered
        // (sender k takes callbacks k, k + concurrency, …).
        let closedStarted = ContinuousClock.now
        let closedLatencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
            for sender in 0..<concurrency {
                group.addTask {
                    var latencies: [Duration] = []
                    for index in stride(from: sender, to: closedLoopCallbacks, by: concurrency) {
                        let sent = ContinuousClock.now
                        try await Self.post(client: client, url: url, callbacks[index])
                        latencies.append(ContinuousClock.now - sent)
                    }
                    return latencies
                }
            }
            return try await group.reduce(into: [Duration]()) { $0 += $1 }
        }
        let closedElapsed = ContinuousClock.now - closedStarted

        // Open loop: callback i is due at start + i / rate, whether or not earlier ones were answered.
        let openStarted = ContinuousClock.now + .milliseconds(100)
        let interval = Duration.seconds(1) / offeredRate
        let openLatencies = try await withThrowingTaskGroup(of: Duration.self) { group in
            for offset in 0..<offeredCount {
                let due = openStarted + interval * offset
                try await Task.sleep(until: due, clock: .continuous)
                group.addTask {
                    try await Self.post(client: client, url: url, callbacks[closedLoopCallbacks + offset])
                    return ContinuousClock.now - due
                }
            }
            return try await group.reduce(into: [Duration]()) { $0.append($1) }
        }
        let openElapsed = ContinuousClock.now - openStarted

        let stored = try await database.withConnection { connection in
            let rows = try await connection.query("SELECT count(*) FROM payment_inbox", logger: logger)
            var count = 0
            for try await (value) in rows.decode(Int.self) { count = value }
            return count
        }
        return String(
            format: "ipn: closed loop %d callbacks, %d senders: %.0f callbacks/s, latency p50 %@, p99 %@; "
                + "open loop %d/s for %d s: achieved %.0f/s, latency p50 %@, p99 %@, max %@; inbox rows %d of %d",
            closedLoopCallbacks, concurrency, Double(closedLoopCallbacks) / Self.seconds(closedElapsed),
            Self.percentile(closedLatencies, 0.5), Self.percentile(closedLatencies, 0.99),
            offeredRate, offeredSeconds, Double(offeredCount) / Self.seconds(openElapsed),
            Self.percentile(openLatencies, 0.5), Self.percentile(openLatencies, 0.99), Self.percentile(openLatencies, 1.0),
            stored, total
        )
    }

    static func post(client: HTTPClient, url: String, _ callback: (body: [UInt8], signature: String)) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "x-nowpayments-sig", value: callback.signature)
        request.body = .bytes(ByteBuffer(bytes: callback.body))
        let response = try await client.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 16)
        guard response.status == .ok else { throw BenchmarkFailure.unexpectedStatus(Int(response.status.code)) }
    }

    enum BenchmarkFailure: Error {
        case unexpectedStatus(Int)
    }

    /// A callback shaped like the documented IPN, nested `fee` object and non-ASCII description included.
    static func body(paymentID: Int64) -> ExactJSON {
        func number(_ literal: String) -> ExactJSON { .number(JSONNumber(literal: literal)!) }
        return .object([
            .init("payment_id", .number(JSONNumber(paymentID))),
            .init("parent_payment_id", .null),
            .init("invoice_id", .number(JSONNumber(paymentID + 1_000_000_000))),
            .init("payment_status", .text("finished")),
            .init("pay_address", .text("0xd1cDE08A07cD25adEbEd35c3867a59228C09B606")),
            .init("payin_extra_id", .null),
            .init("price_amount", number("9.99")),
            .init("price_currency", .text("usd")),
            .init("pay_amount", number("0.00414231")),
            .init("actually_paid", number("0.00414231")),
            .init("actually_paid_at_fiat", number("0")),
            .init("pay_currency", .text("eth")),
            .init("order_id", .text("ord-\(paymentID)")),
            .init("order_description", .text("Channel \"Alpha\" — 30 days")),
            .init("purchase_id", .text(String(paymentID + 235_697_562))),
            .init("outcome_amount", number("0.0041")),
            .init("outcome_currency", .text("eth")),
            .init("payment_extra_ids", .null),
            .init(
                "fee",
                .object([
                    .init("currency", .text("eth")), .init("depositFee", number("0.0000123")),
                    .init("withdrawalFee", number("0")), .init("serviceFee", number("0.00002071")),
                ])),
        ])
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func percentile(_ values: [Duration], _ p: Double) -> String {
        guard !values.isEmpty else { return "-" }
        let sorted = values.sorted()
        let value = sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        return String(format: "%.1f ms", seconds(value) * 1000)
    }
}
