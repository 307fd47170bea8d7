import Foundation
import Logging
import PostgresNIO
import Storage

/// Whether a subscription gives access (the `subscriptions.status` column).
public enum SubscriptionStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case active, expired
}

/// The home of `subscriptions`: grants, renewals, refunds and admins' changes, and the state of each
/// expired member's removal. Periods are whole days of 24 hours counted from the payment's time, never in the
/// session's time zone (a daylight-saving change must not add or remove an hour).
public enum SubscriptionStore {
    public struct Grant: Sendable {
        public var subscriptionID: Int64
        public var expiresAt: Date
        /// The user already had this subscription (active or expired).
        public var renewed: Bool
    }

    /// Creates the subscription or extends it by `days` from the later of `paidAt` and its expiry,
    /// reactivating an expired one. One statement, so concurrent grants for the same user and channel
    /// serialise on the row.
    public static func grant(
        userID: Int64, channelID: Int64, orderID: Int64, days: Int, paidAt: Date, on connection: PostgresConnection, logger: Logger
    ) async throws -> Grant {
        let hours = Int32(days * 24)
        let active = SubscriptionStatus.active.rawValue
        guard
            let (id, expires, renewed) = try await connection.first(
                """
                INSERT INTO subscriptions AS s (user_id, channel_id, status, started_at, expires_at, last_order_id)
                VALUES (\(userID), \(channelID), \(active), \(paidAt), \(paidAt)::timestamptz + make_interval(hours => \(hours)), \(orderID))
                ON CONFLICT (user_id, channel_id) DO UPDATE SET
                    status = \(active),
                    started_at = CASE WHEN s.status = \(active) AND s.expires_at > \(paidAt) THEN s.started_at ELSE \(paidAt) END,
                    expires_at = greatest(s.expires_at, \(paidAt)::timestamptz) + make_interval(hours => \(hours)),
                    last_order_id = \(orderID),
                    expired_at = NULL
                RETURNING id, expires_at, (xmax <> 0)
                """,
                as: (Int64, Date, Bool).self, logger: logger
            )
        else { preconditionFailure("an upsert returns its row") }
        return Grant(subscriptionID: id, expiresAt: expires, renewed: renewed)
    }

    /// Takes back the `days` a refunded order paid for: the expiry moves back by that much, and when nothing
    /// else covers the time any more it becomes `now`, so the next expiry sweep removes the subscriber.
    /// Returns the new expiry, or `nil` when the user has no such subscription.
    @discardableResult
    public static func revoke(
        userID: Int64, channelID: Int64, days: Int, now: Date, on connection: PostgresConnection, logger: Logger
    ) async throws -> Date? {
        let hours = Int32(days * 24)
        return try await connection.first(
            """
            UPDATE subscriptions s SET
                expires_at = e.expires_at,
                started_at = least(s.started_at, e.expires_at - interval '1 second')
            FROM (SELECT id, greatest(expires_at - make_interval(hours => \(hours)), \(now)::timestamptz) AS expires_at
                  FROM subscriptions WHERE user_id = \(userID) AND channel_id = \(channelID) FOR UPDATE) e
            WHERE s.id = e.id AND s.status = \(SubscriptionStatus.active.rawValue)
            RETURNING s.expires_at
            """,
            as: Date.self, logger: logger
        )
    }

    /// An admin's extension: `days` more from the later of `now` and the expiry; an expired subscription
    /// becomes active again (`reactivated`, and the caller sends an invite). `nil` when there is no such
    /// subscription.
    public static func extendByAdmin(
        subscriptionID: Int64, days: Int, now: Date, on connection: PostgresConnection, logger: Logger
    ) async throws -> (before: Date, after: Date, reactivated: Bool)? {
        let active = SubscriptionStatus.active.rawValue
        let row = try await connection.first(
            """
            UPDATE subscriptions s SET
                status = \(active),
                started_at = CASE WHEN old.status = \(active) THEN s.started_at ELSE \(now) END,
                expires_at = greatest(old.expires_at, \(now)::timestamptz) + make_interval(hours => \(Int32(days * 24))),
                expired_at = NULL, updated_at = now()
            FROM (SELECT id, status, expires_at FROM subscriptions WHERE id = \(subscriptionID) FOR UPDATE) old
            WHERE s.id = old.id
            RETURNING old.expires_at, s.expires_at, old.status <> \(active)
            """,
            as: (Date, Date, Bool).self, logger: logger
        )
        return row.map { (before: $0.0, after: $0.1, reactivated: $0.2) }
    }

    /// An admin's grant to someone, with or without an order: a new subscription of `days` from `now`, or
    /// `days` more on their existing one from the later of `now` and its expiry (reactivating an ended one).
    /// `before` is the old expiry (`nil` when there was no subscription); `activated` says an invite is due.
    public static func grantByAdmin(
        userID: Int64, channelID: Int64, days: Int, now: Date, on connection: PostgresConnection, logger: Logger
    ) async throws -> (subscriptionID: Int64, before: Date?, after: Date, activated: Bool) {
        let active = SubscriptionStatus.active.rawValue
        let hours = Int32(days * 24)
        let existing = try await connection.first(
            "SELECT id, status, expires_at FROM subscriptions WHERE user_id = \(userID) AND channel_id = \(channelID) FOR UPDATE",
            as: (Int64, String, Date).self, logger: logger
        )
        if let (id, status, _) = existing {
            guard let change = try await extendByAdmin(subscriptionID: id, days: days, now: now, on: connection, logger: logger) else {
                preconditionFailure("a locked subscription is there to extend")
            }
            return (id, change.before, change.after, status != active)
        }
        guard
            let (id, expires) = try await connection.first(
                """
                INSERT INTO subscriptions (user_id, channel_id, status, started_at, expires_at, last_order_id)
                VALUES (\(userID), \(channelID), \(active), \(now), \(now)::timestamptz + make_interval(hours => \(hours)), NULL)
                RETURNING id, expires_at
                """,
                as: (Int64, Date).self, logger: logger
            )
        else { preconditionFailure("an insert returns its row") }
        return (id, nil, expires, true)
    }

    /// An admin's revocation: an active subscription ends now, so the next expiry sweep removes the
    /// subscriber from the channel and tells them. `nil` when it is not active.
    public static func endByAdmin(
        subscriptionID: Int64, now: Date, on connection: PostgresConnection, logger: Logger
    ) async throws -> (before: Date, after: Date)? {
        let row = try await connection.first(
            """
            UPDATE subscriptions s SET
                expires_at = \(now), started_at = least(old.started_at, \(now)::timestamptz - interval '1 second'), updated_at = now()
            FROM (SELECT id, started_at, expires_at FROM subscriptions WHERE id = \(subscriptionID) FOR UPDATE) old
            WHERE s.id = old.id AND s.status = \(SubscriptionStatus.active.rawValue)
            RETURNING old.expires_at, s.expires_at
            """,
            as: (Date, Date).self, logger: logger
        )
        return row.map { (before: $0.0, after: $0.1) }
    }

    /// Subscriptions of the channel that still give access (not yet expired and swept).
    public static func activeCount(channelID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        try await connection.first(
            "SELECT count(*)::int FROM subscriptions WHERE channel_id = \(channelID) AND status = \(SubscriptionStatus.active.rawValue)",
            as: Int.self, logger: logger
        ) ?? 0
    }

    // MARK: - Removal of expired members

    /// The sweep is banning the user (recorded just before the call); until the unban succeeds, the row
    /// says so and the sweep keeps trying.
    public static func recordBanned(subscriptionID: Int64, at now: Date, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("UPDATE subscriptions SET banned_at = \(now) WHERE id = \(subscriptionID)", logger: logger)
    }

    /// The ban recorded ahead of the call was refused, so there is nothing to lift.
    public static func recordNotBanned(subscriptionID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("UPDATE subscriptions SET banned_at = NULL WHERE id = \(subscriptionID)", logger: logger)
    }

    public static func recordUnbanned(subscriptionID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            "UPDATE subscriptions SET banned_at = NULL, removal_attempts = 0, removal_next_attempt_at = NULL WHERE id = \(subscriptionID)",
            logger: logger
        )
    }

    /// A failed attempt: the next one waits until `nextAttempt`.
    public static func recordRemovalFailure(subscriptionID: Int64, nextAttempt: Date, on connection: PostgresConnection, logger: Logger) async throws
    {
        try await connection.run(
            """
            UPDATE subscriptions SET removal_attempts = removal_attempts + 1, removal_next_attempt_at = \(nextAttempt)
            WHERE id = \(subscriptionID)
            """,
            logger: logger
        )
    }

    /// Marks an ended subscription expired; returns false when it was renewed meanwhile. A pending unban
    /// keeps its retry schedule; otherwise the removal's retry state is cleared.
    public static func markExpired(subscriptionID: Int64, now: Date, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let expired = try await connection.run(
            """
            UPDATE subscriptions SET status = \(SubscriptionStatus.expired.rawValue), expired_at = \(now),
                removal_attempts = CASE WHEN banned_at IS NULL THEN 0 ELSE removal_attempts END,
                removal_next_attempt_at = CASE WHEN banned_at IS NULL THEN NULL ELSE removal_next_attempt_at END
            WHERE id = \(subscriptionID) AND status = \(SubscriptionStatus.active.rawValue) AND expires_at <= \(now)
            RETURNING id
            """,
            logger: logger
        )
        if expired > 0 { return true }
        try await connection.run(
            "UPDATE subscriptions SET removal_attempts = 0, removal_next_attempt_at = NULL WHERE id = \(subscriptionID) AND banned_at IS NULL",
            logger: logger
        )
        return false
    }

    /// Expires every ended subscription of a channel at once (the bot cannot remove anyone there); returns
    /// each one's id and user.
    public static func expireAllDue(channelID: Int64, now: Date, on connection: PostgresConnection, logger: Logger) async throws -> [(
        id: Int64, userID: Int64
    )] {
        try await connection.all(
            """
            UPDATE subscriptions SET status = \(SubscriptionStatus.expired.rawValue), expired_at = \(now),
                removal_attempts = 0, removal_next_attempt_at = NULL
            WHERE channel_id = \(channelID) AND status = \(SubscriptionStatus.active.rawValue) AND expires_at <= \(now)
            RETURNING id, user_id
            """,
            as: (Int64, Int64).self, logger: logger
        ).map { (id: $0.0, userID: $0.1) }
    }
}
