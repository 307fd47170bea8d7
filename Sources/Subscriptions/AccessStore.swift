import Foundation
import Logging
import PostgresNIO

/// The SQL behind `AccessService`: the home of `invite_links`, `access_events` and `subscription_reminders`,
/// and its reads of subscriptions (due removals, reminder candidates); writes to `subscriptions` go through
/// `SubscriptionStore`, and pausing a channel through `ChannelStore`. Every method runs on the connection it
/// is given, so the service decides what shares a transaction.
struct AccessStore: Sendable {
    let logger: Logger

    /// What `access_events` records.
    enum Event: String, Sendable {
        case joinApproved = "join_approved"
        case joinDeclined = "join_declined"
        case joinFailed = "join_failed"
        case removed
        case notAMember = "not_a_member"
        case removeFailed = "remove_failed"
        case keptAdmin = "kept_admin"
        case intruderRemoved = "intruder_removed"
        case linkRevoked = "link_revoked"
        case unbanned
        case channelUnavailable = "channel_unavailable"
    }

    // MARK: - Subscriptions

    func activeSubscription(id: Int64, now: Date, on connection: PostgresConnection) async throws -> AccessService.ActiveSubscription? {
        guard
            let (id, user, chat, channel, title, expires) = try await connection.first(
                """
                SELECT s.id, s.user_id, c.closed_chat_id, c.id, c.closed_title, s.expires_at
                FROM subscriptions s JOIN channels c ON c.id = s.channel_id
                WHERE s.id = \(id) AND s.status = \(SubscriptionStatus.active.rawValue) AND s.expires_at > \(now)
                """, as: (Int64, Int64, Int64, Int64, String, Date).self, logger: logger)
        else { return nil }
        return AccessService.ActiveSubscription(id: id, userID: user, chatID: chat, channelID: channel, title: title, expiresAt: expires)
    }

    /// Whether `chatID` is a TelePay closed channel, and the user's active subscription to it, if any.
    func activeSubscription(chatID: Int64, userID: Int64, now: Date, on connection: PostgresConnection) async throws -> (
        known: Bool, subscriptionID: Int64?
    ) {
        guard
            let id = try await connection.first(
                """
                SELECT s.id FROM channels c
                LEFT JOIN subscriptions s ON s.channel_id = c.id AND s.user_id = \(userID)
                    AND s.status = \(SubscriptionStatus.active.rawValue) AND s.expires_at > \(now)
                WHERE c.closed_chat_id = \(chatID) AND c.deleted_at IS NULL
                """, as: Int64?.self, logger: logger)
        else { return (false, nil) }
        return (true, id)
    }

    /// The offer token of a channel the user has a subscription to or an order for (the people a Renew
    /// button is drawn for); `nil` for anyone else.
    func offerToken(channelID: Int64, customer userID: Int64, on connection: PostgresConnection) async throws -> String? {
        return try await connection.first(
            """
            SELECT c.offer_token FROM channels c
            WHERE c.id = \(channelID) AND (
                EXISTS (SELECT 1 FROM subscriptions s WHERE s.channel_id = c.id AND s.user_id = \(userID))
                OR EXISTS (SELECT 1 FROM orders o WHERE o.channel_id = c.id AND o.user_id = \(userID)))
            """, as: String.self, logger: logger)
    }

    // MARK: - Invite links

    func insertInviteLink(
        subscription: AccessService.ActiveSubscription, link: String, mode: InviteMode, expiresAt: Date?, on connection: PostgresConnection
    ) async throws {
        try await connection.query(
            """
            INSERT INTO invite_links (subscription_id, user_id, chat_id, invite_link, mode, expires_at)
            VALUES (\(subscription.id), \(subscription.userID), \(subscription.chatID), \(link), \(mode.rawValue), \(expiresAt))
            """,
            logger: logger
        )
    }

    func isInviteLink(_ link: String, of chatID: Int64, on connection: PostgresConnection) async throws -> Bool {
        return try await connection.run("SELECT 1 FROM invite_links WHERE invite_link = \(link) AND chat_id = \(chatID)", logger: logger) > 0
    }

    func openInviteLinks(subscriptionID: Int64, on connection: PostgresConnection) async throws -> [String] {
        return try await connection.all(
            "SELECT invite_link FROM invite_links WHERE subscription_id = \(subscriptionID) AND revoked_at IS NULL", as: String.self, logger: logger)
    }

    func markRevoked(_ link: String, on connection: PostgresConnection) async throws {
        try await connection.query("UPDATE invite_links SET revoked_at = now() WHERE invite_link = \(link)", logger: logger)
    }

    // MARK: - Expiry

    /// Subscriptions the sweep should act on now: ended but still active, or banned by an earlier sweep
    /// whose unban is still to do; each only once its next attempt is due. At most `perChannel` of one
    /// channel, and the channels take turns (every channel's first, then every channel's second…), so
    /// one channel's backlog never holds up another's.
    func dueRemovals(now: Date, perChannel: Int, limit: Int, on connection: PostgresConnection) async throws -> [AccessService.DueRemoval] {
        let active = SubscriptionStatus.active.rawValue
        return try await connection.all(
            """
            SELECT id, user_id, closed_chat_id, channel_id, owner_user_id, closed_title, is_due, unban_pending, removal_attempts
            FROM (
                SELECT s.id, s.user_id, c.closed_chat_id, s.channel_id, c.owner_user_id, c.closed_title,
                       (s.status = \(active) AND s.expires_at <= \(now)) AS is_due, s.banned_at IS NOT NULL AS unban_pending,
                       s.removal_attempts, coalesce(s.removal_next_attempt_at, s.expires_at) AS in_line_since,
                       row_number() OVER (PARTITION BY s.channel_id ORDER BY coalesce(s.removal_next_attempt_at, s.expires_at), s.id) AS turn
                FROM subscriptions s JOIN channels c ON c.id = s.channel_id
                WHERE ((s.status = \(active) AND s.expires_at <= \(now)) OR s.banned_at IS NOT NULL)
                  AND (s.removal_next_attempt_at IS NULL OR s.removal_next_attempt_at <= \(now))
            ) due
            WHERE turn <= \(perChannel)
            ORDER BY turn, in_line_since, id
            LIMIT \(limit)
            """, as: (Int64, Int64, Int64, Int64, Int64, String, Bool, Bool, Int32).self, logger: logger
        ).map { id, user, chat, channel, owner, title, isDue, unbanPending, attempts in
            AccessService.DueRemoval(
                id: id, userID: user, chatID: chat, channelID: channel, ownerUserID: owner, title: title, isDue: isDue,
                unbanPending: unbanPending, removalAttempts: Int(attempts)
            )
        }
    }

    // MARK: - Reminders

    struct ReminderCandidate: Sendable {
        var subscriptionID: Int64
        var userID: Int64
        var channelID: Int64
        var title: String
        var expiresAt: Date
        var alreadySent: Set<Int>
    }

    func reminderCandidates(now: Date, horizon: Date, on connection: PostgresConnection) async throws -> [ReminderCandidate] {
        return try await connection.all(
            """
            SELECT s.id, s.user_id, s.channel_id, c.closed_title, s.expires_at,
                   coalesce(string_agg(r.days_before::text, ','), '')
            FROM subscriptions s JOIN channels c ON c.id = s.channel_id
            LEFT JOIN subscription_reminders r ON r.subscription_id = s.id AND r.expires_at = s.expires_at
            WHERE s.status = \(SubscriptionStatus.active.rawValue) AND s.expires_at > \(now) AND s.expires_at <= \(horizon)
            GROUP BY s.id, c.closed_title
            """, as: (Int64, Int64, Int64, String, Date, String).self, logger: logger
        ).map { id, user, channel, title, expires, sent in
            ReminderCandidate(
                subscriptionID: id, userID: user, channelID: channel, title: title, expiresAt: expires,
                alreadySent: Set(sent.split(separator: ",").compactMap { Int($0) })
            )
        }
    }

    /// Records one reminder; returns false when it was already recorded.
    func recordReminder(subscriptionID: Int64, expiresAt: Date, daysBefore: Int, on connection: PostgresConnection) async throws -> Bool {
        return try await connection.run(
            """
            INSERT INTO subscription_reminders (subscription_id, expires_at, days_before)
            VALUES (\(subscriptionID), \(expiresAt), \(Int32(daysBefore))) ON CONFLICT DO NOTHING RETURNING 1
            """, logger: logger) > 0
    }

    // MARK: - Audit

    func audit(_ event: Event, subscriptionID: Int64?, userID: Int64, chatID: Int64, detail: String = "", on connection: PostgresConnection)
        async throws
    {
        try await connection.query(
            """
            INSERT INTO access_events (subscription_id, user_id, chat_id, action, detail)
            VALUES (\(subscriptionID), \(userID), \(chatID), \(event.rawValue), \(String(detail.prefix(2000))))
            """,
            logger: logger
        )
    }

    /// Records a failure once per run of identical failures: retries would otherwise add a row each time.
    func auditFailureOnce(_ event: Event, subscriptionID: Int64, userID: Int64, chatID: Int64, detail: String, on connection: PostgresConnection)
        async throws
    {
        let detail = String(detail.prefix(2000))
        try await connection.query(
            """
            INSERT INTO access_events (subscription_id, user_id, chat_id, action, detail)
            SELECT \(subscriptionID), \(userID), \(chatID), \(event.rawValue), \(detail)
            WHERE NOT EXISTS (
                SELECT 1 FROM (SELECT action, detail FROM access_events WHERE subscription_id = \(subscriptionID) ORDER BY id DESC LIMIT 1) AS last
                WHERE last.action = \(event.rawValue) AND last.detail = \(detail))
            """,
            logger: logger
        )
    }
}
