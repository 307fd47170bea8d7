import Channels
import Foundation
import Logging
import Money
import PostgresNIO
import Subscriptions

/// What one attempt at a channel post ended in (`channel_offer_post_attempts.outcome`).
enum OfferPostAttemptOutcome: String, Sendable, CaseIterable {
    case posted, failed, paused
}

/// Every query of `channel_offer_posts` and `channel_offer_post_attempts` (Migrations/0041, 0042: one row per
/// pair and post kind), and the read of what a post shows. Each function runs on the caller's connection;
/// times come from the caller's clock.
public enum OfferPostStore {
    /// What an attempt needs: where to post, whether the channel sells, what to show, and the state.
    public struct Snapshot: Sendable {
        public var channelID: Int64
        public var kind: ChannelPostKind
        public var ownerUserID: Int64
        /// The chat the post goes to: the public channel for the offer, the private one for donations.
        public var chatID: Int64
        public var selling: Bool
        /// Not selling for now (paused, not deleted): the post stays, marked paused.
        public var paused: Bool
        public var content: OfferPostContent
        public var state: OfferPostState
    }

    /// Asks for a post whatever the content and the schedule (the owner's "post now", resuming sales).
    /// A donation post is forced only when the pair has a donation message (otherwise there is nothing to post).
    public static func force(
        channelID: Int64, kind: ChannelPostKind = .offer, at now: Date, on connection: PostgresConnection, logger: Logger
    ) async throws {
        _ = try await connection.query(
            """
            INSERT INTO channel_offer_posts (channel_id, kind, forced_at)
            SELECT id, \(kind.rawValue), \(now) FROM channels
            WHERE id = \(channelID) AND (\(kind == .offer) OR donation_message IS NOT NULL)
            ON CONFLICT (channel_id, kind) DO UPDATE SET forced_at = EXCLUDED.forced_at
            """,
            logger: logger
        )
    }

    /// Makes sure the channel has a state row (a new channel's first post is due at once).
    public static func ensure(channelID: Int64, kind: ChannelPostKind = .offer, on connection: PostgresConnection, logger: Logger) async throws {
        _ = try await connection.query(
            """
            INSERT INTO channel_offer_posts (channel_id, kind) VALUES (\(channelID), \(kind.rawValue))
            ON CONFLICT (channel_id, kind) DO NOTHING
            """,
            logger: logger
        )
    }

    /// Records the owner's manual request and forces a post, unless the last one is within `cooldown`;
    /// then returns that last request's time and changes nothing. Checked and set in one statement, so two
    /// quick presses cannot both pass.
    public static func requestManual(
        channelID: Int64, at now: Date, cooldown: TimeInterval, on connection: PostgresConnection, logger: Logger
    ) async throws -> Date? {
        try await ensure(channelID: channelID, on: connection, logger: logger)
        let earliest = now.addingTimeInterval(-cooldown)
        let requested = try await connection.run(
            """
            UPDATE channel_offer_posts SET manual_requested_at = \(now), forced_at = \(now)
            WHERE channel_id = \(channelID) AND kind = \(ChannelPostKind.offer.rawValue) AND (manual_requested_at IS NULL OR manual_requested_at <= \(earliest))
            RETURNING 1
            """,
            logger: logger
        )
        if requested > 0 { return nil }
        return try await state(channelID: channelID, on: connection, logger: logger)?.manualRequestedAt
    }

    public static func state(
        channelID: Int64, kind: ChannelPostKind = .offer, on connection: PostgresConnection, logger: Logger
    ) async throws -> OfferPostState? {
        guard
            let row = try await connection.first(
                """
                SELECT message_id, posted_at, posted_content, next_post_at, forced_at, manual_requested_at, consecutive_failures,
                       last_failure, last_failure_detail, last_failure_at, stopped_at, paused_at
                FROM channel_offer_posts WHERE channel_id = \(channelID) AND kind = \(kind.rawValue)
                """, as: (Int64?, Date?, String?, Date?, Date?, Date?, Int, String?, String?, Date?, Date?, Date?).self, logger: logger)
        else { return nil }
        return OfferPostState(
            messageID: row.0, postedAt: row.1, postedContent: row.2, nextPostAt: row.3, forcedAt: row.4, manualRequestedAt: row.5,
            consecutiveFailures: row.6, lastFailure: row.7.flatMap(OfferPostFailure.init(rawValue:)), lastFailureDetail: row.8,
            lastFailureAt: row.9, stoppedAt: row.10, pausedAt: row.11
        )
    }

    public enum Claim: Sendable {
        case claimed(Snapshot)
        /// Another attempt holds the channel's lease.
        case busy
        /// The channel no longer exists.
        case gone
    }

    /// Takes the channel's attempt lease until `leaseUntil` and reads everything the attempt needs.
    public static func claim(
        channelID: Int64, kind: ChannelPostKind = .offer, now: Date, leaseUntil: Date, on connection: PostgresConnection, logger: Logger
    ) async throws -> Claim {
        guard try await connection.run("SELECT 1 FROM channels WHERE id = \(channelID)", logger: logger) > 0 else { return .gone }
        try await ensure(channelID: channelID, kind: kind, on: connection, logger: logger)
        let took = try await connection.run(
            """
            UPDATE channel_offer_posts SET attempt_lease_until = \(leaseUntil)
            WHERE channel_id = \(channelID) AND kind = \(kind.rawValue) AND (attempt_lease_until IS NULL OR attempt_lease_until < \(now))
            RETURNING 1
            """,
            logger: logger
        )
        guard took > 0, let state = try await state(channelID: channelID, kind: kind, on: connection, logger: logger) else { return .busy }
        guard
            let row = try await connection.first(
                """
                SELECT owner_user_id, open_chat_id, closed_chat_id, status = \(ChannelStatus.active.rawValue) AND deleted_at IS NULL,
                       status = \(ChannelStatus.paused.rawValue) AND deleted_at IS NULL, open_title, open_description, closed_title,
                       closed_description, post_language, offer_token, donation_message
                FROM channels WHERE id = \(channelID)
                """,
                as: (Int64, Int64, Int64, Bool, Bool, String, String, String, String, String, String, String?).self, logger: logger
            )
        else { return .gone }
        var snapshot = Snapshot(
            channelID: channelID, kind: kind, ownerUserID: row.0, chatID: kind == .offer ? row.1 : row.2, selling: row.3, paused: row.4,
            content: OfferPostContent(
                openTitle: row.5, openDescription: row.6, closedTitle: row.7, closedDescription: row.8, language: row.9,
                offerToken: row.10, tiers: [], donationMessage: row.11
            ),
            state: state
        )
        for (position, price, days) in try await connection.all(
            "SELECT position::int, price_usd::text, duration_days FROM channel_tiers WHERE channel_id = \(channelID) AND enabled ORDER BY position",
            as: (Int, String, Int).self, logger: logger
        ) {
            snapshot.content.tiers.append(
                OfferPostContent.Tier(position: position, priceUSD: try DecimalText.require(price, "tier price"), durationDays: days))
        }
        return .claimed(snapshot)
    }

    /// Ends an attempt that posted nothing (nothing to do, or a retryable error), freeing the lease.
    public static func release(channelID: Int64, kind: ChannelPostKind = .offer, on connection: PostgresConnection, logger: Logger) async throws {
        _ = try await connection.query(
            "UPDATE channel_offer_posts SET attempt_lease_until = NULL WHERE channel_id = \(channelID) AND kind = \(kind.rawValue)", logger: logger
        )
    }

    /// A post went out: its id, time and content; failures cleared; the next refresh scheduled. A force
    /// that arrived after `forcedSeen` (the one this attempt served) stays, so it gets its own post.
    public static func recordPosted(
        channelID: Int64, kind: ChannelPostKind = .offer, chatID: Int64, messageID: Int64, deletedMessageID: Int64?, content: String,
        forcedSeen: Date?, at now: Date,
        nextPostAt: Date, on connection: PostgresConnection, logger: Logger
    ) async throws {
        _ = try await connection.query(
            """
            UPDATE channel_offer_posts SET message_id = \(messageID), posted_at = \(now), posted_content = \(content),
                next_post_at = \(nextPostAt), consecutive_failures = 0, last_failure = NULL, last_failure_detail = NULL,
                last_failure_at = NULL, stopped_at = NULL, attempt_lease_until = NULL, paused_at = NULL,
                forced_at = CASE WHEN forced_at > \(forcedSeen ?? .distantPast) THEN forced_at END
            WHERE channel_id = \(channelID) AND kind = \(kind.rawValue)
            """,
            logger: logger
        )
        _ = try await connection.query(
            """
            INSERT INTO channel_offer_post_attempts (channel_id, kind, chat_id, attempted_at, outcome, deleted_message_id, posted_message_id)
            VALUES (\(channelID), \(kind.rawValue), \(chatID), \(now), \(OfferPostAttemptOutcome.posted.rawValue), \(deletedMessageID), \(messageID))
            """,
            logger: logger
        )
    }

    /// The post of a channel that stopped selling was deleted (or could not be): forgotten, so resuming posts
    /// anew. `messageID` guards against a post recorded meanwhile.
    public static func recordWithdrawn(
        channelID: Int64, kind: ChannelPostKind = .offer, messageID: Int64, on connection: PostgresConnection, logger: Logger
    ) async throws {
        _ = try await connection.query(
            """
            UPDATE channel_offer_posts SET message_id = CASE WHEN message_id = \(messageID) THEN NULL ELSE message_id END,
                posted_content = CASE WHEN message_id = \(messageID) THEN NULL ELSE posted_content END, attempt_lease_until = NULL,
                paused_at = NULL
            WHERE channel_id = \(channelID) AND kind = \(kind.rawValue)
            """,
            logger: logger
        )
    }

    /// The pause was handled: the post was edited to say sales are paused (`edited`), or could not be (the
    /// bot lost its rights: it is left as it is), or is gone (`messageGone` forgets it). Only an edit is an attempt.
    public static func recordPaused(
        channelID: Int64, kind: ChannelPostKind, chatID: Int64, messageID: Int64, edited: Bool, messageGone: Bool, at now: Date,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        _ = try await connection.query(
            """
            UPDATE channel_offer_posts SET paused_at = CASE WHEN \(messageGone) THEN NULL ELSE \(now) END, attempt_lease_until = NULL,
                message_id = CASE WHEN \(messageGone) AND message_id = \(messageID) THEN NULL ELSE message_id END
            WHERE channel_id = \(channelID) AND kind = \(kind.rawValue)
            """,
            logger: logger
        )
        if edited {
            _ = try await connection.query(
                """
                INSERT INTO channel_offer_post_attempts (channel_id, kind, chat_id, attempted_at, outcome, posted_message_id)
                VALUES (\(channelID), \(kind.rawValue), \(chatID), \(now), \(OfferPostAttemptOutcome.paused.rawValue), \(messageID))
                """,
                logger: logger
            )
        }
    }

    /// The post now in the channel, if any (read before a pair's rows are removed).
    public static func currentPost(
        channelID: Int64, kind: ChannelPostKind = .offer, on connection: PostgresConnection, logger: Logger
    ) async throws -> OfferPostJob.RemovedPost? {
        guard
            let (chat, message) = try await connection.first(
                """
                SELECT CASE WHEN p.kind = \(ChannelPostKind.offer.rawValue) THEN c.open_chat_id ELSE c.closed_chat_id END, p.message_id
                FROM channel_offer_posts p JOIN channels c ON c.id = p.channel_id
                WHERE p.channel_id = \(channelID) AND p.kind = \(kind.rawValue) AND p.message_id IS NOT NULL
                """, as: (Int64, Int64).self, logger: logger)
        else { return nil }
        return OfferPostJob.RemovedPost(chatID: chat, messageID: message)
    }

    /// An attempt failed for good: counted, explained, and either retried later or — at the limit —
    /// automatic posting stopped. Returns the consecutive failures now counted.
    public static func recordFailed(
        channelID: Int64, kind: ChannelPostKind = .offer, chatID: Int64, failure: OfferPostFailure, detail: String, deletedMessageID: Int64?,
        forcedSeen: Date?,
        at now: Date, refreshInterval: TimeInterval, on connection: PostgresConnection, logger: Logger
    ) async throws -> Int {
        let previous = try await connection.first(
            "SELECT consecutive_failures FROM channel_offer_posts WHERE channel_id = \(channelID) AND kind = \(kind.rawValue) FOR UPDATE",
            as: Int.self, logger: logger
        )
        let failures = (previous ?? 0) + 1
        let stops = failures >= OfferPostSettings.failuresBeforeStop
        let next: Date? = stops ? nil : now.addingTimeInterval(OfferPostRules.retryDelay(afterFailures: failures, refreshInterval: refreshInterval))
        let stoppedAt: Date? = stops ? now : nil
        // A deleted post is gone; its id must not be deleted again (one that could not be deleted is kept).
        let deleted = deletedMessageID != nil
        _ = try await connection.query(
            """
            UPDATE channel_offer_posts SET consecutive_failures = \(failures), last_failure = \(failure.rawValue),
                last_failure_detail = \(detail), last_failure_at = \(now), next_post_at = \(next), stopped_at = \(stoppedAt),
                message_id = CASE WHEN \(deleted) THEN NULL ELSE message_id END, attempt_lease_until = NULL,
                forced_at = CASE WHEN forced_at > \(forcedSeen ?? .distantPast) THEN forced_at END
            WHERE channel_id = \(channelID) AND kind = \(kind.rawValue)
            """,
            logger: logger
        )
        _ = try await connection.query(
            """
            INSERT INTO channel_offer_post_attempts (channel_id, kind, chat_id, attempted_at, outcome, deleted_message_id, failure, failure_detail)
            VALUES (\(channelID), \(kind.rawValue), \(chatID), \(now), \(OfferPostAttemptOutcome.failed.rawValue), \(deletedMessageID), \(failure.rawValue), \(detail))
            """,
            logger: logger
        )
        return failures
    }

    /// Posts due at `now`: the channel selling, automatic posting not stopped, and the refresh (or the retry
    /// after a failure) due, or a forced post waiting; a donation post only with a donation message. Oldest
    /// first, at most `limit`.
    public static func due(at now: Date, limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [(
        channelID: Int64, kind: ChannelPostKind
    )] {
        try await connection.all(
            """
            SELECT p.channel_id, p.kind FROM channel_offer_posts p JOIN channels c ON c.id = p.channel_id
            WHERE c.status = \(ChannelStatus.active.rawValue) AND c.deleted_at IS NULL
              AND (p.kind = \(ChannelPostKind.offer.rawValue) OR c.donation_message IS NOT NULL)
              AND (p.forced_at IS NOT NULL OR (p.stopped_at IS NULL AND (p.next_post_at IS NULL OR p.next_post_at <= \(now))))
              AND (p.attempt_lease_until IS NULL OR p.attempt_lease_until < \(now))
            ORDER BY p.next_post_at NULLS FIRST, p.channel_id, p.kind LIMIT \(limit)
            """,
            as: (Int64, String).self, logger: logger
        ).map { id, kind in (channelID: id, kind: try ChannelPostKind(storedValue: kind)) }
    }
}
