import Conversations
import Foundation
import Jobs
import Localization
import Money
import Resilience
import TelegramBotAPI

/// How offer posts are scheduled: the refresh interval, the owner's cooldown between manual posts, and the
/// clock both are measured on (injected, so tests move time).
public struct OfferPostSettings: Sendable {
    public var refreshInterval: TimeInterval
    public var manualCooldown: TimeInterval
    public var clock: any WallClock

    /// Consecutive failed attempts after which automatic posting stops until the owner posts by hand.
    public static let failuresBeforeStop = 5

    public init(refreshInterval: TimeInterval = 24 * 3600, manualCooldown: TimeInterval = 300, clock: any WallClock = SystemWallClock()) {
        self.refreshInterval = refreshInterval
        self.manualCooldown = manualCooldown
        self.clock = clock
    }
}

/// The posts a pair keeps in its channels: the offer in the public channel and the donation post in the
/// private one. Both run through the same attempts, refresh, cooldown and failure counting.
public enum ChannelPostKind: String, Sendable, Hashable, CaseIterable, Codable {
    case offer
    case donation
}

/// What a pair's posts show: the pair's titles and descriptions, its enabled tiers, the donation message,
/// and the language the owner chose for the channel's posts.
public struct OfferPostContent: Sendable, Hashable {
    public struct Tier: Sendable, Hashable {
        public var position: Int
        public var priceUSD: Decimal
        public var durationDays: Int

        public init(position: Int, priceUSD: Decimal, durationDays: Int) {
            self.position = position
            self.priceUSD = priceUSD
            self.durationDays = durationDays
        }
    }

    public var openTitle: String
    public var openDescription: String
    public var closedTitle: String
    public var closedDescription: String
    public var language: String
    public var offerToken: String
    public var tiers: [Tier]
    /// The owner's donation message; without one there is no donation post.
    public var donationMessage: String?

    public init(
        openTitle: String, openDescription: String, closedTitle: String, closedDescription: String, language: String,
        offerToken: String, tiers: [Tier], donationMessage: String? = nil
    ) {
        self.donationMessage = donationMessage
        self.openTitle = openTitle
        self.openDescription = openDescription
        self.closedTitle = closedTitle
        self.closedDescription = closedDescription
        self.language = language
        self.offerToken = offerToken
        self.tiers = tiers
    }
}

/// The message an offer post is: HTML text and one URL button per tier.
public struct OfferPostMessage: Sendable, Hashable {
    public var text: String
    public var buttons: [[InlineKeyboardButton]]
    /// Text and buttons in one string; a post whose fingerprint is unchanged need not be posted again.
    public var fingerprint: String
}

/// Builds offer posts. Pure, so the text, the buttons and their limits are tested without Telegram.
public enum OfferPostBuilder {
    static let medals = [1: "🥇", 2: "🥈", 3: "🥉"]

    /// The deep link that opens the bot on one tier (`?start=t<tier><offer token>`; Purchases reads it).
    public static func tierLink(botUsername: String, position: Int, offerToken: String) -> String {
        "https://t.me/\(botUsername)?start=t\(position)\(offerToken)"
    }

    public static func message(_ content: OfferPostContent, botUsername: String, localizer: Localizer) -> OfferPostMessage {
        let language = content.language
        func line(_ description: String) -> String { description.isEmpty ? "" : "\n" + description }
        let text = localizer.text(
            L10n.postsOfferText, language: language,
            [
                "open_title": content.openTitle, "open_description": line(content.openDescription),
                "closed_title": content.closedTitle, "closed_description": line(content.closedDescription),
            ])
        let buttons = content.tiers.sorted { $0.position < $1.position }.map { tier in
            let label =
                (medals[tier.position].map { $0 + " " } ?? "")
                + localizer.text(
                    L10n.offerTierButton, language: language,
                    [
                        "price": DecimalText.usd(tier.priceUSD),
                        "duration": localizer.text(L10n.daysCount, language: language, count: tier.durationDays),
                    ])
            return [
                InlineKeyboardButton(
                    text: label, action: .url(tierLink(botUsername: botUsername, position: tier.position, offerToken: content.offerToken)))
            ]
        }
        return OfferPostMessage(text: text, buttons: buttons, fingerprint: fingerprint(text, buttons))
    }

    /// The deep link that opens the donation keypad in a private chat (`?start=d<offer token>`).
    public static func donationLink(botUsername: String, offerToken: String) -> String {
        "https://t.me/\(botUsername)?start=d\(offerToken)"
    }

    /// The donation post: the owner's message and one URL button that opens the bot in a private chat — never
    /// a keypad in the channel, where every member would share it.
    public static func donationMessage(_ content: OfferPostContent, botUsername: String, localizer: Localizer) -> OfferPostMessage {
        let text = localizer.text(
            L10n.postsDonationText, language: content.language,
            [
                "message": content.donationMessage ?? "", "closed_title": content.closedTitle,
            ])
        let buttons = [
            [
                InlineKeyboardButton(
                    text: localizer.text(L10n.postsDonationButton, language: content.language),
                    action: .url(donationLink(botUsername: botUsername, offerToken: content.offerToken))
                )
            ]
        ]
        return OfferPostMessage(text: text, buttons: buttons, fingerprint: fingerprint(text, buttons))
    }

    /// The post of `kind` for `content`.
    public static func message(_ kind: ChannelPostKind, _ content: OfferPostContent, botUsername: String, localizer: Localizer) -> OfferPostMessage {
        switch kind {
        case .offer: return message(content, botUsername: botUsername, localizer: localizer)
        case .donation: return donationMessage(content, botUsername: botUsername, localizer: localizer)
        }
    }

    /// Whether `content` has anything to post as `kind`: a tier on sale, a donation message.
    public static func hasContent(_ kind: ChannelPostKind, _ content: OfferPostContent) -> Bool {
        switch kind {
        case .offer: return !content.tiers.isEmpty
        case .donation: return !(content.donationMessage ?? "").isEmpty
        }
    }

    /// A post as it stands while sales are paused: its text and a line saying so, without buttons.
    public static func pausedText(_ message: OfferPostMessage, language: String, localizer: Localizer) -> String {
        message.text + "\n\n" + localizer.text(L10n.postsPausedLine, language: language)
    }

    static func fingerprint(_ text: String, _ buttons: [[InlineKeyboardButton]]) -> String {
        ([text]
            + buttons.joined().map { button -> String in
                if case .url(let url) = button.action { return button.text + " " + url }
                return button.text
            }).joined(separator: "\n")
    }
}

/// Why an attempt failed, as stored (`channel_offer_posts.last_failure`) and explained to the owner.
public enum OfferPostFailure: String, Sendable, Hashable, CaseIterable {
    /// The bot is in the channel but may not post there.
    case noPostRight = "no_post_right"
    /// The bot is not (or no longer) a member of the channel.
    case botRemoved = "bot_removed"
    /// Telegram does not know the chat (deleted, or never visible to the bot).
    case chatNotFound = "chat_not_found"
    /// Telegram refused the message itself.
    case rejected

    /// A Telegram error that retrying will not cure, as a failure; `nil` for errors worth retrying (flood
    /// control, server and network trouble, a token problem that concerns every channel alike).
    public static func classify(_ error: TelegramError) -> OfferPostFailure? {
        switch error {
        case .retryAfter, .server, .network, .unauthorized, .invalidResponse, .conflict:
            return nil
        case .chatNotFound:
            return .chatNotFound
        case .blocked:
            return .botRemoved
        case .forbidden(let description):
            let lowered = description.lowercased()
            return lowered.contains("not a member") || lowered.contains("kicked") ? .botRemoved : .noPostRight
        case .badRequest(let description):
            let lowered = description.lowercased()
            if lowered.contains("need administrator rights") || lowered.contains("not enough rights") || lowered.contains("chat_write_forbidden") {
                return .noPostRight
            }
            return .rejected
        case .notModified, .migrateToChat:
            return .rejected
        }
    }

    /// The reason and the fix as plain text, to be placed (and escaped once) into a card or a notice.
    public func explained(channel: String, detail: String, language: String, localizer: Localizer) -> (reason: String, fix: String) {
        func plain(_ html: String) -> String {
            html.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
        }
        return (
            plain(localizer.text(reasonKey, language: language, ["channel": channel, "detail": detail])),
            plain(localizer.text(fixKey, language: language, ["channel": channel]))
        )
    }

    /// Why, in a sentence with `{channel}`.
    public var reasonKey: String { "posts.failure.\(rawValue)" }
    /// What the owner does about it, with `{channel}`.
    public var fixKey: String { "posts.fix.\(rawValue)" }
}

/// What the store knows about a channel's offer post.
public struct OfferPostState: Sendable, Hashable {
    public var messageID: Int64?
    public var postedAt: Date?
    public var postedContent: String?
    public var nextPostAt: Date?
    public var forcedAt: Date?
    public var manualRequestedAt: Date?
    public var consecutiveFailures: Int
    public var lastFailure: OfferPostFailure?
    public var lastFailureDetail: String?
    public var lastFailureAt: Date?
    public var stoppedAt: Date?
    /// The post was edited to say sales are paused.
    public var pausedAt: Date?

    public init(
        messageID: Int64? = nil, postedAt: Date? = nil, postedContent: String? = nil, nextPostAt: Date? = nil, forcedAt: Date? = nil,
        manualRequestedAt: Date? = nil, consecutiveFailures: Int = 0, lastFailure: OfferPostFailure? = nil, lastFailureDetail: String? = nil,
        lastFailureAt: Date? = nil, stoppedAt: Date? = nil, pausedAt: Date? = nil
    ) {
        self.pausedAt = pausedAt
        self.messageID = messageID
        self.postedAt = postedAt
        self.postedContent = postedContent
        self.nextPostAt = nextPostAt
        self.forcedAt = forcedAt
        self.manualRequestedAt = manualRequestedAt
        self.consecutiveFailures = consecutiveFailures
        self.lastFailure = lastFailure
        self.lastFailureDetail = lastFailureDetail
        self.lastFailureAt = lastFailureAt
        self.stoppedAt = stoppedAt
    }
}

/// The rules of when to post. Pure and tested case by case.
public enum OfferPostRules {
    public enum Decision: Sendable, Hashable {
        case post
        /// The channel was deleted, or the post has nothing left to show: delete it.
        case withdraw
        /// Sales are paused: edit the post to say so and remove its buttons, which would lead nowhere.
        case markPaused
        case skip(String)
    }

    /// Whether an attempt that finds this state posts. Jobs for one channel may be duplicated (a save, a
    /// press and the schedule at once); the state, not the job, decides, so extra jobs change nothing.
    /// `paused`: not selling for now (the post stays, marked paused); not selling and not paused is deleted.
    public static func decide(
        selling: Bool, paused: Bool = false, hasTiers: Bool, state: OfferPostState, fingerprint: String, now: Date
    ) -> Decision {
        guard selling else {
            guard state.messageID != nil else { return .skip("the channel is not selling") }
            guard paused else { return .withdraw }
            return state.pausedAt == nil ? .markPaused : .skip("the post already says sales are paused")
        }
        guard hasTiers else { return .skip("no tier is on sale") }
        if state.pausedAt != nil { return .post }
        if state.forcedAt != nil { return .post }
        if state.stoppedAt != nil { return .skip("automatic posting is stopped") }
        if state.consecutiveFailures > 0, let next = state.nextPostAt, next > now { return .skip("waiting before trying again") }
        if state.messageID == nil { return .post }
        if state.postedContent != fingerprint { return .post }
        if let next = state.nextPostAt, next <= now { return .post }
        return .skip("the post is up to date")
    }

    /// How long after the n-th consecutive failure the next automatic attempt waits: 1, 4, 16, 64 minutes…,
    /// never longer than the refresh interval.
    public static func retryDelay(afterFailures failures: Int, refreshInterval: TimeInterval) -> TimeInterval {
        let backoff = Backoff(initial: .seconds(60), maximum: .seconds(max(60, refreshInterval)), factor: 4, jitter: .none)
        return min(refreshInterval, TimeInterval(backoff.delay(afterAttempt: max(1, failures)).components.seconds))
    }

    /// How much of the manual cooldown is left at `now`; nil when the owner may post.
    public static func cooldownLeft(lastManual: Date?, cooldown: TimeInterval, now: Date) -> TimeInterval? {
        guard let lastManual else { return nil }
        let left = lastManual.addingTimeInterval(cooldown).timeIntervalSince(now)
        return left > 0 ? left : nil
    }

    /// `4:05` for four minutes five seconds (rounded up, so "0:00" is never shown while refusing).
    public static func minutesAndSeconds(_ interval: TimeInterval) -> String {
        let seconds = max(1, Int(interval.rounded(.up)))
        return "\(seconds / 60):" + (seconds % 60 < 10 ? "0" : "") + String(seconds % 60)
    }
}
