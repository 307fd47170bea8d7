import App
import Exchange
import ExchangeOrders
import Foundation
import OperatorCommands
import PostgresNIO
import Storage
import TelegramFake
import TestPeers
import TestSupport
import Testing

@Suite("Exchange tracking in the application")
struct ExchangeTrackingWiringTests {
    @Test("the application polls a recorded exchange on its slot, records that it failed, and tells the admin in Telegram")
    func pollsAndAlertsAdmins() async throws {
        let bot = FakeBotAPI()
        await bot.addUser(id: 1001, firstName: "Admin", languageCode: "en")
        let (botURL, botServer) = try await bot.start()
        defer { botServer.cancel() }
        let exchange = FakeChangeNow()
        try await exchange.serve { changeNowURL in
            let database = try await TestPostgres.shared.makeDatabase()
            let server = try await TestPostgres.shared.server()
            let configuration = try Configuration.load(environment: [
                "DATABASE_URL": "postgres://\(EmbeddedPostgres.username)@/\(database.database ?? "")?host=\(server.cluster.socketDirectory)",
                "TELEPAY_HTTP_PORT": "0",
                "TELEPAY_RESOURCES_DIR": RepositoryPaths.root,
                "TELEPAY_JOBS_POLL_INTERVAL_MS": "50",
                "TELEGRAM_BOT_TOKEN": bot.token,
                "TELEPAY_TELEGRAM_API_URL": botURL,
                "TELEPAY_CHANGENOW_API_URL": changeNowURL,
                "TELEPAY_CHANGENOW_API_KEY": "test-api-key",
                "TELEPAY_EXCHANGE_POLL_SECONDS": "5",
                "TELEPAY_ADMIN_TELEGRAM_IDS": "1001",
            ])
            let application = try await TelePayApplication.build(configuration: configuration, logger: quietLogger, gracefulShutdownSignals: [])
            let running = Task { try await application.run() }
            do {
                let orders = ExchangeOrderService(
                    database: application.database.database, api: ChangeNowClient(baseURL: changeNowURL, apiKey: "test-api-key"), logger: quietLogger
                )
                try await waitFor("the schema") { (try? await orders.unsettledExchanges(limit: 1)) != nil }
                let intent = try await orders.record(
                    ExchangeIntentRequest(
                        idempotencyKey: "payout:wired",
                        pair: ExchangePair(from: ExchangeLeg(currency: "eth", network: "eth"), to: ExchangeLeg(currency: "usdt", network: "trx")),
                        fromAmount: Decimal(string: "0.1")!, payoutAddress: "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf"
                    ))
                let exchangeId = try #require(try await orders.ensureExchange(intentId: intent.id).exchangeId)
                try await exchange.setStatus(exchangeId, "failed")

                try await waitFor("the failure recorded") { (try? await orders.intent(id: intent.id).state) == .failed }
                #expect(try await orders.tracking(intentId: intent.id).status == .failed)
                try await waitFor("the admin told") { await bot.sentMessages(to: 1001).contains { $0.text.contains(exchangeId) } }
                let message = try #require(await bot.sentMessages(to: 1001).first { $0.text.contains(exchangeId) })
                #expect(message.text.contains("payout:wired") && message.parseMode == nil)
            } catch {
                await application.triggerGracefulShutdown()
                _ = try? await running.value
                throw error
            }
            await application.triggerGracefulShutdown()
            try await running.value
        }
    }

    @Test("telepay exchange reconcile reads with the private key, and says which key is needed when it has only the standard one")
    func reconcileCommand() async throws {
        let exchange = FakeChangeNow()
        try await exchange.serve { changeNowURL in
            try await withMigratedDatabase { database in
                let server = try await TestPostgres.shared.server()
                let name = try await database.withConnection { connection in
                    try await connection.query("SELECT current_database()", logger: quietLogger).collect().first?.decode(String.self)
                }
                var environment = [
                    "DATABASE_URL": "postgres://\(EmbeddedPostgres.username)@/\(try #require(name))?host=\(server.cluster.socketDirectory)",
                    "TELEPAY_RESOURCES_DIR": RepositoryPaths.root,
                    "TELEPAY_CHANGENOW_API_URL": changeNowURL,
                    "TELEPAY_CHANGENOW_API_KEY": "test-api-key",
                ]
                let since = Date().addingTimeInterval(-60)
                await #expect {
                    _ = try await ExchangeReconcileReport.run(
                        configuration: try Configuration.load(environment: environment), since: since, logger: quietLogger)
                } throws: { error in
                    "\(error)".contains("TELEPAY_CHANGENOW_PRIVATE_API_KEY")
                }

                let orphan = try await ChangeNowClient(baseURL: changeNowURL, apiKey: "test-api-key").createExchange(
                    CreateExchangeRequest(
                        pair: ExchangePair(from: ExchangeLeg(currency: "eth", network: "eth"), to: ExchangeLeg(currency: "usdt", network: "trx")),
                        flow: .standard, amount: .sending(Decimal(string: "0.1")!), address: "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf"
                    ))
                environment["TELEPAY_CHANGENOW_PRIVATE_API_KEY"] = "test-private-key"
                let result = try await ExchangeReconcileReport.run(
                    configuration: try Configuration.load(environment: environment), since: since, logger: quietLogger)
                #expect(result.orphans.map(\.exchange.id) == [orphan.id])
                #expect(
                    result.reportLines.first
                        == "ChangeNOW lists 1 exchange(s) created since \(since.formatted(.iso8601)); 0 of them belong to an exchange intent.")
            }
        }
    }

    @Test("doctor proves the private key may list, warns when only the standard key is set, and reports a refused key")
    func doctorListing() async throws {
        try await FakeChangeNow().serve { url in
            func check(_ variables: [String: String]) async throws -> DoctorCheck {
                await Doctor.checkChangeNowListing(try Configuration.load(environment: ["TELEPAY_CHANGENOW_API_URL": url].merging(variables) { $1 }))
            }
            #expect(try await check(["TELEPAY_CHANGENOW_PRIVATE_API_KEY": "test-private-key"]).outcome == .ok)
            #expect(try await check(["TELEPAY_CHANGENOW_API_KEY": "test-api-key"]).outcome == .warning)
            #expect(try await check([:]).outcome == .skipped)
            let refused = try await check(["TELEPAY_CHANGENOW_PRIVATE_API_KEY": "test-api-key"])
            #expect(refused.outcome == .failed && refused.detail.hasPrefix("ChangeNOW refused TELEPAY_CHANGENOW_PRIVATE_API_KEY"))
            #expect(!refused.detail.contains("test-api-key"))
        }
    }

    /// Waits for a condition; slots are 5 s apart, so a minute covers a slow, loaded machine.
    func waitFor(_ what: String, _ condition: @Sendable () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting for \(what)")
        throw CancellationError()
    }
}
