import App
import FakeServing
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NOWPaymentsFake
import Payments
import PostgresNIO
import Storage
import Synchronization
import TestSupport
import Testing

/// Keeps every log message, so a test can check that a refusal was logged.
final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])

    var messages: [String] { lines.withLock { $0 } }

    func logger() -> Logger {
        Logger(label: "test") { _ in Handler(recorder: self) }
    }

    struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            recorder.lines.withLock { $0.append("\(event.level) \(event.message)") }
        }
    }
}

/// One stored inbox row, as the tests read it back.
struct InboxRow: Sendable, Hashable {
    var paymentID: String
    var status: String
    var orderID: String?
    var invoiceID: String?
    var variant: String
    var payload: String
    var unprocessed: Bool
}

@Suite("NOWPayments IPN endpoint")
struct PaymentsIPNTests {
    /// A migrated database, TelePay's router with the IPN route served over real HTTP, the fake provider,
    /// and an invoice whose callback URL points at the route.
    struct World: Sendable {
        var database: Database
        var fake: FakeNOWPayments
        var invoice: Invoice
        var ipnURL: String
        var logs: LogRecorder

        func rows() async throws -> [InboxRow] {
            try await database.withConnection { connection in
                let rows = try await connection.query(
                    """
                    SELECT payment_id, payment_status, order_id, invoice_id, signature_variant, payload, processed_at IS NULL
                    FROM payment_inbox ORDER BY id
                    """,
                    logger: quietLogger
                )
                var result: [InboxRow] = []
                for try await (payment, status, order, invoice, variant, payload, unprocessed)
                    in rows.decode((String, String, String?, String?, String, String, Bool).self)
                {
                    result.append(
                        InboxRow(
                            paymentID: payment, status: status, orderID: order, invoiceID: invoice, variant: variant,
                            payload: payload, unprocessed: unprocessed
                        ))
                }
                return result
            }
        }

        /// A payment in `waiting` on the world's invoice.
        func newPayment(_ amount: String = "0.00414231") async throws -> Int64 {
            try await fake.startPayment(invoiceID: invoice.id, payAmount: Decimal(string: amount)!)
        }
    }

    func withWorld(_ body: @Sendable (World) async throws -> Void) async throws {
        try await withMigratedDatabase(poolSize: 8) { database in
            let fake = FakeNOWPayments()
            let (apiURL, fakeServer) = try await fake.start()
            defer { fakeServer.cancel() }
            let logs = LogRecorder()
            let router = HTTPRoutes.buildRouter(
                readiness: FixedProbe(answer: .ready), telemetry: Telemetry(), maxBodyBytes: 1 << 20,
                nowPaymentsIPN: NOWPaymentsIPNReceiver(secret: fake.ipnSecret, database: database, logger: logs.logger()),
                logger: quietLogger
            )
            let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
            let app = Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: quietLogger
            )
            let server = serveUntilCancelled(app, logger: quietLogger)
            defer { server.cancel() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let client = NOWPaymentsClient(configuration: .init(baseURL: URL(string: apiURL)!, apiKey: fake.apiKey), logger: quietLogger)
            let invoice = try await client.createInvoice(
                InvoiceRequest(
                    priceAmount: Decimal(string: "9.99")!, priceCurrency: "usd", orderID: "ord-1",
                    ipnCallbackURL: URL(string: "http://127.0.0.1:\(port)/payments/nowpayments/ipn")!
                ))
            let ipnURL = "http://127.0.0.1:\(port)/payments/nowpayments/ipn"
            try await body(World(database: database, fake: fake, invoice: invoice, ipnURL: ipnURL, logs: logs))
        }
    }

    @Test("a correctly signed IPN is stored once, exactly as received, with its key fields, and answered 200")
    func stored() async throws {
        try await withWorld { world in
            let payment = try await world.newPayment()
            let ipn = try await world.fake.setStatus(payment, "finished")
            #expect(try await world.fake.deliver(ipn) == 200)
            #expect(
                try await world.rows() == [
                    InboxRow(
                        paymentID: String(payment), status: "finished", orderID: "ord-1", invoiceID: world.invoice.id,
                        variant: "recursive", payload: String(decoding: ipn.body, as: UTF8.self), unprocessed: true
                    )
                ])
        }
    }

    @Test("forged, tampered and unsigned IPNs get 401, a log line each, and store nothing")
    func forged() async throws {
        try await withWorld { world in
            let ipn = try await world.fake.setStatus(try await world.newPayment(), "finished")
            #expect(try await world.fake.deliver(ipn, signing: .forged) == 401)
            #expect(try await world.fake.deliver(ipn, signing: .tampered) == 401)
            #expect(try await world.fake.deliver(ipn, signing: .missing) == 401)
            #expect(try await world.rows().isEmpty)
            let warnings = world.logs.messages.filter { $0.hasPrefix("warning rejected NOWPayments IPN") }
            #expect(warnings.count == 3, "\(world.logs.messages)")
        }
    }

    @Test("a body that is not JSON, not an object, or signed but without a usable payment id gets 400 and stores nothing")
    func badBodies() async throws {
        try await withWorld { world in
            let signer = IPNSignatureVerifier(secret: world.fake.ipnSecret)
            func post(_ body: String, signature: String = String(repeating: "0", count: 128)) async throws -> Int {
                try await world.fake.deliver(
                    FakeNOWPayments.IPN(url: world.ipnURL, paymentID: 0, status: "", body: Array(body.utf8), signature: signature))
            }
            // The official example body, which is itself missing a comma.
            #expect(try await post(#"{"payment_id":123456789,"payment_extra_ids":null "fee":{}}"#) == 400)
            #expect(try await post(#"["payment_id",1]"#) == 400)
            let noID = try ExactJSON.parse(Array(#"{"payment_status":"finished"}"#.utf8))
            #expect(try await post(#"{"payment_status":"finished"}"#, signature: signer.sign(noID)) == 400)
            let badStatus = try ExactJSON.parse(Array(#"{"payment_id":1,"payment_status":"FINISHED!"}"#.utf8))
            #expect(try await post(#"{"payment_id":1,"payment_status":"FINISHED!"}"#, signature: signer.sign(badStatus)) == 400)
            let fractionalID = try ExactJSON.parse(Array(#"{"payment_id":1.5,"payment_status":"finished"}"#.utf8))
            #expect(try await post(#"{"payment_id":1.5,"payment_status":"finished"}"#, signature: signer.sign(fractionalID)) == 400)
            #expect(try await world.rows().isEmpty)
        }
    }

    @Test("50 identical IPNs delivered at once leave exactly one inbox row, and all are answered 200")
    func concurrentDuplicates() async throws {
        try await withWorld { world in
            let ipn = try await world.fake.setStatus(try await world.newPayment(), "finished")
            let answers = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<50 { group.addTask { try await world.fake.deliver(ipn) } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(answers == Array(repeating: 200, count: 50))
            #expect(try await world.rows().map(\.status) == ["finished"])
        }
    }

    @Test("re-sent and out-of-order statuses are stored once per payment and status")
    func duplicatesAndReordering() async throws {
        try await withWorld { world in
            let payment = try await world.newPayment()
            var ipns: [String: FakeNOWPayments.IPN] = [:]
            for status in ["waiting", "confirming", "confirmed", "sending", "finished"] {
                ipns[status] = try await world.fake.setStatus(payment, status)
            }
            for status in ["finished", "waiting", "confirming", "finished", "sending", "confirming", "confirmed", "waiting"] {
                #expect(try await world.fake.deliver(ipns[status]!) == 200)
            }
            let rows = try await world.rows()
            #expect(rows.map(\.status) == ["finished", "waiting", "confirming", "sending", "confirmed"])
            #expect(Set(rows.map(\.paymentID)) == [String(payment)])
            #expect(rows.allSatisfy { $0.unprocessed })
        }
    }

    @Test("partially_paid and expired payments are filed under their own status")
    func partialAndExpired() async throws {
        try await withWorld { world in
            let partial = try await world.newPayment("0.01")
            let expired = try await world.newPayment("0.01")
            let answers =
                try await world.fake.drive(partial, through: ["waiting", "confirming", "partially_paid"])
                + world.fake.drive(expired, through: ["waiting", "expired"])
            #expect(answers == [200, 200, 200, 200, 200])
            let rows = try await world.rows()
            #expect(
                rows.map { "\($0.paymentID):\($0.status)" } == [
                    "\(partial):waiting", "\(partial):confirming", "\(partial):partially_paid", "\(expired):waiting", "\(expired):expired",
                ])
            let partialBody = try ExactJSON.parse(Array(try #require(rows.first { $0.status == "partially_paid" }).payload.utf8))
            #expect(try partialBody["actually_paid"]?.numberValue?.decimal() == Decimal(string: "0.005"))
        }
    }

    @Test("IPNs signed in the legacy or Python form are accepted and the matching form is recorded")
    func fallbackVariants() async throws {
        try await withWorld { world in
            let payment = try await world.newPayment()
            #expect(try await world.fake.deliver(try await world.fake.setStatus(payment, "confirming"), signing: .valid(.legacyReplacer)) == 200)
            #expect(try await world.fake.deliver(try await world.fake.setStatus(payment, "finished"), signing: .valid(.python)) == 200)
            #expect(try await world.rows().map(\.variant) == ["legacy-replacer", "python"])
            #expect(world.logs.messages.filter { $0.contains("fallback signature variant") }.count == 2)
        }
    }

    @Test("without an IPN secret the route is not served")
    func notServedWithoutSecret() async throws {
        let app = Application(
            router: HTTPRoutes.buildRouter(
                readiness: FixedProbe(answer: .ready), telemetry: Telemetry(), maxBodyBytes: 1024, logger: quietLogger
            ))
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/payments/nowpayments/ipn", method: .post, body: ByteBuffer(string: "{}"))
            #expect(response.status == .notFound)
        }
    }

    @Test("TelePay serves the route when TELEPAY_NOWPAYMENTS_IPN_SECRET is set, and what arrives is in its database")
    func wiredIntoTelePay() async throws {
        let fake = FakeNOWPayments()
        let (apiURL, fakeServer) = try await fake.start()
        defer { fakeServer.cancel() }
        let dataDirectory = try RepositoryPaths.makeTemporaryDirectory("telepay-ipn")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let configuration = try Configuration.load(environment: [
            "TELEPAY_DATA_DIR": dataDirectory, "TELEPAY_HTTP_PORT": "0", "TELEPAY_RESOURCES_DIR": RepositoryPaths.root,
            "TELEPAY_NOWPAYMENTS_API_URL": apiURL, "TELEPAY_NOWPAYMENTS_API_KEY": fake.apiKey,
            "TELEPAY_NOWPAYMENTS_IPN_SECRET": " \(fake.ipnSecret)\n",
        ])
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = try await TelePayApplication.build(
            configuration: configuration, logger: quietLogger, gracefulShutdownSignals: [], onServerRunning: { continuation.yield($0) }
        )
        let running = Task { try await application.run() }
        do {
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let client = NOWPaymentsClient(
                configuration: .init(baseURL: configuration.nowPaymentsAPIURL, apiKey: try #require(configuration.nowPaymentsAPIKey).value),
                logger: quietLogger
            )
            let invoice = try await client.createInvoice(
                InvoiceRequest(
                    priceAmount: 25, priceCurrency: "usd", orderID: "ord-2",
                    ipnCallbackURL: URL(string: "http://127.0.0.1:\(port)/payments/nowpayments/ipn")!
                ))
            let payment = try await fake.startPayment(invoiceID: invoice.id, payAmount: Decimal(string: "0.01")!)
            #expect(try await fake.drive(payment, through: ["waiting", "finished"]) == [200, 200])
            let count = try await application.database.database.withConnection { connection in
                let rows = try await connection.query("SELECT count(*) FROM payment_inbox WHERE payment_id = \(String(payment))", logger: quietLogger)
                var count = 0
                for try await (value) in rows.decode(Int.self) { count = value }
                return count
            }
            #expect(count == 2)
        } catch {
            await application.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
        await application.triggerGracefulShutdown()
        try await running.value
    }
}
