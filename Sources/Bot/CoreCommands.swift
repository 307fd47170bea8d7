import Channels
import Foundation
import Localization
import PostgresNIO
import Storage
import Subscriptions
import TelegramBotAPI

/// The commands the bot understands; a test keeps the router's registrations equal to this list.
public enum BotCommandName: String, CaseIterable, Sendable {
    case start, subscriptions, channels, help, cancel, language

    var descriptionKey: String { "command.\(rawValue).description" }
}

/// `/start`, `/help`, `/cancel`, `/language`, and the fallbacks every bot needs.
public enum CoreCommands {
    /// A deep-link payload as Telegram allows it: up to 64 of `A-Z a-z 0-9 _ -`.
    public static func isValidPayload(_ payload: String) -> Bool {
        (1...64).contains(payload.count) && payload.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    /// Handles a valid `/start` payload; returns `false` when the payload names nothing it knows.
    public typealias StartPayloadHandler = @Sendable (_ payload: String, _ context: UpdateContext) async throws -> Bool

    /// `startPayload` opens offers from deep links and `subscriptions` lists a subscriber's subscriptions;
    /// without them (no purchases in this process) the bot says so.
    public static func register(into router: inout BotRouter, startPayload: StartPayloadHandler? = nil, subscriptions: UpdateHandler? = nil) {
        router.command(BotCommandName.start.rawValue) { context in try await start(context, payloadHandler: startPayload) }
        router.command(BotCommandName.subscriptions.rawValue) { context in
            if let subscriptions {
                try await subscriptions(context)
            } else {
                try await context.reply(L10n.purchasePaymentsUnavailable)
            }
        }
        router.command(BotCommandName.help.rawValue) { context in
            try await context.reply(L10n.helpText)
        }
        router.command(BotCommandName.cancel.rawValue, cancel)
        router.command(BotCommandName.language.rawValue, chooseLanguage)
        router.callback { data, context in
            guard case .chooseLanguage(let code) = data else { return false }
            try await setLanguage(code, context: context)
            return true
        }
        router.onUnknownCommand { context in
            let command = context.update.message?.text.flatMap(BotRouter.parseCommand)?.name ?? ""
            try await context.reply(L10n.commandUnknown, ["command": "/" + command])
            try await context.reply(L10n.helpText)
        }
        router.onText { context in
            guard context.chatID.map({ $0 > 0 }) == true else { return }
            try await context.reply(L10n.textUnexpected)
        }
        router.onMyChatMember { context in
            guard let change = context.update.myChatMember, change.chat.type == "private" else { return }
            switch change.newChatMember {
            case .banned: try await context.services.users.setBlocked(true, userID: change.from.id)
            case .member: try await context.services.users.setBlocked(false, userID: change.from.id)
            default: break
            }
        }
    }

    static func start(_ context: UpdateContext, payloadHandler: StartPayloadHandler?) async throws {
        let text = context.update.message?.text ?? ""
        let payload = BotRouter.parseCommand(text)?.arguments.trimmingCharacters(in: .whitespaces) ?? ""
        guard !payload.isEmpty else {
            try await context.reply(L10n.startWelcome, ["name": context.user?.firstName ?? ""])
            return
        }
        guard isValidPayload(payload) else {
            context.logger.info("rejected /start payload", metadata: ["length": "\(payload.count)"])
            try await context.reply(L10n.startLinkInvalid)
            return
        }
        if let payloadHandler {
            if try await payloadHandler(payload, context) { return }
            try await context.reply(L10n.startOfferNotFound)
            return
        }
        let exists = try await context.services.channels.isOnSale(offerToken: payload)
        try await context.reply(exists ? L10n.startWelcome : L10n.startOfferNotFound, exists ? ["name": context.user?.firstName ?? ""] : [:])
    }

    /// Leaves any conversation in this chat and discards its draft (under the conversation lock, so a step
    /// in flight finishes first). The reply also removes a chat-picker keyboard the form may have shown.
    static func cancel(_ context: UpdateContext) async throws {
        guard let chatID = context.chatID, let userID = context.user?.id else { return }
        let removed = try await context.services.users.endConversation(chatID: chatID, userID: userID)
        try await context.reply(
            removed ? L10n.cancelDone : L10n.cancelNothing, markup: removed ? .removeKeyboard(ReplyKeyboardRemove(removeKeyboard: true)) : nil
        )
    }

    static func chooseLanguage(_ context: UpdateContext) async throws {
        let localizer = context.services.localizer
        let buttons = localizer.languages.map { code in
            [
                InlineKeyboardButton(
                    text: localizer.text(L10n.languageSelfName, language: code), action: .callbackData(CallbackData.chooseLanguage(code).encoded))
            ]
        }
        try await context.reply(L10n.languageChoose, markup: .inlineKeyboard(InlineKeyboardMarkup(inlineKeyboard: buttons)))
    }

    static func setLanguage(_ code: String, context: UpdateContext) async throws {
        guard let userID = context.user?.id, context.services.localizer.languages.contains(code) else {
            try await context.answerCallback(text: context.text(L10n.menuOutdated))
            return
        }
        try await context.services.users.setLanguage(code, for: userID)
        var updated = context
        updated.language = code
        try await updated.answerCallback()
        try await updated.reply(L10n.languageChanged, ["language": updated.text(L10n.languageSelfName)])
    }

    /// Registers the command menu in every catalog language (and English as the default).
    public static func publishCommandMenu(client: TelegramClient, localizer: Localizer) async throws {
        for language in localizer.languages {
            let commands = BotCommandName.allCases.map {
                BotCommand(command: $0.rawValue, description: localizer.text($0.descriptionKey, language: language))
            }
            try await client.send(SetMyCommands(commands: commands, languageCode: language == Localizer.fallbackLanguage ? nil : language))
        }
    }
}
