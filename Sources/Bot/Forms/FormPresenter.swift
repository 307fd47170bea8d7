import TelegramBotAPI

/// Sends what a conversation step decided, after the step's transaction has committed, so no pooled
/// connection waits on Telegram's limiter.
///
/// The saved state is already the truth when this runs. A menu sent as a new message gets its id recorded
/// by a second short write, fenced by the revision it was drawn at; until then (or if the send fails) the
/// state names no menu, so a press on an older one is refused as outdated and the current menu is drawn again.
enum FormPresenter {
    static func show(_ output: [FormOutput], context: UpdateContext) async throws {
        guard let chatID = context.chatID else { return }
        let client = context.services.client
        for item in output {
            switch item {
            case .answerCallback(let text):
                try await context.answerCallback(text: text)
            case .send(let text, let removeKeyboard):
                try await client.send(
                    SendMessage(
                        chatId: .id(chatID), text: text, parseMode: "HTML", linkPreviewOptions: LinkPreviewOptions(isDisabled: true),
                        replyMarkup: removeKeyboard ? .removeKeyboard(ReplyKeyboardRemove(removeKeyboard: true)) : nil
                    ))
            case .replaceMenu(let messageID, let text):
                if let messageID, try await MenuEditing.edit(context, messageID: messageID, text: text, keyboard: nil) { continue }
                try await client.send(SendMessage(chatId: .id(chatID), text: text, parseMode: "HTML"))
            case .showMenu(let menu):
                if let editing = menu.editing, case .inlineKeyboard(let keyboard) = menu.markup,
                    try await MenuEditing.edit(context, messageID: editing, text: menu.text, keyboard: keyboard)
                {
                    continue
                }
                let sent = try await client.send(
                    SendMessage(
                        chatId: .id(chatID), text: menu.text, parseMode: "HTML", linkPreviewOptions: LinkPreviewOptions(isDisabled: true),
                        replyMarkup: menu.markup
                    ))
                try await record(sent.messageId, menu: menu, context: context)
            }
        }
    }

    private static func record(_ messageID: Int64, menu: FormMenu, context: UpdateContext) async throws {
        try await context.services.database.withConnection { connection in
            try await ConversationStore.recordMenu(messageID, of: menu.state, on: connection, logger: context.logger)
        }
    }
}
