import Foundation

/// Who a broadcast goes to. Resolved once, when the broadcast starts, into recipient rows; people who have
/// blocked the bot are left out.
public enum BroadcastAudience: Sendable, Hashable {
    /// Everyone who has used the bot (admins only).
    case allUsers
    /// Everyone who owns a channel pair (admins only).
    case allOwners
    /// The channel's subscribers whose subscription is active.
    case channelActive(channelID: Int64)
    /// The channel's subscribers whose subscription ended within the last `days` days.
    case channelExpired(channelID: Int64, days: Int)
    /// Everyone who ever paid for the channel.
    case channelPaid(channelID: Int64)

    public var kind: BroadcastAudienceKind {
        switch self {
        case .allUsers: .allUsers
        case .allOwners: .allOwners
        case .channelActive: .channelActive
        case .channelExpired: .channelExpired
        case .channelPaid: .channelPaid
        }
    }

    public var channelID: Int64? {
        switch self {
        case .allUsers, .allOwners: nil
        case .channelActive(let id), .channelExpired(let id, _), .channelPaid(let id): id
        }
    }

    public var days: Int? {
        if case .channelExpired(_, let days) = self { return days }
        return nil
    }

    /// Rebuilds an audience from its stored columns; `nil` for a combination the table's checks forbid.
    public init?(kind: BroadcastAudienceKind, channelID: Int64?, days: Int?) {
        switch (kind, channelID, days) {
        case (.allUsers, nil, nil): self = .allUsers
        case (.allOwners, nil, nil): self = .allOwners
        case (.channelActive, let id?, nil): self = .channelActive(channelID: id)
        case (.channelExpired, let id?, let days?): self = .channelExpired(channelID: id, days: days)
        case (.channelPaid, let id?, nil): self = .channelPaid(channelID: id)
        default: return nil
        }
    }

    /// Days an "expired within" audience may look back.
    public static let expiredDays = 1...365
}

/// The `broadcasts.audience` column.
public enum BroadcastAudienceKind: String, Sendable, Hashable, CaseIterable, Codable {
    case allUsers = "all_users"
    case allOwners = "all_owners"
    case channelActive = "channel_active"
    case channelExpired = "channel_expired"
    case channelPaid = "channel_paid"
}

/// The `broadcasts.status` column: composing (waiting for its text) → ready (text checked, waiting for the
/// author's confirmation) → running ⇄ paused → finished, or cancelled from any of them.
public enum BroadcastStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case composing, ready, running, paused, cancelled, finished

    /// Started and not yet over: it owns recipient rows that may still be sent.
    public var isLive: Bool { self == .running || self == .paused }
    public var isOver: Bool { self == .cancelled || self == .finished }
}

/// The `broadcast_recipients.status` column.
public enum RecipientStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case pending, sending, sent, blocked, failed
}

/// One broadcast as stored.
public struct Broadcast: Sendable, Hashable {
    public var id: Int64
    public var authorUserID: Int64
    public var authorLanguage: String
    public var audience: BroadcastAudience
    public var text: String
    public var status: BroadcastStatus
    public var progressChatID: Int64
    public var progressMessageID: Int64?
    public var recipientsTotal: Int
    public var resentAfterRestart: Int
    public var startedAt: Date?
    public var finishedAt: Date?
}

/// How far a broadcast has got. `left` counts recipients not yet sent to (pending, or in flight).
public struct BroadcastCounts: Sendable, Hashable {
    public var sent: Int
    public var blocked: Int
    public var failed: Int
    public var left: Int

    public init(sent: Int = 0, blocked: Int = 0, failed: Int = 0, left: Int = 0) {
        self.sent = sent
        self.blocked = blocked
        self.failed = failed
        self.left = left
    }

    public var total: Int { sent + blocked + failed + left }
    public var done: Int { sent + blocked + failed }
}

/// What the author's progress message shows.
public struct BroadcastProgress: Sendable, Hashable {
    public var broadcast: Broadcast
    public var counts: BroadcastCounts
    /// Estimated time to the end at the rate so far; `nil` before there is a rate, or when not running.
    public var remaining: Duration?

    public init(broadcast: Broadcast, counts: BroadcastCounts, remaining: Duration?) {
        self.broadcast = broadcast
        self.counts = counts
        self.remaining = remaining
    }

    /// Time to send `left` more at the rate `done` took over `elapsed`; `nil` with no rate yet.
    public static func estimate(left: Int, done: Int, elapsed: Duration) -> Duration? {
        guard left > 0 else { return .zero }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        guard done > 0, seconds > 0 else { return nil }
        return .seconds(Int((Double(left) * seconds / Double(done)).rounded(.up)))
    }
}

/// What happened to one send.
public enum DeliveryOutcome: Sendable, Hashable {
    case sent
    /// The person blocked the bot; later broadcasts skip them.
    case blocked
    /// Telegram refused the message for this person for good (the reason is recorded).
    case failed(reason: String)
    /// It may work later: flood control that outlasted the client's own retries (wait `after`), or a
    /// server or network error.
    case retry(after: Duration, reason: String)
}
