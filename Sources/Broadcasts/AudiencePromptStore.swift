import Foundation
import Logging
import PostgresNIO
import Storage

/// Every query of `broadcast_audience_prompts`: an owner asked to type the N of "expired in the last N days".
public struct AudiencePromptStore: Sendable {
    /// The days an owner may type (the `broadcasts.audience_days` check).
    public static let days = 1...365
    /// How long the question stays open.
    public static let lifetime: Duration = .seconds(600)

    let database: Database
    let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// Opens (or reopens) the question for `user` about `channel`.
    public func ask(user: Int64, channel: Int64) async throws {
        try await database.withConnection { connection in
            try await connection.run(
                """
                INSERT INTO broadcast_audience_prompts (user_id, channel_id) VALUES (\(user), \(channel))
                ON CONFLICT (user_id) DO UPDATE SET channel_id = EXCLUDED.channel_id, created_at = now()
                """, logger: logger)
        }
    }

    /// The channel `user` was asked about, if the question is still open.
    public func open(user: Int64) async throws -> Int64? {
        let seconds = Int32(Self.lifetime.components.seconds)
        return try await database.withConnection { connection in
            try await connection.first(
                """
                SELECT channel_id FROM broadcast_audience_prompts
                WHERE user_id = \(user) AND created_at > now() - make_interval(secs => \(seconds))
                """, as: Int64.self, logger: logger)
        }
    }

    public func close(user: Int64) async throws {
        try await database.withConnection { connection in
            try await connection.run("DELETE FROM broadcast_audience_prompts WHERE user_id = \(user)", logger: logger)
        }
    }
}
