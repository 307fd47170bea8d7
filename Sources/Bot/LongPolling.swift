import Foundation
import Logging
import PostgresNIO
import Resilience
import ServiceLifecycle
import Storage
import TelegramBotAPI

/// Why polling stopped for good.
public enum LongPollingError: Error, CustomStringConvertible {
    case unauthorized
    case conflict(String)

    public var description: String {
        switch self {
        case .unauthorized:
            return "Telegram rejected the bot token (401): check TELEGRAM_BOT_TOKEN"
        case .conflict(let text):
            return
                "Telegram reported a conflict (409: \(text)): another TelePay instance is polling with this token, or a webhook is set; stop the other instance or use webhook mode"
        }
    }
}

/// Receives updates with `getUpdates` and hands each batch to the dispatcher.
///
/// The offset in the database moves past a batch only after every update in it has been handled, and the
/// next `getUpdates` (which is what confirms updates to Telegram) carries that offset. A crash therefore
/// re-delivers the batch in flight instead of losing it; update ids below the stored offset are dropped.
public struct LongPollingSource: Service {
    public static let allowedUpdates = ["message", "callback_query", "my_chat_member", "chat_member", "chat_join_request"]

    public let client: TelegramClient
    public let dispatcher: Dispatcher
    public let database: Database
    public let botID: Int64
    public let pollTimeoutSeconds: Int64
    public let logger: Logger

    public init(client: TelegramClient, dispatcher: Dispatcher, database: Database, botID: Int64, pollTimeoutSeconds: Int64 = 50, logger: Logger) {
        self.client = client
        self.dispatcher = dispatcher
        self.database = database
        self.botID = botID
        self.pollTimeoutSeconds = pollTimeoutSeconds
        self.logger = logger
    }

    public func run() async throws {
        var offset = try await PollingOffsetStore.load(botID: botID, on: database)
        var failures = 0
        logger.info("long polling started", metadata: ["offset": "\(offset)"])
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let request = GetUpdates(offset: offset > 0 ? offset : nil, limit: 100, timeout: pollTimeoutSeconds, allowedUpdates: Self.allowedUpdates)
            let updates: [Update]
            do {
                updates = try await cancelWhenGracefulShutdown {
                    try await client.call(request, timeout: .seconds(pollTimeoutSeconds + 15))
                }
                failures = 0
            } catch let error as TelegramError {
                switch error {
                case .unauthorized:
                    throw LongPollingError.unauthorized
                case .conflict(let text):
                    throw LongPollingError.conflict(text)
                case .retryAfter(let seconds):
                    try await sleepUnlessShuttingDown(.seconds(seconds))
                default:
                    failures += 1
                    let delay = Self.failureBackoff.delay(afterAttempt: failures)
                    logger.warning("getUpdates failed; backing off", metadata: ["error": "\(error)", "delay": "\(delay)"])
                    try await sleepUnlessShuttingDown(delay)
                }
                continue
            } catch is CancellationError {
                break
            }
            let fresh = updates.filter { $0.updateId >= offset }
            if fresh.count < updates.count {
                logger.info("dropped already-handled updates", metadata: ["count": "\(updates.count - fresh.count)"])
            }
            guard let last = updates.map(\.updateId).max() else { continue }
            await dispatcher.dispatch(fresh)
            offset = last + 1
            try await PollingOffsetStore.save(botID: botID, nextUpdateID: offset, on: database)
        }
        logger.info("long polling stopped", metadata: ["offset": "\(offset)"])
    }

    /// After a failed getUpdates: half a second, doubling, at most 30 seconds.
    static let failureBackoff = Backoff(initial: .milliseconds(500), maximum: .seconds(30), jitter: .none)

    private func sleepUnlessShuttingDown(_ duration: Duration) async throws {
        do {
            try await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
        } catch is CancellationError {
            return
        }
    }
}
