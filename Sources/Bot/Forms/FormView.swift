import Conversations
import Localization
import TelegramBotAPI

/// The message and buttons of one step of a conversation. Pure: the same state, definition, language and
/// catalogue options always draw the same view, so a press is resolved by drawing the view again.
struct FormView: Sendable, Hashable {
    enum Target: Sendable, Hashable {
        case button(ButtonDefinition)
        case back
        case clear
        case option(String)
    }

    struct Button: Sendable, Hashable {
        var label: String
        var target: Target
    }

    var text: String
    var rows: [[Button]]
    var replyKeyboard: ReplyKeyboardMarkup?

    /// Draws `state`'s step. `options` are the choices of the catalogue field being asked (ignored on other
    /// steps); `chatRequest` is the binding's native chat picker for a chat field's role and request id.
    static func draw(
        _ state: ConversationState, definition: ConversationDefinition, localizer: Localizer, language: String,
        options: [ChoiceOption], chatRequest: (_ role: String, _ requestID: Int64) -> KeyboardButtonRequestChat
    ) -> FormView {
        func text(_ key: String, _ arguments: [String: String] = [:]) -> String { localizer.text(key, language: language, arguments) }
        let arguments = displayArguments(state.values, definition: definition, localizer: localizer, language: language)
        switch state.step {
        case .screen(let name):
            let screen = definition.screens[name] ?? definition.screens[definition.entries[definition.entryOrder[0]]!.screen]!
            var rows: [[Button]] = []
            for row in screen.rows {
                let buttons = row.filter { button in
                    guard let condition = button.condition else { return true }
                    return condition.holds(in: state.values) && definition.isActive(condition.field, in: state.values)
                }.map { button in
                    var labelArguments = button.labelArguments
                    var key = button.label ?? ""
                    if case .toggle(let field, _) = button.effect {
                        labelArguments["mark"] = state.values[field] == "true" ? "✅" : "❌"
                        if key.isEmpty { key = definition.fields[field]!.label }
                    }
                    return Button(label: text(key, labelArguments), target: .button(button))
                }
                if !buttons.isEmpty { rows.append(buttons) }
            }
            return FormView(text: text(screen.text, arguments), rows: rows, replyKeyboard: nil)
        case .ask(let name):
            guard let field = definition.fields[name] else {
                return FormView(text: text(L10n.menuOutdated), rows: [], replyKeyboard: nil)
            }
            let prompt = text(field.prompt, ["current": arguments[name] ?? ""])
            let back = Button(label: text(L10n.formButtonBack), target: .back)
            switch field.kind {
            case .chat(let role, _):
                let requestID = Int64((definition.fieldOrder.firstIndex(of: name) ?? 0) + 1)
                let keyboard = ReplyKeyboardMarkup(
                    keyboard: [[KeyboardButton(text: text(L10n.formButtonPickChannel), requestChat: chatRequest(role, requestID))]],
                    resizeKeyboard: true, oneTimeKeyboard: true
                )
                return FormView(text: prompt, rows: [], replyKeyboard: keyboard)
            case .choice(let choices, let prefix):
                let buttons = choices.map { Button(label: text(prefix + "." + $0), target: .option($0)) }
                return FormView(text: prompt, rows: chunk(buttons, by: 2) + [[back]], replyKeyboard: nil)
            case .catalogue:
                let buttons = options.map { Button(label: $0.label, target: .option($0.value)) }
                return FormView(text: prompt, rows: chunk(buttons, by: 3) + [[back]], replyKeyboard: nil)
            default:
                var row = [back]
                if field.optional, !(state.values[name] ?? "").isEmpty {
                    row.append(Button(label: text(L10n.formButtonClear), target: .clear))
                }
                return FormView(text: prompt, rows: [row], replyKeyboard: nil)
            }
        }
    }

    /// The view as a Telegram message: the notice (a refused answer, an outdated menu) above the text, and
    /// the buttons carrying the conversation's code and the revision they were drawn at.
    func message(notice: String?, code: String, revision: UInt32) -> (text: String, markup: ReplyMarkup) {
        let shown = notice.map { "⚠️ " + $0 + "\n\n" + text } ?? text
        if let replyKeyboard { return (shown, .replyKeyboard(replyKeyboard)) }
        let keyboard = InlineKeyboardMarkup(
            inlineKeyboard: rows.enumerated().map { rowIndex, row in
                row.enumerated().map { columnIndex, button in
                    InlineKeyboardButton(
                        text: button.label,
                        action: .callbackData(
                            CallbackData.form(
                                code: code, revision: revision, row: rowIndex, column: columnIndex
                            ).encoded))
                }
            })
        return (shown, .inlineKeyboard(keyboard))
    }

    static func chunk<T>(_ items: [T], by size: Int) -> [[T]] {
        stride(from: 0, to: items.count, by: size).map { Array(items[$0..<min($0 + size, items.count)]) }
    }

    /// Every field's value as shown on screens: `{field}` placeholders.
    static func displayArguments(_ values: [String: String], definition: ConversationDefinition, localizer: Localizer, language: String) -> [String:
        String]
    {
        var arguments: [String: String] = [:]
        for name in definition.fieldOrder {
            let field = definition.fields[name]!
            let value = values[name] ?? ""
            switch field.kind {
            case .toggle:
                arguments[name] = value == "true" ? "✅" : "❌"
            case _ where value.isEmpty:
                arguments[name] = localizer.text(L10n.formValueUnset, language: language)
            case .money:
                arguments[name] = localizer.text(L10n.formValueUsd, language: language, ["amount": value])
            case .integer:
                if let unit = field.unit, let count = Int(value) {
                    arguments[name] = localizer.text(unit, language: language, count: count)
                } else {
                    arguments[name] = value
                }
            case .choice(_, let prefix):
                arguments[name] = localizer.text(prefix + "." + value, language: language)
            default:
                arguments[name] = value
            }
        }
        return arguments
    }
}
