import Foundation
import Jobs
import Localization
import Logging
import PostgresNIO
import Storage
import Subscriptions
import TelegramBotAPI

/// The subscription domain's Telegram actions, done with the Bot API client.
public struct TelegramChannelAccess: ChannelAccess {
    public let client: TelegramClient

    public init(client: TelegramClient) {
        self.client = client
    }

    public func createInviteLink(chatID: Int64, name: String, mode: InviteMode, expiresAt: Date?) async throws(ChannelAccessError) -> String {
        let method: CreateChatInviteLink
        switch mode {
        case .joinRequest:
            method = CreateChatInviteLink(chatId: .id(chatID), name: String(name.prefix(32)), createsJoinRequest: true)
        case .singleUse:
            method = CreateChatInviteLink(
                chatId: .id(chatID), name: String(name.prefix(32)), expireDate: expiresAt.map { Int64($0.timeIntervalSince1970) }, memberLimit: 1
            )
        }
        return try await send(method).inviteLink
    }

    public func revokeInviteLink(chatID: Int64, link: String) async throws(ChannelAccessError) {
        _ = try await send(RevokeChatInviteLink(chatId: .id(chatID), inviteLink: link))
    }

    public func approveJoinRequest(chatID: Int64, userID: Int64) async throws(ChannelAccessError) {
        _ = try await send(ApproveChatJoinRequest(chatId: .id(chatID), userId: userID))
    }

    public func declineJoinRequest(chatID: Int64, userID: Int64) async throws(ChannelAccessError) {
        _ = try await send(DeclineChatJoinRequest(chatId: .id(chatID), userId: userID))
    }

    public func memberStatus(chatID: Int64, userID: Int64) async throws(ChannelAccessError) -> ChannelMemberStatus {
        Self.status(of: try await send(GetChatMember(chatId: .id(chatID), userId: userID)))
    }

    /// A restricted user is in the channel only while `is_member` says so: one who left stays "restricted".
    public static func status(of member: ChatMember) -> ChannelMemberStatus {
        switch member {
        case .owner: return .owner
        case .administrator: return .administrator
        case .member: return .member
        case .restricted(let restricted): return restricted.isMember ? .member : .notMember
        case .left: return .notMember
        case .banned: return .banned
        }
    }

    public func banMember(chatID: Int64, userID: Int64) async throws(ChannelAccessError) {
        _ = try await send(BanChatMember(chatId: .id(chatID), userId: userID))
    }

    public func unbanMember(chatID: Int64, userID: Int64) async throws(ChannelAccessError) {
        // Only if banned: unbanning a current member would remove them.
        _ = try await send(UnbanChatMember(chatId: .id(chatID), userId: userID, onlyIfBanned: true))
    }

    /// What a Bot API error on a channel action is about. Flood control, server and network errors pass
    /// (and so does a rejected token or an unreadable answer, which no channel or user caused);
    /// a missing chat, a 403 (the bot was removed from the channel) and a missing administrator right are
    /// about the channel; anything else (an unknown user, an administrator who cannot be banned, a join
    /// request already gone) is about the one user.
    public static func classify(_ error: TelegramError) -> ChannelAccessError.Scope {
        if error.isTransient { return .transient }
        switch error {
        case .chatNotFound, .forbidden, .migrateToChat:
            return .channel(.botRemoved)
        case .unauthorized, .conflict, .invalidResponse:
            // About the bot or the connection, not one channel or user: never a reason to pause a channel.
            return .transient
        case .badRequest(let description):
            let text = description.lowercased()
            let missingChat = ["chat not found", "channel_private", "peer_id_invalid", "chat was deleted", "chat_id_invalid"]
            if missingChat.contains(where: text.contains) { return .channel(.botRemoved) }
            let missingRights = ["not enough rights", "chat_admin_required", "need administrator rights", "have no rights", "right_forbidden"]
            if missingRights.contains(where: text.contains) { return .channel(.botRights) }
            return .user
        default:
            return .user
        }
    }

    private func call<Value: Sendable>(_ body: () async throws(TelegramError) -> Value) async throws(ChannelAccessError) -> Value {
        do throws(TelegramError) {
            return try await body()
        } catch {
            throw ChannelAccessError(scope: Self.classify(error), reason: error.description)
        }
    }

    private func send<Method: TelegramMethod>(_ method: Method) async throws(ChannelAccessError) -> Method.Result {
        try await call { () async throws(TelegramError) -> Method.Result in try await client.send(method) }
    }
}
