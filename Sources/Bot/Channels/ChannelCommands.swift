import Channels
import Conversations
import Foundation
import Localization
import Logging
import Money
import PostgresNIO
import Subscriptions
import TelegramBotAPI

/// `/channels` and everything reachable from it: the owner's list, one channel's card, adding, editing,
/// pausing, resuming and deleting — each press checked against the presser's ownership — and the bot's
/// reaction to losing its place or rights in a configured channel.
public struct ChannelCommands: Sendable {
    public let engine: FormEngine
    public let maximumChannelsPerOwner: Int
    public let offerPosts: OfferPostSettings

    public init(engine: FormEngine, maximumChannelsPerOwner: Int, offerPosts: OfferPostSettings = OfferPostSettings()) {
        self.engine = engine
        self.maximumChannelsPerOwner = maximumChannelsPerOwner
        self.offerPosts = offerPosts
    }

    public func register(into router: inout BotRouter) {
        router.command(BotCommandName.channels.rawValue) { context in
            guard context.chatID.map({ $0 > 0 }) == true else { return }
            try await showList(context, editing: nil)
        }
        router.callback { data, context in
            try await handle(data, context: context)
        }
        router.onMyChatMember { context in
            try await botMembershipChanged(context)
        }
    }

    func handle(_ data: CallbackData, context: UpdateContext) async throws -> Bool {
        let message = context.callbackMessageID
        switch data {
        case .channelList:
            try await showList(context, editing: message)
        case .channelAdd:
            try await add(context)
        case .channelOpen(let id):
            try await withOwned(id, context) { summary, connection in
                try await showCard(summary, context: context, editing: message, connection: connection)
            }
        case .channelEdit(let id):
            if try await withOwned(id, context, { _, _ in }) {
                try await edit(id, context: context)
            }
        case .channelPause(let id):
            try await withOwned(id, context) { summary, connection in
                try await ChannelLifecycle.pause(id: id, reason: .owner, jobs: context.services.jobs, on: connection, logger: context.logger)
                context.logger.info("sales paused by the owner", metadata: ["channel_id": "\(id)"])
                var paused = summary
                paused.status = .paused
                paused.pausedReason = .owner
                try await showCard(paused, context: context, editing: message, connection: connection)
            }
        case .channelResume(let id):
            try await withOwned(id, context) { summary, connection in
                if summary.pausedReason == .admin {
                    context.logger.info("an owner's resume refused: an admin paused the channel", metadata: ["channel_id": "\(id)"])
                    try await context.answerCallback(text: context.text(L10n.channelsPausedByAdmin))
                    return
                }
                if let problem = try await rightsProblem(summary, context: context) {
                    try await context.answerCallback()
                    try await context.reply(problem.key, problem.arguments)
                    return
                }
                try await ChannelStore.resume(id: id, ownerUserID: summary.ownerUserID, on: connection, logger: context.logger)
                try await OfferPostRequests.afterResume(
                    channelID: id, at: offerPosts.clock.now(), jobs: context.services.jobs, on: connection, logger: context.logger
                )
                context.logger.info("sales resumed", metadata: ["channel_id": "\(id)"])
                var active = summary
                active.status = .active
                active.pausedReason = nil
                try await showCard(active, context: context, editing: message, connection: connection)
            }
        case .channelDelete(let id):
            try await withOwned(id, context) { summary, _ in
                let buttons: [[InlineKeyboardButton]] = [
                    [Self.button(context.text(L10n.channelsButtonDeleteConfirm), .channelDeleteConfirmed(id))],
                    [Self.button(context.text(L10n.formButtonBack), .channelOpen(id))],
                ]
                try await Self.show(
                    context.text(L10n.channelsDeleteQuestion, ["open_title": summary.openTitle]), buttons: buttons, context: context, editing: message
                )
            }
        case .channelDeleteConfirmed(let id):
            try await withOwned(id, context) { summary, connection in
                // Locked before counting, so a payment granted meanwhile is counted or waits for the delete.
                try await ChannelLifecycle.lockForClosing(id: id, on: connection, logger: context.logger)
                let active = try await SubscriptionStore.activeCount(channelID: id, on: connection, logger: context.logger)
                if active > 0 {
                    let buttons: [[InlineKeyboardButton]] = [
                        [Self.button(context.text(L10n.channelsButtonPause), .channelPause(id))],
                        [Self.button(context.text(L10n.formButtonBack), .channelOpen(id))],
                    ]
                    try await Self.show(
                        context.text(L10n.channelsDeleteRefused, ["count": String(active)]), buttons: buttons, context: context, editing: message)
                    return
                }
                try await ChannelLifecycle.delete(
                    id: id, ownerUserID: summary.ownerUserID, jobs: context.services.jobs, on: connection, logger: context.logger)
                context.logger.info("channel deleted", metadata: ["channel_id": "\(id)", "owner": "\(summary.ownerUserID)"])
                try await Self.show(
                    context.text(L10n.channelsDeleted, ["open_title": summary.openTitle]),
                    buttons: [[Self.button(context.text(L10n.channelsButtonList), .channelList)]], context: context, editing: message)
            }
        case .channelPostNow(let id):
            try await withOwned(id, context) { summary, connection in
                guard summary.status == .active else {
                    try await context.answerCallback(text: context.text(L10n.postsNotSelling))
                    return
                }
                if let left = try await OfferPostRequests.manual(
                    channelID: id, settings: offerPosts, jobs: context.services.jobs, on: connection, logger: context.logger)
                {
                    context.logger.info("offer post refused: cooldown", metadata: ["channel_id": "\(id)", "seconds_left": "\(Int(left))"])
                    try await context.answerCallback(text: context.text(L10n.postsCooldown, ["time": OfferPostRules.minutesAndSeconds(left)]))
                } else {
                    context.logger.info("offer post requested by the owner", metadata: ["channel_id": "\(id)"])
                    try await context.answerCallback(text: context.text(L10n.postsRequested))
                }
                try await showCard(summary, context: context, editing: message, connection: connection)
            }
        case .channelTestNotification(let id):
            try await withOwned(id, context) { _, connection in
                try await sendTestNotification(channelID: id, context: context, connection: connection)
            }
        default:
            return false
        }
        return true
    }

    /// "Send a test notification": a durable job to the recipient the settings name, as a sale's would be;
    /// with notifications off the owner is told how to turn them on instead.
    func sendTestNotification(channelID: Int64, context: UpdateContext, connection: PostgresConnection) async throws {
        let job = OwnerNotificationJob(channelID: channelID, notification: .test)
        guard let facts = try await OwnerNotificationStore.facts(for: job, on: connection, logger: context.logger) else {
            try await context.answerCallback(text: context.text(L10n.channelsTestNotificationOff))
            return
        }
        if let jobs = context.services.jobs {
            try await OwnerNotifications.enqueue(.test, channelID: channelID, queue: jobs, on: connection)
        } else {
            let localizer = context.services.localizer
            let language = localizer.resolveLanguage(chosen: facts.recipientChosenLanguage, telegramCode: facts.recipientTelegramLanguage)
            let text = OwnerNotificationText.render(.test, facts: facts, feePercent: 0, language: language, localizer: localizer)
            try await context.services.client.send(SendMessage(chatId: .id(facts.recipientID), text: text, parseMode: "HTML"))
        }
        context.logger.info("test notification requested", metadata: ["channel_id": "\(channelID)", "recipient": "\(facts.recipientID)"])
        try await context.answerCallback(text: context.text(L10n.channelsTestNotificationSent))
    }

    // MARK: - Screens

    func showList(_ context: UpdateContext, editing: Int64?) async throws {
        guard let userID = context.user?.id else { return }
        let channels = try await context.services.database.withConnection { connection in
            try await ChannelStore.summaries(ownerUserID: userID, on: connection, logger: context.logger)
        }
        var lines = [
            context.text(
                channels.isEmpty ? L10n.channelsListEmpty : L10n.channelsListTitle,
                ["count": String(channels.count), "max": String(maximumChannelsPerOwner)])
        ]
        for (index, channel) in channels.enumerated() {
            lines.append(
                context.text(
                    L10n.channelsListLine,
                    [
                        "number": String(index + 1), "open_title": channel.openTitle, "closed_title": channel.closedTitle,
                        "status": Self.statusText(channel, context),
                    ]))
        }
        var buttons = channels.map { channel in
            [Self.button(Self.statusMark(channel) + " " + channel.openTitle, .channelOpen(channel.id))]
        }
        buttons.append([Self.button(context.text(L10n.channelsButtonAdd), .channelAdd)])
        try await Self.show(lines.joined(separator: "\n"), buttons: buttons, context: context, editing: editing)
    }

    /// Where the owner's money stands: for threshold payouts the progress (converted USDT of the threshold,
    /// what waits for a conversion) and the next payout; for instant payouts what is pending.
    static func payoutProgress(_ channel: ChannelSummary, context: UpdateContext, connection: PostgresConnection) async throws -> String? {
        guard let settings = try await ChannelStore.payoutSettings(channelID: channel.id, on: connection, logger: context.logger) else { return nil }
        let progress = try await ThresholdProgressStore.read(
            channelID: channel.id, ownerUserID: channel.ownerUserID, on: connection, logger: context.logger)
        if settings.strategy == "threshold", let threshold = settings.thresholdUSD {
            let percent = min(OwnerNotificationText.percent(progress.convertedUSD, of: threshold), 100)
            return context.text(
                L10n.channelsCardThreshold,
                [
                    "converted": DecimalText.usd(progress.convertedUSD), "threshold": DecimalText.usd(threshold), "percent": String(percent),
                    "waiting": DecimalText.usd(progress.waitingUSD), "currency": settings.currency, "network": settings.network,
                ])
        }
        return context.text(
            L10n.channelsCardInstant,
            [
                "pending": DecimalText.usd(progress.waitingUSD + progress.convertedUSD), "currency": settings.currency, "network": settings.network,
            ])
    }

    /// The channel's card; `connection` is the caller's, so a change it just made shows.
    func showCard(_ channel: ChannelSummary, context: UpdateContext, editing: Int64?, connection: PostgresConnection) async throws {
        let bot = try await context.services.botIdentity.user(context.services.client)
        let link = "https://t.me/\(bot.username ?? "")?start=\(channel.offerToken)"
        let post = try await OfferPostStore.state(channelID: channel.id, on: connection, logger: context.logger)
        let donationPost = try await OfferPostStore.state(channelID: channel.id, kind: .donation, on: connection, logger: context.logger)
        let now = offerPosts.clock.now()
        let text =
            context.text(
                L10n.channelsCard,
                [
                    "open_title": channel.openTitle, "closed_title": channel.closedTitle, "status": Self.statusText(channel, context),
                    "tiers": String(channel.enabledTiers), "link": link,
                ]) + "\n\n" + Self.postStatus(post, channel: channel, context: context, now: now)
            + "\n" + Self.donationPostStatus(donationPost, channel: channel, context: context)
            + (try await Self.payoutProgress(channel, context: context, connection: connection).map { "\n\n" + $0 } ?? "")
        let toggle =
            channel.status == .paused
            ? Self.button(context.text(L10n.channelsButtonResume), .channelResume(channel.id))
            : Self.button(context.text(L10n.channelsButtonPause), .channelPause(channel.id))
        var buttons: [[InlineKeyboardButton]] = [
            [Self.button(context.text(L10n.channelsButtonEdit), .channelEdit(channel.id))]
        ]
        if channel.status == .active {
            let left = OfferPostRules.cooldownLeft(lastManual: post?.manualRequestedAt, cooldown: offerPosts.manualCooldown, now: now)
            let label =
                left.map { context.text(L10n.channelsButtonPostWait, ["time": OfferPostRules.minutesAndSeconds($0)]) }
                ?? context.text(L10n.channelsButtonPostNow)
            buttons.append([Self.button(label, .channelPostNow(channel.id))])
        }
        buttons.append([
            Self.button(context.text(L10n.channelsButtonBroadcast), .channelBroadcast(channel.id)),
            Self.button(context.text(L10n.channelsButtonStats), .channelStats(channel.id)),
        ])
        buttons += [
            [Self.button(context.text(L10n.channelsButtonTestNotification), .channelTestNotification(channel.id))],
            [toggle],
            [Self.button(context.text(L10n.channelsButtonDelete), .channelDelete(channel.id))],
            [Self.button(context.text(L10n.channelsButtonList), .channelList)],
        ]
        try await Self.show(text, buttons: buttons, context: context, editing: editing)
    }

    /// The card's lines about the offer post: posted when and next when, failing and why, or stopped and
    /// how to fix it.
    static func postStatus(_ post: OfferPostState?, channel: ChannelSummary, context: UpdateContext, now: Date) -> String {
        guard channel.status == .active else { return context.text(L10n.postsCardNotSelling) }
        guard let post else { return context.text(L10n.postsCardPending, ["channel": channel.openTitle]) }
        let next = post.nextPostAt.map(Self.time) ?? ""
        if let failure = post.lastFailure, post.consecutiveFailures > 0 {
            let (reason, fix) = failure.explained(
                channel: channel.openTitle, detail: post.lastFailureDetail ?? "", language: context.language, localizer: context.services.localizer
            )
            if post.stoppedAt != nil {
                return context.text(
                    L10n.postsCardStopped,
                    [
                        "count": String(post.consecutiveFailures), "reason": reason, "fix": fix,
                        "button": context.text(L10n.channelsButtonPostNow),
                    ])
            }
            return context.text(L10n.postsCardFailing, ["count": String(post.consecutiveFailures), "reason": reason, "next": next])
        }
        if let postedAt = post.postedAt, post.messageID != nil {
            return context.text(L10n.postsCardPosted, ["channel": channel.openTitle, "posted": Self.time(postedAt), "next": next])
        }
        return context.text(L10n.postsCardPending, ["channel": channel.openTitle])
    }

    /// The card's line about the donation post in the private channel.
    static func donationPostStatus(_ post: OfferPostState?, channel: ChannelSummary, context: UpdateContext) -> String {
        guard channel.status == .active else { return context.text(L10n.postsCardDonationNotSelling) }
        guard channel.hasDonationMessage else { return context.text(L10n.postsCardDonationNone) }
        if let post, let failure = post.lastFailure, post.consecutiveFailures > 0 {
            let (reason, fix) = failure.explained(
                channel: channel.closedTitle, detail: post.lastFailureDetail ?? "", language: context.language, localizer: context.services.localizer
            )
            return context.text(
                post.stoppedAt != nil ? L10n.postsCardDonationStopped : L10n.postsCardDonationFailing,
                [
                    "count": String(post.consecutiveFailures), "reason": reason, "fix": fix,
                ])
        }
        if let post, let postedAt = post.postedAt, post.messageID != nil {
            return context.text(L10n.postsCardDonationPosted, ["channel": channel.closedTitle, "posted": Self.time(postedAt)])
        }
        return context.text(L10n.postsCardDonationPending, ["channel": channel.closedTitle])
    }

    /// `2026-12-04 19:50 UTC`.
    static func time(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return formatter.string(from: date) + " UTC"
    }

    static func statusMark(_ channel: ChannelSummary) -> String {
        switch channel.status {
        case .active: "🟢"
        case .paused: "⏸"
        case .setup: "⚙️"
        }
    }

    static func statusText(_ channel: ChannelSummary, _ context: UpdateContext) -> String {
        if channel.status == .paused, let reason = channel.pausedReason {
            return context.text("channels.status.paused_\(reason.rawValue)")
        }
        return context.text("channels.status.\(channel.status.rawValue)")
    }

    // MARK: - Actions

    func add(_ context: UpdateContext) async throws {
        guard let userID = context.user?.id else { return }
        let count = try await context.services.database.withConnection { connection in
            try await ChannelStore.count(ownerUserID: userID, on: connection, logger: context.logger)
        }
        guard count < maximumChannelsPerOwner else {
            context.logger.info("add channel refused: limit reached", metadata: ["owner": "\(userID)", "count": "\(count)"])
            try await context.answerCallback()
            try await context.reply(L10n.channelsLimitReached, ["max": String(maximumChannelsPerOwner)])
            return
        }
        try await context.answerCallback()
        var defaults = ChannelFormBinding.newChannelDefaults
        defaults["post_language"] = ChannelFormBinding.postLanguages.contains(context.language) ? context.language : Localizer.fallbackLanguage
        try await engine.start(ChannelFormBinding.conversation, entry: "new", context: context) { [defaults] _ in
            (defaults, [:])
        }
    }

    func edit(_ id: Int64, context: UpdateContext) async throws {
        guard let userID = context.user?.id else { return }
        try await context.answerCallback()
        try await engine.start(ChannelFormBinding.conversation, entry: "edit", context: context) { session in
            // Checked again under the conversation lock: ownership may have changed since the press.
            guard try await ChannelStore.summary(id: id, ownerUserID: userID, on: session.connection, logger: session.logger) != nil else {
                return nil
            }
            let values = try await ChannelStore.formValues(id: id, on: session.connection, logger: session.logger)
            return (values, ["channel_id": String(id)])
        }
    }

    /// Runs `body` only when the presser owns channel `id`; otherwise refuses, logs and changes nothing.
    @discardableResult
    func withOwned(_ id: Int64, _ context: UpdateContext, _ body: @Sendable (ChannelSummary, PostgresConnection) async throws -> Void) async throws
        -> Bool
    {
        guard let userID = context.user?.id else { return false }
        let owned = try await context.services.database.withTransaction { connection -> Bool in
            guard let summary = try await ChannelStore.summary(id: id, ownerUserID: userID, on: connection, logger: context.logger) else {
                return false
            }
            try await body(summary, connection)
            return true
        }
        if !owned {
            context.logger.warning("channel action refused: not the owner", metadata: ["channel_id": "\(id)", "user_id": "\(userID)"])
            try await context.answerCallback(text: context.text(L10n.channelsNotYours))
            try await context.reply(L10n.channelsNotYours)
        }
        return owned
    }

    /// What the owner must fix before sales can resume, when the bot lacks rights in either chat.
    func rightsProblem(_ channel: ChannelSummary, context: UpdateContext) async throws -> InputRejection? {
        for (role, chatID, title) in [
            (ChannelRole.closed, channel.closedChatID, channel.closedTitle), (.open, channel.openChatID, channel.openTitle),
        ] {
            if let problem = try await ChannelCheck.botRightsProblem(chatID: chatID, role: role, title: title, context: context) {
                return problem
            }
        }
        return nil
    }

    // MARK: - The bot's membership in channels

    /// The bot was removed from, demoted in, or promoted in a channel. A configured channel whose chat no
    /// longer gives the bot what it needs is paused, and its owner is told exactly what to grant.
    func botMembershipChanged(_ context: UpdateContext) async throws {
        guard let change = context.update.myChatMember, change.chat.type == "channel" else { return }
        let services = context.services
        try await services.database.withTransaction { connection in
            guard let (channel, role) = try await ChannelStore.summary(chatID: change.chat.id, on: connection, logger: context.logger) else { return }
            let missing = role.missingRights(of: change.newChatMember)
            guard !missing.isEmpty else {
                context.logger.info(
                    "bot rights in a configured channel are sufficient", metadata: ["channel_id": "\(channel.id)", "role": "\(role.rawValue)"])
                return
            }
            let isAdmin: Bool = if case .administrator = change.newChatMember { true } else { false }
            let reason: ChannelPauseReason = isAdmin ? .botRights : .botRemoved
            guard try await ChannelLifecycle.pause(id: channel.id, reason: reason, jobs: services.jobs, on: connection, logger: context.logger) else {
                return
            }
            context.logger.warning(
                "channel paused: the bot lost its place or rights",
                metadata: [
                    "channel_id": "\(channel.id)", "role": "\(role.rawValue)", "reason": "\(reason.rawValue)",
                    "missing": "\(missing.map(\.rawValue))",
                ])
            let language = try await TelegramUserStore.language(
                of: channel.ownerUserID, localizer: services.localizer, on: connection, logger: context.logger)
            let localizer = services.localizer
            let title = role == .closed ? channel.closedTitle : channel.openTitle
            let rights = missing.map { "• " + localizer.text($0.key, language: language) }.joined(separator: "\n")
            let text = localizer.text(
                L10n.channelsPausedNotice, language: language,
                [
                    "channel": title, "role": localizer.text("channels.role.\(role.rawValue)", language: language), "rights": rights,
                ])
            if let jobs = services.jobs {
                try await jobs.enqueue(SendTelegramMessageJob(chatID: channel.ownerUserID, text: text), on: connection)
            } else {
                try await services.client.send(SendMessage(chatId: .id(channel.ownerUserID), text: text, parseMode: "HTML"))
            }
        }
    }

    // MARK: - Helpers

    static func button(_ label: String, _ data: CallbackData) -> InlineKeyboardButton {
        InlineKeyboardButton(text: label, action: .callbackData(data.encoded))
    }

    /// Edits the pressed message when there is one, else sends a new message.
    static func show(_ text: String, buttons: [[InlineKeyboardButton]], context: UpdateContext, editing: Int64?) async throws {
        guard let chatID = context.chatID else { return }
        let keyboard = InlineKeyboardMarkup(inlineKeyboard: buttons)
        if let editing, try await MenuEditing.edit(context, messageID: editing, text: text, keyboard: keyboard) {
            return
        }
        try await context.services.client.send(
            SendMessage(chatId: .id(chatID), text: text, parseMode: "HTML", replyMarkup: .inlineKeyboard(keyboard)))
    }
}
