import Bot
import Conversations
import Foundation
import Localization
import Logging
import Storage
import TelegramBotAPI
import TelegramFake
import TestSupport
import Testing

/// A running bot against the fake Bot API and a fresh migrated database.
struct BotHarness: Sendable {
    let fake: FakeBotAPI
    let client: TelegramClient
    let database: Database
    let localizer: Localizer
    let botID: Int64

    static let localizer: Localizer = {
        do {
            return try Localizer.load(directory: RepositoryPaths.root + "/Localization")
        } catch {
            fatalError("catalogs do not load: \(error)")
        }
    }()

    static let conversations: [ConversationDefinition] = {
        do {
            return try BotAssembly.loadConversations(directory: RepositoryPaths.root + "/Conversations", localizer: localizer)
        } catch {
            fatalError("conversations do not load: \(error)")
        }
    }()

    /// The whole bot as production assembles it (core commands, conversations, channel screens).
    func fullDispatcher(_ settings: OwnerSettings = OwnerSettings(), concurrency: Int = 8) -> Dispatcher {
        do {
            let router = try BotAssembly.router(conversations: Self.conversations, settings: settings)
            return Dispatcher(router: router, services: services(), maxConcurrency: concurrency)
        } catch {
            fatalError("the bot does not assemble: \(error)")
        }
    }

    func services() -> BotServices {
        BotServices(client: client, database: database, localizer: localizer, logger: quietLogger)
    }

    func coreDispatcher(concurrency: Int = 8) -> Dispatcher {
        var router = BotRouter()
        CoreCommands.register(into: &router)
        return Dispatcher(router: router, services: services(), maxConcurrency: concurrency)
    }

    func poller(_ dispatcher: Dispatcher, timeout: Int64 = 1) -> LongPollingSource {
        LongPollingSource(client: client, dispatcher: dispatcher, database: database, botID: botID, pollTimeoutSeconds: timeout, logger: quietLogger)
    }

    /// Waits (up to `seconds`: generous, since a machine running the whole suite can stall for many seconds) until `condition` holds; records an issue and returns false otherwise.
    @discardableResult
    func eventually(_ what: String, seconds: Double = 45, _ condition: @Sendable () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("timed out waiting for: \(what)")
        return false
    }

    func texts(to chat: Int64) async -> [String] {
        await fake.sentMessages(to: chat).map(\.text)
    }
}

/// Runs `body` with a fake Bot API (users 1001 "Anna" with Telegram language en, 1002 "Boris" with ru),
/// a migrated database, and the core bot polling in the background.
func withBot<Result: Sendable>(
    dispatcher makeDispatcher: (@Sendable (BotHarness) -> Dispatcher)? = nil,
    polling startsPolling: Bool = true,
    _ body: @Sendable (BotHarness) async throws -> Result
) async throws -> Result {
    try await withMigratedDatabase(poolSize: 8) { database in
        let fake = FakeBotAPI()
        await fake.addUser(id: 1001, firstName: "Anna", languageCode: "en")
        await fake.addUser(id: 1002, firstName: "Boris", languageCode: "ru")
        await fake.addUser(id: 1003, firstName: "Chen", languageCode: "zh-hans")
        let (baseURL, server) = try await fake.start()
        defer { server.cancel() }
        let client = TelegramClient(
            transport: HTTPTelegramTransport(baseURL: baseURL, token: fake.token, logger: quietLogger),
            limiter: nil, retry: .none, logger: quietLogger
        )
        let harness = BotHarness(fake: fake, client: client, database: database, localizer: BotHarness.localizer, botID: fake.bot.id)
        let dispatcher = makeDispatcher?(harness) ?? harness.coreDispatcher()
        let polling = Task { if startsPolling { try await harness.poller(dispatcher).run() } }
        defer { polling.cancel() }
        return try await body(harness)
    }
}
