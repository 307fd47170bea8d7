import Bot
import Broadcasts
import Foundation
import Jobs
import Logging
import PostgresNIO
import Storage
import Synchronization
import TelegramBotAPI
import TelegramFake

/// A broadcast to `recipients` users through the real sender, store and limiter against the fake Bot API
/// enforcing Telegram's limits, while replies to other users are sent at interactive priority every
/// `replyInterval`: the sustained broadcast rate, the 429s drawn (target none) and the replies' latency.
struct BroadcastBenchmark {
    var recipients: Int
    var replyInterval: Duration = .milliseconds(250)

    func run(database: Database, logger: Logger) async throws -> String {
        let fake = FakeBotAPI(limits: .telegram)
        let firstRecipient: Int64 = 100_000
        let ids = (0..<recipients).map { firstRecipient + Int64($0) }
        for id in ids { await fake.addUser(id: id, firstName: "Reader") }
        // Replies go to 40 other people in turn, so no one chat's limit (3 in 3 s) slows them.
        let repliers = (0..<40).map { Int64(900_000 + $0) }
        for id in repliers { await fake.addUser(id: id, firstName: "Presser") }
        let admin = firstRecipient
        _ = try await database.withConnection { connection in
            try await connection.query(
                "INSERT INTO telegram_users (id, first_name) SELECT id, 'Reader' FROM unnest(\(ids)::bigint[]) AS t(id)", logger: logger
            )
        }
        let (baseURL, server) = try await fake.start()
        defer { server.cancel() }
        let client = TelegramClient(
            transport: HTTPTelegramTransport(baseURL: baseURL, token: fake.token, logger: logger),
            limiter: OutboundLimiter(limits: .telegram), retry: .standard, logger: logger
        )
        let store = BroadcastStore(database: database, logger: logger)
        let service = BroadcastService(store: store, queue: JobQueue(database: database, logger: logger), admins: [admin])
        let id = try await service.compose(author: admin, language: "en", audience: .allUsers, chat: admin)
        guard let draft = try await service.draftAwaitingText(of: admin) else { return "broadcast: the draft vanished" }
        _ = try await service.setText("<b>Benchmark</b> broadcast", draft: draft)
        let total = try await service.start(id, by: admin, progressMessageID: 1)
        let sender = BroadcastSender(
            store: store, delivery: TelegramBroadcastDelivery(client: client, database: database, logger: logger),
            display: NoDisplay(), settings: BroadcastSenderSettings()
        )

        let started = ContinuousClock.now
        let sending = Task { try await sender.send(id, logger: logger) }
        let latencies = Mutex<[Duration]>([])
        let replies = Task {
            var turn = 0
            while !Task.isCancelled {
                let chat = repliers[turn % repliers.count]
                turn += 1
                let sent = ContinuousClock.now
                _ = try? await client.send(SendMessage(chatId: .id(chat), text: "reply \(turn)"))
                latencies.withLock { $0.append(ContinuousClock.now - sent) }
                try? await Task.sleep(for: replyInterval)
            }
        }
        let outcome = try await sending.value
        let elapsed = ContinuousClock.now - started
        replies.cancel()
        _ = await replies.value
        let counts = try await store.counts(id)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = Double(counts.sent) / seconds
        let sorted = latencies.withLock { $0 }.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            let value = sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
            return Double(value.components.seconds) * 1000 + Double(value.components.attoseconds) / 1e15
        }
        return String(
            format: "broadcast: %@ %d of %d recipients in %.1f s = %.2f messages/s (%.1f%% of 30/s); 429 responses: %d; "
                + "%d interactive replies during it: p50 %.1f ms, p99 %.1f ms, max %.1f ms",
            "\(outcome.map(\.rawValue) ?? "missing")", counts.sent, total, seconds, rate, rate / 30 * 100, await fake.rejectedWithTooManyRequests,
            sorted.count, percentile(0.5), percentile(0.99), percentile(1.0)
        )
    }
}

private struct NoDisplay: BroadcastProgressDisplay {
    func show(_ progress: BroadcastProgress) async {}
}
