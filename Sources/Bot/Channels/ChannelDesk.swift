import Channels
import Foundation
import Jobs
import Localization
import Logging
import Payouts
import PostgresNIO
import Storage
import Subscriptions

/// What the owner's channel screens read and change. Every method checks that the presser owns the
/// channel, does its work in one transaction, and returns what the screen shows once that has committed:
/// the handler talks to Telegram afterwards, never while a pooled connection or a row lock is held.
public struct ChannelDesk: Sendable {
    let database: Database
    let jobs: JobQueue?
    let logger: Logger

    public init(database: Database, jobs: JobQueue?, logger: Logger) {
        self.database = database
        self.jobs = jobs
        self.logger = logger
    }

    /// Everything a channel's card shows, read in one go after any change the press made.
    public struct Card: Sendable {
        public var channel: ChannelSummary
        public var offerPost: OfferPostState?
        public var donationPost: OfferPostState?
        public var payout: Payout?
    }

    /// Where the owner's money for the channel stands.
    public struct Payout: Sendable {
        public var threshold: Bool
        public var thresholdUSD: Decimal?
        public var currency: String
        public var network: String
        /// Converted USDT, in dollars and cents.
        public var convertedUSD: Decimal
        /// Pending and converting settlement asset, valued at payment time.
        public var waitingUSD: Decimal
    }

    /// The outcome of a press on one channel.
    public enum Outcome<Value: Sendable>: Sendable {
        /// The presser does not own the channel (or it is gone); nothing changed.
        case notOwned
        case done(Value)

        /// `.done` for a value, `.notOwned` for none (reads that return the owned channel or `nil`).
        public init(_ value: Value?) {
            self = value.map { .done($0) } ?? .notOwned
        }
    }

    public enum ResumeOutcome: Sendable {
        case resumed(Card)
        /// An admin paused it; only an admin resumes it.
        case pausedByAdmin
    }

    public enum DeleteOutcome: Sendable {
        case deleted(ChannelSummary)
        /// Subscribers still have access; nothing was deleted.
        case hasSubscribers(Int)
    }

    public enum PostOutcome: Sendable {
        case requested(Card)
        /// The owner's last request was too recent: how long is left.
        case coolingDown(TimeInterval, Card)
        /// Only a selling channel posts.
        case notSelling
    }

    // MARK: - Reads

    public func list(ownerUserID: Int64) async throws -> [ChannelSummary] {
        try await database.withConnection { try await ChannelStore.summaries(ownerUserID: ownerUserID, on: $0, logger: logger) }
    }

    public func count(ownerUserID: Int64) async throws -> Int {
        try await database.withConnection { try await ChannelStore.count(ownerUserID: ownerUserID, on: $0, logger: logger) }
    }

    /// Whether an offer link's token names a channel that sells now.
    public func isOnSale(offerToken: String) async throws -> Bool {
        try await database.withConnection { try await ChannelStore.isOnSale(offerToken: offerToken, on: $0, logger: logger) }
    }

    /// Whether another channel already uses this chat.
    public func isClaimed(chatID: Int64) async throws -> Bool {
        try await database.withConnection { try await ChannelStore.isClaimed(chatID: chatID, on: $0, logger: logger) }
    }

    /// The channel, when `userID` owns it.
    public func owned(_ id: Int64, by userID: Int64) async throws -> ChannelSummary? {
        try await database.withConnection { try await ChannelStore.summary(id: id, ownerUserID: userID, on: $0, logger: logger) }
    }

    public func card(_ id: Int64, by userID: Int64) async throws -> Outcome<Card> {
        try await database.withConnection { connection in
            guard let channel = try await ChannelStore.summary(id: id, ownerUserID: userID, on: connection, logger: logger) else { return .notOwned }
            return .done(try await card(channel, on: connection))
        }
    }

    private func card(_ channel: ChannelSummary, on connection: PostgresConnection) async throws -> Card {
        var card = Card(
            channel: channel,
            offerPost: try await OfferPostStore.state(channelID: channel.id, on: connection, logger: logger),
            donationPost: try await OfferPostStore.state(channelID: channel.id, kind: .donation, on: connection, logger: logger)
        )
        if let settings = try await ChannelStore.payoutSettings(channelID: channel.id, on: connection, logger: logger) {
            let progress = try await ThresholdProgressStore.read(
                channelID: channel.id, ownerUserID: channel.ownerUserID, on: connection, logger: logger)
            card.payout = Payout(
                threshold: settings.strategy == PayoutStrategy.threshold.rawValue, thresholdUSD: settings.thresholdUSD, currency: settings.currency,
                network: settings.network, convertedUSD: progress.convertedUSD, waitingUSD: progress.waitingUSD
            )
        }
        return card
    }

    /// Runs `body` in a transaction when `userID` owns channel `id`.
    private func withOwned<Value: Sendable>(
        _ id: Int64, by userID: Int64, _ body: @Sendable (ChannelSummary, PostgresConnection) async throws -> Value
    ) async throws -> Outcome<Value> {
        try await database.withTransaction { connection in
            guard let channel = try await ChannelStore.summary(id: id, ownerUserID: userID, on: connection, logger: logger) else { return .notOwned }
            return .done(try await body(channel, connection))
        }
    }

    // MARK: - Changes

    /// The owner pauses sales: open orders cancelled, posts taken down.
    public func pause(_ id: Int64, by userID: Int64) async throws -> Outcome<Card> {
        try await withOwned(id, by: userID) { channel, connection in
            try await ChannelLifecycle.pause(id: id, reason: .owner, jobs: jobs, on: connection, logger: logger)
            logger.info("sales paused by the owner", metadata: ["channel_id": "\(id)"])
            return try await card(try await ChannelStore.summary(id: id, on: connection, logger: logger) ?? channel, on: connection)
        }
    }

    /// The owner resumes sales, unless an admin paused them. The caller has checked the bot's rights in
    /// both chats first (that asks Telegram, so it happens before this transaction).
    public func resume(_ id: Int64, by userID: Int64, at now: Date) async throws -> Outcome<ResumeOutcome> {
        try await withOwned(id, by: userID) { channel, connection in
            if channel.pausedReason == .admin {
                logger.info("an owner's resume refused: an admin paused the channel", metadata: ["channel_id": "\(id)"])
                return .pausedByAdmin
            }
            try await ChannelStore.resume(id: id, ownerUserID: channel.ownerUserID, on: connection, logger: logger)
            try await OfferPostRequests.afterResume(channelID: id, at: now, jobs: jobs, on: connection, logger: logger)
            logger.info("sales resumed", metadata: ["channel_id": "\(id)"])
            return .resumed(try await card(try await ChannelStore.summary(id: id, on: connection, logger: logger) ?? channel, on: connection))
        }
    }

    /// Deletes the pair when no subscriber still has access; the sales lock is taken before counting, so a
    /// payment granted meanwhile is counted or waits for the delete.
    public func delete(_ id: Int64, by userID: Int64) async throws -> Outcome<DeleteOutcome> {
        try await withOwned(id, by: userID) { channel, connection in
            try await ChannelLifecycle.lockForClosing(id: id, on: connection, logger: logger)
            let active = try await SubscriptionStore.activeCount(channelID: id, on: connection, logger: logger)
            guard active == 0 else { return .hasSubscribers(active) }
            try await ChannelLifecycle.delete(id: id, ownerUserID: channel.ownerUserID, jobs: jobs, on: connection, logger: logger)
            logger.info("channel deleted", metadata: ["channel_id": "\(id)", "owner": "\(channel.ownerUserID)"])
            return .deleted(channel)
        }
    }

    /// The owner's "post now" for both posts, refused while the cooldown runs.
    public func requestPosts(_ id: Int64, by userID: Int64, settings: OfferPostSettings) async throws -> Outcome<PostOutcome> {
        try await withOwned(id, by: userID) { channel, connection in
            guard channel.status == .active else { return .notSelling }
            if let left = try await OfferPostRequests.manual(channelID: id, settings: settings, jobs: jobs, on: connection, logger: logger) {
                logger.info("offer post refused: cooldown", metadata: ["channel_id": "\(id)", "seconds_left": "\(Int(left))"])
                return .coolingDown(left, try await card(channel, on: connection))
            }
            logger.info("offer post requested by the owner", metadata: ["channel_id": "\(id)"])
            return .requested(try await card(channel, on: connection))
        }
    }

    public enum TestNotification: Sendable {
        /// Queued as a durable job to this recipient.
        case queued(recipient: Int64)
        /// No job queue (tests): the caller sends these facts itself.
        case sendNow(OwnerNotificationFacts)
        /// The channel's notifications are off.
        case off
    }

    /// "Send a test notification": a durable job to the recipient the settings name, as a sale's would be.
    public func testNotification(_ id: Int64, by userID: Int64) async throws -> Outcome<TestNotification> {
        try await withOwned(id, by: userID) { _, connection in
            guard
                let facts = try await OwnerNotificationStore.facts(
                    for: OwnerNotificationJob(channelID: id, notification: .test), on: connection, logger: logger)
            else { return .off }
            guard let jobs else { return .sendNow(facts) }
            try await OwnerNotifications.enqueue(.test, channelID: id, queue: jobs, on: connection)
            logger.info("test notification requested", metadata: ["channel_id": "\(id)", "recipient": "\(facts.recipientID)"])
            return .queued(recipient: facts.recipientID)
        }
    }

    /// The bot lost its place or rights in a configured channel's chat: the channel is paused and, in the
    /// same transaction, its owner is sent `notice` (rendered for the owner's language) as a durable job.
    /// Returns the channel, its role and the text when it was paused now; `nil` when the chat is no
    /// configured channel's or the channel was paused already. Without a job queue (tests) the caller sends.
    public func pauseForLostRights(
        chatID: Int64, reason: @Sendable (ChannelRole) -> ChannelPauseReason?, localizer: Localizer,
        notice: @Sendable (ChannelSummary, ChannelRole, String) -> String
    ) async throws -> (channel: ChannelSummary, role: ChannelRole, reason: ChannelPauseReason, text: String, queued: Bool)? {
        try await database.withTransaction { connection in
            guard let (channel, role) = try await ChannelStore.summary(chatID: chatID, on: connection, logger: logger) else { return nil }
            guard let pauseReason = reason(role) else {
                logger.info(
                    "bot rights in a configured channel are sufficient", metadata: ["channel_id": "\(channel.id)", "role": "\(role.rawValue)"])
                return nil
            }
            guard try await ChannelLifecycle.pause(id: channel.id, reason: pauseReason, jobs: jobs, on: connection, logger: logger) else {
                return nil
            }
            let language = try await TelegramUserStore.language(of: channel.ownerUserID, localizer: localizer, on: connection, logger: logger)
            let text = notice(channel, role, language)
            if let jobs {
                try await jobs.enqueue(SendTelegramMessageJob(chatID: channel.ownerUserID, text: text), on: connection)
            }
            return (channel, role, pauseReason, text, jobs != nil)
        }
    }

    // MARK: - Statistics and exports

    /// The channel's statistics with the owner's balances for it, when `userID` owns it.
    public func stats(_ id: Int64, by userID: Int64) async throws -> Outcome<ChannelStats> {
        let read = try await database.withConnection { connection -> ChannelStats? in
            guard try await ChannelStore.summary(id: id, ownerUserID: userID, on: connection, logger: logger) != nil else { return nil }
            return try await ChannelStatsStore(logger: logger).read(channelID: id, on: connection)
        }
        guard var stats = read else { return .notOwned }
        stats.balances = try await PayoutDesk(database: database, logger: logger).balances(ownerUserID: userID)
            .filter { $0.channelID == id }
            .map {
                ChannelStats.Balance(
                    asset: $0.asset, earned: $0.earned, pending: $0.pending, converting: $0.converting, inFlight: $0.inFlight, paidOut: $0.paidOut)
            }
        return .done(stats)
    }

    /// Writes the channel's CSV of `kind` into `file` in batches; returns the rows written.
    public func export(_ kind: ChannelExportKind, channelID: Int64, to file: URL) async throws -> Int {
        try await ChannelExportStore(database: database, logger: logger).write(kind, channelID: channelID, to: file)
    }
}
