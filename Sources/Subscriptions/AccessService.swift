import Foundation
import Jobs
import Logging
import PostgresNIO
import Storage

/// Sends a subscriber an invite link to their closed channel.
public struct DeliverInviteJob: JobPayload {
    public static let kind = "subscriptions.deliver_invite"
    public static let maxAttempts = 15

    public var subscriptionID: Int64
    /// The paid order this invite follows, if any (a re-requested invite has none).
    public var orderID: Int64?

    public init(subscriptionID: Int64, orderID: Int64?) {
        self.subscriptionID = subscriptionID
        self.orderID = orderID
    }
}

/// One minute's expiry sweep.
public struct ExpirySweepJob: JobPayload {
    public static let kind = "subscriptions.expiry_sweep"
    public static let maxAttempts = 3

    public var slot: PeriodicSlot
}

/// One pass of the reminders.
public struct ReminderJob: JobPayload {
    public static let kind = "subscriptions.reminders"
    public static let maxAttempts = 3

    public var slot: PeriodicSlot
}

/// What the expiry sweep did to one subscription.
public enum ExpiryAction: String, Sendable, Hashable {
    case removed
    case notAMember = "not_a_member"
    case keptAdmin = "kept_admin"
    case removeFailed = "remove_failed"
    /// Dry run: would have been removed.
    case wouldRemove = "would_remove"
}

/// Access to closed channels: invites, join-request gating, removal of intruders, the expiry sweep and the
/// reminders. Every decision is written to `access_events`.
public struct AccessService: Sendable {
    let database: Database
    let queue: JobQueue
    let access: any ChannelAccess
    let clock: any WallClock
    let settings: SubscriptionSettings
    let logger: Logger

    public init(database: Database, queue: JobQueue, access: any ChannelAccess, clock: any WallClock, settings: SubscriptionSettings, logger: Logger) {
        self.database = database
        self.queue = queue
        self.access = access
        self.clock = clock
        self.settings = settings
        self.logger = logger
    }

    /// How dates appear in messages: `2026-03-01 14:05 UTC`.
    public static func format(_ date: Date) -> String {
        date.formatted(Date.VerbatimFormatStyle(
            format: "\(year: .defaultDigits)-\(month: .twoDigits)-\(day: .twoDigits) \(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased)):\(minute: .twoDigits) UTC",
            timeZone: TimeZone(identifier: "UTC")!, calendar: Calendar(identifier: .gregorian)
        ))
    }

    // MARK: - Invites

    struct ActiveSubscription: Sendable {
        var id: Int64
        var userID: Int64
        var chatID: Int64
        var channelID: Int64
        var title: String
        var expiresAt: Date
    }

    private func activeSubscription(id: Int64) async throws -> ActiveSubscription? {
        let now = clock.now()
        let logger = self.logger
        return try await database.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT s.id, s.user_id, c.closed_chat_id, c.id, c.closed_title, s.expires_at
                FROM subscriptions s JOIN channels c ON c.id = s.channel_id
                WHERE s.id = \(id) AND s.status = 'active' AND s.expires_at > \(now)
                """,
                logger: logger
            )
            for try await (id, user, chat, channel, title, expires) in rows.decode((Int64, Int64, Int64, Int64, String, Date).self) {
                return ActiveSubscription(id: id, userID: user, chatID: chat, channelID: channel, title: title, expiresAt: expires)
            }
            return nil
        }
    }

    /// Creates a link for the subscriber and sends it. Nothing happens for a subscription no longer active,
    /// and no link is made for someone already in the channel (a renewal while a member): a re-requested
    /// invite then says so instead.
    public func deliverInvite(subscriptionID: Int64, requested: Bool = false) async throws {
        guard let subscription = try await activeSubscription(id: subscriptionID) else {
            logger.info("invite not sent: subscription is not active", metadata: ["subscription_id": "\(subscriptionID)"])
            return
        }
        // Best effort: when the status cannot be read, a link is sent as if they were out.
        switch try? await access.memberStatus(chatID: subscription.chatID, userID: subscription.userID) {
        case .member?, .administrator?, .owner?:
            logger.info("invite not needed: already in the channel", metadata: ["subscription_id": "\(subscription.id)"])
            if requested {
                try await queue.enqueue(NotifyUserJob(userID: subscription.userID, key: "invite.already_member", arguments: ["title": subscription.title]))
            }
            return
        default:
            break
        }
        let mode: InviteLinkMode
        switch settings.inviteMode {
        case .joinRequest: mode = .joinRequest
        case .singleUse: mode = .singleUse(expiresAt: min(
            clock.now().addingTimeInterval(TimeInterval(settings.singleUseLinkLifetime.components.seconds)), subscription.expiresAt
        ))
        }
        let link = try await access.createInviteLink(chatID: subscription.chatID, name: "TelePay \(subscription.id)", mode: mode)
        let logger = self.logger
        var expiresAt: Date?
        if case .singleUse(let date) = mode { expiresAt = date }
        try await queue.transaction { transaction in
            try await transaction.connection.query(
                """
                INSERT INTO invite_links (subscription_id, user_id, chat_id, invite_link, mode, expires_at)
                VALUES (\(subscription.id), \(subscription.userID), \(subscription.chatID), \(link), \(mode.storedName), \(expiresAt))
                """,
                logger: logger
            )
            try await transaction.enqueue(NotifyUserJob(
                userID: subscription.userID, key: "invite.ready",
                arguments: ["title": subscription.title, "expires": Self.format(subscription.expiresAt)],
                buttons: [.url(labelKey: "invite.button", url: link)]
            ))
        }
        logger.info("invite link sent", metadata: ["subscription_id": "\(subscription.id)", "user_id": "\(subscription.userID)"])
    }

    /// "Get my invite again": queues a new invite if the user's subscription is active. Returns whether it was.
    public func requestInviteAgain(subscriptionID: Int64, userID: Int64) async throws -> Bool {
        guard let subscription = try await activeSubscription(id: subscriptionID), subscription.userID == userID else { return false }
        try await queue.enqueue(
            DeliverInviteJob(subscriptionID: subscription.id, orderID: nil),
            options: JobOptions(uniqueKey: "invite:again:\(subscription.id)")
        )
        return true
    }

    // MARK: - Join gating

    /// Whether `userID` holds an active subscription to the channel whose closed chat is `chatID`.
    func hasActiveSubscription(chatID: Int64, userID: Int64) async throws -> (known: Bool, subscriptionID: Int64?) {
        let now = clock.now()
        let logger = self.logger
        return try await database.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT s.id FROM channels c
                LEFT JOIN subscriptions s ON s.channel_id = c.id AND s.user_id = \(userID) AND s.status = 'active' AND s.expires_at > \(now)
                WHERE c.closed_chat_id = \(chatID) AND c.deleted_at IS NULL
                """,
                logger: logger
            )
            for try await (id) in rows.decode(Int64?.self) { return (true, id) }
            return (false, nil)
        }
    }

    /// Approves a join request to a closed channel from an active subscriber and declines everyone else's.
    /// Returns `nil` for chats that are not TelePay closed channels (left alone).
    @discardableResult
    public func handleJoinRequest(chatID: Int64, userID: Int64) async throws -> Bool? {
        let (known, subscription) = try await hasActiveSubscription(chatID: chatID, userID: userID)
        guard known else { return nil }
        if subscription != nil {
            try await access.approveJoinRequest(chatID: chatID, userID: userID)
        } else {
            try await access.declineJoinRequest(chatID: chatID, userID: userID)
        }
        try await audit(subscription, userID: userID, chatID: chatID, subscription != nil ? "join_approved" : "join_declined")
        logger.info("join request decided", metadata: ["chat_id": "\(chatID)", "user_id": "\(userID)", "approved": "\(subscription != nil)"])
        return subscription != nil
    }

    /// Someone joined a closed channel through one of our links. A joiner without an active subscription
    /// (a single-use link passed on) is removed at once. Returns whether they were removed.
    @discardableResult
    public func handleJoin(chatID: Int64, userID: Int64, inviteLink: String?) async throws -> Bool {
        guard let inviteLink else { return false }
        let logger = self.logger
        let ours = try await database.withConnection { connection in
            let rows = try await connection.query(
                "SELECT user_id FROM invite_links WHERE invite_link = \(inviteLink) AND chat_id = \(chatID)", logger: logger
            )
            for try await (_) in rows.decode(Int64.self) { return true }
            return false
        }
        guard ours else { return false }
        let (_, subscription) = try await hasActiveSubscription(chatID: chatID, userID: userID)
        guard subscription == nil else { return false }
        do {
            try await access.removeMember(chatID: chatID, userID: userID)
        } catch {
            try await audit(nil, userID: userID, chatID: chatID, "remove_failed", detail: Self.reason(error))
            throw error
        }
        try await audit(nil, userID: userID, chatID: chatID, "intruder_removed", detail: "joined through another subscriber's link")
        logger.notice("removed a non-subscriber who joined through a subscriber's link", metadata: ["chat_id": "\(chatID)", "user_id": "\(userID)"])
        return true
    }

    // MARK: - Expiry

    struct DueSubscription: Sendable {
        var id: Int64
        var userID: Int64
        var chatID: Int64
        var channelID: Int64
        var ownerUserID: Int64
        var title: String
    }

    /// Removes everyone whose subscription has ended, revokes their links, marks them expired and tells them,
    /// with a "Renew" button. A removal that fails leaves the subscription active, so the next minute tries
    /// again. Returns what happened to each subscription.
    @discardableResult
    public func sweepExpired() async throws -> [Int64: ExpiryAction] {
        let now = clock.now()
        let logger = self.logger
        let due = try await database.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT s.id, s.user_id, c.closed_chat_id, c.id, c.owner_user_id, c.closed_title
                FROM subscriptions s JOIN channels c ON c.id = s.channel_id
                WHERE s.status = 'active' AND s.expires_at <= \(now)
                ORDER BY s.expires_at LIMIT 500
                """,
                logger: logger
            )
            var due: [DueSubscription] = []
            for try await (id, user, chat, channel, owner, title) in rows.decode((Int64, Int64, Int64, Int64, Int64, String).self) {
                due.append(DueSubscription(id: id, userID: user, chatID: chat, channelID: channel, ownerUserID: owner, title: title))
            }
            return due
        }
        var outcomes: [Int64: ExpiryAction] = [:]
        for subscription in due {
            outcomes[subscription.id] = try await expire(subscription, now: now)
        }
        let failed = outcomes.values.filter { $0 == .removeFailed }.count
        if !due.isEmpty {
            logger.info("expiry sweep", metadata: ["due": "\(due.count)", "failed": "\(failed)", "dry_run": "\(settings.expiryDryRun)"])
        }
        return outcomes
    }

    private func expire(_ subscription: DueSubscription, now: Date) async throws -> ExpiryAction {
        if settings.expiryDryRun {
            logger.notice("dry run: would remove an expired subscriber", metadata: [
                "subscription_id": "\(subscription.id)", "user_id": "\(subscription.userID)", "chat_id": "\(subscription.chatID)",
            ])
            return .wouldRemove
        }
        let action: ExpiryAction
        do {
            let status: ChannelMemberStatus = subscription.userID == subscription.ownerUserID ? .owner : try await access.memberStatus(chatID: subscription.chatID, userID: subscription.userID)
            if status.isStaff {
                action = .keptAdmin
            } else if status == .member {
                try await access.removeMember(chatID: subscription.chatID, userID: subscription.userID)
                action = .removed
            } else {
                action = .notAMember
            }
        } catch {
            try await auditFailure(subscription, detail: Self.reason(error))
            logger.warning("removing an expired subscriber failed; retrying at the next sweep", metadata: [
                "subscription_id": "\(subscription.id)", "error": "\(Self.reason(error))",
            ])
            return .removeFailed
        }
        try await revokeLinks(of: subscription)
        let logger = self.logger
        try await queue.transaction { transaction in
            let connection = transaction.connection
            let rows = try await connection.query(
                """
                UPDATE subscriptions SET status = 'expired', expired_at = \(now)
                WHERE id = \(subscription.id) AND status = 'active' AND expires_at <= \(now)
                RETURNING id
                """,
                logger: logger
            )
            var expired = false
            for try await _ in rows { expired = true }
            try await connection.query(
                """
                INSERT INTO access_events (subscription_id, user_id, chat_id, action, detail)
                VALUES (\(subscription.id), \(subscription.userID), \(subscription.chatID), \(action.rawValue), '')
                """,
                logger: logger
            )
            if expired {
                try await transaction.enqueue(NotifyUserJob(
                    userID: subscription.userID, key: "subscription.expired", arguments: ["title": subscription.title],
                    buttons: [.renew(channelID: subscription.channelID)]
                ))
            } else {
                // Renewed while being removed: send the renewer back in.
                try await transaction.enqueue(DeliverInviteJob(subscriptionID: subscription.id, orderID: nil))
            }
        }
        return action
    }

    /// Records a failed removal, once per run of identical failures: the sweep retries every minute, and a
    /// channel where the bot lost its rights would otherwise add a row a minute until someone fixes it.
    private func auditFailure(_ subscription: DueSubscription, detail: String) async throws {
        let logger = self.logger
        let detail = String(detail.prefix(2000))
        _ = try await database.withConnection { connection in
            try await connection.query(
                """
                INSERT INTO access_events (subscription_id, user_id, chat_id, action, detail)
                SELECT \(subscription.id), \(subscription.userID), \(subscription.chatID), 'remove_failed', \(detail)
                WHERE NOT EXISTS (
                    SELECT 1 FROM (SELECT action, detail FROM access_events WHERE subscription_id = \(subscription.id) ORDER BY id DESC LIMIT 1) AS last
                    WHERE last.action = 'remove_failed' AND last.detail = \(detail))
                """,
                logger: logger
            )
        }
    }

    private func revokeLinks(of subscription: DueSubscription) async throws {
        let logger = self.logger
        let links = try await database.withConnection { connection in
            let rows = try await connection.query(
                "SELECT invite_link FROM invite_links WHERE subscription_id = \(subscription.id) AND revoked_at IS NULL", logger: logger
            )
            var links: [String] = []
            for try await (link) in rows.decode(String.self) { links.append(link) }
            return links
        }
        for link in links {
            do {
                try await access.revokeInviteLink(chatID: subscription.chatID, link: link)
            } catch {
                // A link Telegram already expired cannot admit anyone either.
                logger.debug("revoking an invite link failed", metadata: ["error": "\(Self.reason(error))"])
            }
            _ = try await database.withConnection { connection in
                try await connection.query("UPDATE invite_links SET revoked_at = now() WHERE invite_link = \(link)", logger: logger)
            }
            try await audit(subscription.id, userID: subscription.userID, chatID: subscription.chatID, "link_revoked")
        }
    }

    // MARK: - Reminders

    /// Sends each due reminder once: for every active subscription ending within a configured lead time, the
    /// smallest lead time reached is announced and every reached one recorded, keyed by the expiry.
    @discardableResult
    public func sendReminders() async throws -> Int {
        guard let longest = settings.reminderDays.max() else { return 0 }
        let now = clock.now()
        let horizon = now.addingTimeInterval(TimeInterval(longest) * 86_400)
        let logger = self.logger
        let candidates = try await database.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT s.id, s.user_id, s.channel_id, c.closed_title, s.expires_at,
                       coalesce(string_agg(r.days_before::text, ','), '')
                FROM subscriptions s JOIN channels c ON c.id = s.channel_id
                LEFT JOIN subscription_reminders r ON r.subscription_id = s.id AND r.expires_at = s.expires_at
                WHERE s.status = 'active' AND s.expires_at > \(now) AND s.expires_at <= \(horizon)
                GROUP BY s.id, c.closed_title
                """,
                logger: logger
            )
            var result: [(Int64, Int64, Int64, String, Date, Set<Int>)] = []
            for try await (id, user, channel, title, expires, sent) in rows.decode((Int64, Int64, Int64, String, Date, String).self) {
                result.append((id, user, channel, title, expires, Set(sent.split(separator: ",").compactMap { Int($0) })))
            }
            return result
        }
        var sent = 0
        for (id, user, channel, title, expires, already) in candidates {
            let due = SubscriptionTerm.dueReminders(expiry: expires, now: now, leadDays: settings.reminderDays, alreadySent: already)
            guard let nearest = due.first else { continue }
            let recorded = try await queue.transaction { transaction -> Bool in
                var inserted = false
                for days in due {
                    let rows = try await transaction.connection.query(
                        """
                        INSERT INTO subscription_reminders (subscription_id, expires_at, days_before)
                        VALUES (\(id), \(expires), \(Int32(days))) ON CONFLICT DO NOTHING RETURNING 1
                        """,
                        logger: logger
                    )
                    for try await _ in rows where days == nearest { inserted = true }
                }
                if inserted {
                    try await transaction.enqueue(NotifyUserJob(
                        userID: user, key: "subscription.reminder", arguments: ["title": title, "expires": Self.format(expires)],
                        dayArguments: ["days": nearest], buttons: [.renew(channelID: channel)]
                    ))
                }
                return inserted
            }
            if recorded { sent += 1 }
        }
        return sent
    }

    // MARK: - Audit

    static func reason(_ error: any Error) -> String {
        (error as? ChannelAccessError)?.reason ?? String(reflecting: error)
    }

    private func audit(_ subscriptionID: Int64?, userID: Int64, chatID: Int64, _ action: String, detail: String = "") async throws {
        let logger = self.logger
        _ = try await database.withConnection { connection in
            try await connection.query(
                """
                INSERT INTO access_events (subscription_id, user_id, chat_id, action, detail)
                VALUES (\(subscriptionID), \(userID), \(chatID), \(action), \(String(detail.prefix(2000))))
                """,
                logger: logger
            )
        }
    }
}

/// Runs `DeliverInviteJob`s.
public struct InviteDeliverer: JobHandler {
    public let service: AccessService

    public init(service: AccessService) {
        self.service = service
    }

    public func run(_ payload: DeliverInviteJob, context: JobContext) async throws {
        try await service.deliverInvite(subscriptionID: payload.subscriptionID, requested: payload.orderID == nil)
    }

    public func classify(_ error: any Error) -> JobErrorClass {
        if let access = error as? ChannelAccessError, !access.isTransient { return .permanent }
        return .retryable
    }
}

/// Runs the minute's expiry sweep.
public struct ExpirySweeper: JobHandler {
    public let service: AccessService

    public init(service: AccessService) {
        self.service = service
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 1) }

    public func run(_ payload: ExpirySweepJob, context: JobContext) async throws {
        try await service.sweepExpired()
    }

    /// Every minute; a sweep looks at state, not at the clock, so one run covers any missed minutes.
    public static func periodicTask() throws -> PeriodicTask {
        try PeriodicTask("subscriptions.expiry", every: .seconds(60), catchUp: .runOnce) { ExpirySweepJob(slot: $0) }
    }
}

/// Runs the reminders.
public struct ReminderSender: JobHandler {
    public let service: AccessService

    public init(service: AccessService) {
        self.service = service
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 1) }

    public func run(_ payload: ReminderJob, context: JobContext) async throws {
        try await service.sendReminders()
    }

    /// Every ten minutes; reminders look at state, so one run covers any missed slots.
    public static func periodicTask() throws -> PeriodicTask {
        try PeriodicTask("subscriptions.reminders", every: .seconds(600), catchUp: .runOnce) { ReminderJob(slot: $0) }
    }
}
