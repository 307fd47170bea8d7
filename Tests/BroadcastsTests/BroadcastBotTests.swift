import Bot
import Broadcasts
import Conversations
import Foundation
import Jobs
import Localization
import Logging
import PostgresNIO
import Storage
import TelegramBotAPI
import TelegramFake
import TestSupport
import Testing

/// The bot as production assembles it, with broadcasts and admins, against the fake Bot API.
struct BroadcastBot: Sendable {
    static let admin: Int64 = 1001
    static let stranger: Int64 = 1002

    static let localizer: Localizer = {
        do {
            return try Localizer.load(directory: RepositoryPaths.root + "/Localization")
        } catch {
            fatalError("catalogs do not load: \(error)")
        }
    }()

    let fake: FakeBotAPI
    let client: TelegramClient
    let database: Database
    let store: BroadcastStore

    func text(_ key: String, _ arguments: [String: String] = [:]) -> String {
        Self.localizer.text(key, language: "en", arguments)
    }

    func sender(concurrency: Int = 8) -> BroadcastSender {
        BroadcastSender(
            store: store, delivery: TelegramBroadcastDelivery(client: client, database: database, logger: quietLogger),
            display: TelegramBroadcastProgress(client: client, localizer: Self.localizer, logger: quietLogger),
            settings: BroadcastSenderSettings(concurrency: concurrency, progressInterval: .seconds(1))
        )
    }

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

    func broadcastIDs() async throws -> [Int64] {
        try await database.withConnection { connection in
            let rows = try await connection.query("SELECT id FROM broadcasts ORDER BY id", logger: quietLogger)
            var ids: [Int64] = []
            for try await id in rows.decode(Int64.self) { ids.append(id) }
            return ids
        }
    }

    /// Users 1001 (the admin), 1002 and `extra` more from 5001, known to the fake and the database.
    static func run<Result: Sendable>(
        extraUsers extra: Int = 0, limits: TelegramRateLimits? = nil, _ body: @Sendable (BroadcastBot) async throws -> Result
    ) async throws -> Result {
        try await withMigratedDatabase(poolSize: 16) { database in
            let fake = FakeBotAPI(limits: limits)
            await fake.addUser(id: admin, firstName: "Anna", languageCode: "en")
            await fake.addUser(id: stranger, firstName: "Boris", languageCode: "en")
            for index in 0..<extra { await fake.addUser(id: 5001 + Int64(index), firstName: "U\(index)", languageCode: "en") }
            let ids = [admin, stranger] + (0..<extra).map { 5001 + Int64($0) }
            try await database.withConnection { connection in
                try await connection.query(
                    "INSERT INTO telegram_users (id, first_name) SELECT id, 'User' FROM unnest(\(ids)::bigint[]) AS t(id)", logger: quietLogger
                )
            }
            let (baseURL, server) = try await fake.start()
            defer { server.cancel() }
            let client = TelegramClient(
                transport: HTTPTelegramTransport(baseURL: baseURL, token: fake.token, logger: quietLogger),
                limiter: limits.map { OutboundLimiter(limits: $0) }, retry: .standard, logger: quietLogger
            )
            let conversations = try BotAssembly.loadConversations(directory: RepositoryPaths.root + "/Conversations", localizer: localizer)
            let router = try BotAssembly.router(
                conversations: conversations, settings: OwnerSettings(), broadcasts: BroadcastCommands(admins: [admin])
            )
            let services = BotServices(
                client: client, database: database, localizer: localizer, logger: quietLogger,
                jobs: JobQueue(database: database, logger: quietLogger)
            )
            let dispatcher = Dispatcher(router: router, services: services, maxConcurrency: 8)
            let polling = Task {
                try await LongPollingSource(
                    client: client, dispatcher: dispatcher, database: database, botID: fake.bot.id, pollTimeoutSeconds: 1, logger: quietLogger
                ).run()
            }
            defer { polling.cancel() }
            // The jobs the screens queue here (CSV exports) run as TelePay runs them.
            var registry = JobRegistry()
            registry.register(ChannelExporter(client: client, database: database, localizer: localizer))
            let workers = JobWorkerPool(
                registry: registry, database: database,
                configuration: JobWorkerConfiguration(workerID: "broadcast-bot", pollInterval: .milliseconds(50), shutdownGrace: .seconds(2)),
                alertHook: LoggingJobAlertHook(logger: quietLogger), logger: quietLogger)
            let working = Task { try await workers.run() }
            defer {
                workers.beginShutdown()
                working.cancel()
            }
            let bot = BroadcastBot(fake: fake, client: client, database: database, store: BroadcastStore(database: database, logger: quietLogger))
            return try await body(bot)
        }
    }
}

@Suite("Broadcasts in the bot: the admin's composer, controls, refusals, and replies during a broadcast")
struct BroadcastBotTests {
    @Test("an admin composes, previews exactly what recipients get, confirms, and the progress message ends as the report")
    func adminBroadcastEndToEnd() async throws {
        try await BroadcastBot.run(extraUsers: 30) { bot in
            let admin = BroadcastBot.admin
            await bot.fake.userSendsText(admin, "/admin")
            await bot.eventually("the admin menu") { await bot.fake.lastMessage(to: admin)?.text == bot.text("admin.menu") }
            try await bot.fake.userTapsButton(admin, label: bot.text("admin.button.broadcast_users"))
            try await bot.eventually("the composer's prompt") {
                let prompt = await bot.fake.lastMessage(to: admin)?.text ?? ""
                let drafts = try await bot.broadcastIDs()
                return prompt.hasPrefix("📣") && drafts.count == 1
            }

            // A mistake is explained and the draft keeps waiting.
            await bot.fake.userSendsText(admin, "Sale <div>today</div>")
            let problem = bot.text("broadcast.problem.unsupported_tag", ["tag": "div"])
            await bot.eventually("the problem") { await bot.fake.lastMessage(to: admin)?.text == problem }

            let html = "<b>Big news</b> &amp; a <a href=\"https://example.com\">link</a>"
            await bot.fake.userSendsText(admin, html)
            let sendLabel = bot.text("broadcast.button.send", ["count": "32"])
            await bot.eventually("the confirmation") {
                await bot.fake.lastMessage(to: admin)?.keyboard?.inlineKeyboard.joined().contains { $0.text == sendLabel } == true
            }
            let sent = await bot.fake.sentMessages(to: admin)
            let preview = sent[sent.count - 2]
            #expect(preview.text == html)
            #expect(preview.parseMode == "HTML")
            let confirmation = try #require(sent.last)

            try await bot.fake.userTapsButton(admin, label: sendLabel)
            let id = try #require(try await bot.broadcastIDs().first)
            try await bot.eventually("the broadcast running") { try await bot.store.broadcast(id)?.status == .running }
            #expect(try await bot.sender().send(id, logger: quietLogger) == .finished)

            for user in [BroadcastBot.stranger] + (0..<30).map({ 5001 + Int64($0) }) {
                let got = await bot.fake.sentMessages(to: user).filter { $0.text == html }
                #expect(got.count == 1, "user \(user) got \(got.count)")
            }
            // The admin is in "all users" too: the preview, then the broadcast itself.
            #expect(await bot.fake.sentMessages(to: admin).filter { $0.text == html }.count == 2)
            let report = try #require(await bot.fake.sentMessages(to: admin).first { $0.messageID == confirmation.messageID })
            #expect(report.text.hasPrefix(bot.text("broadcast.progress.finished", ["id": String(id)])))
            #expect(
                report.text.contains(
                    bot.text("broadcast.progress.counts", ["sent": "32", "blocked": "0", "failed": "0", "left": "0", "total": "32"])))
            #expect(report.keyboard == nil)
        }
    }

    @Test("someone who is not an admin gets no /admin, and crafted admin or broadcast buttons change nothing")
    func nonAdminRefused() async throws {
        try await BroadcastBot.run(extraUsers: 5) { bot in
            let stranger = BroadcastBot.stranger
            await bot.fake.userSendsText(stranger, "/admin")
            await bot.eventually("the refusal") {
                await bot.fake.lastMessage(to: stranger)?.text == bot.text("command.unknown", ["command": "/admin"])
            }
            #expect(await bot.fake.sentMessages(to: stranger).allSatisfy { $0.text != bot.text("admin.menu") })

            let anchor = try #require(await bot.fake.lastMessage(to: stranger)).messageID
            for data in [CallbackData.admin(.broadcastToUsers), .admin(.broadcastToOwners), .admin(.stats), .admin(.menu)] {
                await bot.fake.userSendsCallback(stranger, data: data.encoded, onMessage: anchor)
            }
            await bot.eventually("four refusals") {
                await bot.fake.answeredCallbacks.values.filter { $0 == bot.text("admin.not_allowed") }.count == 4
            }
            #expect(try await bot.broadcastIDs().isEmpty)

            // The admin's broadcast: a stranger can neither confirm the draft nor stop it once running.
            let service = BroadcastService(
                store: bot.store, queue: JobQueue(database: bot.database, logger: quietLogger), admins: [BroadcastBot.admin]
            )
            let id = try await service.compose(author: BroadcastBot.admin, language: "en", audience: .allUsers, chat: BroadcastBot.admin)
            _ = try await service.setText("Hello", draft: try #require(try await service.draftAwaitingText(of: BroadcastBot.admin)))
            await bot.fake.userSendsCallback(stranger, data: CallbackData.broadcast(.send, id).encoded, onMessage: anchor)
            await bot.eventually("the send refused") {
                await bot.fake.answeredCallbacks.values.filter { $0 == bot.text("admin.not_allowed") }.count == 5
            }
            #expect(try await bot.store.broadcast(id)?.status == .ready)
            _ = try await service.start(id, by: BroadcastBot.admin, progressMessageID: 1)
            for action in [BroadcastAction.pause, .cancel, .discard] {
                await bot.fake.userSendsCallback(stranger, data: CallbackData.broadcast(action, id).encoded, onMessage: anchor)
            }
            try await bot.eventually("the controls refused") {
                await bot.fake.answeredCallbacks.values.filter { $0 == bot.text("admin.not_allowed") }.count == 8
            }
            #expect(try await bot.store.broadcast(id)?.status == .running)
        }
    }

    @Test("a user who writes to the bot during a broadcast is answered before the broadcast is done, with zero 429s")
    func interactiveReplyDuringBroadcast() async throws {
        // 450 recipients at Telegram's 30 a second take 15 s; the reply must not wait for them.
        try await BroadcastBot.run(extraUsers: 448, limits: .telegram) { bot in
            let service = BroadcastService(
                store: bot.store, queue: JobQueue(database: bot.database, logger: quietLogger), admins: [BroadcastBot.admin]
            )
            let id = try await service.compose(author: BroadcastBot.admin, language: "en", audience: .allUsers, chat: BroadcastBot.admin)
            _ = try await service.setText("Weekly digest", draft: try #require(try await service.draftAwaitingText(of: BroadcastBot.admin)))
            #expect(try await service.start(id, by: BroadcastBot.admin, progressMessageID: 1) == 450)
            let sending = Task { try await bot.sender().send(id, logger: quietLogger) }
            defer { sending.cancel() }
            try await bot.eventually("the broadcast under way") { (try await bot.store.counts(id).sent) >= 60 }

            await bot.fake.userSendsText(BroadcastBot.stranger, "/help")
            try await bot.eventually("the reply") {
                await bot.fake.sentMessages(to: BroadcastBot.stranger).contains { $0.text == bot.text("help.text") }
            }
            let left = try await bot.store.counts(id).left
            #expect(left > 0, "the reply came only after the broadcast")
            _ = try await service.cancel(id, by: BroadcastBot.admin)
            _ = try await sending.value
            #expect(await bot.fake.rejectedWithTooManyRequests == 0)
        }
    }
}
