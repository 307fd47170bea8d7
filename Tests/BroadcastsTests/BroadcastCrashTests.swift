import Bot
import Broadcasts
import Foundation
import Jobs
import PostgresNIO
import Storage
import TelegramBotAPI
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("A broadcast sender killed with SIGKILL mid-broadcast")
struct BroadcastCrashTests {
    static var executable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("BroadcastCrashChild").path
    }

    @Test("restarted, it resumes: every reachable user has the message once, except at most the sends in flight, which are counted")
    func killAndResume() async throws {
        let server = try await TestPostgres.shared.server()
        try await BroadcastBot.run(extraUsers: 300, limits: .telegram) { bot in
            let blocked = (5001...5010).map(Int64.init), neverStarted = (9001...9010).map(Int64.init)
            for user in blocked { await bot.fake.userBlocksBot(user) }
            // The bot learns of the blocks from Telegram's updates; the audience leaves them out.
            try await bot.eventually("the blocks recorded") {
                try await bot.database.withConnection { connection -> Int64? in
                    try await connection.first(
                        "SELECT count(*) FROM telegram_users WHERE blocked_bot_at IS NOT NULL", as: Int64.self, logger: quietLogger)
                } == Int64(blocked.count)
            }
            try await bot.database.withConnection { connection in
                try await connection.query(
                    "INSERT INTO telegram_users (id, first_name) SELECT id, 'Gone' FROM unnest(\(neverStarted)::bigint[]) AS t(id)",
                    logger: quietLogger
                )
            }
            let service = BroadcastService(
                store: bot.store, queue: JobQueue(database: bot.database, logger: quietLogger), admins: [BroadcastBot.admin])
            let id = try await service.compose(author: BroadcastBot.admin, language: "en", audience: .allUsers, chat: BroadcastBot.admin)
            let draft = try #require(try await service.draftAwaitingText(of: BroadcastBot.admin))
            _ = try await service.setText("<b>Once</b> for everyone", draft: draft).get()
            let total = try await service.start(id, by: BroadcastBot.admin, progressMessageID: 77)
            #expect(total == 2 + 290 + neverStarted.count)

            let databaseName = try #require(
                try await bot.database.withConnection { connection in
                    try await connection.first("SELECT current_database()", as: String.self, logger: quietLogger)
                })
            let baseURL = try #require(bot.client.transport as? HTTPTelegramTransport).baseURL
            let environment = [
                "CRASH_DB_SOCKET": server.cluster.socketPath, "CRASH_DB_USER": EmbeddedPostgres.username, "CRASH_DB_NAME": databaseName,
                "CRASH_BOT_URL": baseURL, "CRASH_BOT_TOKEN": bot.fake.token, "CRASH_BROADCAST_ID": String(id),
            ]
            let folder = try RepositoryPaths.makeTemporaryDirectory("broadcast-crash")
            @Sendable func sends() async -> Int { await bot.fake.calls.filter { $0 == "sendMessage" }.count }

            let first = try ProcessRunner.spawn(Self.executable, [], environment: environment, outputPath: folder + "/first.log")
            await bot.eventually("a third of the broadcast sent") { await sends() >= 100 }
            kill(first, SIGKILL)
            let killed = await ProcessRunner.waitForExit(first)
            let sentBeforeKill = await sends()
            // A claim the server received before the kill still commits; give it a moment before counting.
            try await Task.sleep(for: .milliseconds(500))
            #expect(
                killed != 0, "the first run was killed, not finished (\((try? String(contentsOfFile: folder + "/first.log", encoding: .utf8)) ?? ""))"
            )
            #expect(sentBeforeKill < total)
            let inFlight =
                try await bot.database.withConnection { connection -> Int64? in
                    try await connection.first(
                        "SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = \(id) AND status = 'sending'", as: Int64.self,
                        logger: quietLogger
                    )
                } ?? 0

            let second = try ProcessRunner.spawn(Self.executable, [], environment: environment, outputPath: folder + "/second.log")
            let code = await ProcessRunner.waitForExit(second)
            #expect(code == 0, "\((try? String(contentsOfFile: folder + "/second.log", encoding: .utf8)) ?? "")")

            let reachable = [BroadcastBot.admin, BroadcastBot.stranger] + (5011...5300).map(Int64.init)
            var received: [Int64: Int] = [:]
            for user in reachable { received[user] = await bot.fake.sentMessages(to: user).filter { $0.text == "<b>Once</b> for everyone" }.count }
            let broadcast = try #require(try await bot.store.broadcast(id))
            let counts = try await bot.store.counts(id)
            let twice = received.filter { $0.value == 2 }
            #expect(received.values.allSatisfy { (1...2).contains($0) })
            #expect(twice.count <= broadcast.resentAfterRestart)
            #expect(broadcast.resentAfterRestart >= Int(inFlight))
            #expect(broadcast.resentAfterRestart <= BroadcastSenderSettings().concurrency)
            #expect(broadcast.status == .finished)
            #expect(counts.sent == reachable.count && counts.blocked == 0 && counts.failed == neverStarted.count)
            for user in blocked { #expect(await bot.fake.sentMessages(to: user).isEmpty) }
            // The bound, for the README: recipients whose send was in flight at the kill, and how many of them got it twice.
            print(
                "broadcast SIGKILL: killed after \(sentBeforeKill) sendMessage calls of \(total); in flight \(inFlight); resent \(broadcast.resentAfterRestart); received twice \(twice.count)"
            )
        }
    }
}
