import Foundation
import Jobs
import Localization
import Logging
import PostgresNIO
import Storage
import TelegramBotAPI

/// One attempt at a channel's offer post. Enqueued after a save, on resuming sales, on the owner's "post now"
/// and by the refresh scan; what the attempt does is decided by the channel's state when it runs.
public struct OfferPostJob: JobPayload {
    public static let kind = "channels.offer_post"
    public static let maxAttempts = 8

    public var channelID: Int64
    /// Which of the pair's posts; `nil` (jobs written before donation posts existed) is the offer.
    public var kind: ChannelPostKind?
    /// The post of a pair removed outright (its rows are gone), to delete.
    public var removedPost: RemovedPost?

    public struct RemovedPost: Codable, Sendable, Hashable {
        public var chatID: Int64
        public var messageID: Int64
    }

    public init(channelID: Int64, kind: ChannelPostKind = .offer, removedPost: RemovedPost? = nil) {
        self.channelID = channelID
        self.kind = kind == .offer ? nil : kind
        self.removedPost = removedPost
    }

    public var postKind: ChannelPostKind { kind ?? .offer }
}

/// The refresh scan of one periodic slot: enqueues an attempt for every channel whose post is due.
public struct OfferPostScanJob: JobPayload {
    public static let kind = "channels.offer_post_scan"
    public var slot: PeriodicSlot

    public init(slot: PeriodicSlot) {
        self.slot = slot
    }
}

/// Asking for posts, from the places that change what a post shows or whether the channel sells. Each
/// writes in the caller's transaction, so the request commits with the change that caused it.
public enum OfferPostRequests {
    /// After a save: each post (offer, donation) is posted when its content changed (or there is none yet),
    /// and a donation post whose message was removed is withdrawn; `jobs` nil posts nothing.
    public static func afterSave(channelID: Int64, jobs: JobQueue?, on connection: PostgresConnection, logger: Logger) async throws {
        guard let jobs else { return }
        for kind in ChannelPostKind.allCases {
            try await OfferPostStore.ensure(channelID: channelID, kind: kind, on: connection, logger: logger)
            try await jobs.enqueue(OfferPostJob(channelID: channelID, kind: kind), on: connection)
        }
    }

    /// Sales paused (the posts are edited to say so, without buttons) or the pair about to be deleted (the
    /// posts are deleted). Each post is read now and carried by its job, since a pair nobody bought is
    /// removed outright with its records.
    public static func afterClosing(channelID: Int64, jobs: JobQueue?, on connection: PostgresConnection, logger: Logger) async throws {
        guard let jobs else { return }
        for kind in ChannelPostKind.allCases {
            guard let post = try await OfferPostStore.currentPost(channelID: channelID, kind: kind, on: connection, logger: logger) else { continue }
            try await jobs.enqueue(OfferPostJob(channelID: channelID, kind: kind, removedPost: post), on: connection)
        }
    }

    /// Sales resumed: both posts anew (with their buttons), whatever the schedule, and automatic posting restarted.
    public static func afterResume(channelID: Int64, at now: Date, jobs: JobQueue?, on connection: PostgresConnection, logger: Logger) async throws {
        guard let jobs else { return }
        for kind in ChannelPostKind.allCases {
            try await OfferPostStore.force(channelID: channelID, kind: kind, at: now, on: connection, logger: logger)
            try await jobs.enqueue(OfferPostJob(channelID: channelID, kind: kind), on: connection)
        }
    }

    /// The owner's "post now" (both posts): refused while the offer's cooldown runs, returning how long is left.
    public static func manual(
        channelID: Int64, settings: OfferPostSettings, jobs: JobQueue?, on connection: PostgresConnection, logger: Logger
    ) async throws -> TimeInterval? {
        guard let jobs else { return nil }
        let now = settings.clock.now()
        if let last = try await OfferPostStore.requestManual(
            channelID: channelID, at: now, cooldown: settings.manualCooldown, on: connection, logger: logger)
        {
            return OfferPostRules.cooldownLeft(lastManual: last, cooldown: settings.manualCooldown, now: now) ?? 1
        }
        try await OfferPostStore.force(channelID: channelID, kind: .donation, at: now, on: connection, logger: logger)
        for kind in ChannelPostKind.allCases {
            try await jobs.enqueue(OfferPostJob(channelID: channelID, kind: kind), on: connection)
        }
        return nil
    }
}

/// Runs `OfferPostJob`s: the state machine of one channel's post.
///
/// An attempt takes the channel's lease (so two jobs for one channel never post twice), reads the channel,
/// decides with `OfferPostRules`, and commits that read before calling Telegram. Posting deletes the previous
/// post first ("message to delete not found" and "message can't be deleted" — Telegram lets bots delete only
/// for 48 hours — are fine: the new post goes out either way), then sends the new one and records its id and
/// time. Flood control and server or network errors retry the job with its backoff; any other error is a
/// counted failure with a readable reason, and after `failuresBeforeStop` in a row automatic posting stops and
/// the owner is told, by a durable message, what to fix.
///
/// Delivery is at least once: a crash after Telegram accepted the post but before it was recorded leaves that
/// post in the channel, and the next attempt posts again without deleting it.
public struct OfferPostPublisher: JobHandler {
    public let client: TelegramClient
    public let database: Database
    public let localizer: Localizer
    public let queue: JobQueue
    public let settings: OfferPostSettings
    public let identity: BotIdentity
    /// How long an attempt may hold its channel before another may take over (a crashed worker's lease).
    public static let lease: TimeInterval = 600

    public init(
        client: TelegramClient, database: Database, localizer: Localizer, queue: JobQueue, settings: OfferPostSettings,
        identity: BotIdentity = BotIdentity()
    ) {
        self.client = client
        self.database = database
        self.localizer = localizer
        self.queue = queue
        self.settings = settings
        self.identity = identity
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 8) }

    /// When another attempt holds the channel, this one looks again after this long (it may have read the
    /// channel before the change that enqueued this job).
    public static let busyRecheck: TimeInterval = 30

    public func run(_ payload: OfferPostJob, context: JobContext) async throws {
        let logger = context.logger
        let channelID = payload.channelID
        let kind = payload.postKind
        let now = settings.clock.now()
        let claim = try await database.withTransaction { connection in
            try await OfferPostStore.claim(
                channelID: channelID, kind: kind, now: now, leaseUntil: now.addingTimeInterval(Self.lease), on: connection, logger: logger
            )
        }
        let snapshot: OfferPostStore.Snapshot
        switch claim {
        case .gone:
            if let removed = payload.removedPost {
                try await withdraw(chat: removed.chatID, messageID: removed.messageID, channelID: channelID, logger: logger)
            }
            return
        case .busy:
            _ = try await queue.enqueue(
                OfferPostJob(channelID: channelID, kind: kind), options: JobOptions(runAt: Date().addingTimeInterval(Self.busyRecheck)))
            return
        case .claimed(let claimed): snapshot = claimed
        }
        do {
            try await attempt(snapshot, now: now, logger: logger)
        } catch {
            try? await database.withConnection { connection in
                try await OfferPostStore.release(channelID: channelID, kind: kind, on: connection, logger: logger)
            }
            throw error
        }
    }

    func attempt(_ snapshot: OfferPostStore.Snapshot, now: Date, logger: Logger) async throws {
        let channelID = snapshot.channelID
        let kind = snapshot.kind
        let bot = try await identity.user(client)
        let message = OfferPostBuilder.message(kind, snapshot.content, botUsername: bot.username ?? "", localizer: localizer)
        let hasContent = OfferPostBuilder.hasContent(kind, snapshot.content)
        var decision = OfferPostRules.decide(
            selling: snapshot.selling, paused: snapshot.paused, hasTiers: hasContent, state: snapshot.state, fingerprint: message.fingerprint,
            now: now
        )
        // A donation post whose message the owner removed has nothing left to say.
        if kind == .donation, !hasContent, snapshot.state.messageID != nil { decision = .withdraw }
        if decision == .withdraw, let messageID = snapshot.state.messageID {
            try await withdraw(chat: snapshot.chatID, messageID: messageID, channelID: channelID, logger: logger)
            try await database.withConnection { connection in
                try await OfferPostStore.recordWithdrawn(channelID: channelID, kind: kind, messageID: messageID, on: connection, logger: logger)
            }
            return
        }
        if decision == .markPaused, let messageID = snapshot.state.messageID {
            try await markPaused(snapshot, message: message, messageID: messageID, now: now, logger: logger)
            return
        }
        guard decision == .post else {
            if case .skip(let reason) = decision {
                logger.debug("channel post not needed", metadata: ["channel_id": "\(channelID)", "kind": "\(kind.rawValue)", "reason": "\(reason)"])
            }
            try await database.withConnection { connection in
                try await OfferPostStore.release(channelID: channelID, kind: kind, on: connection, logger: logger)
            }
            return
        }
        let chat = snapshot.chatID
        var deleted: Int64?
        do {
            if let previous = snapshot.state.messageID {
                let client = self.client
                let outcome = await Result.telegram { () async throws(TelegramError) -> Bool in
                    try await client.send(DeleteMessage(chatId: .id(chat), messageId: previous))
                }
                switch outcome {
                case .success:
                    deleted = previous
                case .failure(.badRequest(let description)) where Self.isAlreadyGone(description):
                    logger.info("previous offer post could not be deleted", metadata: ["channel_id": "\(channelID)", "reason": "\(description)"])
                    // Not found: gone for good. Can't be deleted: still there, so a later attempt (with the
                    // rights back) deletes it, unless a new post replaces it first.
                    if description.lowercased().contains("not found") { deleted = previous }
                case .failure(let error):
                    throw error
                }
            }
            let sent = try await client.send(
                SendMessage(
                    chatId: .id(chat), text: message.text, parseMode: "HTML", linkPreviewOptions: LinkPreviewOptions(isDisabled: true),
                    replyMarkup: .inlineKeyboard(InlineKeyboardMarkup(inlineKeyboard: message.buttons))
                ))
            let next = now.addingTimeInterval(settings.refreshInterval)
            try await database.withTransaction { connection in
                try await OfferPostStore.recordPosted(
                    channelID: channelID, kind: kind, chatID: chat, messageID: sent.messageId, deletedMessageID: deleted,
                    content: message.fingerprint,
                    forcedSeen: snapshot.state.forcedAt, at: now, nextPostAt: next, on: connection, logger: logger
                )
            }
            logger.info(
                "channel post published",
                metadata: [
                    "channel_id": "\(channelID)", "kind": "\(kind.rawValue)", "message_id": "\(sent.messageId)",
                    "replaced": "\(deleted.map(String.init) ?? "-")",
                ])
        } catch let error as TelegramError {
            guard let failure = OfferPostFailure.classify(error) else { throw error }
            try await recordFailure(snapshot, failure: failure, detail: error.description, deleted: deleted, now: now, logger: logger)
        }
    }

    /// Sales are paused: the post keeps its text, says sales are paused, and loses its buttons. A post that is
    /// gone is forgotten; flood control and outages are retried; any other refusal leaves the post as it is.
    func markPaused(_ snapshot: OfferPostStore.Snapshot, message: OfferPostMessage, messageID: Int64, now: Date, logger: Logger) async throws {
        let client = self.client
        let text = OfferPostBuilder.pausedText(message, language: snapshot.content.language, localizer: localizer)
        let edit = EditMessageText(chatId: .id(snapshot.chatID), messageId: messageID, text: text, parseMode: "HTML", replyMarkup: nil)
        let outcome = await Result.telegram { () async throws(TelegramError) -> MessageOrTrue in try await client.send(edit) }
        var gone = false
        var edited = false
        switch outcome {
        case .success, .failure(.notModified):
            edited = true
            logger.info("channel post marked paused", metadata: ["channel_id": "\(snapshot.channelID)", "kind": "\(snapshot.kind.rawValue)"])
        case .failure(let error) where error.isTransient:
            throw error
        case .failure(let error):
            gone = error.description.lowercased().contains("not found")
            logger.info("channel post could not be marked paused", metadata: ["channel_id": "\(snapshot.channelID)", "reason": "\(error)"])
        }
        try await database.withConnection { connection in
            try await OfferPostStore.recordPaused(
                channelID: snapshot.channelID, kind: snapshot.kind, chatID: snapshot.chatID, messageID: messageID, edited: edited,
                messageGone: gone, at: now,
                on: connection, logger: logger
            )
        }
    }

    /// Deletes a post of a channel that stopped selling. Only flood control and outages are retried: a post
    /// already gone, or one the bot may no longer delete, is left as it is.
    func withdraw(chat: Int64, messageID: Int64, channelID: Int64, logger: Logger) async throws {
        let client = self.client
        let outcome = await Result.telegram { () async throws(TelegramError) -> Bool in
            try await client.send(DeleteMessage(chatId: .id(chat), messageId: messageID))
        }
        switch outcome {
        case .success:
            logger.info("offer post withdrawn", metadata: ["channel_id": "\(channelID)", "message_id": "\(messageID)"])
        case .failure(let error) where error.isTransient:
            throw error
        case .failure(let error):
            logger.info("offer post could not be withdrawn", metadata: ["channel_id": "\(channelID)", "reason": "\(error)"])
        }
    }

    /// Deleting found nothing to delete, or a post the bot may not delete (too old, or no rights): either
    /// way, post anew.
    public static func isAlreadyGone(_ description: String) -> Bool {
        let lowered = description.lowercased()
        return lowered.contains("message to delete not found") || lowered.contains("message can't be deleted")
    }

    func recordFailure(_ snapshot: OfferPostStore.Snapshot, failure: OfferPostFailure, detail: String, deleted: Int64?, now: Date, logger: Logger)
        async throws
    {
        let channelID = snapshot.channelID
        let localizer = self.localizer
        try await queue.transaction { transaction in
            let connection = transaction.connection
            let failures = try await OfferPostStore.recordFailed(
                channelID: channelID, kind: snapshot.kind, chatID: snapshot.chatID, failure: failure, detail: detail, deletedMessageID: deleted,
                forcedSeen: snapshot.state.forcedAt, at: now, refreshInterval: settings.refreshInterval, on: connection, logger: logger
            )
            logger.warning(
                "offer post failed",
                metadata: [
                    "channel_id": "\(channelID)", "failure": "\(failure.rawValue)", "detail": "\(detail)", "consecutive": "\(failures)",
                ])
            guard failures == OfferPostSettings.failuresBeforeStop else { return }
            let language = try await TelegramUserStore.language(of: snapshot.ownerUserID, localizer: localizer, on: connection, logger: logger)
            let channel = snapshot.kind == .offer ? snapshot.content.openTitle : snapshot.content.closedTitle
            let (reason, fix) = failure.explained(channel: channel, detail: detail, language: language, localizer: localizer)
            let text = localizer.text(
                snapshot.kind == .offer ? L10n.postsStoppedNotice : L10n.postsStoppedNoticeDonation, language: language,
                [
                    "channel": channel, "count": String(failures), "reason": reason, "fix": fix,
                    "button": localizer.text(L10n.channelsButtonPostNow, language: language),
                ])
            _ = try await transaction.enqueue(SendTelegramMessageJob(chatID: snapshot.ownerUserID, text: text))
            logger.warning("automatic offer posts stopped", metadata: ["channel_id": "\(channelID)", "failures": "\(failures)"])
        }
    }

    public func classify(_ error: any Error) -> JobErrorClass {
        if let telegram = error as? TelegramError {
            return telegram.isTransient || OfferPostFailure.classify(telegram) == nil ? .retryable : .permanent
        }
        return .retryable
    }
}

/// Runs the refresh scan: every minute, one attempt is enqueued for each channel whose post is due.
public struct OfferPostScanner: JobHandler {
    public let database: Database
    public let queue: JobQueue
    public let clock: any WallClock
    /// Most channels one scan enqueues; the rest wait for the next minute.
    public static let batch = 500

    public init(database: Database, queue: JobQueue, clock: any WallClock) {
        self.database = database
        self.queue = queue
        self.clock = clock
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 1) }

    public func run(_ payload: OfferPostScanJob, context: JobContext) async throws {
        try await enqueueDue(logger: context.logger)
    }

    /// Enqueues an attempt per due channel; returns the channels it enqueued for. A channel with an attempt
    /// already waiting or running gets no second one (unique key per channel), so slow attempts do not pile up.
    @discardableResult
    public func enqueueDue(logger: Logger) async throws -> [Int64] {
        let now = clock.now()
        return try await queue.transaction { transaction in
            let due = try await OfferPostStore.due(at: now, limit: Self.batch, on: transaction.connection, logger: logger)
            var enqueued: [Int64] = []
            for (channelID, kind) in due {
                let key = "offer-post-refresh:\(channelID)" + (kind == .offer ? "" : ":\(kind.rawValue)")
                let result = try await transaction.enqueue(OfferPostJob(channelID: channelID, kind: kind), options: JobOptions(uniqueKey: key))
                if result.enqueuedID != nil { enqueued.append(channelID) }
            }
            if !due.isEmpty { logger.info("offer posts due", metadata: ["channels": "\(due.count)", "enqueued": "\(enqueued.count)"]) }
            return enqueued
        }
    }

    /// Every minute; a scan looks at state, not at the slot, so one run covers any missed minutes.
    public static func periodicTask() throws -> PeriodicTask {
        try PeriodicTask("channels.offer_post_scan", every: .seconds(60), catchUp: .runOnce) { OfferPostScanJob(slot: $0) }
    }
}
