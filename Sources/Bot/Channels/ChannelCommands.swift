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
        guard let userID = context.user?.id else { return false }
        let desk = context.services.channels
        switch data {
        case .channelList:
            try await showList(context, editing: message)
        case .channelAdd:
            try await add(context)
        case .channelOpen(let id):
            if let card = try await owned(id, context, try await desk.card(id, by: userID)) {
                try await showCard(card, context: context, editing: message)
            }
        case .channelEdit(let id):
            if try await owned(id, context, .init(try await desk.owned(id, by: userID))) != nil {
                try await edit(id, context: context)
            }
        case .channelPause(let id):
            if let card = try await owned(id, context, try await desk.pause(id, by: userID)) {
                try await showCard(card, context: context, editing: message)
            }
        case .channelResume(let id):
            // The bot's rights are asked of Telegram before the transaction, which checks ownership again.
            guard let channel = try await owned(id, context, .init(try await desk.owned(id, by: userID))) else { break }
            if channel.pausedReason != .admin, let problem = try await rightsProblem(channel, context: context) {
                try await context.answerCallback()
                try await context.reply(problem.key, problem.arguments)
                break
            }
            switch try await owned(id, context, try await desk.resume(id, by: userID, at: offerPosts.clock.now())) {
            case .resumed(let card):
                try await showCard(card, context: context, editing: message)
            case .pausedByAdmin:
                try await context.answerCallback(text: context.text(L10n.channelsPausedByAdmin))
            case nil:
                break
            }
        case .channelDelete(let id):
            if let channel = try await owned(id, context, .init(try await desk.owned(id, by: userID))) {
                let buttons: [[InlineKeyboardButton]] = [
                    [Self.button(context.text(L10n.channelsButtonDeleteConfirm), .channelDeleteConfirmed(id))],
                    [Self.button(context.text(L10n.formButtonBack), .channelOpen(id))],
                ]
                try await Self.show(
                    context.text(L10n.channelsDeleteQuestion, ["open_title": channel.openTitle]), buttons: buttons, context: context, editing: message
                )
            }
        case .channelDeleteConfirmed(let id):
            switch try await owned(id, context, try await desk.delete(id, by: userID)) {
            case .hasSubscribers(let active):
                let buttons: [[InlineKeyboardButton]] = [
                    [Self.button(context.text(L10n.channelsButtonPause), .channelPause(id))],
                    [Self.button(context.text(L10n.formButtonBack), .channelOpen(id))],
                ]
                try await Self.show(
                    context.text(L10n.channelsDeleteRefused, ["count": String(active)]), buttons: buttons, context: context, editing: message)
            case .deleted(let channel):
                try await Self.show(
                    context.text(L10n.channelsDeleted, ["open_title": channel.openTitle]),
                    buttons: [[Self.button(context.text(L10n.channelsButtonList), .channelList)]], context: context, editing: message)
            case nil:
                break
            }
        case .channelPostNow(let id):
            switch try await owned(id, context, try await desk.requestPosts(id, by: userID, settings: offerPosts)) {
            case .notSelling:
                try await context.answerCallback(text: context.text(L10n.postsNotSelling))
            case .coolingDown(let left, let card):
                try await context.answerCallback(text: context.text(L10n.postsCooldown, ["time": OfferPostRules.minutesAndSeconds(left)]))
                try await showCard(card, context: context, editing: message)
            case .requested(let card):
                try await context.answerCallback(text: context.text(L10n.postsRequested))
                try await showCard(card, context: context, editing: message)
            case nil:
                break
            }
        case .channelTestNotification(let id):
            switch try await owned(id, context, try await desk.testNotification(id, by: userID)) {
            case .off:
                try await context.answerCallback(text: context.text(L10n.channelsTestNotificationOff))
            case .sendNow(let facts):
                let localizer = context.services.localizer
                let language = localizer.resolveLanguage(chosen: facts.recipientChosenLanguage, telegramCode: facts.recipientTelegramLanguage)
                let text = OwnerNotificationText.render(.test, facts: facts, feePercent: 0, language: language, localizer: localizer)
                try await context.services.client.send(SendMessage(chatId: .id(facts.recipientID), text: text, parseMode: "HTML"))
                try await context.answerCallback(text: context.text(L10n.channelsTestNotificationSent))
            case .queued:
                try await context.answerCallback(text: context.text(L10n.channelsTestNotificationSent))
            case nil:
                break
            }
        default:
            return false
        }
        return true
    }

    /// The value of a press on a channel the presser owns; for one they do not, refuses (logged, told) and
    /// returns `nil`.
    func owned<Value>(_ id: Int64, _ context: UpdateContext, _ outcome: ChannelDesk.Outcome<Value>) async throws -> Value? {
        switch outcome {
        case .done(let value):
            return value
        case .notOwned:
            context.logger.warning("channel action refused: not the owner", metadata: ["channel_id": "\(id)", "user_id": "\(context.user?.id ?? 0)"])
            try await context.answerCallback(text: context.text(L10n.channelsNotYours))
            try await context.reply(L10n.channelsNotYours)
            return nil
        }
    }

    // MARK: - Screens

    func showList(_ context: UpdateContext, editing: Int64?) async throws {
        guard let userID = context.user?.id else { return }
        let channels = try await context.services.channels.list(ownerUserID: userID)
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
    static func payoutProgress(_ payout: ChannelDesk.Payout, context: UpdateContext) -> String {
        if payout.threshold, let threshold = payout.thresholdUSD {
            let percent = min(OwnerNotificationText.percent(payout.convertedUSD, of: threshold), 100)
            return context.text(
                L10n.channelsCardThreshold,
                [
                    "converted": DecimalText.usd(payout.convertedUSD), "threshold": DecimalText.usd(threshold), "percent": String(percent),
                    "waiting": DecimalText.usd(payout.waitingUSD), "currency": payout.currency, "network": payout.network,
                ])
        }
        return context.text(
            L10n.channelsCardInstant,
            [
                "pending": DecimalText.usd(payout.waitingUSD + payout.convertedUSD), "currency": payout.currency, "network": payout.network,
            ])
    }

    /// The channel's card, as read after the press's change committed.
    func showCard(_ card: ChannelDesk.Card, context: UpdateContext, editing: Int64?) async throws {
        let channel = card.channel, post = card.offerPost, donationPost = card.donationPost
        let bot = try await context.services.botIdentity.user(context.services.client)
        let link = "https://t.me/\(bot.username ?? "")?start=\(channel.offerToken)"
        let now = offerPosts.clock.now()
        let text =
            context.text(
                L10n.channelsCard,
                [
                    "open_title": channel.openTitle, "closed_title": channel.closedTitle, "status": Self.statusText(channel, context),
                    "tiers": String(channel.enabledTiers), "link": link,
                ]) + "\n\n" + Self.postStatus(post, channel: channel, context: context, now: now)
            + "\n" + Self.donationPostStatus(donationPost, channel: channel, context: context)
            + (card.payout.map { "\n\n" + Self.payoutProgress($0, context: context) } ?? "")
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
        let count = try await context.services.channels.count(ownerUserID: userID)
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
        let services = context.services, localizer = services.localizer
        guard
            let paused = try await services.channels.pauseForLostRights(
                chatID: change.chat.id,
                reason: { role in
                    guard !role.missingRights(of: change.newChatMember).isEmpty else { return nil }
                    if case .administrator = change.newChatMember { return .botRights }
                    return .botRemoved
                },
                localizer: localizer,
                notice: { channel, role, language in
                    let rights = role.missingRights(of: change.newChatMember).map { "• " + localizer.text($0.key, language: language) }
                    return localizer.text(
                        L10n.channelsPausedNotice, language: language,
                        [
                            "channel": role == .closed ? channel.closedTitle : channel.openTitle,
                            "role": localizer.text("channels.role.\(role.rawValue)", language: language), "rights": rights.joined(separator: "\n"),
                        ])
                })
        else { return }
        context.logger.warning(
            "channel paused: the bot lost its place or rights",
            metadata: [
                "channel_id": "\(paused.channel.id)", "role": "\(paused.role.rawValue)", "reason": "\(paused.reason.rawValue)",
                "missing": "\(paused.role.missingRights(of: change.newChatMember).map(\.rawValue))",
            ])
        if !paused.queued {
            try await services.client.send(SendMessage(chatId: .id(paused.channel.ownerUserID), text: paused.text, parseMode: "HTML"))
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
