import Logging
import PostgresNIO
import Storage

/// Every query of `admin_channel_actions` (Migrations/0052).
public struct AdminChannelStore: Sendable {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func cancelWaiting(admin: Int64, on connection: PostgresConnection) async throws {
        try await connection.run(
            """
            UPDATE admin_channel_actions SET status = \(AdminAccessActionStatus.cancelled.rawValue)
            WHERE admin_user_id = \(admin) AND status = \(AdminAccessActionStatus.awaitingReason.rawValue)
            """, logger: logger)
    }

    /// Starts an action awaiting the admin's reason; `nil` when the channel is unknown or deleted.
    public func begin(_ action: AdminChannelAction, admin: Int64, channelID: Int64, on connection: PostgresConnection) async throws -> Int64? {
        try await cancelWaiting(admin: admin, on: connection)
        return try await connection.first(
            """
            INSERT INTO admin_channel_actions (admin_user_id, action, channel_id)
            SELECT \(admin), \(action.rawValue), id FROM channels WHERE id = \(channelID) AND deleted_at IS NULL
            RETURNING id
            """,
            as: Int64.self, logger: logger
        )
    }

    /// The admin's action waiting for a reason, begun within the last hour, locked for the transaction.
    public func waiting(admin: Int64, on connection: PostgresConnection) async throws -> (id: Int64, action: AdminChannelAction, channelID: Int64)? {
        guard
            let row = try await connection.first(
                """
                SELECT id, action, channel_id FROM admin_channel_actions
                WHERE admin_user_id = \(admin) AND status = \(AdminAccessActionStatus.awaitingReason.rawValue) AND created_at > now() - interval '1 hour'
                ORDER BY id DESC LIMIT 1 FOR UPDATE
                """,
                as: (Int64, String, Int64).self, logger: logger
            ), let action = AdminChannelAction(rawValue: row.1)
        else { return nil }
        return (row.0, action, row.2)
    }

    public func complete(_ id: Int64, reason: String, on connection: PostgresConnection) async throws {
        try await connection.run(
            """
            UPDATE admin_channel_actions SET status = \(AdminAccessActionStatus.done.rawValue), reason = \(reason), done_at = now() WHERE id = \(id)
            """, logger: logger)
    }

    public func cancel(_ id: Int64, on connection: PostgresConnection) async throws {
        try await connection.run(
            "UPDATE admin_channel_actions SET status = \(AdminAccessActionStatus.cancelled.rawValue) WHERE id = \(id)", logger: logger
        )
    }
}
