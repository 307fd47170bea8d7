import Jobs
import Logging
import TelegramBotAPI

/// A Telegram message that must survive a restart — invite links, owner notifications — sent
/// by a job, so a crash or a Telegram outage delays it instead of losing it. Interactive replies go direct.
public struct SendTelegramMessageJob: JobPayload {
    public static let kind = "telegram.send_message"
    public static let maxAttempts = 12

    public var chatID: Int64
    public var text: String
    public var parseMode: String?
    public var replyMarkup: ReplyMarkup?

    public init(chatID: Int64, text: String, parseMode: String? = "HTML", replyMarkup: ReplyMarkup? = nil) {
        self.chatID = chatID
        self.text = text
        self.parseMode = parseMode
        self.replyMarkup = replyMarkup
    }
}

/// Sends `SendTelegramMessageJob`s through the rate-limited client. Flood control, server and network
/// errors are retried with the job backoff; a blocked user, a missing chat or a rejected message fail the
/// job at once, since sending again cannot help.
///
/// Delivery is at least once: a crash after Telegram accepted the message but before the job completed
/// sends it again — the Bot API has no idempotency key to prevent that.
public struct TelegramMessageSender: JobHandler {
    public let client: TelegramClient

    public init(client: TelegramClient) {
        self.client = client
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 8) }

    public func run(_ payload: SendTelegramMessageJob, context: JobContext) async throws {
        try await client.send(
            SendMessage(
                chatId: .id(payload.chatID), text: payload.text, parseMode: payload.parseMode,
                linkPreviewOptions: LinkPreviewOptions(isDisabled: true), replyMarkup: payload.replyMarkup
            ))
    }

    public func classify(_ error: any Error) -> JobErrorClass {
        guard let telegram = error as? TelegramError else { return .retryable }
        return telegram.isTransient ? .retryable : .permanent
    }
}
