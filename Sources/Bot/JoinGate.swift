import Subscriptions
import TelegramBotAPI

/// Who gets into a closed channel: join requests and joins the channels see are handed to `AccessService`,
/// which decides them in durable jobs.
public struct JoinGate: Sendable {
    public let access: AccessService

    public init(access: AccessService) {
        self.access = access
    }

    public func register(into router: inout BotRouter) {
        // Join requests and joins are decided by durable jobs: the handler only enqueues (one insert), so a
        // failure while deciding delays the decision instead of losing the update.
        router.onJoinRequest { context in
            guard let request = context.update.chatJoinRequest else { return }
            try await access.enqueueJoinRequest(chatID: request.chat.id, userID: request.from.id, updateID: context.update.updateId)
        }
        router.onChatMember { context in
            guard let change = context.update.chatMember, let user = Self.joinedUser(change.newChatMember) else { return }
            try await access.enqueueMemberJoined(
                chatID: change.chat.id, userID: user.id, inviteLink: change.inviteLink?.inviteLink, updateID: context.update.updateId
            )
        }
    }

    /// Who is in the channel after a membership change: a member, or a restricted user who is a member.
    static func joinedUser(_ member: ChatMember) -> User? {
        switch member {
        case .member(let member): return member.user
        case .restricted(let restricted) where restricted.isMember: return restricted.user
        default: return nil
        }
    }
}
