import Foundation
import NOWPaymentsFake
import Payments
import PostgresNIO
import Storage
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite("Payments across a process kill", .serialized)
struct PaymentCrashTests {
    /// The `telepay` executable of this build.
    static func executable() throws -> String {
        var folders: [String] = []
        if let current = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            folders.append(URL(fileURLWithPath: current).deletingLastPathComponent().path)
        }
        folders.append(RepositoryPaths.root + "/.build/debug")
        guard let folder = folders.first(where: { FileManager.default.isExecutableFile(atPath: $0 + "/telepay") }) else {
            throw CrashTestError.notBuilt(folders)
        }
        return folder + "/telepay"
    }

    enum CrashTestError: Error {
        case notBuilt([String])
        case noFreePort
    }

    /// A port nothing listens on right now.
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
        guard bound == 0 else { throw CrashTestError.noFreePort }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func count(_ sql: PostgresQuery, on database: Database) async throws -> Int {
        try await database.withConnection { connection in
            var count = 0
            for try await value in try await connection.query(sql, logger: quietLogger).decode(Int.self) { count = value }
            return count
        }
    }

    func waitUntil(_ what: String, seconds: Int = 90, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting for \(what)")
        throw CancellationError()
    }

    @Test("telepay SIGKILLed after acknowledging a finished IPN and before processing it processes the payment exactly once after restart")
    func killedBetweenAcknowledgementAndProcessing() async throws {
        try await withMigratedDatabase { database in
            let provider = FakeNOWPayments()
            let (providerURL, providerServer) = try await provider.start()
            defer { providerServer.cancel() }
            let databaseName = try await database.withConnection { connection in
                var name = ""
                for try await value in try await connection.query("SELECT current_database()", logger: quietLogger).decode(String.self) {
                    name = value
                }
                return name
            }
            let socketFolder = URL(fileURLWithPath: try await TestPostgres.shared.server().cluster.socketPath).deletingLastPathComponent().path
            let orderID = try await Self.seedOrder(database)
            let invoice = try await NOWPaymentsClient(
                configuration: .init(baseURL: URL(string: providerURL)!, apiKey: provider.apiKey), logger: quietLogger
            ).createInvoice(
                InvoiceRequest(
                    priceAmount: 5, priceCurrency: "usd", orderID: orderID,
                    ipnCallbackURL: URL(string: "https://telepay.example/payments/nowpayments/ipn")
                ))
            let payment = try await provider.startPayment(invoiceID: invoice.id, payAmount: 1)
            let signed = try await provider.setStatus(payment, "finished")

            let port = try Self.freePort()
            let dataDirectory = try RepositoryPaths.makeTemporaryDirectory("telepay-kill")
            defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
            let environment = [
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                "DATABASE_URL": "postgres://\(EmbeddedPostgres.username)@/\(databaseName)?host=\(socketFolder)&sslmode=disable",
                "TELEPAY_DATA_DIR": dataDirectory, "TELEPAY_HTTP_PORT": String(port), "TELEPAY_RESOURCES_DIR": RepositoryPaths.root,
                "TELEPAY_NOWPAYMENTS_API_URL": providerURL, "TELEPAY_NOWPAYMENTS_API_KEY": provider.apiKey,
                "TELEPAY_NOWPAYMENTS_IPN_SECRET": provider.ipnSecret, "TELEPAY_PUBLIC_URL": "https://telepay.example",
            ]
            let ipn = FakeNOWPayments.IPN(
                url: "http://127.0.0.1:\(port)/payments/nowpayments/ipn", paymentID: signed.paymentID, status: signed.status,
                body: signed.body, signature: signed.signature
            )
            let telepay = try Self.executable()
            let log = dataDirectory + "/telepay.log"

            // First life: workers poll once a minute and hear no notifications, and the provider cannot be reached,
            // so however the workers are timed the callback cannot be processed before the kill.
            var slow = environment
            slow["TELEPAY_JOBS_LISTEN"] = "false"
            slow["TELEPAY_JOBS_POLL_INTERVAL_MS"] = "60000"
            slow["TELEPAY_NOWPAYMENTS_API_URL"] = "http://127.0.0.1:\(try Self.freePort())/v1"
            let first = try ProcessRunner.spawn(telepay, ["serve"], environment: slow, outputPath: log)
            try await waitUntil("the first process serves HTTP") { try await provider.deliver(ipn) == 200 }
            kill(first, SIGKILL)
            #expect(await ProcessRunner.waitForExit(first) == 128 + SIGKILL)
            #expect(try await count("SELECT count(*) FROM payment_inbox WHERE processed_at IS NULL", on: database) == 1)
            #expect(try await count("SELECT count(*) FROM jobs WHERE kind = 'payments.process_inbox' AND state <> 'completed'", on: database) == 1)
            #expect(try await count("SELECT count(*) FROM subscriptions", on: database) == 0)

            // Second life: the job waiting in the database is run.
            let second = try ProcessRunner.spawn(telepay, ["serve"], environment: environment, outputPath: log + ".2")
            var secondExited = false
            // A failed expectation must not leave the process running.
            defer { if !secondExited { kill(second, SIGKILL) } }
            try await waitUntil("the order is paid") {
                try await count("SELECT count(*) FROM orders WHERE status = 'paid'", on: database) == 1
            }
            try await waitUntil("the re-sent IPN is answered") { try await provider.deliver(ipn) == 200 }
            try await waitUntil("every callback is processed") {
                try await count("SELECT count(*) FROM payment_inbox WHERE processed_at IS NULL", on: database) == 0
            }
            kill(second, SIGTERM)
            let code = await ProcessRunner.waitForExit(second)
            secondExited = true
            #expect(code == 0, "\((try? String(contentsOfFile: log + ".2", encoding: .utf8))?.suffix(2000) ?? "")")
            #expect(try await count("SELECT count(*) FROM payment_inbox", on: database) == 1)
            #expect(try await count("SELECT count(*) FROM subscriptions WHERE status = 'active'", on: database) == 1)
            #expect(try await count("SELECT count(*) FROM ledger_entries WHERE asset = 'USD'", on: database) == 5)
            #expect(try await count("SELECT count(*) FROM jobs WHERE kind = 'payments.process_inbox' AND state = 'completed'", on: database) == 1)
        }
    }

    /// An owner, an active channel with one tier, a buyer and their order awaiting payment; returns the order id.
    static func seedOrder(_ database: Database) async throws -> String {
        try await database.withTransaction { connection in
            try await connection.query("INSERT INTO telegram_users (id, first_name) VALUES (2001, 'Olga'), (1001, 'Anna')", logger: quietLogger)
            try await connection.query("INSERT INTO owners (user_id) VALUES (2001)", logger: quietLogger)
            try await connection.query(
                """
                INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, status)
                VALUES (2001, -1001000000021, 'Secret Club', -1001000000022, 'Open Club', 'active')
                """,
                logger: quietLogger
            )
            var orderID = ""
            let rows = try await connection.query(
                """
                INSERT INTO orders (user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title, status)
                SELECT 1001, id, 2001, 1, 5.00, 7, closed_chat_id, closed_title, 'awaiting_payment' FROM channels
                RETURNING public_id
                """,
                logger: quietLogger
            )
            for try await value in rows.decode(String.self) { orderID = value }
            return orderID
        }
    }
}
