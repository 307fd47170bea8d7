import Foundation
import Logging
import PostgresNIO
import Storage
import Subscriptions

/// Writes a channel's subscribers or payments as CSV into a file, reading `batchSize` rows at a time by id
/// (keyset, one read-only snapshot), so memory stays flat however many rows there are.
public struct ChannelExportStore: Sendable {
    public static let defaultBatchSize = 2_000

    let database: Database
    let logger: Logger
    let batchSize: Int

    public init(database: Database, logger: Logger, batchSize: Int = Self.defaultBatchSize) {
        self.database = database
        self.logger = logger
        self.batchSize = batchSize
    }

    /// Writes the header and every row into a new file at `url`; returns the number of rows (without the header).
    public func write(_ kind: ChannelExportKind, channelID: Int64, to url: URL) async throws -> Int {
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else { throw ChannelExportError.cannotCreate(url.path) }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.write(contentsOf: Data(CSV.line(kind.header).utf8))
        let logger = self.logger, limit = Int32(batchSize)
        return try await database.withTransaction { connection in
            try await connection.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
            var after: Int64 = 0
            var rows = 0
            while true {
                let (lines, last, count) =
                    switch kind {
                    case .subscribers: try await subscribers(channelID: channelID, after: after, limit: limit, on: connection)
                    case .payments: try await payments(channelID: channelID, after: after, limit: limit, on: connection)
                    }
                if count > 0 { try handle.write(contentsOf: Data(lines.utf8)) }
                rows += count
                guard count == Int(limit) else { return rows }
                after = last
            }
        }
    }

    private static let time = "YYYY-MM-DD\"T\"HH24:MI:SS\"Z\""

    private func subscribers(channelID: Int64, after: Int64, limit: Int32, on connection: PostgresConnection) async throws -> (String, Int64, Int) {
        let rows = try await connection.all(
            """
            SELECT s.id, s.user_id, u.username, u.first_name, s.status,
                   to_char(s.started_at AT TIME ZONE 'UTC', \(Self.time)), to_char(s.expires_at AT TIME ZONE 'UTC', \(Self.time))
            FROM subscriptions s JOIN telegram_users u ON u.id = s.user_id
            WHERE s.channel_id = \(channelID) AND s.id > \(after)
            ORDER BY s.id LIMIT \(limit)
            """,
            as: (Int64, Int64, String?, String, String, String, String).self, logger: logger
        )
        var text = "", last = after, count = 0
        for (id, user, username, name, status, started, expires) in rows {
            text += CSV.line([String(user), CSV.text(username ?? ""), CSV.text(name), status, started, expires])
            last = id
            count += 1
        }
        return (text, last, count)
    }

    private func payments(channelID: Int64, after: Int64, limit: Int32, on connection: PostgresConnection) async throws -> (String, Int64, Int) {
        let rows = try await connection.all(
            """
            SELECT o.id, o.public_id, o.kind, o.tier_position, o.price_usd::text, o.received_usd::text, o.status, o.user_id, u.username,
                   to_char(o.created_at AT TIME ZONE 'UTC', \(Self.time)), to_char(o.paid_at AT TIME ZONE 'UTC', \(Self.time))
            FROM orders o JOIN telegram_users u ON u.id = o.user_id
            WHERE o.channel_id = \(channelID) AND o.id > \(after) AND o.received_usd > 0
            ORDER BY o.id LIMIT \(limit)
            """,
            as: (Int64, String, String, Int16?, String, String, String, Int64, String?, String, String?).self, logger: logger
        )
        var text = "", last = after, count = 0
        for (id, publicID, kind, tier, price, received, status, user, username, created, paid) in rows {
            text += CSV.line([
                publicID, kind, tier.map(String.init) ?? "", price, received, status, String(user), CSV.text(username ?? ""), created, paid ?? "",
            ])
            last = id
            count += 1
        }
        return (text, last, count)
    }
}
