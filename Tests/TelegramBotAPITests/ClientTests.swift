import Foundation
import Logging
import TelegramBotAPI
import TelegramFake
import TestSupport
import Testing

/// Starts a fake Bot API with one user and one channel, and a client pointed at it over HTTP.
func withFakeTelegram<Result: Sendable>(
    limits: TelegramRateLimits? = nil,
    limiter: OutboundLimiter? = nil,
    retry: RetryPolicy = .none,
    _ body: @Sendable (FakeBotAPI, TelegramClient) async throws -> Result
) async throws -> Result {
    let fake = FakeBotAPI(limits: limits)
    await fake.addUser(id: 1001, firstName: "Anna", languageCode: "ru")
    await fake.addUser(id: 1002, firstName: "Owner")
    await fake.addChannel(id: -1_001_000_000_001, title: "Premium", owner: 1002)
    let (baseURL, server) = try await fake.start()
    defer { server.cancel() }
    let transport = HTTPTelegramTransport(baseURL: baseURL, token: fake.token, logger: quietLogger)
    let client = TelegramClient(transport: transport, limiter: limiter, retry: retry, logger: quietLogger)
    return try await body(fake, client)
}

@Suite("Bot API client against the fake server")
struct ClientTests {
    @Test("each documented error shape maps to its typed case")
    func errorMapping() async throws {
        try await withFakeTelegram { fake, client in
            await #expect(throws: TelegramError.chatNotFound) { _ = try await client.send(SendMessage(chatId: .id(777), text: "x")) }
            await #expect(throws: TelegramError.badRequest(description: "Bad Request: message is too long")) {
                try await client.send(SendMessage(chatId: .id(1001), text: String(repeating: "a", count: 4097)))
            }
            await #expect(throws: TelegramError.badRequest(description: "Bad Request: BUTTON_DATA_INVALID")) {
                let button = InlineKeyboardButton(text: "x", action: .callbackData(String(repeating: "é", count: 33)))
                try await client.send(
                    SendMessage(chatId: .id(1001), text: "x", replyMarkup: .inlineKeyboard(InlineKeyboardMarkup(inlineKeyboard: [[button]]))))
            }
            await #expect(throws: TelegramError.self) { try await client.send(SendMessage(chatId: .id(1001), text: "<b>open", parseMode: "HTML")) }

            let sent = try await client.send(SendMessage(chatId: .id(1001), text: "<b>hello</b> &amp; welcome", parseMode: "HTML"))
            #expect(
                try await client.edit(
                    EditMessageText(chatId: .id(1001), messageId: sent.messageId, text: "<b>hello</b> &amp; welcome", parseMode: "HTML")) == nil,
                "an unchanged edit is a success with nothing to report")
            await #expect(throws: TelegramError.notModified) {
                try await client.send(
                    EditMessageText(chatId: .id(1001), messageId: sent.messageId, text: "<b>hello</b> &amp; welcome", parseMode: "HTML"))
            }

            await fake.userBlocksBot(1001)
            await #expect(throws: TelegramError.blocked) { try await client.send(SendMessage(chatId: .id(1001), text: "still there?")) }
            await #expect(throws: TelegramError.badRequest(description: "Bad Request: can't create invite link with member limit and join request")) {
                try await client.send(CreateChatInviteLink(chatId: .id(-1_001_000_000_001), memberLimit: 1, createsJoinRequest: true))
            }

            let wrongToken = TelegramClient(
                transport: HTTPTelegramTransport(
                    baseURL: (client.transport as! HTTPTelegramTransport).baseURL, token: "1:wrong", logger: quietLogger),
                limiter: nil, retry: .none, logger: quietLogger
            )
            await #expect(throws: TelegramError.unauthorized) { try await wrongToken.send(GetMe()) }
        }
    }

    @Test("a second poller makes the fake end the first long poll with 409, as Telegram does")
    func secondPollerConflict() async throws {
        try await withFakeTelegram { fake, client in
            let first = Task { () throws(TelegramError) -> [Update] in try await client.call(GetUpdates(timeout: 3), timeout: .seconds(10)) }
            // Start the second poll only once the fake holds the first, however slow the machine.
            while await !fake.calls.contains("getUpdates") { try await Task.sleep(for: .milliseconds(10)) }
            let second = try await client.call(GetUpdates(timeout: 1), timeout: .seconds(10))
            await #expect(
                throws: TelegramError.conflict(
                    description: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running")
            ) {
                _ = try await first.value
            }
            #expect(second.isEmpty)
        }
    }

    @Test("recorded error envelopes classify by code and description prefix")
    func envelopeClassification() throws {
        func classify(_ json: String) -> TelegramError? {
            do {
                _ = try TelegramClient.decodeEnvelope(Bool.self, status: 400, body: Array(json.utf8))
                return nil
            } catch {
                return error
            }
        }
        #expect(
            classify(#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#)
                == .retryAfter(seconds: 7))
        #expect(
            classify(
                #"{"ok":false,"error_code":409,"description":"Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}"#
            )
                == .conflict(description: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"))
        #expect(
            classify(
                #"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001987654321}}"#
            ) == .migrateToChat(id: -1_001_987_654_321))
        #expect(
            classify(#"{"ok":false,"error_code":403,"description":"Forbidden: bot is not a member of the channel chat"}"#)
                == .forbidden(description: "Forbidden: bot is not a member of the channel chat"))
        #expect(classify(#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#) == .unauthorized)
        #expect(classify(#"{"ok":false,"error_code":502,"description":"Bad Gateway"}"#) == .server(status: 502, description: "Bad Gateway"))
        #expect(classify("<html>502</html>") == .invalidResponse(description: "HTTP 400 with a body that is not a Bot API envelope"))
        #expect(classify(#"{"ok":true,"result":true}"#) == nil)
    }

    @Test("a 429 pauses all sending for retry_after and the call then succeeds")
    func honoursRetryAfter() async throws {
        let tight = TelegramRateLimits(
            overall: RateLimit(count: 100, window: .seconds(1)),
            // A window long enough that even a slow machine sends the third message inside it.
            privateChat: RateLimit(count: 2, window: .seconds(3)),
            groupChat: RateLimit(count: 20, window: .seconds(60)),
            margin: .zero
        )
        let retry = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(10), maxDelay: .milliseconds(50), maxRetryAfter: .seconds(5))
        // No client-side limiter: the fake's 429 is the only brake.
        try await withFakeTelegram(limits: tight, limiter: OutboundLimiter(limits: .unlimited), retry: retry) { fake, client in
            for index in 0..<4 {
                _ = try await client.send(SendMessage(chatId: .id(1001), text: "message \(index)"))
            }
            #expect(await fake.rejectedWithTooManyRequests >= 1)
            #expect(await fake.sentMessages(to: 1001).count == 4)
        }
    }

    @Test("with the limiter on, concurrent senders never get a 429 from a fake enforcing the limits")
    func limiterAvoidsFloodControl() async throws {
        let limits = TelegramRateLimits(
            overall: RateLimit(count: 20, window: .milliseconds(500)),
            privateChat: RateLimit(count: 2, window: .milliseconds(300)),
            groupChat: RateLimit(count: 3, window: .milliseconds(600)),
            margin: .milliseconds(20)
        )
        try await withFakeTelegram(limits: limits, limiter: OutboundLimiter(limits: limits)) { fake, client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<30 {
                    group.addTask {
                        let chat: Int64 = index % 3 == 0 ? -1_001_000_000_001 : 1001
                        _ = try await client.send(SendMessage(chatId: .id(chat), text: "burst \(index)"))
                    }
                }
                try await group.waitForAll()
            }
            #expect(await fake.rejectedWithTooManyRequests == 0)
            #expect(await fake.sentMessages(to: 1001).count == 20)
            #expect(await fake.sentMessages(to: -1_001_000_000_001).count == 10)
        }
    }
}

@Suite("Outbound limiter")
struct LimiterTests {
    /// Every window of `limit.window` holds at most `limit.count` of the instants.
    func respects(_ instants: [ContinuousClock.Instant], _ limit: RateLimit) -> Bool {
        let sorted = instants.sorted()
        guard sorted.count > limit.count else { return true }
        for index in limit.count..<sorted.count where sorted[index] - sorted[index - limit.count] < limit.window {
            return false
        }
        return true
    }

    @Test("under many concurrent senders no chat window and no overall window is ever exceeded")
    func neverExceeds() async throws {
        let limits = TelegramRateLimits(
            overall: RateLimit(count: 15, window: .milliseconds(300)),
            privateChat: RateLimit(count: 2, window: .milliseconds(200)),
            groupChat: RateLimit(count: 3, window: .milliseconds(500)),
            margin: .zero
        )
        let limiter = OutboundLimiter(limits: limits)
        let chats: [ChatID?] = [.id(1), .id(2), .id(3), .id(-100_1), .id(-100_2), nil]
        let booked = try await withThrowingTaskGroup(of: (ChatID?, ContinuousClock.Instant).self) { group in
            for index in 0..<120 {
                let chat = chats[index % chats.count]
                group.addTask {
                    let permit = try await limiter.acquire(chat: chat)
                    await limiter.release(permit)
                    return (chat, permit.slot)
                }
            }
            var all: [(ChatID?, ContinuousClock.Instant)] = []
            for try await item in group { all.append(item) }
            return all
        }
        #expect(booked.count == 120)
        #expect(respects(booked.map(\.1), limits.overall))
        for chat in chats.compactMap({ $0 }) {
            let times = booked.filter { $0.0 == chat }.map(\.1)
            #expect(respects(times, limits.limit(for: chat)), "\(chat)")
        }
    }
}
