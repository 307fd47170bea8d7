import Conversations
import Foundation
import Localization
import Logging
import TelegramBotAPI

/// What a person did to a conversation.
enum FormEvent: Sendable, Hashable {
    /// Code started the conversation at `entry` with this draft.
    case start(entry: String, chatID: Int64, userID: Int64, values: [String: String], context: [String: String])
    /// A button of a form menu: what its callback data says, and the message it was on.
    case press(revision: UInt32, row: Int, column: Int, message: Int64?)
    /// A message sent while the conversation waits for an answer. `text` is `nil` for one without text (a
    /// sticker, a shared chat); `chat` is the channel the message points at, resolved by the binding before
    /// the step when the conversation was asking a chat field.
    case message(text: String?, chat: ChatChoice?)
}

/// The binding's verdict on the channel a message points at, for the chat field it was asked for.
struct ChatChoice: Sendable, Hashable {
    var field: String
    var result: Result<ChosenChat, InputRejection>
}

/// Something the machine must learn from the binding (the database, the code behind the conversation) to
/// finish a step. The machine stops with the question; the engine answers it and runs the step again.
enum FormQuestion: Error, Sendable, Hashable {
    /// Whether the person may go on with the stored conversation (ownership).
    case allowed
    case options(catalogue: String, filter: String?)
    /// Named validator `validator` on a typed value, with the stored state.
    case validation(validator: String, value: String)
    /// A field whose rules live in the binding (a wallet address, checked for the network in `values`).
    case check(field: String, value: String, values: [String: String])
    /// Runs named action `action` (save, cancel) on the stored state; asked once every other check passed.
    case action(String)
}

/// The binding's answers, collected during one step.
struct FormFacts: Sendable {
    enum Answer: Sendable {
        case allowed(Bool)
        case options([ChoiceOption])
        case validation(InputRejection?)
        case check(Result<String, InputRejection>)
        case action(FormActionResult)
    }

    var answers: [FormQuestion: Answer] = [:]

    func allowed() throws(FormQuestion) -> Bool {
        guard case .allowed(let allowed) = answers[.allowed] else { throw .allowed }
        return allowed
    }

    func options(_ catalogue: String, filter: String?) throws(FormQuestion) -> [ChoiceOption] {
        let question = FormQuestion.options(catalogue: catalogue, filter: filter)
        guard case .options(let options) = answers[question] else { throw question }
        return options
    }

    func validation(_ validator: String, value: String) throws(FormQuestion) -> InputRejection? {
        let question = FormQuestion.validation(validator: validator, value: value)
        guard case .validation(let rejection) = answers[question] else { throw question }
        return rejection
    }

    func check(_ field: String, value: String, values: [String: String]) throws(FormQuestion) -> Result<String, InputRejection> {
        let question = FormQuestion.check(field: field, value: value, values: values)
        guard case .check(let result) = answers[question] else { throw question }
        return result
    }

    func action(_ action: String) throws(FormQuestion) -> FormActionResult {
        guard case .action(let result) = answers[.action(action)] else { throw .action(action) }
        return result
    }
}

/// A conversation's menu, drawn for the state saved with it.
struct FormMenu: Sendable, Hashable {
    /// The state as saved; its revision fences the message id recorded after the send.
    var state: ConversationState
    var text: String
    var markup: ReplyMarkup
    /// The pressed menu to edit in place; `nil` sends a new message (always for a reply keyboard).
    var editing: Int64?
}

/// What the person sees after a step, sent once the step's transaction has committed.
enum FormOutput: Sendable, Hashable {
    case answerCallback(text: String?)
    case send(text: String, removeKeyboard: Bool)
    case showMenu(FormMenu)
    /// The conversation is over: the menu (or, when it cannot be edited, a new message) shows this text.
    case replaceMenu(messageID: Int64?, text: String)
}

/// The result of one step: what becomes of the stored conversation, what to send after the commit, and
/// what to log.
struct FormTransition: Sendable, Hashable {
    enum Storage: Sendable, Hashable {
        case keep
        case save(ConversationState)
        case delete
    }

    struct Log: Sendable, Hashable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    var storage: Storage = .keep
    var output: [FormOutput] = []
    var logs: [Log] = []
}

enum FormOutcome: Sendable {
    case needs(FormQuestion)
    case done(FormTransition)
}

/// One conversation definition run as a pure state machine: (stored state, event, the binding's answers) →
/// the transition. No I/O: whatever the step needs from outside it asks as a `FormQuestion`.
struct FormMachine: Sendable {
    typealias Stored = (state: ConversationState, expired: Bool)

    let definition: ConversationDefinition
    let localizer: Localizer
    let language: String
    let chatRequest: @Sendable (_ role: String, _ requestID: Int64) -> KeyboardButtonRequestChat

    func step(_ stored: Stored?, _ event: FormEvent, facts: FormFacts) -> FormOutcome {
        do {
            return .done(try transition(stored, event, facts))
        } catch {
            return .needs(error)
        }
    }

    func text(_ key: String, _ arguments: [String: String] = [:]) -> String {
        localizer.text(key, language: language, arguments)
    }

    private func transition(_ stored: Stored?, _ event: FormEvent, _ facts: FormFacts) throws(FormQuestion) -> FormTransition {
        switch event {
        case .start(let entry, let chatID, let userID, let values, let context):
            guard let entryPoint = definition.entries[entry] else { return FormTransition() }
            var state = ConversationState(
                chatID: chatID, userID: userID, conversation: definition.id, step: .screen(entryPoint.screen),
                values: values, pending: entryPoint.ask, returnScreen: entryPoint.screen, context: context,
                // The store sets the expiry when it saves.
                revision: 0, menuMessageID: nil, definitionVersion: definition.version, expiresAt: .distantFuture
            )
            advance(&state)
            return try present(state, editing: nil, notice: nil, facts)
        case .press(let revision, let row, let column, let message):
            return try press(stored, revision: revision, row: row, column: column, message: message, facts)
        case .message(let text, let chat):
            return try answer(stored, text: text, chat: chat, facts)
        }
    }

    // MARK: - Button presses

    private func press(_ stored: Stored?, revision: UInt32, row: Int, column: Int, message: Int64?, _ facts: FormFacts) throws(FormQuestion)
        -> FormTransition
    {
        guard let (state, expired) = stored, state.conversation == definition.id else {
            return FormTransition(output: [.answerCallback(text: text(L10n.menuOutdated))])
        }
        if expired { return expire() }
        guard try facts.allowed() else { return refuse(state) }
        if state.definitionVersion != definition.version || state.revision != revision || state.menuMessageID != message {
            var redraw = try present(state, editing: nil, notice: InputRejection(L10n.formMenuOutdated), facts)
            redraw.logs.append(
                FormTransition.Log(
                    level: .info, message: "outdated menu pressed; redrawing the current one",
                    metadata: [
                        "conversation": definition.id, "pressed_revision": "\(revision)", "current_revision": "\(state.revision)",
                    ]))
            redraw.output.insert(.answerCallback(text: text(L10n.menuOutdated)), at: 0)
            return redraw
        }
        let view = try self.view(of: state, facts)
        guard view.rows.indices.contains(row), view.rows[row].indices.contains(column) else {
            var redraw = try present(state, editing: nil, notice: InputRejection(L10n.formMenuOutdated), facts)
            redraw.output.insert(.answerCallback(text: text(L10n.menuOutdated)), at: 0)
            return redraw
        }
        var next = state
        var notice: InputRejection?
        switch view.rows[row][column].target {
        case .back:
            next.pending = []
            next.step = .screen(state.returnScreen)
        case .clear:
            if case .ask(let field) = state.step {
                next.values[field] = nil
                try recheckDependents(of: field, in: &next, facts)
                advance(&next)
            }
        case .option(let value):
            if case .ask(let field) = state.step {
                next.values[field] = value
                try recheckDependents(of: field, in: &next, facts)
                advance(&next)
            }
        case .button(let button):
            guard case .screen(let screen) = state.step else { break }
            switch button.effect {
            case .go(let target):
                next.step = .screen(target)
            case .edit(let fields):
                next.returnScreen = screen
                next.pending = fields
                advance(&next)
            case .toggle(let field, let thenAsk):
                let on = next.values[field] == "true"
                next.values[field] = on ? "false" : "true"
                let missing = thenAsk.filter { (next.values[$0] ?? "").isEmpty }
                if !on && !missing.isEmpty {
                    next.returnScreen = screen
                    next.pending = missing
                    advance(&next)
                }
            case .action(let action):
                switch try facts.action(action) {
                case .stay(let message): notice = message
                case .show(let target): next.step = .screen(target)
                case .finish(let finalText):
                    return FormTransition(storage: .delete, output: [.answerCallback(text: nil), .replaceMenu(messageID: message, text: finalText)])
                }
            }
        }
        var moved = try present(next, editing: message, notice: notice, facts)
        moved.output.insert(.answerCallback(text: nil), at: 0)
        return moved
    }

    // MARK: - Answers (typed text, shared chats)

    private func answer(_ stored: Stored?, text typed: String?, chat: ChatChoice?, _ facts: FormFacts) throws(FormQuestion) -> FormTransition {
        guard let (state, expired) = stored, state.conversation == definition.id else { return FormTransition() }
        if expired { return expire() }
        guard try facts.allowed() else { return refuse(state) }
        guard state.definitionVersion == definition.version, case .ask(let name) = state.step, let field = definition.fields[name] else {
            return try present(state, editing: nil, notice: InputRejection(L10n.formUseButtons), facts)
        }
        var next = state
        var output: [FormOutput] = []
        switch field.kind {
        case .chat(_, let titleField):
            // No verdict for this field: the message came while the conversation was elsewhere.
            guard let chat, chat.field == name else {
                return try present(state, editing: nil, notice: InputRejection(L10n.formErrorChatExpected), facts)
            }
            switch chat.result {
            case .failure(let rejection):
                return try present(state, editing: nil, notice: rejection, facts)
            case .success(let chosen):
                next.values[name] = String(chosen.chatID)
                var accepted = text(L10n.formChatAccepted, ["title": chosen.title])
                if let titleField, case .text(_, let maximum) = definition.fields[titleField]?.kind {
                    // Cut to what the field, the database and the offer post accept, and say so.
                    let title = chosen.title.trimmingCharacters(in: .whitespacesAndNewlines)
                    let fitting = TextLength.prefix(title, fitting: maximum)
                    next.values[titleField] = fitting
                    if fitting != title {
                        accepted += "\n" + text(L10n.formChatTitleShortened, ["title": fitting, "max": String(maximum)])
                    }
                }
                output.append(.send(text: accepted, removeKeyboard: true))
            }
        case .wallet:
            switch try facts.check(name, value: typed ?? "", values: state.values) {
            case .success(let value): next.values[name] = value
            case .failure(let rejection): return try present(state, editing: nil, notice: rejection, facts)
            }
        default:
            guard field.kind.isTyped, let typed else {
                return try present(state, editing: nil, notice: InputRejection(L10n.formUseButtons), facts)
            }
            switch FieldInput.parse(typed, as: field.kind) {
            case .success(let value):
                if let validator = field.validator, let rejection = try facts.validation(validator, value: value) {
                    var refused = try present(state, editing: nil, notice: rejection, facts)
                    refused.logs.append(
                        FormTransition.Log(
                            level: .info, message: "form input refused",
                            metadata: [
                                "conversation": definition.id, "field": name, "validator": validator,
                            ]))
                    return refused
                }
                next.values[name] = value
            case .failure(let rejection):
                var refused = try present(state, editing: nil, notice: rejection, facts)
                refused.logs.append(
                    FormTransition.Log(
                        level: .info, message: "form input refused",
                        metadata: [
                            "conversation": definition.id, "field": name, "reason": rejection.key,
                        ]))
                return refused
            }
        }
        try recheckDependents(of: name, in: &next, facts)
        advance(&next)
        var moved = try present(next, editing: nil, notice: nil, facts)
        moved.output.insert(contentsOf: output, at: 0)
        return moved
    }

    // MARK: - Steps

    /// Moves to the next pending question, or back to the screen the questions were asked from.
    /// Questions about fields hidden by the answers so far (a threshold for an instant payout) are skipped.
    func advance(_ state: inout ConversationState) {
        while !state.pending.isEmpty {
            let field = state.pending.removeFirst()
            if definition.isActive(field, in: state.values) {
                state.step = .ask(field)
                return
            }
        }
        state.step = .screen(state.returnScreen)
    }

    /// After `field` changed, clears dependent values that are no longer valid (a currency the new network
    /// does not carry, an address of another network) and keeps the binding's canonical form of the rest.
    private func recheckDependents(of field: String, in state: inout ConversationState, _ facts: FormFacts) throws(FormQuestion) {
        for dependent in definition.dependents(of: field) {
            guard let value = state.values[dependent.name], !value.isEmpty else { continue }
            switch dependent.kind {
            case .catalogue(let catalogue, let filter):
                let options = try facts.options(catalogue, filter: filter.flatMap { state.values[$0] })
                if !options.contains(where: { $0.value == value }) { state.values[dependent.name] = nil }
            case .wallet:
                switch try facts.check(dependent.name, value: value, values: state.values) {
                case .success(let canonical): state.values[dependent.name] = canonical
                case .failure: state.values[dependent.name] = nil
                }
            default:
                break
            }
        }
    }

    private func expire() -> FormTransition {
        FormTransition(
            storage: .delete,
            output: [
                .answerCallback(text: text(L10n.formExpiredShort)), .send(text: text(L10n.formExpired), removeKeyboard: true),
            ])
    }

    private func refuse(_ state: ConversationState) -> FormTransition {
        FormTransition(
            storage: .delete,
            output: [.answerCallback(text: text(L10n.channelsNotYours)), .send(text: text(L10n.channelsNotYours), removeKeyboard: false)],
            logs: [
                FormTransition.Log(
                    level: .warning, message: "conversation step refused: not allowed for this user",
                    metadata: [
                        "conversation": state.conversation, "user_id": "\(state.userID)", "context": "\(state.context)",
                    ])
            ]
        )
    }

    // MARK: - Drawing

    private func view(of state: ConversationState, _ facts: FormFacts) throws(FormQuestion) -> FormView {
        var options: [ChoiceOption] = []
        if case .ask(let name) = state.step, case .catalogue(let catalogue, let filter) = definition.fields[name]?.kind {
            options = try facts.options(catalogue, filter: filter.flatMap { state.values[$0] })
        }
        return FormView.draw(state, definition: definition, localizer: localizer, language: language, options: options, chatRequest: chatRequest)
    }

    /// Saves `state` at the next revision and shows its menu: in place of the pressed one when there is one
    /// and the view has inline buttons, else as a new message whose id is recorded once it is sent.
    private func present(_ state: ConversationState, editing: Int64?, notice: InputRejection?, _ facts: FormFacts) throws(FormQuestion)
        -> FormTransition
    {
        var state = state
        state.revision &+= 1
        state.definitionVersion = definition.version
        if case .screen(let name) = state.step, definition.screens[name] == nil, let first = definition.entryOrder.first {
            state.step = .screen(definition.entries[first]!.screen)
        }
        let view = try self.view(of: state, facts)
        let message = view.message(notice: notice.map { text($0.key, $0.arguments) }, code: definition.code, revision: state.revision)
        let editing = view.replyKeyboard == nil ? editing : nil
        state.menuMessageID = editing
        return FormTransition(
            storage: .save(state), output: [.showMenu(FormMenu(state: state, text: message.text, markup: message.markup, editing: editing))])
    }
}
