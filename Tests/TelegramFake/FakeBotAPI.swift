import FakeServing
import Foundation
import Hummingbird
import Logging
import NIOCore
import TelegramBotAPI

/// A stateful stand-in for the Telegram Bot API server, spoken to over real HTTP.
///
/// It keeps users, chats, members, messages with their keyboards, invite links, join requests and bans,
/// and rejects what the real server rejects with the real error texts: over-long
/// texts (counted in UTF-16 units, as Telegram counts), over-long `callback_data`, empty keyboards, broken
/// HTML, unchanged edits, posts in a channel without the "post messages" right, deleting a message that is
/// gone, a second poller (409), a blocked user (403), and calls beyond the rate limits (429 with `retry_after`).
/// `sendDocument` takes multipart/form-data uploads and refuses files over 50 MB (413), a missing chat, a
/// missing or empty document and an over-long caption.
public actor FakeBotAPI {
    public struct SentMessage: Sendable, Hashable {
        public var chatID: Int64
        public var messageID: Int64
        public var text: String
        public var parseMode: String?
        public var keyboard: InlineKeyboardMarkup?
        public var replyMarkup: ReplyMarkup?
        public var deleted: Bool
    }

    /// A file a bot uploaded with `sendDocument`.
    public struct SentDocument: Sendable, Hashable {
        public var chatID: Int64
        public var messageID: Int64
        public var fileName: String
        public var mimeType: String?
        public var data: Data
        public var caption: String?
    }

    public struct InviteLinkState: Sendable {
        public var link: ChatInviteLink
        public var chatID: Int64
        public var uses: Int
    }

    public nonisolated let token: String
    public nonisolated let bot: User
    public var limits: TelegramRateLimits?

    private(set) public var users: [Int64: User] = [:]
    private(set) public var chats: [Int64: Chat] = [:]
    private(set) public var members: [Int64: [Int64: ChatMember]] = [:]
    private(set) public var messages: [Int64: [SentMessage]] = [:]
    private(set) public var inviteLinks: [String: InviteLinkState] = [:]
    private(set) public var pendingJoinRequests: [Int64: Set<Int64>] = [:]
    private(set) public var blockedBy: Set<Int64> = []
    private(set) public var commands: [String: [BotCommand]] = [:]
    private(set) public var answeredCallbacks: [String: String?] = [:]
    private(set) public var calls: [String] = []
    private(set) public var rejectedWithTooManyRequests = 0
    private(set) public var webhookURL = ""
    private(set) public var documents: [Int64: [SentDocument]] = [:]

    private var updates: [Update] = []
    private var nextUpdateID: Int64 = 1000
    private var confirmedUpdateID: Int64 = 0
    private var allowedUpdates: [String] = []
    private var nextMessageID: [Int64: Int64] = [:]
    private var nextCallbackID = 1
    private var pollers: [UUID: CheckedContinuation<Void, Never>] = [:]
    private var activePoll: UUID?
    private var sendLog: [String: [ContinuousClock.Instant]] = [:]
    private var outstandingCallbacks: Set<String> = []
    private var scriptedFailures: [ScriptedFailure] = []

    /// A failure the test scripts for a method (optionally in one chat), answered instead of the method's
    /// effect the next `remaining` times it is called (`nil`: every time).
    struct ScriptedFailure {
        var method: String
        var chatID: Int64?
        var code: Int
        var description: String
        var remaining: Int?
    }

    public init(token: String = "123456:TEST-token-for-the-fake-bot-api-server", limits: TelegramRateLimits? = nil) {
        self.token = token
        self.bot = User(id: Int64(token.split(separator: ":")[0])!, isBot: true, firstName: "TelePay Test Bot", username: "telepay_test_bot")
        self.limits = limits
    }

    // MARK: - World setup

    public func addUser(id: Int64, firstName: String, username: String? = nil, languageCode: String? = "en") {
        users[id] = User(id: id, isBot: false, firstName: firstName, username: username, languageCode: languageCode)
        chats[id] = Chat(id: id, type: "private", username: username, firstName: firstName)
    }

    /// Creates a channel owned by `owner`, with the bot as an administrator holding `botRights`.
    public func addChannel(id: Int64, title: String, owner: Int64, botIsAdmin: Bool = true, username: String? = nil) {
        chats[id] = Chat(id: id, type: "channel", title: title, username: username)
        var roster: [Int64: ChatMember] = [:]
        if let user = users[owner] {
            roster[owner] = .owner(ChatMemberOwner(user: user, isAnonymous: false))
        }
        roster[bot.id] = botIsAdmin ? botAdministrator : .left(ChatMemberLeft(user: bot))
        members[id] = roster
    }

    /// Makes `user` an administrator of `chat` (without rights that matter to the tests).
    public func makeAdministrator(chat: Int64, user userID: Int64) {
        guard let user = users[userID] else { return }
        members[chat, default: [:]][userID] = .administrator(
            ChatMemberAdministrator(
                user: user, canBeEdited: true, isAnonymous: false, canManageChat: true, canDeleteMessages: false,
                canManageVideoChats: false, canRestrictMembers: false, canPromoteMembers: false, canChangeInfo: false,
                canInviteUsers: true, canPostStories: false, canEditStories: false, canDeleteStories: false
            ))
    }

    /// Changes whether the bot is an administrator (with every right the tests use) of `chat`, e.g. an owner
    /// demoting it by mistake.
    public func setBotAdministrator(_ isAdmin: Bool, chat: Int64) {
        members[chat, default: [:]][bot.id] = isAdmin ? botAdministrator : .member(ChatMemberMember(user: bot))
    }

    /// The bot as an administrator with every right the tests use.
    var botAdministrator: ChatMember {
        .administrator(
            ChatMemberAdministrator(
                user: bot, canBeEdited: false, isAnonymous: false, canManageChat: true, canDeleteMessages: true,
                canManageVideoChats: false, canRestrictMembers: true, canPromoteMembers: false, canChangeInfo: false,
                canInviteUsers: true, canPostStories: false, canEditStories: false, canDeleteStories: false,
                canPostMessages: true, canEditMessages: true))
    }

    public func setLimits(_ limits: TelegramRateLimits?) {
        self.limits = limits
    }

    /// Makes the next `times` calls of `method` (in `chat`, when given; every call while `times` is nil)
    /// fail with `code` and `description` and no effect, as Telegram does during an outage (`500 Internal
    /// Server Error`, `502 Bad Gateway`) or for a chat it refuses.
    public func failCalls(
        _ method: String, chat: Int64? = nil, times: Int? = 1, code: Int = 500, description: String = "Internal Server Error"
    ) {
        scriptedFailures.append(ScriptedFailure(method: method, chatID: chat, code: code, description: description, remaining: times))
    }

    /// Ends every scripted failure.
    public func stopFailingCalls() {
        scriptedFailures.removeAll()
    }

    /// Restricts a member (as an admin can), keeping them in the chat.
    public func restrict(chat chatID: Int64, user userID: Int64) {
        guard let user = users[userID] else { return }
        members[chatID, default: [:]][userID] = .restricted(Self.restricted(user, isMember: true))
    }

    static func restricted(_ user: User, isMember: Bool) -> ChatMemberRestricted {
        ChatMemberRestricted(
            user: user, isMember: isMember, canSendMessages: false, canSendAudios: false, canSendDocuments: false, canSendPhotos: false,
            canSendVideos: false, canSendVideoNotes: false, canSendVoiceNotes: false, canSendPolls: false, canSendOtherMessages: false,
            canAddWebPagePreviews: false, canReactToMessages: false, canEditTag: false, canChangeInfo: false, canInviteUsers: false,
            canPinMessages: false, canManageTopics: false, untilDate: 0
        )
    }

    // MARK: - Scripted user actions (they become updates for the bot)

    /// The user sends a text message to the bot; returns the update id.
    @discardableResult
    public func userSendsText(_ userID: Int64, _ text: String) -> Int64 {
        let user = users[userID]!
        let chat = chats[userID]!
        let messageID = allocateMessageID(in: userID)
        var entities: [MessageEntity]?
        if text.hasPrefix("/") {
            let commandLength = text.split(separator: " ", maxSplits: 1).first.map { $0.utf16.count } ?? 0
            entities = [MessageEntity(type: "bot_command", offset: 0, length: Int64(commandLength))]
        }
        let message = Message(messageId: messageID, from: user, date: now(), chat: chat, text: text, entities: entities)
        return enqueue(Update(updateId: 0, message: message))
    }

    /// The user taps the inline button labelled `label` on the newest message in their chat showing it
    /// (or on message `messageID`, e.g. an older menu still on screen).
    @discardableResult
    public func userTapsButton(_ userID: Int64, label: String, onMessage messageID: Int64? = nil) throws -> Int64 {
        guard
            let sent = messages[userID]?.last(where: {
                !$0.deleted && (messageID == nil || $0.messageID == messageID)
                    && $0.keyboard?.inlineKeyboard.joined().contains { $0.text == label } == true
            }),
            let button = sent.keyboard?.inlineKeyboard.joined().first(where: { $0.text == label }),
            case .callbackData(let data) = button.action
        else { throw FakeError.noSuchButton(label) }
        let message = Message(messageId: sent.messageID, from: bot, date: now(), chat: chats[userID]!, text: sent.text, replyMarkup: sent.keyboard)
        return press(userID, data: data, on: message)
    }

    /// Sends raw callback data as if from a button on message `messageID` (a crafted or replayed press).
    @discardableResult
    public func userSendsCallback(_ userID: Int64, data: String, onMessage messageID: Int64) -> Int64 {
        press(userID, data: data, on: Message(messageId: messageID, from: bot, date: now(), chat: chats[userID]!, text: ""))
    }

    /// A callback query from `userID` with `data`, pressed on `message`; the bot must answer it.
    private func press(_ userID: Int64, data: String, on message: Message) -> Int64 {
        let queryID = "cbq-\(nextCallbackID)"
        nextCallbackID += 1
        outstandingCallbacks.insert(queryID)
        let query = CallbackQuery(id: queryID, from: users[userID]!, message: .message(message), chatInstance: "ci-\(userID)", data: data)
        return enqueue(Update(updateId: 0, callbackQuery: query))
    }

    /// The user taps the newest chat-picker button shown to them and picks `chatID`. Like Telegram, the
    /// picker offers only chats of the requested type where the user holds the requested rights, and when
    /// the bot is asked to be an administrator there, it is added (or promoted) with the requested rights.
    @discardableResult
    public func userSharesChat(_ userID: Int64, chat chatID: Int64) throws -> Int64 {
        guard let sent = messages[userID]?.last(where: { !$0.deleted && $0.replyMarkup.map(Self.chatRequest) != nil }),
            let markup = sent.replyMarkup, let request = Self.chatRequest(markup)
        else { throw FakeError.noChatPicker }
        guard let chat = chats[chatID], chat.type == (request.chatIsChannel ? "channel" : chat.type), chat.type != "private" else {
            throw FakeError.chatNotEligible(chatID)
        }
        switch members[chatID]?[userID] {
        case .owner: break
        case .administrator(let admin):
            if let wanted = request.userAdministratorRights, !Self.grants(admin, wanted) { throw FakeError.chatNotEligible(chatID) }
        default:
            if request.userAdministratorRights != nil { throw FakeError.chatNotEligible(chatID) }
        }
        if let wanted = request.botAdministratorRights {
            let current: ChatMemberAdministrator? = if case .administrator(let admin) = members[chatID]?[bot.id] { admin } else { nil }
            if current.map({ !Self.grants($0, wanted) }) ?? true {
                setBotAdministrator(chat: chatID, rights: wanted, by: userID)
            }
        }
        let message = Message(
            messageId: allocateMessageID(in: userID), from: users[userID]!, date: now(), chat: chats[userID]!,
            chatShared: ChatShared(requestId: request.requestId, chatId: chatID, title: request.requestTitle == true ? chat.title : nil)
        )
        return enqueue(Update(updateId: 0, message: message))
    }

    /// The user forwards a post of channel `chatID` to the bot.
    @discardableResult
    public func userForwardsPost(_ userID: Int64, from chatID: Int64) -> Int64 {
        let origin = MessageOrigin.channel(MessageOriginChannel(date: now(), chat: chats[chatID]!, messageId: 7))
        let message = Message(
            messageId: allocateMessageID(in: userID), from: users[userID]!, date: now(), chat: chats[userID]!, forwardOrigin: origin, text: "A post")
        return enqueue(Update(updateId: 0, message: message))
    }

    /// Makes `userID` an administrator of `chatID` (no special rights).
    public func addAdministrator(chat chatID: Int64, user userID: Int64) {
        members[chatID, default: [:]][userID] = .administrator(
            ChatMemberAdministrator(
                user: users[userID]!, canBeEdited: true, isAnonymous: false, canManageChat: true, canDeleteMessages: false,
                canManageVideoChats: false, canRestrictMembers: false, canPromoteMembers: false, canChangeInfo: false,
                canInviteUsers: false, canPostStories: false, canEditStories: false, canDeleteStories: false
            ))
    }

    /// The channel's owner makes the bot an administrator with exactly `rights` (nil: removes the bot);
    /// the bot gets a `my_chat_member` update, as from Telegram.
    public func setBotAdministrator(chat chatID: Int64, rights: ChatAdministratorRights?, by actorID: Int64) {
        let old = members[chatID]?[bot.id] ?? .left(ChatMemberLeft(user: bot))
        let new: ChatMember =
            rights.map { rights in
                .administrator(
                    ChatMemberAdministrator(
                        user: bot, canBeEdited: false, isAnonymous: false, canManageChat: true, canDeleteMessages: rights.canDeleteMessages,
                        canManageVideoChats: false, canRestrictMembers: rights.canRestrictMembers, canPromoteMembers: false,
                        canChangeInfo: false, canInviteUsers: rights.canInviteUsers, canPostStories: false, canEditStories: false,
                        canDeleteStories: false, canPostMessages: rights.canPostMessages ?? false, canEditMessages: rights.canEditMessages ?? false
                    ))
            } ?? .left(ChatMemberLeft(user: bot))
        members[chatID, default: [:]][bot.id] = new
        let actor = users[actorID] ?? bot
        enqueue(
            Update(
                updateId: 0, myChatMember: ChatMemberUpdated(chat: chats[chatID]!, from: actor, date: now(), oldChatMember: old, newChatMember: new)))
    }

    public static func chatRequest(_ markup: ReplyMarkup) -> KeyboardButtonRequestChat? {
        guard case .replyKeyboard(let keyboard) = markup else { return nil }
        return keyboard.keyboard.joined().compactMap(\.requestChat).last
    }

    /// Whether an administrator holds every right `wanted` asks for.
    static func grants(_ admin: ChatMemberAdministrator, _ wanted: ChatAdministratorRights) -> Bool {
        (!wanted.canInviteUsers || admin.canInviteUsers) && (!wanted.canRestrictMembers || admin.canRestrictMembers)
            && (!wanted.canDeleteMessages || admin.canDeleteMessages) && (!(wanted.canPostMessages ?? false) || (admin.canPostMessages ?? false))
            && (!(wanted.canEditMessages ?? false) || (admin.canEditMessages ?? false)) && (!wanted.canPromoteMembers || admin.canPromoteMembers)
            && (!wanted.canChangeInfo || admin.canChangeInfo) && (!wanted.canManageChat || admin.canManageChat)
    }

    /// The user opens an invite link: joins directly, or files a join request when the link asks for one.
    public func userOpensInviteLink(_ userID: Int64, _ url: String) throws {
        guard var state = inviteLinks[url] else { throw FakeError.unknownInviteLink }
        let link = state.link
        if link.isRevoked { throw FakeError.inviteLinkRevoked }
        if let expiry = link.expireDate, expiry <= now() { throw FakeError.inviteLinkExpired }
        if let limit = link.memberLimit, state.uses >= limit { throw FakeError.inviteLinkUsedUp }
        if case .banned = members[state.chatID]?[userID] { throw FakeError.userIsBanned }
        let user = users[userID]!
        let chat = chats[state.chatID]!
        if link.createsJoinRequest {
            pendingJoinRequests[state.chatID, default: []].insert(userID)
            enqueue(Update(updateId: 0, chatJoinRequest: ChatJoinRequest(chat: chat, from: user, userChatId: userID, date: now(), inviteLink: link)))
            return
        }
        state.uses += 1
        inviteLinks[url] = state
        changeMembership(chat: state.chatID, user: userID, to: joined(user, chat: state.chatID), by: user, via: link)
    }

    /// A channel administrator deletes a message by hand (e.g. the bot's post); the bot is not told.
    public func administratorDeletes(chat chatID: Int64, messageID: Int64) {
        guard let index = messages[chatID]?.firstIndex(where: { $0.messageID == messageID }) else { return }
        messages[chatID]![index].deleted = true
    }

    /// The user leaves. Like Telegram, a restricted user stays `restricted`, with `is_member` false, so the
    /// restriction applies if they come back.
    public func userLeaves(_ userID: Int64, chat chatID: Int64) {
        let user = users[userID]!
        let after: ChatMember =
            if case .restricted = members[chatID]?[userID] {
                .restricted(Self.restricted(user, isMember: false))
            } else {
                .left(ChatMemberLeft(user: user))
            }
        changeMembership(chat: chatID, user: userID, to: after, by: user, via: nil)
    }

    /// The user blocks the bot: later sends to them fail with 403, and the bot gets `my_chat_member`.
    public func userBlocksBot(_ userID: Int64) {
        blockedBy.insert(userID)
        let user = users[userID]!
        let update = ChatMemberUpdated(
            chat: chats[userID]!, from: user, date: now(),
            oldChatMember: .member(ChatMemberMember(user: bot)), newChatMember: .banned(ChatMemberBanned(user: bot, untilDate: 0))
        )
        enqueue(Update(updateId: 0, myChatMember: update))
    }

    // MARK: - Observations

    public func sentMessages(to chatID: Int64) -> [SentMessage] {
        (messages[chatID] ?? []).filter { $0.messageID > 0 }
    }

    public func lastMessage(to chatID: Int64) -> SentMessage? {
        sentMessages(to: chatID).last(where: { !$0.deleted })
    }

    public func memberStatus(chat: Int64, user: Int64) -> String? {
        guard let member = members[chat]?[user] else { return nil }
        switch member {
        case .owner: return "creator"
        case .administrator: return "administrator"
        case .member: return "member"
        case .restricted(let restricted): return restricted.isMember ? "restricted" : "restricted, not a member"
        case .left: return "left"
        case .banned: return "kicked"
        }
    }

    public var pendingUpdateCount: Int {
        updates.filter { $0.updateId > confirmedUpdateID }.count
    }

    // MARK: - HTTP

    /// Starts the server on a free loopback port; returns its base URL and a task to cancel when done.
    public nonisolated func start() async throws -> (baseURL: String, server: Task<Void, any Error>) {
        let router = Router()
        router.post(":bottoken/:method") { request, context -> Response in
            let token = String((context.parameters.get("bottoken") ?? "").dropFirst(3))
            let method = context.parameters.get("method") ?? ""
            let status: Int, json: [UInt8]
            if let contentType = request.headers[.contentType], contentType.lowercased().hasPrefix("multipart/form-data") {
                // Read to the end even past the limit, as a real server's front end does before answering 413.
                var collected = ByteBuffer()
                var total = 0
                for try await chunk in request.body {
                    total += chunk.readableBytes
                    if total <= Self.maximumUploadRequestBytes { collected.writeImmutableBuffer(chunk) }
                }
                if total > Self.maximumUploadRequestBytes {
                    (status, json) = await self.tooLarge(token: token, method: method)
                } else {
                    (status, json) = await self.handleMultipart(
                        token: token, method: method, contentType: contentType, body: Data(collected.readableBytesView))
                }
            } else {
                let body = try await request.body.collect(upTo: 10 * 1024 * 1024)
                (status, json) = await self.handle(token: token, method: method, body: Data(body.readableBytesView))
            }
            return Response(
                status: .init(code: status),
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: json))
            )
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: Logger(label: "fake-bot-api") { _ in SwiftLogNoOpLogHandler() }
        )
        let server = serveUntilCancelled(app, logger: app.logger)
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw FakeError.serverDidNotStart }
        return ("http://127.0.0.1:\(port)", server)
    }

    func handle(token: String, method: String, body: Data) async -> (Int, [UInt8]) {
        guard token == self.token else { return error(401, "Unauthorized") }
        calls.append(method)
        let params = (try? JSONDecoder().decode(JSONValue.self, from: body.isEmpty ? Data("{}".utf8) : body))?.native as? [String: Any] ?? [:]
        if let limited = checkRateLimit(method: method, params: params) { return limited }
        if let index = scriptedFailures.firstIndex(where: { $0.method == method && ($0.chatID == nil || $0.chatID == int(params["chat_id"])) }) {
            let failure = scriptedFailures[index]
            if let remaining = failure.remaining {
                if remaining <= 1 { scriptedFailures.remove(at: index) } else { scriptedFailures[index].remaining = remaining - 1 }
            }
            return error(failure.code, failure.description)
        }
        do {
            switch method {
            case "getMe": return ok(bot)
            case "getUpdates": return await getUpdates(params)
            case "setWebhook": return setWebhook(params)
            case "deleteWebhook":
                webhookURL = ""
                return ok(true)
            case "getWebhookInfo":
                return ok(WebhookInfo(url: webhookURL, hasCustomCertificate: false, pendingUpdateCount: Int64(pendingUpdateCount)))
            case "sendMessage": return try sendMessage(params)
            case "editMessageText": return try editMessage(params, text: true)
            case "editMessageReplyMarkup": return try editMessage(params, text: false)
            case "deleteMessage": return try deleteMessage(params)
            case "answerCallbackQuery": return answerCallbackQuery(params)
            case "setMyCommands": return try setMyCommands(params)
            case "deleteMyCommands":
                commands[params["language_code"] as? String ?? ""] = nil
                return ok(true)
            case "getChat": return try getChat(params)
            case "getChatMember": return try getChatMember(params)
            case "createChatInviteLink": return try createInviteLink(params)
            case "revokeChatInviteLink": return try revokeInviteLink(params)
            case "approveChatJoinRequest": return try resolveJoinRequest(params, approve: true)
            case "declineChatJoinRequest": return try resolveJoinRequest(params, approve: false)
            case "banChatMember": return try banChatMember(params)
            case "unbanChatMember": return try unbanChatMember(params)
            default: return error(404, "Not Found: method not found")
            }
        } catch let failure as FakeFailure {
            return error(failure.code, failure.description)
        } catch {
            return self.error(400, "Bad Request: \(error)")
        }
    }

    // MARK: - Methods

    private func getUpdates(_ params: [String: Any]) async -> (Int, [UInt8]) {
        if !webhookURL.isEmpty {
            return error(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
        }
        if let offset = int(params["offset"]), offset > 0 {
            confirmedUpdateID = max(confirmedUpdateID, offset - 1)
            updates.removeAll { $0.updateId <= confirmedUpdateID }
        }
        if let allowed = params["allowed_updates"] as? [String] {
            allowedUpdates = allowed
        }
        let limit = min(max(int(params["limit"]) ?? 100, 1), 100)
        let timeout = min(max(int(params["timeout"]) ?? 0, 0), 50)
        let poll = UUID()
        if let previous = activePoll, let waiting = pollers.removeValue(forKey: previous) {
            activePoll = poll
            waiting.resume()
            _ = previous
        }
        activePoll = poll
        if deliverable().isEmpty && timeout > 0 {
            await withCheckedContinuation { continuation in
                pollers[poll] = continuation
                Task {
                    try? await Task.sleep(for: .seconds(timeout))
                    self.wakePoller(poll)
                }
            }
        }
        if activePoll != poll {
            return error(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running")
        }
        activePoll = nil
        return ok(Array(deliverable().prefix(Int(limit))))
    }

    private func wakePoller(_ poll: UUID) {
        pollers.removeValue(forKey: poll)?.resume()
    }

    private func deliverable() -> [Update] {
        updates.filter { $0.updateId > confirmedUpdateID && isAllowed($0) }
    }

    private func isAllowed(_ update: Update) -> Bool {
        let kind: String
        if update.message != nil {
            kind = "message"
        } else if update.callbackQuery != nil {
            kind = "callback_query"
        } else if update.myChatMember != nil {
            kind = "my_chat_member"
        } else if update.chatMember != nil {
            kind = "chat_member"
        } else if update.chatJoinRequest != nil {
            kind = "chat_join_request"
        } else {
            kind = "other"
        }
        if allowedUpdates.isEmpty { return kind != "chat_member" }
        return allowedUpdates.contains(kind)
    }

    private func setWebhook(_ params: [String: Any]) -> (Int, [UInt8]) {
        let url = params["url"] as? String ?? ""
        if let secret = params["secret_token"] as? String,
            secret.isEmpty || secret.count > 256 || !secret.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        {
            return error(400, "Bad Request: secret token contains unallowed characters")
        }
        if let allowed = params["allowed_updates"] as? [String] { allowedUpdates = allowed }
        webhookURL = url
        if let poll = activePoll, let waiting = pollers.removeValue(forKey: poll) {
            activePoll = UUID()
            waiting.resume()
        }
        return ok(true)
    }

    private func sendMessage(_ params: [String: Any]) throws -> (Int, [UInt8]) {
        let chatID = try chat(params)
        // In a channel only administrators with the "post messages" right may post.
        if chats[chatID]?.type == "channel" {
            guard case .administrator(let admin) = members[chatID]?[bot.id], admin.canPostMessages == true else {
                throw FakeFailure(code: 400, description: "Bad Request: need administrator rights in the channel chat")
            }
        }
        let text = params["text"] as? String ?? ""
        try validateText(text, parseMode: params["parse_mode"] as? String)
        let markup = try replyMarkup(params)
        let messageID = allocateMessageID(in: chatID)
        var keyboard: InlineKeyboardMarkup?
        if case .inlineKeyboard(let inline) = markup { keyboard = inline }
        messages[chatID, default: []].append(
            SentMessage(
                chatID: chatID, messageID: messageID, text: text, parseMode: params["parse_mode"] as? String,
                keyboard: keyboard, replyMarkup: markup, deleted: false
            ))
        return ok(Message(messageId: messageID, from: bot, date: now(), chat: chats[chatID]!, text: text, replyMarkup: keyboard))
    }

    private func editMessage(_ params: [String: Any], text editsText: Bool) throws -> (Int, [UInt8]) {
        let chatID = try chat(params)
        guard let messageID = int(params["message_id"]),
            let index = messages[chatID]?.firstIndex(where: { $0.messageID == messageID && !$0.deleted })
        else { throw FakeFailure(code: 400, description: "Bad Request: message to edit not found") }
        var message = messages[chatID]![index]
        let markup = try replyMarkup(params)
        var keyboard: InlineKeyboardMarkup?
        if case .inlineKeyboard(let inline) = markup { keyboard = inline }
        let newText = editsText ? (params["text"] as? String ?? "") : message.text
        if editsText { try validateText(newText, parseMode: params["parse_mode"] as? String) }
        if newText == message.text && keyboard == message.keyboard {
            throw FakeFailure(
                code: 400,
                description:
                    "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"
            )
        }
        message.text = newText
        message.keyboard = keyboard
        messages[chatID]![index] = message
        return ok(Message(messageId: messageID, from: bot, date: now(), chat: chats[chatID]!, text: newText, replyMarkup: keyboard))
    }

    private func deleteMessage(_ params: [String: Any]) throws -> (Int, [UInt8]) {
        let chatID = try chat(params)
        guard let messageID = int(params["message_id"]),
            let index = messages[chatID]?.firstIndex(where: { $0.messageID == messageID && !$0.deleted })
        else { throw FakeFailure(code: 400, description: "Bad Request: message to delete not found") }
        // In a channel a bot deletes with "delete messages", or its own posts with "post messages".
        if chats[chatID]?.type == "channel" {
            guard case .administrator(let admin) = members[chatID]?[bot.id], admin.canDeleteMessages || admin.canPostMessages == true else {
                throw FakeFailure(code: 400, description: "Bad Request: message can't be deleted")
            }
        }
        messages[chatID]![index].deleted = true
        return ok(true)
    }

    private func answerCallbackQuery(_ params: [String: Any]) -> (Int, [UInt8]) {
        let id = params["callback_query_id"] as? String ?? ""
        guard outstandingCallbacks.remove(id) != nil else {
            return error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        }
        if let text = params["text"] as? String, text.utf16.count > 200 {
            return error(400, "Bad Request: MESSAGE_TOO_LONG")
        }
        answeredCallbacks[id] = params["text"] as? String
        return ok(true)
    }

    private func setMyCommands(_ params: [String: Any]) throws -> (Int, [UInt8]) {
        let list = try decode([BotCommand].self, params["commands"])
        for command in list {
            guard (1...32).contains(command.command.count),
                command.command.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") })
            else {
                throw FakeFailure(code: 400, description: "Bad Request: BOT_COMMAND_INVALID")
            }
            guard (1...256).contains(command.description.count) else {
                throw FakeFailure(code: 400, description: "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            }
        }
        commands[params["language_code"] as? String ?? ""] = list
        return ok(true)
    }

    private func getChat(_ params: [String: Any]) throws -> (Int, [UInt8]) {
        let chatID = try chat(params, requireWritable: false)
        let chat = chats[chatID]!
        return ok(
            ChatFullInfo(
                id: chat.id, type: chat.type, title: chat.title, username: chat.username, firstName: chat.firstName, accentColorId: 0,
                maxReactionCount: 11,
                acceptedGiftTypes: AcceptedGiftTypes(
                    unlimitedGifts: false, limitedGifts: false, uniqueGifts: false, premiumSubscription: false, giftsFromChannels: false)))
    }

    private func getChatMember(_ params: [String: Any]) throws -> (Int, [UInt8]) {
        let chatID = try chat(params, requireWritable: false)
        guard let userID = int(params["user_id"]), let user = users[userID] ?? (userID == bot.id ? bot : nil) else {
            throw FakeFailure(code: 400, description: "Bad Request: user not found")
        }
        return ok(members[chatID]?[userID] ?? .left(ChatMemberLeft(user: user)))
    }

    private func createInviteLink(_ params: [String: Any]) throws -> (Int, [UInt8]) {
        let chatID = try chat(params, requireWritable: false)
        try requireAdmin(chatID, right: \.canInviteUsers)
        let joinRequest = params["creates_join_request"] as? Bool ?? false
        let memberLimit = int(params["member_limit"])
        if joinRequest && memberLimit != nil {
            throw FakeFailure(code: 400, description: "Bad Request: can't create invite link with member limit and join request")
        }
        if let memberLimit, !(1...99999).contains(memberLimit) {
            throw FakeFailure(code: 400, description: "Bad Request: member limit must be between 1 and 99999")
        }
        if let name = params["name"] as? String, name.count > 32 {
            throw FakeFailure(code: 400, description: "Bad Request: invite link name is too long")
        }
        let url = "https://t.me/+fake\(UUID().uuidString.prefix(12))"
        let link = ChatInviteLink(
            inviteLink: url, creator: bot, createsJoinRequest: joinRequest, isPrimary: false, isRevoked: false,
            name: params["name"] as? String, expireDate: int(params["expire_date"]), memberLimit: memberLimit
        )
        inviteLinks[url] = InviteLinkState(link: link, chatID: chatID, uses: 0)
        return ok(link)
    }

    private func revokeInviteLink(_ params: [String: Any]) throws -> (Int, [UInt8]) {
        let chatID = try chat(params, requireWritable: false)
        guard let url = params["invite_link"] as? String, var state = inviteLinks[url], state.chatID == chatID else {
            throw FakeFailure(code: 400, description: "Bad Request: INVITE_HASH_EXPIRED")
        }
        state.link.isRevoked = true
        inviteLinks[url] = state
        return ok(state.link)
    }

    private func resolveJoinRequest(_ params: [String: Any], approve: Bool) throws -> (Int, [UInt8]) {
        let chatID = try chat(params, requireWritable: false)
        try requireAdmin(chatID, right: \.canInviteUsers)
        guard let userID = int(params["user_id"]), pendingJoinRequests[chatID]?.remove(userID) != nil else {
            throw FakeFailure(code: 400, description: "Bad Request: HIDE_REQUESTER_MISSING")
        }
        if approve, let user = users[userID] {
            changeMembership(chat: chatID, user: userID, to: joined(user, chat: chatID), by: bot, via: nil)
        }
        return ok(true)
    }

    private func banChatMember(_ params: [String: Any]) throws -> (Int, [UInt8]) {
        let chatID = try chat(params, requireWritable: false)
        try requireAdmin(chatID, right: \.canRestrictMembers)
        guard let userID = int(params["user_id"]), let user = users[userID] else {
            throw FakeFailure(code: 400, description: "Bad Request: user not found")
        }
        if case .owner = members[chatID]?[userID] {
            throw FakeFailure(code: 400, description: "Bad Request: can't remove chat owner")
        }
        if case .administrator = members[chatID]?[userID] {
            throw FakeFailure(code: 400, description: "Bad Request: user is an administrator of the chat")
        }
        changeMembership(
            chat: chatID, user: userID, to: .banned(ChatMemberBanned(user: user, untilDate: int(params["until_date"]) ?? 0)), by: bot, via: nil)
        return ok(true)
    }

    private func unbanChatMember(_ params: [String: Any]) throws -> (Int, [UInt8]) {
        let chatID = try chat(params, requireWritable: false)
        try requireAdmin(chatID, right: \.canRestrictMembers)
        guard let userID = int(params["user_id"]), let user = users[userID] else {
            throw FakeFailure(code: 400, description: "Bad Request: user not found")
        }
        let onlyIfBanned = params["only_if_banned"] as? Bool ?? false
        switch members[chatID]?[userID] {
        case .banned:
            changeMembership(chat: chatID, user: userID, to: .left(ChatMemberLeft(user: user)), by: bot, via: nil)
        case .member, .restricted:
            // Documented: without only_if_banned, unbanning a current member removes them.
            if !onlyIfBanned {
                changeMembership(chat: chatID, user: userID, to: .left(ChatMemberLeft(user: user)), by: bot, via: nil)
            }
        case .owner:
            throw FakeFailure(code: 400, description: "Bad Request: can't remove chat owner")
        default:
            break
        }
        return ok(true)
    }

    // MARK: - Rules

    private func validateText(_ text: String, parseMode: String?) throws {
        guard !text.isEmpty else { throw FakeFailure(code: 400, description: "Bad Request: message text is empty") }
        let visible = parseMode?.lowercased() == "html" ? try HTMLText.visibleText(text) : text
        guard visible.utf16.count <= 4096 else { throw FakeFailure(code: 400, description: "Bad Request: message is too long") }
        guard !visible.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw FakeFailure(code: 400, description: "Bad Request: message text is empty")
        }
    }

    private func replyMarkup(_ params: [String: Any]) throws -> ReplyMarkup? {
        guard let raw = params["reply_markup"] else { return nil }
        let markup = try decode(ReplyMarkup.self, raw)
        switch markup {
        case .inlineKeyboard(let keyboard):
            for button in keyboard.inlineKeyboard.joined() {
                if case .callbackData(let data) = button.action, !(1...64).contains(data.utf8.count) {
                    throw FakeFailure(code: 400, description: "Bad Request: BUTTON_DATA_INVALID")
                }
                if button.text.isEmpty { throw FakeFailure(code: 400, description: "Bad Request: text buttons are unallowed in the inline keyboard") }
            }
        case .replyKeyboard(let keyboard):
            if keyboard.keyboard.joined().isEmpty { throw FakeFailure(code: 400, description: "Bad Request: keyboard must be non-empty") }
        default:
            break
        }
        return markup
    }

    private func chat(_ params: [String: Any], requireWritable: Bool = true) throws -> Int64 {
        let chatID: Int64?
        if let id = int(params["chat_id"]) {
            chatID = id
        } else if let username = params["chat_id"] as? String {
            chatID = chats.values.first { "@\($0.username ?? "")" == username }?.id
        } else {
            chatID = nil
        }
        guard let chatID, chats[chatID] != nil else { throw FakeFailure(code: 400, description: "Bad Request: chat not found") }
        if requireWritable && blockedBy.contains(chatID) {
            throw FakeFailure(code: 403, description: "Forbidden: bot was blocked by the user")
        }
        if chatID < 0, case .left = members[chatID]?[bot.id] ?? .left(ChatMemberLeft(user: bot)) {
            throw FakeFailure(code: 403, description: "Forbidden: bot is not a member of the channel chat")
        }
        return chatID
    }

    private func requireAdmin(_ chatID: Int64, right: KeyPath<ChatMemberAdministrator, Bool>) throws {
        guard case .administrator(let admin) = members[chatID]?[bot.id], admin[keyPath: right] else {
            throw FakeFailure(code: 400, description: "Bad Request: not enough rights")
        }
    }

    private func checkRateLimit(method: String, params: [String: Any]) -> (Int, [UInt8])? {
        guard let limits, method != "getUpdates" else { return nil }
        let now = ContinuousClock.now
        var keys: [(String, RateLimit)] = [("overall", limits.overall)]
        if ["sendMessage", "copyMessage", "editMessageText", "editMessageReplyMarkup", "sendDocument"].contains(method),
            let chat = int(params["chat_id"])
        {
            keys.append(("chat:\(chat)", chat > 0 ? limits.privateChat : limits.groupChat))
        }
        for (key, limit) in keys {
            let recent = (sendLog[key] ?? []).filter { now - $0 < limit.window }
            if recent.count >= limit.count {
                rejectedWithTooManyRequests += 1
                let wait = limit.window - (now - recent[recent.count - limit.count])
                let seconds = max(1, Int((wait.components.seconds) + (wait.components.attoseconds > 0 ? 1 : 0)))
                return (
                    429,
                    Array(
                        #"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after \#(seconds)","parameters":{"retry_after":\#(seconds)}}"#
                            .utf8)
                )
            }
        }
        for (key, limit) in keys {
            var recent = (sendLog[key] ?? []).filter { now - $0 < limit.window }
            recent.append(now)
            sendLog[key] = recent
        }
        return nil
    }

    // MARK: - Helpers

    /// What a user becomes on joining: a member, or still restricted when they were restricted before leaving.
    private func joined(_ user: User, chat chatID: Int64) -> ChatMember {
        if case .restricted = members[chatID]?[user.id] { return .restricted(Self.restricted(user, isMember: true)) }
        return .member(ChatMemberMember(user: user))
    }

    private func changeMembership(chat chatID: Int64, user userID: Int64, to new: ChatMember, by actor: User, via link: ChatInviteLink?) {
        let user = users[userID]!
        let old = members[chatID]?[userID] ?? .left(ChatMemberLeft(user: user))
        members[chatID, default: [:]][userID] = new
        let update = ChatMemberUpdated(chat: chats[chatID]!, from: actor, date: now(), oldChatMember: old, newChatMember: new, inviteLink: link)
        enqueue(Update(updateId: 0, chatMember: update))
    }

    @discardableResult
    private func enqueue(_ update: Update) -> Int64 {
        var update = update
        nextUpdateID += 1
        update.updateId = nextUpdateID
        updates.append(update)
        if let poll = activePoll, isAllowed(update), let waiting = pollers.removeValue(forKey: poll) {
            waiting.resume()
        }
        return update.updateId
    }

    private func allocateMessageID(in chat: Int64) -> Int64 {
        let id = (nextMessageID[chat] ?? 0) + 1
        nextMessageID[chat] = id
        return id
    }

    private func now() -> Int64 {
        Int64(Date().timeIntervalSince1970)
    }

    private func int(_ value: Any?) -> Int64? {
        if let number = value as? Int64 { return number }
        if let text = value as? String { return Int64(text) }
        return nil
    }

    private func decode<T: Decodable>(_ type: T.Type, _ value: Any?) throws -> T {
        guard let value else { throw FakeFailure(code: 400, description: "Bad Request: parameter is missing") }
        let data = try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw FakeFailure(code: 400, description: "Bad Request: can't parse \(T.self)")
        }
    }

    private func ok<Value: Encodable>(_ value: Value) -> (Int, [UInt8]) {
        (200, Array((try? JSONEncoder().encode(SuccessEnvelope(result: value))) ?? Data()))
    }

    private func error(_ code: Int, _ description: String) -> (Int, [UInt8]) {
        struct Failure: Encodable {
            var ok = false
            var error_code: Int
            var description: String
        }
        return (code, Array((try? JSONEncoder().encode(Failure(error_code: code, description: description))) ?? Data()))
    }

    // MARK: - Uploads

    /// The file part may hold up to 50 MB; the request around it a little more.
    public static let maximumUploadFileBytes = 50 * 1024 * 1024
    static let maximumUploadRequestBytes = maximumUploadFileBytes + 64 * 1024

    func tooLarge(token: String, method: String) -> (Int, [UInt8]) {
        guard token == self.token else { return error(401, "Unauthorized") }
        calls.append(method)
        return error(413, "Request Entity Too Large")
    }

    /// A multipart/form-data call: only `sendDocument` takes one here; its text fields are checked as JSON
    /// parameters are, and the file part must be present, non-empty and at most 50 MB.
    func handleMultipart(token: String, method: String, contentType: String, body: Data) async -> (Int, [UInt8]) {
        guard token == self.token else { return error(401, "Unauthorized") }
        calls.append(method)
        guard let parts = MultipartForm.parse(body, contentType: contentType) else {
            return error(400, "Bad Request: can't parse multipart/form-data")
        }
        var params: [String: Any] = [:]
        for part in parts where part.fileName == nil { params[part.name] = String(decoding: part.data, as: UTF8.self) }
        if let limited = checkRateLimit(method: method, params: params) { return limited }
        if let index = scriptedFailures.firstIndex(where: { $0.method == method && ($0.chatID == nil || $0.chatID == int(params["chat_id"])) }) {
            let failure = scriptedFailures[index]
            if let remaining = failure.remaining {
                if remaining <= 1 { scriptedFailures.remove(at: index) } else { scriptedFailures[index].remaining = remaining - 1 }
            }
            return error(failure.code, failure.description)
        }
        guard method == "sendDocument" else { return error(400, "Bad Request: method \(method) takes no file here") }
        do {
            guard let raw = params["chat_id"] as? String, !raw.isEmpty else {
                throw FakeFailure(code: 400, description: "Bad Request: chat_id is empty")
            }
            let chatID = try chat(params)
            guard let file = parts.first(where: { $0.name == "document" && $0.fileName != nil }) else {
                throw FakeFailure(code: 400, description: "Bad Request: there is no document in the request")
            }
            guard !file.data.isEmpty else { throw FakeFailure(code: 400, description: "Bad Request: file must be non-empty") }
            guard file.data.count <= Self.maximumUploadFileBytes else { return error(413, "Request Entity Too Large") }
            let caption = params["caption"] as? String
            if let caption {
                let visible = (params["parse_mode"] as? String)?.lowercased() == "html" ? try HTMLText.visibleText(caption) : caption
                guard visible.utf16.count <= 1024 else { throw FakeFailure(code: 400, description: "Bad Request: message caption is too long") }
            }
            let messageID = allocateMessageID(in: chatID)
            documents[chatID, default: []].append(
                SentDocument(
                    chatID: chatID, messageID: messageID, fileName: file.fileName ?? "", mimeType: file.contentType, data: file.data, caption: caption
                ))
            return ok(Message(messageId: messageID, from: bot, date: now(), chat: chats[chatID]!, caption: caption))
        } catch let failure as FakeFailure {
            return error(failure.code, failure.description)
        } catch {
            return self.error(400, "Bad Request: \(error)")
        }
    }

    public func sentDocuments(to chatID: Int64) -> [SentDocument] {
        documents[chatID] ?? []
    }
}

/// A parsed JSON request body. Foundation's JSONSerialization on Linux hands back NSNumber for both
/// numbers and booleans (and `1 is Bool` is true), so the fake parses into native Swift values itself.
enum JSONValue: Decodable {
    case null, bool(Bool), int(Int64), double(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    var native: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let value): return value
        case .int(let value): return value
        case .double(let value): return value
        case .string(let value): return value
        case .array(let values): return values.map(\.native)
        case .object(let values): return values.mapValues(\.native)
        }
    }
}

struct SuccessEnvelope<Value: Encodable>: Encodable {
    var ok = true
    var result: Value
}

/// A Bot API error the fake answers with.
struct FakeFailure: Error {
    var code: Int
    var description: String
}

/// Misuse of the fake by a test script (not a Bot API error).
public enum FakeError: Error {
    case noSuchButton(String)
    case unknownInviteLink
    case inviteLinkRevoked
    case inviteLinkExpired
    case inviteLinkUsedUp
    case userIsBanned
    case serverDidNotStart
    /// No chat picker (a reply-keyboard button with `request_chat`) is on screen for the user.
    case noChatPicker
    /// The picker would not list this chat: wrong type, or the user lacks the rights it asks for.
    case chatNotEligible(Int64)
}

/// Checks Telegram's HTML subset and returns the text a user would see.
enum HTMLText {
    static let allowedTags: Set<String> = [
        "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "tg-emoji", "code", "pre", "blockquote",
    ]

    static func visibleText(_ html: String) throws -> String {
        var visible = ""
        var stack: [String] = []
        var index = html.startIndex
        func fail(_ reason: String) -> FakeFailure {
            FakeFailure(code: 400, description: "Bad Request: can't parse entities: \(reason)")
        }
        while index < html.endIndex {
            let character = html[index]
            if character == "<" {
                guard let close = html[index...].firstIndex(of: ">") else { throw fail("unclosed start tag") }
                let inner = html[html.index(after: index)..<close]
                if inner.hasPrefix("/") {
                    let name = inner.dropFirst().trimmingCharacters(in: .whitespaces).lowercased()
                    guard stack.last == name else { throw fail("unmatched end tag \"\(name)\"") }
                    stack.removeLast()
                } else {
                    let name = inner.split(separator: " ").first.map { String($0).lowercased() } ?? ""
                    guard allowedTags.contains(name) else { throw fail("unsupported start tag \"\(name)\"") }
                    stack.append(name)
                }
                index = html.index(after: close)
            } else if character == "&" {
                guard let semicolon = html[index...].firstIndex(of: ";") else { throw fail("unterminated entity") }
                let entity = html[html.index(after: index)..<semicolon]
                switch entity {
                case "lt": visible.append("<")
                case "gt": visible.append(">")
                case "amp": visible.append("&")
                case "quot": visible.append("\"")
                default:
                    if entity.hasPrefix("#"),
                        let scalar = entity.hasPrefix("#x") ? UInt32(entity.dropFirst(2), radix: 16) : UInt32(entity.dropFirst()),
                        let unicode = Unicode.Scalar(scalar)
                    {
                        visible.unicodeScalars.append(unicode)
                    } else {
                        throw fail("unsupported entity \"&\(entity);\"")
                    }
                }
                index = html.index(after: semicolon)
            } else if character == ">" {
                throw fail("unescaped \">\"")
            } else {
                visible.append(character)
                index = html.index(after: index)
            }
        }
        guard stack.isEmpty else { throw fail("unclosed tag \"\(stack.last!)\"") }
        return visible
    }
}

/// A minimal multipart/form-data reader (RFC 7578) for the fake: parts with their name, filename, content
/// type and bytes.
enum MultipartForm {
    struct Part {
        var name: String
        var fileName: String?
        var contentType: String?
        var data: Data
    }

    static func parse(_ body: Data, contentType: String) -> [Part]? {
        guard let range = contentType.range(of: "boundary=") else { return nil }
        var boundary = String(contentType[range.upperBound...])
        if let end = boundary.firstIndex(of: ";") { boundary = String(boundary[..<end]) }
        boundary = boundary.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        guard !boundary.isEmpty else { return nil }
        let delimiter = Data("--\(boundary)".utf8)
        let bytes = body
        var parts: [Part] = []
        guard var cursor = bytes.range(of: delimiter)?.upperBound else { return nil }
        while true {
            // After a delimiter: "--" ends the body, CRLF starts a part.
            if bytes[cursor...].starts(with: Data("--".utf8)) { return parts }
            guard bytes[cursor...].starts(with: Data("\r\n".utf8)) else { return nil }
            let headerStart = cursor + 2
            guard let headerEnd = bytes.range(of: Data("\r\n\r\n".utf8), in: headerStart..<bytes.endIndex) else { return nil }
            let headers = String(decoding: bytes[headerStart..<headerEnd.lowerBound], as: UTF8.self)
            guard let next = bytes.range(of: Data("\r\n".utf8) + delimiter, in: headerEnd.upperBound..<bytes.endIndex) else { return nil }
            var part = Part(name: "", fileName: nil, contentType: nil, data: bytes[headerEnd.upperBound..<next.lowerBound])
            for line in headers.components(separatedBy: "\r\n") {
                let lower = line.lowercased()
                if lower.hasPrefix("content-disposition:") {
                    part.name = value(of: "name", in: line) ?? ""
                    part.fileName = value(of: "filename", in: line)
                } else if lower.hasPrefix("content-type:") {
                    part.contentType = line.dropFirst("content-type:".count).trimmingCharacters(in: .whitespaces)
                }
            }
            guard !part.name.isEmpty else { return nil }
            parts.append(part)
            cursor = next.upperBound
        }
    }

    private static func value(of parameter: String, in header: String) -> String? {
        for piece in header.split(separator: ";") {
            let trimmed = piece.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix(parameter + "=") else { continue }
            return String(trimmed.dropFirst(parameter.count + 1)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return nil
    }
}
