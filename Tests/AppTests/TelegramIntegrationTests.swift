import App
import Bot
import Foundation
import Jobs
import Logging
import OperatorCommands
import PostgresNIO
import Storage
import TelegramBotAPI
import TelegramFake
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@Suite("TelePay with Telegram", .serialized)
struct TelegramIntegrationTests {
    /// Runs the whole application against a fake Bot API; `body` gets the fake and the HTTP port.
    func withTelePay(mode: String, _ body: @Sendable (FakeBotAPI, Int) async throws -> Void) async throws {
        try await withTelePay(mode: mode) { fake, port, _ in try await body(fake, port) }
    }

    func withTelePay(mode: String, _ body: @Sendable (FakeBotAPI, Int, TelePayApplication) async throws -> Void) async throws {
        let fake = FakeBotAPI()
        await fake.addUser(id: 1001, firstName: "Anna", languageCode: "en")
        let (baseURL, server) = try await fake.start()
        defer { server.cancel() }
        let dataDirectory = try RepositoryPaths.makeTemporaryDirectory("telepay-tg")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let configuration = try Configuration.load(environment: [
            "TELEPAY_DATA_DIR": dataDirectory,
            "TELEPAY_HTTP_PORT": "0",
            "TELEPAY_RESOURCES_DIR": RepositoryPaths.root,
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEPAY_TELEGRAM_API_URL": baseURL,
            "TELEPAY_TELEGRAM_MODE": mode,
            "TELEPAY_PUBLIC_URL": "https://telepay.example.com",
            "TELEPAY_TELEGRAM_WEBHOOK_SECRET": "s3cret-Token_value",
        ])
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = try await TelePayApplication.build(
            configuration: configuration, logger: quietLogger, gracefulShutdownSignals: [],
            onServerRunning: { continuation.yield($0) }
        )
        let running = Task { try await application.run() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        do {
            try await body(fake, port, application)
        } catch {
            await application.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
        await application.triggerGracefulShutdown()
        try await running.value
    }

    func waitFor(_ what: String, _ condition: @Sendable () async -> Bool) async {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if await condition() { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting for \(what)")
    }

    func post(port: Int, secret: String?, body: String) async throws -> Int {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/telegram/webhook")!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let secret { request.setValue(secret, forHTTPHeaderField: "X-Telegram-Bot-Api-Secret-Token") }
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as! HTTPURLResponse).statusCode
    }

    @Test("in polling mode the bot publishes its commands and answers /start")
    func pollingEndToEnd() async throws {
        try await withTelePay(mode: "polling") { fake, _ in
            await fake.userSendsText(1001, "/start")
            await waitFor("a greeting") { await fake.sentMessages(to: 1001).count == 1 }
            #expect(await fake.sentMessages(to: 1001).first?.text.hasPrefix("Hello, Anna!") == true)
            #expect(await fake.commands["ru"]?.count == BotCommandName.allCases.count)
        }
    }

    @Test("in webhook mode a wrong secret gets 401, a right one is stored once and answered")
    func webhookEndToEnd() async throws {
        try await withTelePay(mode: "webhook") { fake, port in
            await waitFor("setWebhook") { await fake.webhookURL == "https://telepay.example.com/telegram/webhook" }
            let update =
                #"{"update_id":500,"message":{"message_id":1,"date":1764150000,"chat":{"id":1001,"type":"private","first_name":"Anna"},"from":{"id":1001,"is_bot":false,"first_name":"Anna","language_code":"en"},"text":"/help"}}"#
            #expect(try await post(port: port, secret: "wrong-secret", body: update) == 401)
            #expect(try await post(port: port, secret: nil, body: update) == 401)
            #expect(try await post(port: port, secret: "s3cret-Token_value", body: "{not json") == 400)
            #expect(try await post(port: port, secret: "s3cret-Token_value", body: update) == 200)
            #expect(try await post(port: port, secret: "s3cret-Token_value", body: update) == 200, "a re-sent update is acknowledged")
            await waitFor("the help reply") { await fake.sentMessages(to: 1001).count == 1 }
            try await Task.sleep(for: .milliseconds(300))
            #expect(await fake.sentMessages(to: 1001).count == 1, "the duplicate was not handled twice")
        }
    }

    @Test("a message enqueued as a job is delivered by the workers; one to a user who blocked the bot fails at once")
    func durableSend() async throws {
        try await withTelePay(mode: "polling") { fake, _, application in
            await fake.addUser(id: 1009, firstName: "Gone")
            await fake.userBlocksBot(1009)
            let delivered = try await application.jobs.queue.enqueue(SendTelegramMessageJob(chatID: 1001, text: "Your invite: <b>link</b>"))
            let blocked = try await application.jobs.queue.enqueue(SendTelegramMessageJob(chatID: 1009, text: "hello?"))
            await waitFor("the message delivered") { await fake.sentMessages(to: 1001).contains { $0.text == "Your invite: <b>link</b>" } }
            let database = application.database.database
            await waitFor("both jobs settled") {
                let states: [String] =
                    (try? await database.withConnection { connection -> [String] in
                        var states: [String] = []
                        let ids = [delivered.enqueuedID!.rawValue, blocked.enqueuedID!.rawValue]
                        for try await (state) in try await connection.query(
                            "SELECT state FROM jobs WHERE id = ANY(\(ids)) ORDER BY id", logger: quietLogger
                        ).decode(String.self) {
                            states.append(state)
                        }
                        return states
                    }) ?? []
                return states == ["completed", "failed"]
            }
        }
    }

    @Test("doctor reports the bot, a rejected token, and a webhook that would break polling")
    func doctorTelegram() async throws {
        let fake = FakeBotAPI()
        let (baseURL, server) = try await fake.start()
        defer { server.cancel() }
        let dataDirectory = try RepositoryPaths.makeTemporaryDirectory("telepay-doctor")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        func telegramLine(token: String) async -> DoctorCheck? {
            let checks = await Doctor.run(
                environment: [
                    "TELEPAY_DATA_DIR": dataDirectory,
                    "TELEPAY_RESOURCES_DIR": RepositoryPaths.root,
                    "TELEGRAM_BOT_TOKEN": token,
                    "TELEPAY_TELEGRAM_API_URL": baseURL,
                ], envFile: nil, logger: quietLogger)
            #expect(checks.contains { $0.name == "database" && $0.outcome == .ok })
            return checks.first { $0.name == "telegram" }
        }
        let healthy = await telegramLine(token: fake.token)
        #expect(healthy?.outcome == .ok)
        #expect(healthy?.detail.contains("@telepay_test_bot") == true)
        let rejected = await telegramLine(token: "42:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        #expect(rejected?.outcome == .failed)
        #expect(rejected?.detail.contains("401") == true)
        let transport = HTTPTelegramTransport(baseURL: baseURL, token: fake.token, logger: quietLogger)
        try await TelegramClient(transport: transport, limiter: nil, retry: .none, logger: quietLogger).send(
            SetWebhook(url: "https://elsewhere.example/hook"))
        let conflicting = await telegramLine(token: fake.token)
        #expect(conflicting?.outcome == .failed)
        #expect(conflicting?.detail.contains("409") == true)
    }
}
