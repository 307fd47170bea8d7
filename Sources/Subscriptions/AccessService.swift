import Channels
import Foundation
import Jobs
import Localization
import Logging
import PostgresNIO
import Resilience
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

/// A join request to decide. Decided by a job, not in the update handler, so a failure (Telegram or the
/// database) delays the decision instead of dropping the request with the update.
public struct JoinRequestJob: JobPayload {
    public static let kind = "subscriptions.join_request"

    public var chatID: Int64
    public var userID: Int64

    public init(chatID: Int64, userID: Int64) {
        self.chatID = chatID
        self.userID = userID
    }
}

/// Someone joined a closed channel (`chat_member`); checked by a job for the same reason as join requests.
public struct MemberJoinedJob: JobPayload {
    public static let kind = "subscriptions.member_joined"

    public var chatID: Int64
    public var userID: Int64
    public var inviteLink: String?

    public init(chatID: Int64, userID: Int64, inviteLink: String?) {
        self.chatID = chatID
        self.userID = userID
        self.inviteLink = inviteLink
    }
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
    /// A passing failure: tried again after a back-off.
    case removeFailed = "remove_failed"
    /// An earlier sweep's ban was lifted (the subscription had already ended, or was renewed since).
    case unbanned
    /// The bot cannot act in the channel: expired without removal, and the channel paused.
    case channelUnavailable = "channel_unavailable"
    /// Dry run: would have been removed.
    case wouldRemove = "would_remove"
}

/// How long the sweep waits before trying a failed removal again: a minute, doubling with each failure,
/// at most six hours.
public enum RemovalBackoff {
    static let backoff = Backoff(initial: .seconds(60), maximum: .seconds(6 * 3600), jitter: .none)

    public static func delay(afterFailures failures: Int) -> TimeInterval {
        TimeInterval(backoff.delay(afterAttempt: failures).components.seconds)
    }
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
    let store: AccessStore

    /// At most this many subscriptions per sweep, and this many of one channel.
    static let sweepLimit = 500
    static let sweepLimitPerChannel = 100
    /// After this many passing failures in a row in one channel, the sweep leaves that channel until the
    /// next minute instead of spending Telegram's budget on calls that are failing.
    static let consecutiveFailuresPerChannel = 3

    public init(database: Database, queue: JobQueue, access: any ChannelAccess, clock: any WallClock, settings: SubscriptionSettings, logger: Logger)
    {
        self.database = database
        self.queue = queue
        self.access = access
        self.clock = clock
        self.settings = settings
        self.logger = logger
        self.store = AccessStore(logger: logger)
    }

    /// How dates appear in messages: `2026-03-01 14:05 UTC`.
    public static func format(_ date: Date) -> String {
        date.formatted(
            Date.VerbatimFormatStyle(
                format:
                    "\(year: .defaultDigits)-\(month: .twoDigits)-\(day: .twoDigits) \(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased)):\(minute: .twoDigits) UTC",
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
        let store = self.store
        return try await database.withConnection { try await store.activeSubscription(id: id, now: now, on: $0) }
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
                try await queue.enqueue(
                    NotifyUserJob(userID: subscription.userID, key: L10n.inviteAlreadyMember, arguments: ["title": subscription.title]))
            }
            return
        default:
            break
        }
        let mode = settings.inviteMode
        let expiresAt: Date? =
            switch mode {
            case .joinRequest: nil
            case .singleUse:
                min(clock.now().addingTimeInterval(TimeInterval(settings.singleUseLinkLifetime.components.seconds)), subscription.expiresAt)
            }
        let link = try await access.createInviteLink(
            chatID: subscription.chatID, name: "TelePay \(subscription.id)", mode: mode, expiresAt: expiresAt)
        let store = self.store
        try await queue.transaction { transaction in
            try await store.insertInviteLink(subscription: subscription, link: link, mode: mode, expiresAt: expiresAt, on: transaction.connection)
            try await transaction.enqueue(
                NotifyUserJob(
                    userID: subscription.userID, key: L10n.inviteReady,
                    arguments: ["title": subscription.title, "expires": Self.format(subscription.expiresAt)],
                    buttons: [.url(labelKey: L10n.inviteButton, url: link)]
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

    /// The offer token behind a Renew button, for the user who pressed it: only someone who has a
    /// subscription to the channel or an order for it gets one, so channel ids alone list no offers.
    public func renewalOfferToken(channelID: Int64, userID: Int64) async throws -> String? {
        let store = self.store
        return try await database.withConnection { try await store.offerToken(channelID: channelID, customer: userID, on: $0) }
    }

    // MARK: - Join gating

    /// Hands a join request to a durable job; the update handler only enqueues, so the request survives any
    /// failure while it is decided. `updateID` keeps a re-delivered update from queueing it twice.
    public func enqueueJoinRequest(chatID: Int64, userID: Int64, updateID: Int64) async throws {
        try await queue.enqueue(JoinRequestJob(chatID: chatID, userID: userID), options: JobOptions(uniqueKey: "telegram-update:\(updateID)"))
    }

    /// Hands a join to a durable job, like `enqueueJoinRequest`.
    public func enqueueMemberJoined(chatID: Int64, userID: Int64, inviteLink: String?, updateID: Int64) async throws {
        try await queue.enqueue(
            MemberJoinedJob(chatID: chatID, userID: userID, inviteLink: inviteLink), options: JobOptions(uniqueKey: "telegram-update:\(updateID)")
        )
    }

    private func activeSubscription(chatID: Int64, userID: Int64) async throws -> (known: Bool, subscriptionID: Int64?) {
        let now = clock.now()
        let store = self.store
        return try await database.withConnection { try await store.activeSubscription(chatID: chatID, userID: userID, now: now, on: $0) }
    }

    /// Approves a join request to a closed channel from an active subscriber and declines everyone else's.
    /// Returns `nil` for chats that are not TelePay closed channels (left alone). A passing or channel-wide
    /// failure is thrown (the job retries it); one about this user alone (the request was withdrawn) is
    /// recorded, and the request counts as handled.
    @discardableResult
    public func handleJoinRequest(chatID: Int64, userID: Int64) async throws -> Bool? {
        let (known, subscription) = try await activeSubscription(chatID: chatID, userID: userID)
        guard known else { return nil }
        if let failure = await decide(chatID: chatID, userID: userID, approve: subscription != nil) {
            guard failure.scope == .user else { throw failure }
            try await audit(.joinFailed, subscription, userID: userID, chatID: chatID, detail: failure.reason)
            let reason = failure.reason
            logger.notice("join request could not be decided", metadata: ["chat_id": "\(chatID)", "user_id": "\(userID)", "error": "\(reason)"])
            return nil
        }
        try await audit(subscription != nil ? .joinApproved : .joinDeclined, subscription, userID: userID, chatID: chatID)
        logger.info("join request decided", metadata: ["chat_id": "\(chatID)", "user_id": "\(userID)", "approved": "\(subscription != nil)"])
        return subscription != nil
    }

    /// Approves or declines; returns the failure, if any.
    private func decide(chatID: Int64, userID: Int64, approve: Bool) async -> ChannelAccessError? {
        do {
            if approve {
                try await access.approveJoinRequest(chatID: chatID, userID: userID)
            } else {
                try await access.declineJoinRequest(chatID: chatID, userID: userID)
            }
            return nil
        } catch {
            return error
        }
    }

    /// Someone joined a closed channel through one of our links. A joiner without an active subscription
    /// (a single-use link passed on) is removed at once. Returns whether they were removed.
    @discardableResult
    public func handleJoin(chatID: Int64, userID: Int64, inviteLink: String?) async throws -> Bool {
        guard let inviteLink else { return false }
        let store = self.store
        let ours = try await database.withConnection { try await store.isInviteLink(inviteLink, of: chatID, on: $0) }
        guard ours else { return false }
        let (_, subscription) = try await activeSubscription(chatID: chatID, userID: userID)
        guard subscription == nil else { return false }
        do {
            try await access.banMember(chatID: chatID, userID: userID)
            try await access.unbanMember(chatID: chatID, userID: userID)
        } catch {
            try await audit(.removeFailed, nil, userID: userID, chatID: chatID, detail: Self.reason(error))
            throw error
        }
        try await audit(.intruderRemoved, nil, userID: userID, chatID: chatID, detail: "joined through another subscriber's link")
        logger.notice("removed a non-subscriber who joined through a subscriber's link", metadata: ["chat_id": "\(chatID)", "user_id": "\(userID)"])
        return true
    }

    // MARK: - Expiry

    struct DueRemoval: Sendable {
        var id: Int64
        var userID: Int64
        var chatID: Int64
        var channelID: Int64
        var ownerUserID: Int64
        var title: String
        /// Active and ended: to be removed and expired.
        var isDue: Bool
        /// An earlier sweep banned the user and the unban is still to do.
        var unbanPending: Bool
        var removalAttempts: Int
    }

    /// Removes everyone whose subscription has ended, revokes their links, marks them expired and tells them,
    /// with a "Renew" button; lifts bans an earlier sweep could not lift. A passing failure is tried again
    /// after a back-off; a channel where the bot cannot act at all has its ended subscriptions expired
    /// without removal, is paused, and its owner and the admins are told. Channels take turns, so one
    /// channel's failures never hold up another's. Returns what happened to each subscription.
    @discardableResult
    public func sweepExpired() async throws -> [Int64: ExpiryAction] {
        let now = clock.now()
        let store = self.store
        let due = try await database.withConnection {
            try await store.dueRemovals(now: now, perChannel: Self.sweepLimitPerChannel, limit: Self.sweepLimit, on: $0)
        }
        var outcomes: [Int64: ExpiryAction] = [:]
        var failuresInARow: [Int64: Int] = [:]
        var leftAlone: Set<Int64> = []
        for subscription in due where !leftAlone.contains(subscription.channelID) && outcomes[subscription.id] == nil {
            let action = try await expire(subscription, now: now, outcomes: &outcomes)
            switch action {
            case .removeFailed:
                failuresInARow[subscription.channelID, default: 0] += 1
                if failuresInARow[subscription.channelID]! >= Self.consecutiveFailuresPerChannel { leftAlone.insert(subscription.channelID) }
            case .channelUnavailable:
                leftAlone.insert(subscription.channelID)
            default:
                failuresInARow[subscription.channelID] = 0
            }
        }
        if !due.isEmpty {
            let failed = outcomes.values.filter { $0 == .removeFailed }.count
            logger.info(
                "expiry sweep",
                metadata: [
                    "due": "\(due.count)", "done": "\(outcomes.count)", "failed": "\(failed)", "channels_left_alone": "\(leftAlone.count)",
                    "dry_run": "\(settings.expiryDryRun)",
                ])
        }
        return outcomes
    }

    private func expire(_ subscription: DueRemoval, now: Date, outcomes: inout [Int64: ExpiryAction]) async throws -> ExpiryAction {
        if settings.expiryDryRun {
            logger.notice(
                "dry run: would remove an expired subscriber",
                metadata: [
                    "subscription_id": "\(subscription.id)", "user_id": "\(subscription.userID)", "chat_id": "\(subscription.chatID)",
                ])
            outcomes[subscription.id] = .wouldRemove
            return .wouldRemove
        }
        let action: ExpiryAction
        do {
            guard subscription.isDue else {
                // Only a pending unban brings here a subscription that already expired or was renewed since.
                try await unban(subscription)
                outcomes[subscription.id] = .unbanned
                return .unbanned
            }
            let status: ChannelMemberStatus =
                subscription.userID == subscription.ownerUserID
                ? .owner : try await access.memberStatus(chatID: subscription.chatID, userID: subscription.userID)
            if status.isStaff {
                action = .keptAdmin
            } else if status == .member {
                // The ban is recorded before it is made, so a crash right after it still leads to the unban.
                let logger = self.logger
                try await database.withConnection {
                    try await SubscriptionStore.recordBanned(subscriptionID: subscription.id, at: now, on: $0, logger: logger)
                }
                do {
                    try await access.banMember(chatID: subscription.chatID, userID: subscription.userID)
                } catch {
                    // A refusal means no ban; after a passing failure (a timeout) it may have happened.
                    if !error.isTransient {
                        try await database.withConnection {
                            try await SubscriptionStore.recordNotBanned(subscriptionID: subscription.id, on: $0, logger: logger)
                        }
                    }
                    throw error
                }
                action = .removed
                do {
                    try await unban(subscription)
                } catch let error as ChannelAccessError {
                    // They are out, so the subscription ends now; the unban is retried on its own.
                    try await recordFailure(subscription, now: now, error: error)
                }
            } else if subscription.unbanPending {
                // An earlier attempt banned them and stopped before the unban.
                try await unban(subscription)
                action = status == .banned ? .removed : .notAMember
            } else {
                action = .notAMember
            }
        } catch let error as ChannelAccessError {
            if let problem = error.channelProblem {
                try await channelUnavailable(subscription, problem: problem, error: error, now: now, outcomes: &outcomes)
                return .channelUnavailable
            }
            try await recordFailure(subscription, now: now, error: error)
            outcomes[subscription.id] = .removeFailed
            return .removeFailed
        }
        try await revokeLinks(of: subscription)
        let store = self.store
        try await queue.transaction { transaction in
            let connection = transaction.connection
            let expired = try await SubscriptionStore.markExpired(subscriptionID: subscription.id, now: now, on: connection, logger: logger)
            try await store.audit(
                AccessStore.Event(action), subscriptionID: subscription.id, userID: subscription.userID, chatID: subscription.chatID, on: connection)
            if expired {
                try await transaction.enqueue(
                    NotifyUserJob(
                        userID: subscription.userID, key: L10n.subscriptionExpired, arguments: ["title": subscription.title],
                        buttons: [.renew(channelID: subscription.channelID)]
                    ))
            } else {
                // Renewed while being removed: send the renewer back in.
                try await transaction.enqueue(DeliverInviteJob(subscriptionID: subscription.id, orderID: nil))
            }
        }
        outcomes[subscription.id] = action
        return action
    }

    /// Lifts the sweep's own ban (only if still banned) and records that it is lifted.
    private func unban(_ subscription: DueRemoval) async throws {
        try await access.unbanMember(chatID: subscription.chatID, userID: subscription.userID)
        let store = self.store
        try await database.withTransaction { connection in
            try await SubscriptionStore.recordUnbanned(subscriptionID: subscription.id, on: connection, logger: logger)
            if subscription.unbanPending {
                try await store.audit(
                    .unbanned, subscriptionID: subscription.id, userID: subscription.userID, chatID: subscription.chatID, on: connection)
            }
        }
    }

    /// A passing failure: audited once per run of identical failures, and tried again after a back-off.
    private func recordFailure(_ subscription: DueRemoval, now: Date, error: ChannelAccessError) async throws {
        let next = now.addingTimeInterval(RemovalBackoff.delay(afterFailures: subscription.removalAttempts + 1))
        let store = self.store
        try await database.withTransaction { connection in
            try await SubscriptionStore.recordRemovalFailure(subscriptionID: subscription.id, nextAttempt: next, on: connection, logger: logger)
            try await store.auditFailureOnce(
                .removeFailed, subscriptionID: subscription.id, userID: subscription.userID, chatID: subscription.chatID, detail: error.reason,
                on: connection
            )
        }
        logger.warning(
            "removing an expired subscriber failed; trying again later",
            metadata: [
                "subscription_id": "\(subscription.id)", "error": "\(error.reason)", "next_attempt": "\(next)",
            ])
    }

    /// The bot cannot act in the channel at all, so no removal there can work until its owner fixes that.
    /// In one transaction: every ended subscription of the channel is expired (its holder told, with
    /// Renew), the channel is paused, and — when that pause is new — the owner is told what to fix and the
    /// admins are alerted. A pending unban stays pending, on its back-off.
    private func channelUnavailable(
        _ subscription: DueRemoval, problem: ChannelProblem, error: ChannelAccessError, now: Date, outcomes: inout [Int64: ExpiryAction]
    ) async throws {
        let store = self.store
        let next = now.addingTimeInterval(RemovalBackoff.delay(afterFailures: subscription.removalAttempts + 1))
        let expired = try await queue.transaction { transaction in
            let connection = transaction.connection
            // The channel first, as every closing of a channel does, so a grant in progress finishes before.
            try await SalesClosure.lockChannel(subscription.channelID, on: connection, logger: logger)
            let expired = try await SubscriptionStore.expireAllDue(channelID: subscription.channelID, now: now, on: connection, logger: logger)
            for (id, user) in expired {
                try await store.audit(
                    .channelUnavailable, subscriptionID: id, userID: user, chatID: subscription.chatID, detail: error.reason, on: connection)
                try await transaction.enqueue(
                    NotifyUserJob(
                        userID: user, key: L10n.subscriptionExpired, arguments: ["title": subscription.title],
                        buttons: [.renew(channelID: subscription.channelID)]
                    ))
            }
            if subscription.unbanPending {
                try await SubscriptionStore.recordRemovalFailure(subscriptionID: subscription.id, nextAttempt: next, on: connection, logger: logger)
            }
            if try await ChannelStore.pause(id: subscription.channelID, reason: problem.pauseReason, on: connection, logger: logger) {
                try await SalesClosure.cancelOpenOrders(
                    channelID: subscription.channelID, reason: "paused: \(problem.rawValue)", queue: queue, on: connection, logger: logger
                )
                try await transaction.enqueue(
                    NotifyUserJob(
                        userID: subscription.ownerUserID, key: Self.pausedNoticeKey(problem),
                        arguments: ["title": subscription.title, "count": "\(expired.count)"]
                    ))
                try await transaction.raise(
                    .channelPaused(
                        channelID: subscription.channelID, title: subscription.title, problem: problem,
                        expiredWithoutRemoval: expired.count, pausedAt: now
                    ))
            }
            return expired
        }
        for (id, _) in expired { outcomes[id] = .channelUnavailable }
        if subscription.unbanPending && outcomes[subscription.id] == nil { outcomes[subscription.id] = .removeFailed }
        logger.error(
            "the bot cannot act in a closed channel: expired its ended subscriptions without removal and paused it",
            metadata: [
                "channel_id": "\(subscription.channelID)", "problem": "\(problem.rawValue)", "expired": "\(expired.count)",
                "error": "\(error.reason)",
            ])
    }

    static func pausedNoticeKey(_ problem: ChannelProblem) -> String {
        switch problem {
        case .botRights: L10n.accessChannelPausedBotRights
        case .botRemoved: L10n.accessChannelPausedBotRemoved
        }
    }

    private func revokeLinks(of subscription: DueRemoval) async throws {
        let store = self.store
        let links = try await database.withConnection { try await store.openInviteLinks(subscriptionID: subscription.id, on: $0) }
        for link in links {
            do {
                try await access.revokeInviteLink(chatID: subscription.chatID, link: link)
            } catch {
                // A link Telegram already expired cannot admit anyone either.
                logger.debug("revoking an invite link failed", metadata: ["error": "\(Self.reason(error))"])
            }
            try await database.withTransaction { connection in
                try await store.markRevoked(link, on: connection)
                try await store.audit(
                    .linkRevoked, subscriptionID: subscription.id, userID: subscription.userID, chatID: subscription.chatID, on: connection)
            }
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
        let store = self.store
        let candidates = try await database.withConnection { try await store.reminderCandidates(now: now, horizon: horizon, on: $0) }
        var sent = 0
        for candidate in candidates {
            let due = SubscriptionTerm.dueReminders(
                expiry: candidate.expiresAt, now: now, leadDays: settings.reminderDays, alreadySent: candidate.alreadySent
            )
            guard let nearest = due.first else { continue }
            let recorded = try await queue.transaction { transaction -> Bool in
                var inserted = false
                for days in due {
                    let new = try await store.recordReminder(
                        subscriptionID: candidate.subscriptionID, expiresAt: candidate.expiresAt, daysBefore: days, on: transaction.connection
                    )
                    if new && days == nearest { inserted = true }
                }
                if inserted {
                    try await transaction.enqueue(
                        NotifyUserJob(
                            userID: candidate.userID, key: L10n.subscriptionReminder,
                            arguments: ["title": candidate.title, "expires": Self.format(candidate.expiresAt)],
                            dayArguments: ["days": nearest], buttons: [.renew(channelID: candidate.channelID)]
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

    private func audit(_ event: AccessStore.Event, _ subscriptionID: Int64?, userID: Int64, chatID: Int64, detail: String = "") async throws {
        let store = self.store
        try await database.withConnection { connection in
            try await store.audit(event, subscriptionID: subscriptionID, userID: userID, chatID: chatID, detail: detail, on: connection)
        }
    }
}

extension AccessStore.Event {
    init(_ action: ExpiryAction) {
        switch action {
        case .removed: self = .removed
        case .notAMember: self = .notAMember
        case .keptAdmin: self = .keptAdmin
        case .removeFailed, .wouldRemove: self = .removeFailed
        case .unbanned: self = .unbanned
        case .channelUnavailable: self = .channelUnavailable
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

/// Decides `JoinRequestJob`s. A passing failure retries with the job back-off; one about the channel
/// (the bot lost its rights) fails the job, which alerts the admins.
public struct JoinRequestDecider: JobHandler {
    public let service: AccessService

    public init(service: AccessService) {
        self.service = service
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 4) }

    public func run(_ payload: JoinRequestJob, context: JobContext) async throws {
        try await service.handleJoinRequest(chatID: payload.chatID, userID: payload.userID)
    }

    public func classify(_ error: any Error) -> JobErrorClass {
        if let access = error as? ChannelAccessError, !access.isTransient { return .permanent }
        return .retryable
    }
}

/// Checks `MemberJoinedJob`s: removes whoever joined through a subscriber's link without a subscription.
public struct MemberJoinChecker: JobHandler {
    public let service: AccessService

    public init(service: AccessService) {
        self.service = service
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 4) }

    public func run(_ payload: MemberJoinedJob, context: JobContext) async throws {
        try await service.handleJoin(chatID: payload.chatID, userID: payload.userID, inviteLink: payload.inviteLink)
    }

    public func classify(_ error: any Error) -> JobErrorClass {
        if let access = error as? ChannelAccessError, !access.isTransient { return .permanent }
        return .retryable
    }
}
