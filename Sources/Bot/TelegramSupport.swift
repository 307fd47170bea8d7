import Synchronization
import TelegramBotAPI

/// The bot's own user (id and username), asked of Telegram once and then remembered.
public final class BotIdentity: Sendable {
    private let cached = Mutex<User?>(nil)

    public init() {}

    /// The bot's user if known already; never asks Telegram.
    public var known: User? { cached.withLock { $0 } }

    /// Records what `getMe` answered elsewhere (the bot's start), so nobody asks again.
    public func remember(_ user: User) {
        cached.withLock { $0 = user }
    }

    public func user(_ client: TelegramClient) async throws -> User {
        if let known = cached.withLock({ $0 }) { return known }
        let me = try await client.send(GetMe())
        cached.withLock { $0 = me }
        return me
    }
}

extension Result where Failure == TelegramError {
    /// The outcome of a Bot API call as a value, so callers can switch over the errors they expect.
    static func telegram(_ body: () async throws(TelegramError) -> Success) async -> Self {
        do {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }
}

/// Redrawing a menu in place.
enum MenuEditing {
    /// Edits a menu message; `false` when Telegram refuses the edit (the message is too old or gone), so
    /// the caller sends the menu as a new message. "Not modified" counts as done.
    static func edit(_ context: UpdateContext, messageID: Int64, text: String, keyboard: InlineKeyboardMarkup?) async throws -> Bool {
        guard let chatID = context.chatID else { return false }
        let client = context.services.client
        let method = EditMessageText(chatId: .id(chatID), messageId: messageID, text: text, parseMode: "HTML", replyMarkup: keyboard)
        switch await Result.telegram({ () async throws(TelegramError) -> MessageOrTrue in try await client.send(method) }) {
        case .success, .failure(.notModified):
            return true
        case .failure(.badRequest(let description)):
            context.logger.info("could not edit a menu; sending it again", metadata: ["error": "\(description)"])
            return false
        case .failure(let error):
            throw error
        }
    }
}
