import Foundation
import PostgresNIO
import Storage
import TelegramBotAPI

/// The `telegram_users` table: who has talked to the bot, in which language.
public enum UserDirectory {
    /// Records the sender of `update` (first seen, last seen, name, Telegram language) and returns the
    /// language they chose with `/language`, if any. One round trip per update.
    @discardableResult
    public static func record(_ update: Update, on database: Database) async throws -> String? {
        guard let user = Dispatcher.sender(of: update), !user.isBot else { return nil }
        let username = user.username.flatMap { name -> String? in
            name.count <= 32 && name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) ? name : nil
        }
        let language = user.languageCode.flatMap { (2...35).contains($0.count) ? $0 : nil }
        let firstName = String(user.firstName.prefix(256))
        return try await database.withConnection { connection in
            let rows = try await connection.query(
                """
                INSERT INTO telegram_users (id, username, first_name, telegram_language)
                VALUES (\(user.id), \(username), \(firstName), \(language))
                ON CONFLICT (id) DO UPDATE SET
                    username = EXCLUDED.username, first_name = EXCLUDED.first_name,
                    telegram_language = COALESCE(EXCLUDED.telegram_language, telegram_users.telegram_language),
                    last_seen_at = now()
                RETURNING chosen_language
                """,
                logger: database.logger
            )
            var chosen: String?
            for try await (value) in rows.decode(String?.self) { chosen = value }
            return chosen
        }
    }

    public static func setLanguage(_ language: String, for userID: Int64, on database: Database) async throws {
        _ = try await database.withConnection { connection in
            try await connection.query("UPDATE telegram_users SET chosen_language = \(language) WHERE id = \(userID)", logger: database.logger)
        }
    }

    /// Marks whether the user has blocked the bot (from `my_chat_member` in their private chat).
    public static func setBlocked(_ blocked: Bool, userID: Int64, on database: Database) async throws {
        _ = try await database.withConnection { connection in
            try await connection.query(
                "UPDATE telegram_users SET blocked_bot_at = CASE WHEN \(blocked) THEN now() ELSE NULL END WHERE id = \(userID)",
                logger: database.logger
            )
        }
    }
}
