import PostgresNIO
import Storage

/// The home of `telegram_polling_offsets`: where long polling resumes, the next update id per bot.
public enum PollingOffsetStore {
    public static func load(botID: Int64, on database: Database) async throws -> Int64 {
        try await database.withConnection { connection in
            try await connection.first(
                "SELECT next_update_id FROM telegram_polling_offsets WHERE bot_id = \(botID)", as: Int64.self, logger: database.logger
            ) ?? 0
        }
    }

    public static func save(botID: Int64, nextUpdateID: Int64, on database: Database) async throws {
        _ = try await database.withConnection { connection in
            try await connection.run(
                """
                INSERT INTO telegram_polling_offsets (bot_id, next_update_id) VALUES (\(botID), \(nextUpdateID))
                ON CONFLICT (bot_id) DO UPDATE SET next_update_id = GREATEST(telegram_polling_offsets.next_update_id, EXCLUDED.next_update_id),
                    updated_at = now()
                """,
                logger: database.logger
            )
        }
    }
}
