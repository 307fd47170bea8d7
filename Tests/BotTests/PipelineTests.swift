import Bot
import Foundation
import Localization
import Storage
import TelegramBotAPI
import TelegramFake
import TestSupport
import Testing

/// Collects what handlers saw, and how many ran at once.
actor HandlerLog {
    var seen: [Int64: [Int]] = [:]
    var running = 0
    var maxRunning = 0

    func begin() {
        running += 1
        maxRunning = max(maxRunning, running)
    }

    func end(user: Int64, sequence: Int) {
        running -= 1
        seen[user, default: []].append(sequence)
    }

    var total: Int { seen.values.reduce(0) { $0 + $1.count } }
}

/// A hand-off that fails the first time, as when the database is briefly unreachable.
actor HandOffAttempts {
    private(set) var count = 0

    struct Unreachable: Error {}

    func handOff() throws {
        count += 1
        if count == 1 { throw Unreachable() }
    }
}

/// A one-shot signal.
actor Flag {
    private(set) var isSet = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func set() {
        isSet = true
        waiters.forEach { $0.resume() }
        waiters = []
    }

    func wait() async {
        if isSet { return }
        await withCheckedContinuation { waiters.append($0) }
    }
}

@Suite("Update pipeline")
struct PipelineTests {
    @Test("updates of one user are handled strictly in order while different users run in parallel")
    func perUserOrdering() async throws {
        let log = HandlerLog()
        try await withBot(dispatcher: { harness in
            var router = BotRouter()
            router.onText { context in
                await log.begin()
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...4)))
                let sequence = Int(context.update.message?.text ?? "") ?? -1
                await log.end(user: context.user?.id ?? 0, sequence: sequence)
            }
            return Dispatcher(router: router, services: harness.services(), maxConcurrency: 16)
        }) { bot in
            let users = Array(Int64(2000)..<2040)
            for user in users { await bot.fake.addUser(id: user, firstName: "User \(user)") }
            for sequence in 0..<15 {
                for user in users { await bot.fake.userSendsText(user, String(sequence)) }
            }
            await bot.eventually("all 600 handled", seconds: 60) { await log.total == 600 }
            for user in users {
                #expect(await log.seen[user] == Array(0..<15), "user \(user)")
            }
            #expect(await log.maxRunning > 1, "different users ran concurrently")
            #expect(await log.maxRunning <= 16)
        }
    }

    @Test("a join request whose hand-off fails is tried again, not dropped with the update")
    func joinRequestHandOffIsRetried() async throws {
        let attempts = HandOffAttempts()
        try await withBot(dispatcher: { harness in
            var router = BotRouter()
            router.onJoinRequest { _ in try await attempts.handOff() }
            return Dispatcher(router: router, services: harness.services())
        }) { bot in
            let chat: Int64 = -1_001_000_000_009
            await bot.fake.addChannel(id: chat, title: "Club", owner: 1001)
            let link = try await bot.client.send(CreateChatInviteLink(chatId: .id(chat), name: "test", createsJoinRequest: true)).inviteLink
            try await bot.fake.userOpensInviteLink(1002, link)
            await bot.eventually("handed off at the second try") { await attempts.count == 2 }
        }
    }

    @Test("an update whose handler never finished is delivered again after a restart; nothing is skipped")
    func redeliveryAfterCrash() async throws {
        let started = Flag()
        let release = Flag()
        try await withMigratedDatabase(poolSize: 8) { database in
            let fake = FakeBotAPI()
            await fake.addUser(id: 1001, firstName: "Anna")
            let (baseURL, server) = try await fake.start()
            defer { server.cancel() }
            let client = TelegramClient(
                transport: HTTPTelegramTransport(baseURL: baseURL, token: fake.token, logger: quietLogger), limiter: nil, retry: .none,
                logger: quietLogger)
            let harness = BotHarness(fake: fake, client: client, database: database, localizer: BotHarness.localizer, botID: fake.bot.id)

            // First instance: its handler hangs mid-update, as if the process died there.
            var stuckRouter = BotRouter()
            stuckRouter.onText { _ in
                await started.set()
                await release.wait()
            }
            let first = Task { try await harness.poller(Dispatcher(router: stuckRouter, services: harness.services())).run() }
            await fake.userSendsText(1001, "pay me")
            await started.wait()
            #expect(try await PollingOffsetStore.load(botID: fake.bot.id, on: database) == 0, "offset not advanced while in flight")
            first.cancel()

            // Second instance, started from what the database says: the in-flight update comes again.
            var router = BotRouter()
            router.onText { context in try await context.reply("text.unexpected") }
            let second = Task { try await harness.poller(Dispatcher(router: router, services: harness.services())).run() }
            defer { second.cancel() }
            await harness.eventually("the update re-delivered and answered") { await fake.texts(to: 1001).count == 1 }
            await harness.eventually("offset stored past it") {
                (try? await PollingOffsetStore.load(botID: fake.bot.id, on: database)) ?? 0 > 0
            }
            await release.set()
        }
    }

    @Test("a rejected token (401) and a competing webhook (409) stop polling with a clear message")
    func fatalErrors() async throws {
        try await withMigratedDatabase { database in
            let fake = FakeBotAPI()
            let (baseURL, server) = try await fake.start()
            defer { server.cancel() }
            let services = { (client: TelegramClient) in
                BotServices(client: client, database: database, localizer: BotHarness.localizer, logger: quietLogger)
            }
            let wrong = TelegramClient(
                transport: HTTPTelegramTransport(baseURL: baseURL, token: "1:nope", logger: quietLogger), limiter: nil, retry: .none,
                logger: quietLogger)
            let unauthorized = await #expect(throws: LongPollingError.self) {
                try await LongPollingSource(
                    client: wrong, dispatcher: Dispatcher(router: BotRouter(), services: services(wrong)), database: database, botID: 1,
                    pollTimeoutSeconds: 1, logger: quietLogger
                ).run()
            }
            #expect(unauthorized?.description.contains("TELEGRAM_BOT_TOKEN") == true)

            let client = TelegramClient(
                transport: HTTPTelegramTransport(baseURL: baseURL, token: fake.token, logger: quietLogger), limiter: nil, retry: .none,
                logger: quietLogger)
            try await client.send(SetWebhook(url: "https://example.com/hook"))
            let conflict = await #expect(throws: LongPollingError.self) {
                try await LongPollingSource(
                    client: client, dispatcher: Dispatcher(router: BotRouter(), services: services(client)), database: database, botID: 1,
                    pollTimeoutSeconds: 1, logger: quietLogger
                ).run()
            }
            #expect(conflict?.description.contains("webhook") == true)
        }
    }
}

extension FakeBotAPI {
    func texts(to chat: Int64) -> [String] {
        sentMessages(to: chat).map(\.text)
    }
}
