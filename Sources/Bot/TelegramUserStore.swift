import Foundation
import Localization
import Logging
import PostgresNIO
import Storage
import TelegramBotAPI

/// The home of `telegram_users`: who has talked to the bot, in which language, and whether they blocked it.
public enum TelegramUserStore {
    /// Records the senders of `updates` (first seen, last seen, name, Telegram language) in one statement
    /// and returns, per sender id, the language they chose with `/language` (`nil` when they chose none).
    @discardableResult
    public static func record(_ updates: [Update], on database: Database) async throws -> [Int64: String?] {
        var senders: [Int64: User] = [:]
        for update in updates {
            if let user = Dispatcher.sender(of: update), !user.isBot { senders[user.id] = user }
        }
        guard !senders.isEmpty else { return [:] }
        let users = senders.values.sorted { $0.id < $1.id }
        let ids = users.map(\.id)
        // PostgresNIO binds no arrays of optionals, so "absent" travels as "" and becomes NULL in SQL.
        let usernames: [String] = users.map { user in
            user.username.flatMap { name in
                name.count <= 32 && name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) ? name : nil
            } ?? ""
        }
        let names = users.map { String($0.firstName.prefix(256)) }
        let languages: [String] = users.map { user in user.languageCode.flatMap { (2...35).contains($0.count) ? $0 : nil } ?? "" }
        return try await database.withConnection { connection in
            let rows = try await connection.all(
                """
                INSERT INTO telegram_users (id, username, first_name, telegram_language)
                SELECT id, NULLIF(username, ''), first_name, NULLIF(language, '')
                FROM unnest(\(ids)::bigint[], \(usernames)::text[], \(names)::text[], \(languages)::text[]) AS batch(id, username, first_name, language)
                ON CONFLICT (id) DO UPDATE SET
                    username = EXCLUDED.username, first_name = EXCLUDED.first_name,
                    telegram_language = COALESCE(EXCLUDED.telegram_language, telegram_users.telegram_language),
                    last_seen_at = now()
                RETURNING id, chosen_language
                """,
                as: (Int64, String?).self, logger: database.logger
            )
            return Dictionary(rows.map { ($0.0, $0.1) }, uniquingKeysWith: { first, _ in first })
        }
    }

    public static func setLanguage(_ language: String, for userID: Int64, on database: Database) async throws {
        _ = try await database.withConnection { connection in
            try await connection.run("UPDATE telegram_users SET chosen_language = \(language) WHERE id = \(userID)", logger: database.logger)
        }
    }

    /// Marks whether the user has blocked the bot (from `my_chat_member` in their private chat).
    public static func setBlocked(_ blocked: Bool, userID: Int64, on database: Database) async throws {
        _ = try await database.withConnection { connection in
            try await connection.run(
                "UPDATE telegram_users SET blocked_bot_at = CASE WHEN \(blocked) THEN now() ELSE NULL END WHERE id = \(userID)",
                logger: database.logger
            )
        }
    }

    /// The language to write to a user in: the one they chose with `/language`, else Telegram's, else the
    /// catalog's fallback (also for someone the bot has never seen).
    public static func language(of userID: Int64, localizer: Localizer, on connection: PostgresConnection, logger: Logger) async throws -> String {
        guard
            let (chosen, telegram) = try await connection.first(
                "SELECT chosen_language, telegram_language FROM telegram_users WHERE id = \(userID)", as: (String?, String?).self, logger: logger
            )
        else { return Localizer.fallbackLanguage }
        return localizer.resolveLanguage(chosen: chosen, telegramCode: telegram)
    }

    /// Whether the bot can write to the user: they have talked to it and not blocked it.
    public static func isReachable(_ userID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.run("SELECT 1 FROM telegram_users WHERE id = \(userID) AND blocked_bot_at IS NULL", logger: logger) > 0
    }
}
