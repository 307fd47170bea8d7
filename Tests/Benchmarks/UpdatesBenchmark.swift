import Bot
import Foundation
import Localization
import Logging
import Metrics
import PostgresNIO
import Storage
import TelegramBotAPI

/// Answers every call with a canned successful `sendMessage` result and counts the calls.
final class CountingTransport: TelegramTransport {
    private let calls = Counter()
    private let reply: [UInt8]

    init() {
        let message = #"{"ok":true,"result":{"message_id":1,"date":1764150000,"chat":{"id":1,"type":"private"},"text":"ok"}}"#
        reply = Array(message.utf8)
    }

    var count: Int { calls.value }

    func post(method: String, body: [UInt8], timeout: Duration) async throws(TelegramError) -> TelegramHTTPResponse {
        calls.increment()
        return TelegramHTTPResponse(status: 200, body: reply)
    }

    func upload(method: String, body: MultipartUpload, timeout: Duration) async throws(TelegramError) -> TelegramHTTPResponse {
        calls.increment()
        return TelegramHTTPResponse(status: 200, body: reply)
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var total = 0
        func increment() { lock.withLock { total += 1 } }
        var value: Int { lock.withLock { total } }
    }
}

/// Updates through the whole pipeline: JSON decode → dispatcher (per-user order, user upsert, language) →
/// a handler that reads and writes the user's conversation state in PostgreSQL → a reply through the client
/// into a counting transport. Fed in batches of 100, as getUpdates delivers them.
struct UpdatesBenchmark {
    var updates: Int
    var users: Int
    var concurrency: Int

    func run(database: Database, localizer: Localizer, logger: Logger) async throws -> String {
        let transport = CountingTransport()
        let client = TelegramClient(transport: transport, limiter: nil, retry: .none, logger: logger)
        var router = BotRouter()
        router.onText { context in
            guard let chat = context.chatID, let user = context.user?.id else { return }
            let step = try await context.services.database.withConnection { connection in
                let rows = try await connection.query(
                    """
                    INSERT INTO conversation_states (chat_id, user_id, conversation, step, draft, definition_version, expires_at)
                    VALUES (\(chat), \(user), 'bench', '1', '{"n":1}', '1', now() + interval '1 day')
                    ON CONFLICT (chat_id, user_id, conversation) DO UPDATE
                        SET step = (conversation_states.step::int + 1)::text,
                            draft = jsonb_set(conversation_states.draft, '{n}', to_jsonb(conversation_states.step::int + 1))
                    RETURNING step
                    """,
                    logger: context.logger
                )
                var step = ""
                for try await (value) in rows.decode(String.self) { step = value }
                return step
            }
            try await context.reply("text.unexpected", ["step": step])
        }
        let services = BotServices(client: client, database: database, localizer: localizer, logger: logger)
        let dispatcher = Dispatcher(router: router, services: services, maxConcurrency: concurrency)

        let payloads: [Data] = (0..<updates).map { index in
            let user = 10_000 + index % users
            return Data(#"{"update_id":\#(index + 1),"message":{"message_id":\#(index + 1),"date":1764150000,"chat":{"id":\#(user),"type":"private","first_name":"U"},"from":{"id":\#(user),"is_bot":false,"first_name":"User \#(user)","language_code":"en"},"text":"step"}}"#.utf8)
        }
        var latencies: [Duration] = []
        latencies.reserveCapacity(updates)
        let started = ContinuousClock.now
        for batchStart in stride(from: 0, to: updates, by: 100) {
            let batchBegan = ContinuousClock.now
            let decoder = JSONDecoder()
            let batch = payloads[batchStart..<min(batchStart + 100, updates)].compactMap { try? decoder.decode(Update.self, from: $0) }
            for finished in await dispatcher.dispatch(batch) { latencies.append(finished - batchBegan) }
        }
        let elapsed = ContinuousClock.now - started
        latencies.sort()
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        func percentile(_ p: Double) -> String {
            let value = latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
            return String(format: "%.1f ms", Double(value.components.attoseconds) / 1e15 + Double(value.components.seconds) * 1000)
        }
        return String(
            format: "updates: %d updates from %d users in %.2f s = %.0f updates/s; latency p50 %@, p99 %@ (replies sent: %d)",
            updates, users, seconds, Double(updates) / seconds, percentile(0.5), percentile(0.99), transport.count
        )
    }
}
