import Foundation
import Logging
import TelegramBotAPI
import TelegramFake

/// The outbound limiter against the fake Bot API enforcing Telegram's documented limits: how close to
/// 30 messages/s it sustains, and how many 429s it draws (the target is none).
struct LimiterBenchmark {
    var seconds: Int
    var chats: Int

    func run(logger: Logger) async throws -> String {
        let fake = FakeBotAPI(limits: .telegram)
        for chat in 0..<chats {
            await fake.addUser(id: Int64(50_000 + chat), firstName: "Reader \(chat)")
        }
        let (baseURL, server) = try await fake.start()
        defer { server.cancel() }
        let client = TelegramClient(
            transport: HTTPTelegramTransport(baseURL: baseURL, token: fake.token, logger: logger),
            limiter: OutboundLimiter(limits: .telegram), retry: .standard, logger: logger
        )
        let started = ContinuousClock.now
        let deadline = started + .seconds(seconds)
        // More senders than the limit allows, each always ready: the limiter alone decides the pace.
        try await withThrowingTaskGroup(of: Int.self) { group in
            for sender in 0..<chats {
                group.addTask {
                    var sent = 0
                    while ContinuousClock.now < deadline {
                        try await client.send(SendMessage(chatId: .id(Int64(50_000 + sender)), text: "broadcast \(sent)"))
                        sent += 1
                    }
                    return sent
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        let elapsedSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var delivered = 0
        for chat in 0..<chats { delivered += await fake.sentMessages(to: Int64(50_000 + chat)).count }
        let rate = Double(delivered) / elapsedSeconds
        return String(
            format: "limiter: %d messages to %d chats in %.1f s = %.2f messages/s (%.1f%% of 30/s); 429 responses: %d",
            delivered, chats, elapsedSeconds, rate, rate / 30 * 100, await fake.rejectedWithTooManyRequests
        )
    }
}
