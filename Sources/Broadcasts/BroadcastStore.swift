import Foundation
import Logging
import PostgresNIO
import Storage
import Subscriptions

/// Every query of `broadcasts` and `broadcast_recipients`.
public struct BroadcastStore: Sendable {
    public let database: Database
    let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    private static let columns = """
        id, author_user_id, author_language, audience, channel_id, audience_days, text, status, progress_chat_id, \
        progress_message_id, recipients_total, resent_after_restart, started_at, finished_at
        """

    private typealias Row = (Int64, Int64, String, String, Int64?, Int32?, String, String, Int64, Int64?, Int32, Int32, Date?, Date?)

    private static func broadcast(_ row: Row) throws -> Broadcast {
        guard let kind = BroadcastAudienceKind(rawValue: row.3),
            let audience = BroadcastAudience(kind: kind, channelID: row.4, days: row.5.map(Int.init)),
            let status = BroadcastStatus(rawValue: row.7)
        else { throw BroadcastStoreError.unreadableRow(id: row.0) }
        return Broadcast(
            id: row.0, authorUserID: row.1, authorLanguage: row.2, audience: audience, text: row.6, status: status,
            progressChatID: row.8, progressMessageID: row.9, recipientsTotal: Int(row.10), resentAfterRestart: Int(row.11),
            startedAt: row.12, finishedAt: row.13
        )
    }

    // MARK: - Composing

    /// Starts a new draft for `author`, discarding any draft of theirs not yet started.
    public func createDraft(author: Int64, language: String, audience: BroadcastAudience, progressChatID: Int64) async throws -> Int64 {
        try await database.withTransaction { connection in
            try await connection.query(
                """
                DELETE FROM broadcasts WHERE author_user_id = \(author)
                  AND status IN (\(BroadcastStatus.composing.rawValue), \(BroadcastStatus.ready.rawValue))
                """, logger: logger)
            guard
                let id = try await connection.first(
                    """
                    INSERT INTO broadcasts (author_user_id, author_language, audience, channel_id, audience_days, progress_chat_id)
                    VALUES (\(author), \(language), \(audience.kind.rawValue), \(audience.channelID), \(audience.days.map(Int32.init)), \(progressChatID))
                    RETURNING id
                    """, as: Int64.self, logger: logger)
            else { throw BroadcastStoreError.unreadableRow(id: 0) }
            return id
        }
    }

    /// The author's draft (composing or ready) created within `maximumAge`, if any.
    public func draft(of author: Int64, maximumAge: Duration) async throws -> Broadcast? {
        let seconds = Double(maximumAge.components.seconds)
        return try await database.withConnection { connection in
            guard
                let row = try await connection.first(
                    """
                    SELECT \(unescaped: Self.columns) FROM broadcasts
                    WHERE author_user_id = \(author) AND status IN (\(BroadcastStatus.composing.rawValue), \(BroadcastStatus.ready.rawValue))
                      AND created_at > now() - make_interval(secs => \(seconds))
                    ORDER BY id DESC LIMIT 1
                    """, as: Row.self, logger: logger)
            else { return nil }
            return try Self.broadcast(row)
        }
    }

    /// Stores the checked text of a draft and marks it ready; false when it is no longer a draft.
    public func setText(_ text: String, broadcast id: Int64) async throws -> Bool {
        try await database.withConnection { connection in
            return try await connection.run(
                """
                UPDATE broadcasts SET text = \(text), status = \(BroadcastStatus.ready.rawValue)
                WHERE id = \(id) AND status IN (\(BroadcastStatus.composing.rawValue), \(BroadcastStatus.ready.rawValue))
                RETURNING id
                """, logger: logger) > 0
        }
    }

    public func broadcast(_ id: Int64) async throws -> Broadcast? {
        try await database.withConnection { connection in
            guard
                let row = try await connection.first(
                    "SELECT \(unescaped: Self.columns) FROM broadcasts WHERE id = \(id)", as: Row.self, logger: logger)
            else { return nil }
            return try Self.broadcast(row)
        }
    }

    /// How many people the audience holds now (blocked users left out).
    public func audienceSize(_ audience: BroadcastAudience) async throws -> Int {
        try await database.withConnection { connection in
            var query = Self.audienceQuery(audience)
            query.sql = "SELECT count(*) FROM (\(query.sql)) AS audience"
            guard let count = try await connection.first(query, as: Int64.self, logger: logger) else { return 0 }
            return Int(count)
        }
    }

    /// The user ids of an audience: one query per kind, every status bound as a parameter.
    static func audienceQuery(_ audience: BroadcastAudience) -> PostgresQuery {
        switch audience {
        case .allUsers:
            return "SELECT id AS user_id FROM telegram_users WHERE blocked_bot_at IS NULL"
        case .allOwners:
            return """
                SELECT o.user_id FROM owners o JOIN telegram_users u ON u.id = o.user_id WHERE u.blocked_bot_at IS NULL
                """
        case .channelActive(let channel):
            return """
                SELECT s.user_id FROM subscriptions s JOIN telegram_users u ON u.id = s.user_id
                WHERE s.channel_id = \(channel) AND s.status = \(SubscriptionStatus.active.rawValue) AND u.blocked_bot_at IS NULL
                """
        case .channelExpired(let channel, let days):
            return """
                SELECT s.user_id FROM subscriptions s JOIN telegram_users u ON u.id = s.user_id
                WHERE s.channel_id = \(channel) AND s.status = \(SubscriptionStatus.expired.rawValue)
                  AND s.expires_at > now() - make_interval(days => \(Int32(days))) AND u.blocked_bot_at IS NULL
                """
        case .channelPaid(let channel):
            return """
                SELECT DISTINCT o.user_id FROM orders o JOIN telegram_users u ON u.id = o.user_id
                WHERE o.channel_id = \(channel) AND o.status = \(OrderStatus.paid.rawValue) AND u.blocked_bot_at IS NULL
                """
        }
    }

    // MARK: - Starting and controls

    /// Resolves the audience into recipient rows and sets the broadcast running, in one transaction.
    /// Owner broadcasts (those of a channel) are held to one live per channel and `dailyCap` started per
    /// author in any 24 hours.
    public func start(_ id: Int64, progressMessageID: Int64, dailyCap: Int) async throws(BroadcastError) -> Int {
        do {
            return try await database.withTransaction { connection in
                guard
                    let row = try await connection.first(
                        "SELECT \(unescaped: Self.columns) FROM broadcasts WHERE id = \(id) FOR UPDATE", as: Row.self, logger: logger)
                else { throw BroadcastError.notFound }
                let broadcast = try Self.broadcast(row)
                guard broadcast.status == .ready else { throw BroadcastError.notReady(broadcast.status) }
                if let channel = broadcast.audience.channelID {
                    // The channel row's lock serialises two starts for one channel.
                    try await connection.query("SELECT id FROM channels WHERE id = \(channel) FOR UPDATE", logger: logger)
                    let live = try await connection.first(
                        """
                        SELECT count(*) FROM broadcasts WHERE channel_id = \(channel)
                          AND status IN (\(BroadcastStatus.running.rawValue), \(BroadcastStatus.paused.rawValue))
                        """,
                        as: Int64.self, logger: logger)
                    if let live, live > 0 { throw BroadcastError.channelBusy }
                    let today = try await connection.first(
                        """
                        SELECT count(*) FROM broadcasts WHERE author_user_id = \(broadcast.authorUserID)
                          AND channel_id IS NOT NULL AND started_at > now() - interval '24 hours'
                        """,
                        as: Int64.self, logger: logger)
                    if let today, today >= dailyCap { throw BroadcastError.dailyCapReached(dailyCap) }
                }
                // The audience's own query, its binds kept, with the broadcast id as one more bind.
                var insert = Self.audienceQuery(broadcast.audience)
                insert.binds.append(id)
                insert.sql = """
                    WITH audience AS (\(insert.sql)),
                    added AS (
                        INSERT INTO broadcast_recipients (broadcast_id, user_id)
                        SELECT $\(insert.binds.count), user_id FROM audience ON CONFLICT DO NOTHING RETURNING 1
                    )
                    SELECT count(*) FROM added
                    """
                let total = Int(try await connection.first(insert, as: Int64.self, logger: logger) ?? Int64(0))
                guard total > 0 else { throw BroadcastError.emptyAudience }
                try await connection.query(
                    """
                    UPDATE broadcasts SET status = \(BroadcastStatus.running.rawValue), started_at = now(),
                        recipients_total = \(Int32(total)), progress_message_id = \(progressMessageID)
                    WHERE id = \(id)
                    """, logger: logger)
                return total
            }
        } catch let error as BroadcastError {
            throw error
        } catch {
            throw .database(String(reflecting: error))
        }
    }

    /// Moves the broadcast from one of `from` to `to`; returns the status it had, or `nil` when it has none
    /// of them (another press got there first) or does not exist.
    public func transition(_ id: Int64, from: [BroadcastStatus], to: BroadcastStatus) async throws -> BroadcastStatus? {
        let allowed = from.map(\.rawValue)
        return try await database.withConnection { connection in
            guard
                let previous = try await connection.first(
                    """
                    WITH previous AS (SELECT id, status FROM broadcasts WHERE id = \(id) FOR UPDATE)
                    UPDATE broadcasts b SET status = \(to.rawValue),
                        finished_at = CASE WHEN \(to.isOver) THEN now() ELSE NULL END
                    FROM previous WHERE b.id = previous.id AND previous.status = ANY(\(allowed))
                    RETURNING previous.status
                    """, as: String.self, logger: logger)
            else { return nil }
            return BroadcastStatus(rawValue: previous)
        }
    }

    /// Marks a running broadcast finished once no recipient is left; true when it did.
    public func finishIfDone(_ id: Int64) async throws -> Bool {
        try await database.withConnection { connection in
            return try await connection.run(
                """
                UPDATE broadcasts SET status = \(BroadcastStatus.finished.rawValue), finished_at = now()
                WHERE id = \(id) AND status = \(BroadcastStatus.running.rawValue)
                  AND NOT EXISTS (SELECT 1 FROM broadcast_recipients WHERE broadcast_id = \(id)
                                  AND status IN (\(RecipientStatus.pending.rawValue), \(RecipientStatus.sending.rawValue)))
                RETURNING id
                """, logger: logger) > 0
        }
    }

    /// Running broadcasts, for the scan that makes sure each has a sender job.
    public func running() async throws -> [Int64] {
        try await database.withConnection { connection in
            return try await connection.all(
                "SELECT id FROM broadcasts WHERE status = \(BroadcastStatus.running.rawValue) ORDER BY id", as: Int64.self, logger: logger)
        }
    }

    // MARK: - Sending

    /// Sends found in flight when a run starts were left by a run that stopped without recording them (a
    /// crash): they go back to pending and are counted, since Telegram may already have delivered them.
    public func reclaimInFlight(_ id: Int64) async throws -> Int {
        try await database.withTransaction { connection in
            let reclaimed = try await connection.first(
                """
                WITH reclaimed AS (
                    UPDATE broadcast_recipients SET status = \(RecipientStatus.pending.rawValue)
                    WHERE broadcast_id = \(id) AND status = \(RecipientStatus.sending.rawValue) RETURNING 1
                )
                SELECT count(*) FROM reclaimed
                """,
                as: Int64.self, logger: logger)
            let count = Int(reclaimed ?? Int64(0))
            if count > 0 {
                try await connection.query(
                    "UPDATE broadcasts SET resent_after_restart = resent_after_restart + \(Int32(count)) WHERE id = \(id)", logger: logger
                )
            }
            return count
        }
    }

    /// Takes the next pending recipient while the broadcast is running, marking it in flight (committed
    /// before the send, so a crash leaves a trace); returns the user and how many tries it has had.
    public func claimNext(_ id: Int64) async throws -> (userID: Int64, attempts: Int)? {
        try await database.withConnection { connection in
            guard
                let (user, attempts) = try await connection.first(
                    """
                    UPDATE broadcast_recipients r SET status = \(RecipientStatus.sending.rawValue), attempts = r.attempts + 1
                    FROM (
                        SELECT user_id FROM broadcast_recipients
                        WHERE broadcast_id = \(id) AND status = \(RecipientStatus.pending.rawValue)
                          AND EXISTS (SELECT 1 FROM broadcasts WHERE id = \(id) AND status = \(BroadcastStatus.running.rawValue))
                        ORDER BY user_id LIMIT 1 FOR UPDATE SKIP LOCKED
                    ) next
                    WHERE r.broadcast_id = \(id) AND r.user_id = next.user_id
                    RETURNING r.user_id, r.attempts
                    """, as: (Int64, Int32).self, logger: logger)
            else { return nil }
            return (user, Int(attempts))
        }
    }

    /// Records how a send in flight ended.
    public func record(_ id: Int64, user: Int64, status: RecipientStatus, reason: String?) async throws {
        precondition(status == .sent || status == .blocked || status == .failed, "only an outcome is recorded")
        _ = try await database.withConnection { connection in
            try await connection.query(
                """
                UPDATE broadcast_recipients SET status = \(status.rawValue), reason = \(reason.map { String($0.prefix(500)) }), finished_at = now()
                WHERE broadcast_id = \(id) AND user_id = \(user) AND status = \(RecipientStatus.sending.rawValue)
                """, logger: logger)
        }
    }

    /// Puts a send in flight back in the line, to be tried again.
    public func release(_ id: Int64, user: Int64, reason: String) async throws {
        _ = try await database.withConnection { connection in
            try await connection.query(
                """
                UPDATE broadcast_recipients SET status = \(RecipientStatus.pending.rawValue), reason = \(String(reason.prefix(500)))
                WHERE broadcast_id = \(id) AND user_id = \(user) AND status = \(RecipientStatus.sending.rawValue)
                """, logger: logger)
        }
    }

    public func counts(_ id: Int64) async throws -> BroadcastCounts {
        try await database.withConnection { connection in
            var counts = BroadcastCounts()
            for (status, count) in try await connection.all(
                "SELECT status, count(*) FROM broadcast_recipients WHERE broadcast_id = \(id) GROUP BY status", as: (String, Int64).self,
                logger: logger
            ) {
                switch try RecipientStatus(storedValue: status) {
                case .sent: counts.sent = Int(count)
                case .blocked: counts.blocked = Int(count)
                case .failed: counts.failed = Int(count)
                case .pending, .sending: counts.left += Int(count)
                }
            }
            return counts
        }
    }

    /// Recipient rows of a broadcast with their status and reason, in user order (reports and tests).
    public func recipients(_ id: Int64) async throws -> [(userID: Int64, status: RecipientStatus, attempts: Int, reason: String?)] {
        try await database.withConnection { connection in
            return try await connection.all(
                "SELECT user_id, status, attempts, reason FROM broadcast_recipients WHERE broadcast_id = \(id) ORDER BY user_id",
                as: (Int64, String, Int32, String?).self, logger: logger
            ).map { user, status, attempts, reason in
                (user, try RecipientStatus(storedValue: status), Int(attempts), reason)
            }
        }
    }
}

/// A stored row the code cannot read (a value its enums do not know).
public enum BroadcastStoreError: Error, Sendable, Hashable {
    case unreadableRow(id: Int64)
}

/// Why a broadcast cannot be started or controlled; each has a sentence for the person who asked.
public enum BroadcastError: Error, Sendable, Hashable {
    case notFound
    /// Not in the state the request needs (started twice, or confirmed before its text was checked).
    case notReady(BroadcastStatus)
    /// Another broadcast of this channel is running or paused.
    case channelBusy
    /// The owner started this many channel broadcasts within the last 24 hours.
    case dailyCapReached(Int)
    /// Nobody is in the audience.
    case emptyAudience
    /// The person may not do this with this broadcast.
    case notAllowed
    case database(String)
}

extension BroadcastStore {
    /// Whether `user` owns the live (not deleted) channel pair `channel`.
    public func isOwner(_ user: Int64, of channel: Int64) async throws -> Bool {
        try await database.withConnection { connection in
            guard
                let count = try await connection.first(
                    "SELECT count(*) FROM channels WHERE id = \(channel) AND owner_user_id = \(user) AND deleted_at IS NULL", as: Int64.self,
                    logger: logger)
            else { return false }
            return count > 0
        }
    }
}
