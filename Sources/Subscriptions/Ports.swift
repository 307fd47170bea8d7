import Channels
import Foundation
import Jobs

/// What the subscription domain needs Telegram to do in a closed channel. The bot's adapter implements it
/// with the Bot API client; tests use the same adapter against the fake Bot API.
public protocol ChannelAccess: Sendable {
    /// Creates an invite link to `chatID` for one subscriber; returns the link.
    func createInviteLink(chatID: Int64, name: String, mode: InviteMode, expiresAt: Date?) async throws(ChannelAccessError) -> String
    func revokeInviteLink(chatID: Int64, link: String) async throws(ChannelAccessError)
    func approveJoinRequest(chatID: Int64, userID: Int64) async throws(ChannelAccessError)
    func declineJoinRequest(chatID: Int64, userID: Int64) async throws(ChannelAccessError)
    func memberStatus(chatID: Int64, userID: Int64) async throws(ChannelAccessError) -> ChannelMemberStatus
    /// Removes the user from the channel (a ban, so they cannot walk back in through an old link).
    func banMember(chatID: Int64, userID: Int64) async throws(ChannelAccessError)
    /// Lifts a ban only if the user is banned, so they can come back with a new invite; a member stays.
    func unbanMember(chatID: Int64, userID: Int64) async throws(ChannelAccessError)
}

/// How invite links admit their subscriber (TELEPAY_INVITE_MODE, and `invite_links.mode`).
public enum InviteMode: String, Sendable, Hashable, CaseIterable {
    /// The link files a join request, which the bot approves only for the subscriber: a leaked link admits nobody.
    case joinRequest = "join_request"
    /// One use, expiring (`expiresAt`); whoever else gets in through it is removed.
    case singleUse = "single_use"
}

/// A user's standing in a channel, as far as removal cares.
public enum ChannelMemberStatus: Sendable, Hashable {
    case owner, administrator, member, notMember, banned

    /// Owners and admins are never removed by the expiry sweep.
    public var isStaff: Bool { self == .owner || self == .administrator }
}

/// Why the bot cannot act in a channel at all; the raw values are the channel's `paused_reason`.
public enum ChannelProblem: String, Sendable, Hashable, Codable {
    /// The bot is not in the chat any more, or the chat is gone.
    case botRemoved = "bot_removed"
    /// The bot is there but lacks an administrator right it needs.
    case botRights = "bot_rights"

    /// The reason the channel's sales are paused for.
    public var pauseReason: ChannelPauseReason {
        switch self {
        case .botRemoved: .botRemoved
        case .botRights: .botRights
        }
    }
}

/// A failed Telegram action, and what it is about: a passing problem (repeating it later can help), the
/// channel itself (nothing done in that channel can work until its owner fixes the bot's place), or this
/// one user (others in the channel are unaffected).
public struct ChannelAccessError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Scope: Sendable, Hashable {
        case transient
        case channel(ChannelProblem)
        case user
    }

    public var scope: Scope
    public var reason: String

    public init(scope: Scope, reason: String) {
        self.scope = scope
        self.reason = reason
    }

    public var isTransient: Bool { scope == .transient }

    /// The problem with the channel, when the error is about the channel rather than the user.
    public var channelProblem: ChannelProblem? {
        if case .channel(let problem) = scope { return problem }
        return nil
    }

    public var description: String { reason }
}

/// A button under a message to a user, described without Telegram types; the bot draws it.
public enum UserButton: Codable, Sendable, Hashable {
    /// Opens a URL (an invoice page, an invite link).
    case url(labelKey: String, url: String)
    /// Shows the channel's offer again, to renew; it works for a user who has bought (or tried to buy) it.
    case renew(channelID: Int64)
    /// Asks for a new invoice for an order whose invoice failed.
    case retryInvoice(orderID: Int64)
}
