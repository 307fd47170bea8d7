import Channels
import Conversations
import Localization
import TelegramBotAPI

/// The administrator rights the bot needs in each role of a channel pair.
extension ChannelRole {
    /// The rights the bot needs, by their Bot API names.
    public var requiredBotRights: [Right] {
        switch self {
        case .closed: [.inviteUsers, .restrictMembers]
        case .open: [.postMessages, .editMessages, .deleteMessages]
        }
    }

    public enum Right: String, Sendable, CaseIterable {
        case inviteUsers = "can_invite_users"
        case restrictMembers = "can_restrict_members"
        case postMessages = "can_post_messages"
        case editMessages = "can_edit_messages"
        case deleteMessages = "can_delete_messages"

        /// The localization key of the right's name as Telegram's admin screen shows it.
        var key: String { "rights.\(rawValue)" }

        func held(by admin: ChatMemberAdministrator) -> Bool {
            switch self {
            case .inviteUsers: admin.canInviteUsers
            case .restrictMembers: admin.canRestrictMembers
            case .postMessages: admin.canPostMessages ?? false
            case .editMessages: admin.canEditMessages ?? false
            case .deleteMessages: admin.canDeleteMessages
            }
        }
    }

    /// The rights as the chat picker asks for them (for the bot and, as a superset, the person).
    var administratorRights: ChatAdministratorRights {
        let rights = Set(requiredBotRights)
        return ChatAdministratorRights(
            isAnonymous: false, canManageChat: false, canDeleteMessages: rights.contains(.deleteMessages),
            canManageVideoChats: false, canRestrictMembers: rights.contains(.restrictMembers), canPromoteMembers: false,
            canChangeInfo: false, canInviteUsers: rights.contains(.inviteUsers), canPostStories: false, canEditStories: false,
            canDeleteStories: false, canPostMessages: rights.contains(.postMessages) ? true : nil,
            canEditMessages: rights.contains(.editMessages) ? true : nil
        )
    }

    /// The rights missing from a member's status (all of them when the member is not an administrator).
    public func missingRights(of member: ChatMember) -> [Right] {
        guard case .administrator(let admin) = member else { return requiredBotRights }
        return requiredBotRights.filter { !$0.held(by: admin) }
    }
}

/// What is wrong with a channel picked for a role, as one localized sentence.
public enum ChannelCheck {
    /// Verifies, through the Bot API, that `chatID` is a channel, that `userID` is its creator or an
    /// administrator, and that the bot holds every right the role needs. Returns the channel's title.
    public static func verify(chatID: Int64, role: ChannelRole, userID: Int64, context: UpdateContext) async throws -> Result<String, InputRejection>
    {
        let client = context.services.client
        let chat: ChatFullInfo
        switch await Result.telegram({ () async throws(TelegramError) -> ChatFullInfo in try await client.send(GetChat(chatId: .id(chatID))) }) {
        case .success(let info):
            chat = info
        case .failure(.chatNotFound), .failure(.forbidden):
            return .failure(InputRejection(L10n.channelsRightsBotNotMember, ["rights": rightsList(role.requiredBotRights, context)]))
        case .failure(let error):
            throw error
        }
        guard chat.type == "channel" else { return .failure(InputRejection(L10n.formErrorChatNotChannel)) }
        let title = chat.title ?? String(chatID)
        let person = try await client.send(GetChatMember(chatId: .id(chatID), userId: userID))
        switch person {
        case .owner, .administrator: break
        default: return .failure(InputRejection(L10n.channelsRightsUserNotAdmin, ["channel": title]))
        }
        if let problem = try await botRightsProblem(chatID: chatID, role: role, title: title, context: context) {
            return .failure(problem)
        }
        return .success(title)
    }

    /// What the bot lacks in `chatID` for `role` — not there or no administrator, or missing rights — as
    /// the instruction the owner gets; `nil` when it holds everything the role needs.
    static func botRightsProblem(chatID: Int64, role: ChannelRole, title: String, context: UpdateContext) async throws -> InputRejection? {
        let client = context.services.client
        let me = try await context.services.botIdentity.user(client)
        let bot: ChatMember
        switch await Result.telegram({ () async throws(TelegramError) -> ChatMember in
            try await client.send(GetChatMember(chatId: .id(chatID), userId: me.id))
        }) {
        case .success(let member):
            bot = member
        case .failure(.forbidden), .failure(.chatNotFound):
            return InputRejection(L10n.channelsRightsBotNotAdmin, ["channel": title, "rights": rightsList(role.requiredBotRights, context)])
        case .failure(let error):
            throw error
        }
        let missing = role.missingRights(of: bot)
        guard !missing.isEmpty else { return nil }
        let key = if case .administrator = bot { L10n.channelsRightsBotMissing } else { L10n.channelsRightsBotNotAdmin }
        return InputRejection(key, ["channel": title, "rights": rightsList(missing, context)])
    }

    static func rightsList(_ rights: [ChannelRole.Right], _ context: UpdateContext) -> String {
        rights.map { "• " + context.text($0.key) }.joined(separator: "\n")
    }
}
