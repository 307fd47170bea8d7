import Foundation
import Logging
import PostgresNIO
import Storage
import Subscriptions

/// What an admin sees about one person.
public struct UserRecord: Sendable, Hashable {
    public struct Subscription: Sendable, Hashable {
        public var id: Int64
        public var channelTitle: String
        public var status: SubscriptionStatus
        public var expiresAt: Date
    }

    public struct Order: Sendable, Hashable {
        public var publicID: String
        public var channelTitle: String
        public var status: String
        public var priceUSD: String
        public var createdAt: Date
    }

    public var id: Int64
    public var firstName: String
    public var username: String?
    public var blockedBot: Bool
    public var subscriptions: [Subscription]
    public var orders: [Order]
}

/// An admin's change to a subscription (`admin_access_actions`).
public enum AdminAccessAction: String, Sendable, Hashable, CaseIterable {
    case extend, revoke
    /// Access to a channel for someone with or without a subscription (`/admin grant`); never a button.
    case grant
}

/// An admin's access change waiting for its reason.
public struct WaitingAccessAction: Sendable, Hashable {
    public var id: Int64
    public var action: AdminAccessAction
    /// The subscription extended or revoked; `nil` for a grant.
    public var subscriptionID: Int64?
    /// The channel of a grant.
    public var channelID: Int64?
    public var userID: Int64
    public var days: Int?
}

/// The `admin_access_actions.status` column.
public enum AdminAccessActionStatus: String, Sendable, Hashable, CaseIterable {
    case awaitingReason = "awaiting_reason"
    case done, cancelled
}

/// Every query of `admin_access_actions`, and the reads of the user look-up.
public struct AdminAccessStore: Sendable {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// The person with this id or @username, with their subscriptions and latest 10 orders.
    public func lookUp(_ query: String, on connection: PostgresConnection) async throws -> UserRecord? {
        let trimmed = query.trimmingCharacters(in: .whitespaces)
        let username = trimmed.hasPrefix("@") ? String(trimmed.dropFirst()) : trimmed
        let id = Int64(trimmed) ?? 0
        guard
            let (userID, name, handle, blocked) = try await connection.first(
                """
                SELECT id, first_name, username, blocked_bot_at IS NOT NULL FROM telegram_users
                WHERE id = \(id) OR (\(id) = 0 AND lower(username) = lower(\(username)))
                LIMIT 1
                """,
                as: (Int64, String, String?, Bool).self, logger: logger
            )
        else { return nil }
        var record = UserRecord(id: userID, firstName: name, username: handle, blockedBot: blocked, subscriptions: [], orders: [])
        record.subscriptions = try await connection.all(
            """
            SELECT s.id, c.closed_title, s.status, s.expires_at FROM subscriptions s JOIN channels c ON c.id = s.channel_id
            WHERE s.user_id = \(userID) ORDER BY s.expires_at DESC LIMIT 20
            """,
            as: (Int64, String, String, Date).self, logger: logger
        ).map { sid, title, status, expires in
            .init(id: sid, channelTitle: title, status: try SubscriptionStatus(storedValue: status), expiresAt: expires)
        }
        record.orders = try await connection.all(
            """
            SELECT public_id, closed_title, status, price_usd::text, created_at FROM orders
            WHERE user_id = \(userID) ORDER BY created_at DESC LIMIT 10
            """,
            as: (String, String, String, String, Date).self, logger: logger
        ).map { publicID, title, status, price, created in
            .init(publicID: publicID, channelTitle: title, status: status, priceUSD: price, createdAt: created)
        }
        return record
    }

    /// Cancels whatever access change the admin left waiting for a reason.
    public func cancelWaiting(admin: Int64, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE admin_access_actions SET status = \(AdminAccessActionStatus.cancelled.rawValue)
            WHERE admin_user_id = \(admin) AND status = \(AdminAccessActionStatus.awaitingReason.rawValue)
            """, logger: logger)
    }

    /// The id of the person with this id or @username, if the bot knows them.
    public func userID(for query: String, on connection: PostgresConnection) async throws -> Int64? {
        let trimmed = query.trimmingCharacters(in: .whitespaces)
        let username = trimmed.hasPrefix("@") ? String(trimmed.dropFirst()) : trimmed
        let id = Int64(trimmed) ?? 0
        return try await connection.first(
            "SELECT id FROM telegram_users WHERE id = \(id) OR (\(id) = 0 AND lower(username) = lower(\(username))) LIMIT 1",
            as: Int64.self, logger: logger
        )
    }

    /// Starts a grant of `days` in channel `channelID` to `userID`, awaiting the admin's reason; `nil` when the
    /// person or the channel (not deleted) is unknown.
    public func beginGrant(admin: Int64, userID: Int64, channelID: Int64, days: Int, on connection: PostgresConnection) async throws -> Int64? {
        try await cancelWaiting(admin: admin, on: connection)
        return try await connection.first(
            """
            INSERT INTO admin_access_actions (admin_user_id, action, channel_id, user_id, days)
            SELECT \(admin), \(AdminAccessAction.grant.rawValue), c.id, u.id, \(Int32(days))
            FROM channels c, telegram_users u
            WHERE c.id = \(channelID) AND c.deleted_at IS NULL AND u.id = \(userID)
            RETURNING id
            """,
            as: Int64.self, logger: logger
        )
    }

    /// The title of a channel.
    public func channelTitle(channelID: Int64, on connection: PostgresConnection) async throws -> String {
        try await connection.first("SELECT closed_title FROM channels WHERE id = \(channelID)", as: String.self, logger: logger) ?? ""
    }

    /// Starts an action awaiting the admin's reason, replacing any other they left waiting.
    public func begin(
        _ action: AdminAccessAction, admin: Int64, subscriptionID: Int64, days: Int?, on connection: PostgresConnection
    ) async throws -> Int64? {
        try await cancelWaiting(admin: admin, on: connection)
        return try await connection.first(
            """
            INSERT INTO admin_access_actions (admin_user_id, action, subscription_id, user_id, days)
            SELECT \(admin), \(action.rawValue), id, user_id, \(days.map(Int32.init)) FROM subscriptions WHERE id = \(subscriptionID)
            RETURNING id
            """,
            as: Int64.self, logger: logger
        )
    }

    /// The admin's action waiting for a reason, begun within the last hour, locked for the transaction.
    public func waiting(admin: Int64, on connection: PostgresConnection) async throws -> WaitingAccessAction? {
        guard
            let row = try await connection.first(
                """
                SELECT id, action, subscription_id, channel_id, user_id, days FROM admin_access_actions
                WHERE admin_user_id = \(admin) AND status = \(AdminAccessActionStatus.awaitingReason.rawValue) AND created_at > now() - interval '1 hour'
                ORDER BY id DESC LIMIT 1 FOR UPDATE
                """,
                as: (Int64, String, Int64?, Int64?, Int64, Int32?).self, logger: logger
            ), let action = AdminAccessAction(rawValue: row.1)
        else { return nil }
        return WaitingAccessAction(id: row.0, action: action, subscriptionID: row.2, channelID: row.3, userID: row.4, days: row.5.map(Int.init))
    }

    public func complete(_ id: Int64, reason: String, subscriptionID: Int64, before: Date?, after: Date, on connection: PostgresConnection)
        async throws
    {
        try await connection.query(
            """
            UPDATE admin_access_actions SET status = \(AdminAccessActionStatus.done.rawValue), reason = \(reason), subscription_id = \(subscriptionID),
                expires_before = \(before), expires_after = \(after), done_at = now()
            WHERE id = \(id)
            """, logger: logger)
    }

    public func cancel(_ id: Int64, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE admin_access_actions SET status = \(AdminAccessActionStatus.cancelled.rawValue) WHERE id = \(id)", logger: logger
        )
    }

    /// The title of the subscription's channel.
    public func channelTitle(subscriptionID: Int64, on connection: PostgresConnection) async throws -> String {
        try await connection.first(
            "SELECT c.closed_title FROM subscriptions s JOIN channels c ON c.id = s.channel_id WHERE s.id = \(subscriptionID)",
            as: String.self, logger: logger
        ) ?? ""
    }
}
