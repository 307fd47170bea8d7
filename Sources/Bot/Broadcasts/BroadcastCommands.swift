import Broadcasts
import Foundation
import Localization
import Logging
import Payouts
import TelegramBotAPI

/// `/admin` (for the ids in `TELEPAY_ADMIN_TELEGRAM_IDS` only), broadcasts from the admin menu and from a
/// channel's card, the composer (the author's next text, checked, previewed exactly as recipients will see
/// it, then confirmed), the controls on the progress message, and the admin's and owner's statistics. Anyone
/// else reaching an admin command or button, a broadcast that is not theirs or another owner's channel is
/// refused, logged, and nothing changes.
public struct BroadcastCommands: Sendable {
    /// Not in the command menu: nobody but admins should learn of it.
    public static let adminCommand = "admin"

    public let admins: Set<Int64>
    public let settings: BroadcastSettings
    let access: AdminAccessCommands

    public init(admins: Set<Int64>, settings: BroadcastSettings = BroadcastSettings()) {
        self.admins = admins
        self.settings = settings
        self.access = AdminAccessCommands(admins: admins)
    }

    public func register(into router: inout BotRouter) {
        router.command(Self.adminCommand) { context in
            guard try await requireAdmin(context, what: "/admin") else {
                let command = "/" + Self.adminCommand
                try await context.reply(L10n.commandUnknown, ["command": command])
                return
            }
            let arguments = BotRouter.parseCommand(context.update.message?.text ?? "")?.arguments ?? ""
            let words = arguments.split(separator: " ", maxSplits: 1).map(String.init)
            let rest = words.count > 1 ? words[1].trimmingCharacters(in: .whitespaces) : ""
            switch words.first?.lowercased() {
            case "user":
                try await access.lookUp(rest, context: context)
            case "grant":
                try await access.grant(rest, context: context)
            case "channel":
                try await access.showChannel(rest, context: context)
            default:
                try await showAdminMenu(context, editing: nil)
            }
        }
        access.register(into: &router)
        router.callback { data, context in
            try await handle(data, context: context)
        }
        router.onMessage { context in
            try await receiveAudienceDays(context)
        }
        router.onMessage { context in
            try await receiveText(context)
        }
    }

    func service(_ context: UpdateContext) -> BroadcastService? {
        guard let jobs = context.services.jobs else { return nil }
        return BroadcastService(
            store: context.services.broadcasts, queue: jobs, admins: admins, settings: settings
        )
    }

    /// True for an admin; otherwise logs the attempt.
    func requireAdmin(_ context: UpdateContext, what: String) async throws -> Bool {
        if let user = context.user?.id, admins.contains(user), context.chatID.map({ $0 > 0 }) == true { return true }
        context.logger.warning(
            "refused an admin action from someone who is not an admin",
            metadata: [
                "user_id": "\(context.user?.id ?? 0)", "action": "\(what)",
            ])
        return false
    }

    func handle(_ data: CallbackData, context: UpdateContext) async throws -> Bool {
        switch data {
        case .admin(let action):
            guard try await requireAdmin(context, what: "admin button \(action.rawValue)") else {
                try await context.answerCallback(text: context.text(L10n.adminNotAllowed))
                return true
            }
            switch action {
            case .menu: try await showAdminMenu(context, editing: context.callbackMessageID)
            case .broadcastToUsers: try await compose(.allUsers, context: context)
            case .broadcastToOwners: try await compose(.allOwners, context: context)
            case .stats: try await showStats(context)
            case .lookUp:
                try await context.answerCallback()
                try await context.reply(L10n.adminLookupUsage)
            case .failedJobs: try await showFailedJobs(context)
            }
        case .adminRetryJob(let id):
            guard try await requireAdmin(context, what: "retry job \(id)") else {
                try await context.answerCallback(text: context.text(L10n.adminNotAllowed))
                return true
            }
            try await retryJob(id, context: context)
        case .adminReleasePayout(let id):
            guard try await requireAdmin(context, what: "release payout \(id)") else {
                try await context.answerCallback(text: context.text(L10n.adminNotAllowed))
                return true
            }
            try await releasePayout(id, context: context)
        case .channelExport(let channel, let kind):
            try await export(kind, channel: channel, context: context)
        case .channelBroadcast(let channel):
            try await chooseAudience(channel, context: context)
        case .channelBroadcastTo(let channel, .expiredDays):
            try await askAudienceDays(channel, context: context)
        case .channelBroadcastTo(let channel, let choice):
            let audience: BroadcastAudience =
                switch choice {
                case .active: .channelActive(channelID: channel)
                case .expired7: .channelExpired(channelID: channel, days: 7)
                case .expired30, .expiredDays: .channelExpired(channelID: channel, days: 30)
                case .paid: .channelPaid(channelID: channel)
                }
            try await compose(audience, context: context)
        case .broadcast(let action, let id):
            try await control(action, id, context: context)
        case .channelStats(let channel):
            try await showChannelStats(channel, context: context)
        default:
            return false
        }
        return true
    }

    // MARK: - Admin menu

    func showAdminMenu(_ context: UpdateContext, editing: Int64?) async throws {
        let button = { (key: String, action: AdminAction) in
            InlineKeyboardButton(text: context.text(key), action: .callbackData(CallbackData.admin(action).encoded))
        }
        try await ChannelCommands.show(
            context.text(L10n.adminMenu),
            buttons: [
                [button(L10n.adminButtonBroadcastUsers, .broadcastToUsers)],
                [button(L10n.adminButtonBroadcastOwners, .broadcastToOwners)],
                [button(L10n.adminButtonStats, .stats)],
                [button(L10n.adminButtonLookup, .lookUp)],
                [button(L10n.adminButtonFailedJobs, .failedJobs)],
            ], context: context, editing: editing)
    }

    func showStats(_ context: UpdateContext) async throws {
        let stats = try await context.services.platformStats.read()
        let payouts = try await context.services.payouts.openCounts()
        try await context.answerCallback()
        guard let chat = context.chatID else { return }
        try await context.services.client.send(
            SendMessage(
                chatId: .id(chat), text: Self.renderMoney(stats, openPayouts: payouts.map { ($0.state.rawValue, $0.count) }, context: context),
                parseMode: "HTML", linkPreviewOptions: LinkPreviewOptions(isDisabled: true)
            ))
    }

    // MARK: - Composing

    /// Whether `user` owns `channel`; otherwise the press is refused (logged, told).
    func owns(_ channel: Int64, user: Int64, service: BroadcastService, context: UpdateContext) async throws -> Bool {
        guard try await service.store.isOwner(user, of: channel) else {
            context.logger.warning(
                "refused a broadcast for a channel the presser does not own", metadata: ["channel_id": "\(channel)", "user_id": "\(user)"])
            try await context.answerCallback(text: context.text(L10n.channelsNotYours))
            return false
        }
        return true
    }

    func chooseAudience(_ channel: Int64, context: UpdateContext) async throws {
        guard let user = context.user?.id, let service = service(context) else { return }
        guard try await owns(channel, user: user, service: service, context: context) else { return }
        let button = { (key: String, choice: OwnerAudienceChoice) in
            [
                InlineKeyboardButton(
                    text: context.text(key), action: .callbackData(CallbackData.channelBroadcastTo(channelID: channel, audience: choice).encoded))
            ]
        }
        try await ChannelCommands.show(
            context.text(L10n.broadcastChooseAudience, ["cap": String(settings.ownerDailyCap)]),
            buttons: [
                button(L10n.broadcastAudienceActive, .active),
                button(L10n.broadcastAudienceExpired7, .expired7),
                button(L10n.broadcastAudienceExpired30, .expired30),
                button(L10n.broadcastAudienceExpiredDays, .expiredDays),
                button(L10n.broadcastAudiencePaid, .paid),
                [
                    InlineKeyboardButton(
                        text: context.text(L10n.broadcastButtonBack), action: .callbackData(CallbackData.channelOpen(channel).encoded))
                ],
            ], context: context, editing: context.callbackMessageID)
    }

    func compose(_ audience: BroadcastAudience, context: UpdateContext) async throws {
        guard let user = context.user?.id, let chat = context.chatID else { return }
        guard let service = service(context) else {
            try await context.reply(L10n.broadcastUnavailable)
            return
        }
        try await context.services.audiencePrompts.close(user: user)
        let refusal: BroadcastError?
        do throws(BroadcastError) {
            _ = try await service.compose(author: user, language: context.language, audience: audience, chat: chat)
            refusal = nil
        } catch {
            refusal = error
        }
        if let refusal {
            context.logger.warning("refused to start a broadcast draft", metadata: ["user_id": "\(user)", "error": "\(refusal)"])
            if context.update.callbackQuery == nil {
                try await context.reply(Self.key(for: refusal), ["cap": String(settings.ownerDailyCap)])
            } else {
                try await context.answerCallback(text: context.text(Self.key(for: refusal), ["cap": String(settings.ownerDailyCap)]))
            }
            return
        }
        try await context.answerCallback()
        try await context.reply(L10n.broadcastCompose, ["audience": Self.audienceText(audience, context: context)])
    }

    /// The author's next text, while a draft waits for it: checked, previewed, then confirmed.
    func receiveText(_ context: UpdateContext) async throws -> Bool {
        guard let chat = context.chatID, chat > 0, let user = context.user?.id, let text = context.update.message?.text,
            let service = service(context), let draft = try await service.draftAwaitingText(of: user)
        else { return false }
        if case .failure(let problem) = BroadcastText.check(text) {
            try await context.reply(Self.problemKey(problem), Self.problemArguments(problem))
            return true
        }
        // The preview is the very message recipients get; if Telegram refuses it, so it would for them.
        let preview = SendMessage(chatId: .id(chat), text: text, parseMode: "HTML")
        let client = context.services.client
        if case .failure(let error) = await Result.telegram({ () async throws(TelegramError) -> Message in try await client.send(preview) }) {
            guard case .badRequest(let reason) = error else { throw error }
            try await context.reply(L10n.broadcastPreviewRejected, ["reason": reason])
            return true
        }
        switch try await service.setText(text, draft: draft) {
        case .failure(let problem):
            try await context.reply(Self.problemKey(problem), Self.problemArguments(problem))
        case .success(let count):
            let keyboard = InlineKeyboardMarkup(inlineKeyboard: [
                [
                    InlineKeyboardButton(
                        text: context.text(L10n.broadcastButtonSend, ["count": String(count)]),
                        action: .callbackData(CallbackData.broadcast(.send, draft.id).encoded)),
                    InlineKeyboardButton(
                        text: context.text(L10n.broadcastButtonDiscard), action: .callbackData(CallbackData.broadcast(.discard, draft.id).encoded)),
                ]
            ])
            try await context.reply(
                L10n.broadcastConfirm, ["count": String(count), "audience": Self.audienceText(draft.audience, context: context)],
                markup: .inlineKeyboard(keyboard))
        }
        return true
    }

    // MARK: - Controls

    func control(_ action: BroadcastAction, _ id: Int64, context: UpdateContext) async throws {
        guard let user = context.user?.id, let service = service(context) else { return }
        let view = BroadcastProgressView(localizer: context.services.localizer)
        let outcome: Result<Void, BroadcastError>
        do throws(BroadcastError) {
            switch action {
            case .send:
                guard let message = context.callbackMessageID else { return }
                _ = try await service.start(id, by: user, progressMessageID: message)
            case .discard, .cancel: _ = try await service.cancel(id, by: user)
            case .pause: _ = try await service.pause(id, by: user)
            case .resume: _ = try await service.resume(id, by: user)
            }
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .success:
            try await context.answerCallback()
            if action == .discard {
                if let message = context.callbackMessageID {
                    _ = try await MenuEditing.edit(context, messageID: message, text: context.text(L10n.broadcastDiscarded), keyboard: nil)
                }
            } else {
                try await redraw(id, service: service, view: view, context: context)
            }
        case .failure(let error):
            if case .notAllowed = error {
                context.logger.warning(
                    "refused a broadcast control from someone who is neither its author nor an admin",
                    metadata: [
                        "broadcast_id": "\(id)", "user_id": "\(user)", "action": "\(action.rawValue)",
                    ])
            } else {
                context.logger.info("broadcast control refused", metadata: ["broadcast_id": "\(id)", "error": "\(error)"])
            }
            try await context.answerCallback(text: context.text(Self.key(for: error), ["cap": String(settings.ownerDailyCap)]))
        }
    }

    /// Redraws the progress message at once after a press (the sender redraws it every few seconds too).
    func redraw(_ id: Int64, service: BroadcastService, view: BroadcastProgressView, context: UpdateContext) async throws {
        guard let broadcast = try await service.store.broadcast(id), let message = broadcast.progressMessageID else { return }
        let counts = try await service.store.counts(id)
        let (text, keyboard) = view.render(BroadcastProgress(broadcast: broadcast, counts: counts, remaining: nil))
        _ = try await MenuEditing.edit(context, messageID: message, text: text, keyboard: keyboard)
    }

    // MARK: - Texts

    static func audienceText(_ audience: BroadcastAudience, context: UpdateContext) -> String {
        switch audience {
        case .allUsers: context.text(L10n.broadcastAudienceAllUsers)
        case .allOwners: context.text(L10n.broadcastAudienceAllOwners)
        case .channelActive: context.text(L10n.broadcastAudienceActive)
        case .channelExpired(_, let days): context.text(L10n.broadcastAudienceExpired, ["days": String(days)])
        case .channelPaid: context.text(L10n.broadcastAudiencePaid)
        }
    }

    static func key(for error: BroadcastError) -> String {
        switch error {
        case .notFound, .notReady: L10n.broadcastErrorOutdated
        case .channelBusy: L10n.broadcastErrorChannelBusy
        case .dailyCapReached: L10n.broadcastErrorDailyCap
        case .emptyAudience: L10n.broadcastErrorEmptyAudience
        case .notAllowed: L10n.adminNotAllowed
        case .database: L10n.errorGeneric
        }
    }

    static func problemKey(_ problem: BroadcastTextProblem) -> String {
        switch problem {
        case .empty: L10n.broadcastProblemEmpty
        case .tooLong: L10n.broadcastProblemTooLong
        case .unsupportedTag: L10n.broadcastProblemUnsupportedTag
        case .unclosedTag: L10n.broadcastProblemUnclosedTag
        case .unexpectedEndTag: L10n.broadcastProblemUnexpectedEndTag
        case .missingAttribute: L10n.broadcastProblemMissingAttribute
        case .unescaped: L10n.broadcastProblemUnescaped
        case .unknownEntity: L10n.broadcastProblemUnknownEntity
        }
    }

    static func problemArguments(_ problem: BroadcastTextProblem) -> [String: String] {
        switch problem {
        case .empty: [:]
        case .tooLong(let length, let maximum): ["length": String(length), "maximum": String(maximum)]
        case .unsupportedTag(let tag), .unclosedTag(let tag), .unexpectedEndTag(let tag): ["tag": tag]
        case .missingAttribute(let tag, let attribute): ["tag": tag, "attribute": attribute]
        case .unescaped(let character): ["character": String(character)]
        case .unknownEntity(let entity): ["entity": entity]
        }
    }
}
