import Logging
import Storage

/// What handlers change about the person they are talking to: their language, whether they blocked the
/// bot, and their conversation in a chat.
public struct UserDesk: Sendable {
    let database: Database
    let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    public func setLanguage(_ language: String, for userID: Int64) async throws {
        try await TelegramUserStore.setLanguage(language, for: userID, on: database)
    }

    /// Whether the person has blocked the bot (from `my_chat_member` in their private chat).
    public func setBlocked(_ blocked: Bool, userID: Int64) async throws {
        try await TelegramUserStore.setBlocked(blocked, userID: userID, on: database)
    }

    /// Leaves the person's conversation in this chat and discards its draft, under the conversation lock so
    /// a step in flight finishes first. Returns whether there was one.
    public func endConversation(chatID: Int64, userID: Int64) async throws -> Bool {
        try await database.withTransaction { connection in
            try await ConversationStore.lock(chatID: chatID, userID: userID, on: connection, logger: logger)
            return try await ConversationStore.delete(chatID: chatID, userID: userID, on: connection, logger: logger) > 0
        }
    }
}
