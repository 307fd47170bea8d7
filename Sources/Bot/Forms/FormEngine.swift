import Conversations
import Foundation
import Localization
import Logging
import PostgresNIO
import TelegramBotAPI
import Wallets

/// Runs the conversations of `Conversations/` as state machines persisted in `conversation_states`.
///
/// Every step — a button press or an answer — runs in one transaction that first takes the person's
/// conversation lock, then loads the state, checks it (expiry, ownership, an outdated menu), applies the
/// step, talks to Telegram and saves the new state. A failure anywhere rolls the step back whole, so the
/// person finds the form as it was.
public struct FormEngine: Sendable {
    public let definitions: [ConversationDefinition]
    let byID: [String: ConversationDefinition]
    let byCode: [String: ConversationDefinition]
    let bindings: [String: any ConversationBinding]
    /// How long an untouched draft lives.
    public let draftLifetime: Duration

    /// Pairs each definition with its binding; refuses definitions with no binding, and actions or chat
    /// roles the binding does not implement.
    public init(definitions: [ConversationDefinition], bindings: [any ConversationBinding], draftLifetime: Duration = .seconds(24 * 3600)) throws {
        var byBinding: [String: any ConversationBinding] = [:]
        for binding in bindings { byBinding[binding.conversationID] = binding }
        for definition in definitions {
            guard let binding = byBinding[definition.id] else {
                throw ConversationDefinitionError(file: definition.file, line: 1, reason: "no code runs conversation '\(definition.id)'")
            }
            for name in definition.fieldOrder {
                let field = definition.fields[name]!
                if let validator = field.validator, !binding.validators.contains(validator) {
                    throw ConversationDefinitionError(file: definition.file, line: field.line, reason: "validator '\(validator)' is not implemented (known: \(binding.validators.sorted().joined(separator: ", ")))")
                }
            }
            for name in definition.screenOrder {
                for button in definition.screens[name]!.rows.joined() {
                    if case .action(let action) = button.effect, !binding.actions.contains(action) {
                        throw ConversationDefinitionError(file: definition.file, line: button.line, reason: "action '\(action)' is not implemented (known: \(binding.actions.sorted().joined(separator: ", ")))")
                    }
                }
            }
        }
        self.definitions = definitions
        self.byID = Dictionary(uniqueKeysWithValues: definitions.map { ($0.id, $0) })
        self.byCode = Dictionary(uniqueKeysWithValues: definitions.map { ($0.code, $0) })
        self.bindings = byBinding
        self.draftLifetime = draftLifetime
    }

    public func definition(_ id: String) -> ConversationDefinition? { byID[id] }

    /// Routes form button presses and answers to the engine.
    public func register(into router: inout BotRouter) {
        router.callback { data, context in
            guard case .form(let code, let revision, let row, let column) = data else { return false }
            try await press(code: code, revision: revision, row: row, column: column, context: context)
            return true
        }
        router.onMessage { context in try await answer(context) }
    }

    // MARK: - Starting

    /// Starts `conversationID` at `entry` for the update's sender, replacing any conversation they had in
    /// this chat. `prepare` runs inside the step's transaction (after the lock) to fill the draft, e.g. from
    /// the channel being edited; returning `nil` from it cancels the start.
    public func start(
        _ conversationID: String, entry: String, context: UpdateContext,
        prepare: @Sendable (FormSession) async throws -> (values: [String: String], context: [String: String])? = { _ in ([:], [:]) }
    ) async throws {
        guard let definition = byID[conversationID], let entryPoint = definition.entries[entry],
              let chatID = context.chatID, let userID = context.user?.id else { return }
        try await context.services.database.withTransaction { connection in
            try await ConversationStore.lock(chatID: chatID, userID: userID, on: connection, logger: context.logger)
            let session = FormSession(update: context, connection: connection, definition: definition)
            guard let prepared = try await prepare(session) else { return }
            var state = ConversationState(
                chatID: chatID, userID: userID, conversation: definition.id, step: .screen(entryPoint.screen),
                values: prepared.values, pending: entryPoint.ask, returnScreen: entryPoint.screen, context: prepared.context,
                revision: 0, menuMessageID: nil, definitionVersion: definition.version, expiresAt: Date()
            )
            Self.advance(&state, definition)
            try await present(state, definition: definition, session: session, editing: nil, notice: nil)
        }
    }

    // MARK: - Button presses

    func press(code: String, revision: UInt32, row: Int, column: Int, context: UpdateContext) async throws {
        guard let definition = byCode[code], let binding = bindings[definition.id], let chatID = context.chatID,
              let userID = context.user?.id, context.update.callbackQuery != nil else {
            try await context.answerCallback(text: context.text("menu.outdated"))
            return
        }
        let pressedMessage = context.callbackMessageID
        try await context.services.database.withTransaction { connection in
            try await ConversationStore.lock(chatID: chatID, userID: userID, on: connection, logger: context.logger)
            let session = FormSession(update: context, connection: connection, definition: definition)
            guard let (state, expired) = try await ConversationStore.load(chatID: chatID, userID: userID, on: connection, logger: context.logger),
                  state.conversation == definition.id else {
                try await context.answerCallback(text: context.text("menu.outdated"))
                return
            }
            if expired {
                try await expire(state, session: session)
                return
            }
            guard try await binding.isAllowed(state, session: session) else {
                try await refuse(state, session: session)
                return
            }
            if state.definitionVersion != definition.version || state.revision != revision || state.menuMessageID != pressedMessage {
                context.logger.info("outdated menu pressed; redrawing the current one", metadata: [
                    "conversation": "\(definition.id)", "pressed_revision": "\(revision)", "current_revision": "\(state.revision)",
                ])
                try await context.answerCallback(text: context.text("menu.outdated"))
                try await present(state, definition: definition, session: session, editing: nil, notice: InputRejection("form.menu_outdated"))
                return
            }
            let view = try await self.view(of: state, definition: definition, session: session)
            guard view.rows.indices.contains(row), view.rows[row].indices.contains(column) else {
                try await context.answerCallback(text: context.text("menu.outdated"))
                try await present(state, definition: definition, session: session, editing: nil, notice: InputRejection("form.menu_outdated"))
                return
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
                    try await recheckDependents(of: field, in: &next, definition: definition, session: session)
                    Self.advance(&next, definition)
                }
            case .option(let value):
                if case .ask(let field) = state.step {
                    next.values[field] = value
                    try await recheckDependents(of: field, in: &next, definition: definition, session: session)
                    Self.advance(&next, definition)
                }
            case .button(let button):
                guard case .screen(let screen) = state.step else { break }
                switch button.effect {
                case .go(let target):
                    next.step = .screen(target)
                case .edit(let fields):
                    next.returnScreen = screen
                    next.pending = fields
                    Self.advance(&next, definition)
                case .toggle(let field, let thenAsk):
                    let on = next.values[field] == "true"
                    next.values[field] = on ? "false" : "true"
                    let missing = thenAsk.filter { (next.values[$0] ?? "").isEmpty }
                    if !on && !missing.isEmpty {
                        next.returnScreen = screen
                        next.pending = missing
                        Self.advance(&next, definition)
                    }
                case .action(let action):
                    switch try await binding.perform(action, state: &next, session: session) {
                    case .stay(let message): notice = message
                    case .show(let target): next.step = .screen(target)
                    case .finish(let text):
                        try await ConversationStore.delete(chatID: chatID, userID: userID, on: connection, logger: context.logger)
                        try await context.answerCallback()
                        try await replace(message: pressedMessage, with: text, session: session)
                        return
                    }
                }
            }
            try await context.answerCallback()
            try await present(next, definition: definition, session: session, editing: pressedMessage, notice: notice)
        }
    }

    // MARK: - Answers (typed text, shared chats)

    /// Handles a message sent while a conversation waits for an answer; `false` when the sender has no
    /// conversation in this chat.
    func answer(_ context: UpdateContext) async throws -> Bool {
        guard let message = context.update.message, let chatID = context.chatID, chatID > 0, let userID = context.user?.id else { return false }
        // Most messages come from people in no form: one plain read, not a locked transaction, for them.
        let inConversation = try await context.services.database.withConnection { connection in
            try await ConversationStore.exists(chatID: chatID, userID: userID, on: connection, logger: context.logger)
        }
        guard inConversation else { return false }
        return try await context.services.database.withTransaction { connection in
            try await ConversationStore.lock(chatID: chatID, userID: userID, on: connection, logger: context.logger)
            guard let (state, expired) = try await ConversationStore.load(chatID: chatID, userID: userID, on: connection, logger: context.logger),
                  let definition = byID[state.conversation], let binding = bindings[definition.id] else { return false }
            let session = FormSession(update: context, connection: connection, definition: definition)
            if expired {
                try await expire(state, session: session)
                return true
            }
            guard try await binding.isAllowed(state, session: session) else {
                try await refuse(state, session: session)
                return true
            }
            guard state.definitionVersion == definition.version, case .ask(let name) = state.step, let field = definition.fields[name] else {
                try await present(state, definition: definition, session: session, editing: nil, notice: InputRejection("form.use_buttons"))
                return true
            }
            var next = state
            switch field.kind {
            case .chat(let role, let titleField):
                switch try await chat(from: message, role: role, state: state, binding: binding, session: session) {
                case .failure(let rejection):
                    try await present(state, definition: definition, session: session, editing: nil, notice: rejection)
                    return true
                case .success(let chosen):
                    next.values[name] = String(chosen.chatID)
                    var accepted = context.text("form.chat_accepted", ["title": chosen.title])
                    if let titleField, case .text(_, let maximum) = definition.fields[titleField]?.kind {
                        // Cut to what the field, the database and the offer post accept, and say so.
                        let title = chosen.title.trimmingCharacters(in: .whitespacesAndNewlines)
                        let fitting = TextLength.prefix(title, fitting: maximum)
                        next.values[titleField] = fitting
                        if fitting != title {
                            accepted += "\n" + context.text("form.chat_title_shortened", ["title": fitting, "max": String(maximum)])
                        }
                    }
                    try await context.services.client.send(SendMessage(
                        chatId: .id(chatID), text: accepted, parseMode: "HTML",
                        replyMarkup: .removeKeyboard(ReplyKeyboardRemove(removeKeyboard: true))
                    ))
                }
            case .wallet(let networkField):
                let network = state.values[networkField] ?? ""
                guard let format = network.isEmpty ? nil : try await binding.walletFormat(network: network, session: session) else {
                    try await present(state, definition: definition, session: session, editing: nil, notice: InputRejection("form.error.network_first"))
                    return true
                }
                switch WalletAddressValidator.validate(message.text ?? "", format: format) {
                case .success(let address): next.values[name] = address
                case .failure(let error):
                    try await present(state, definition: definition, session: session, editing: nil, notice: Self.rejection(for: error, network: network))
                    return true
                }
            default:
                guard field.kind.isTyped, let text = message.text else {
                    try await present(state, definition: definition, session: session, editing: nil, notice: InputRejection("form.use_buttons"))
                    return true
                }
                switch FieldInput.parse(text, as: field.kind) {
                case .success(let value):
                    if let validator = field.validator, let rejection = try await binding.validate(validator, value: value, state: state, session: session) {
                        context.logger.info("form input refused", metadata: ["conversation": "\(definition.id)", "field": "\(name)", "validator": "\(validator)"])
                        try await present(state, definition: definition, session: session, editing: nil, notice: rejection)
                        return true
                    }
                    next.values[name] = value
                case .failure(let rejection):
                    context.logger.info("form input refused", metadata: ["conversation": "\(definition.id)", "field": "\(name)", "reason": "\(rejection.key)"])
                    try await present(state, definition: definition, session: session, editing: nil, notice: rejection)
                    return true
                }
            }
            try await recheckDependents(of: name, in: &next, definition: definition, session: session)
            Self.advance(&next, definition)
            try await present(next, definition: definition, session: session, editing: nil, notice: nil)
            return true
        }
    }

    static func rejection(for error: WalletAddressError, network: String) -> InputRejection {
        switch error {
        case .empty: InputRejection("form.error.empty")
        case .notThisNetwork: InputRejection("form.error.wallet_not_network", ["network": network])
        case .checksumMismatch: InputRejection("form.error.wallet_checksum")
        }
    }

    /// The channel a message points at: a chat shared with the picker, a post forwarded from the channel,
    /// or `@username` / a t.me link.
    func chat(from message: Message, role: String, state: ConversationState, binding: any ConversationBinding, session: FormSession) async throws -> Result<ChosenChat, InputRejection> {
        let chatID: Int64
        if let shared = message.chatShared {
            chatID = shared.chatId
        } else if case .channel(let origin) = message.forwardOrigin {
            chatID = origin.chat.id
        } else if case .chat = message.forwardOrigin {
            return .failure(InputRejection("form.error.chat_not_channel"))
        } else if let username = Self.channelUsername(message.text ?? "") {
            let client = session.update.services.client
            switch await Result.telegram({ () async throws(TelegramError) -> ChatFullInfo in try await client.send(GetChat(chatId: .username("@" + username))) }) {
            case .success(let chat):
                chatID = chat.id
            case .failure(.chatNotFound), .failure(.badRequest):
                return .failure(InputRejection("form.error.chat_not_found", ["username": "@" + username]))
            case .failure(let error):
                throw error
            }
        } else {
            return .failure(InputRejection("form.error.chat_expected"))
        }
        return try await binding.acceptChat(role: role, chatID: chatID, state: state, session: session)
    }

    /// `@name`, `t.me/name` or `https://t.me/name` → `name` (5–32 of letters, digits, underscore). A bare
    /// word is not taken for a channel name: it is more likely a reply to the wrong question.
    static func channelUsername(_ text: String) -> String? {
        var rest = text.trimmingCharacters(in: .whitespacesAndNewlines)
        for prefix in ["https://", "http://"] where rest.lowercased().hasPrefix(prefix) { rest.removeFirst(prefix.count) }
        var marked = false
        for prefix in ["t.me/", "telegram.me/", "@"] where rest.lowercased().hasPrefix(prefix) {
            rest.removeFirst(prefix.count)
            marked = true
        }
        guard marked, rest.wholeMatch(of: /[A-Za-z][A-Za-z0-9_]{4,31}/) != nil else { return nil }
        return rest
    }

    // MARK: - Steps

    /// Moves to the next pending question, or back to the screen the questions were asked from.
    /// Questions about fields hidden by the answers so far (a threshold for an instant payout) are skipped.
    static func advance(_ state: inout ConversationState, _ definition: ConversationDefinition) {
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
    /// does not carry, an address of another network).
    func recheckDependents(of field: String, in state: inout ConversationState, definition: ConversationDefinition, session: FormSession) async throws {
        guard let binding = bindings[definition.id] else { return }
        for dependent in definition.dependents(of: field) {
            guard let value = state.values[dependent.name], !value.isEmpty else { continue }
            switch dependent.kind {
            case .catalogue(let catalogue, let filter):
                let options = try await binding.options(catalogue: catalogue, filter: filter.flatMap { state.values[$0] }, session: session)
                if !options.contains(where: { $0.value == value }) { state.values[dependent.name] = nil }
            case .wallet(let networkField):
                let network = state.values[networkField] ?? ""
                let format = network.isEmpty ? nil : try await binding.walletFormat(network: network, session: session)
                if let format, case .success(let address) = WalletAddressValidator.validate(value, format: format) {
                    state.values[dependent.name] = address
                } else {
                    state.values[dependent.name] = nil
                }
            default:
                break
            }
        }
    }

    func expire(_ state: ConversationState, session: FormSession) async throws {
        try await ConversationStore.delete(chatID: state.chatID, userID: state.userID, on: session.connection, logger: session.logger)
        try await session.update.answerCallback(text: session.update.text("form.expired_short"))
        try await session.update.reply("form.expired", markup: .removeKeyboard(ReplyKeyboardRemove(removeKeyboard: true)))
    }

    func refuse(_ state: ConversationState, session: FormSession) async throws {
        session.logger.warning("conversation step refused: not allowed for this user", metadata: [
            "conversation": "\(state.conversation)", "user_id": "\(state.userID)", "context": "\(state.context)",
        ])
        try await ConversationStore.delete(chatID: state.chatID, userID: state.userID, on: session.connection, logger: session.logger)
        try await session.update.answerCallback(text: session.update.text("channels.not_yours"))
        try await session.update.reply("channels.not_yours")
    }

    func replace(message: Int64?, with text: String, session: FormSession) async throws {
        guard let chatID = session.update.chatID else { return }
        if let message, try await MenuEditing.edit(session.update, messageID: message, text: text, keyboard: nil) {
            return
        }
        try await session.update.services.client.send(SendMessage(chatId: .id(chatID), text: text, parseMode: "HTML"))
    }

    // MARK: - Drawing

    /// Draws `state` (editing the pressed menu when possible, else as a new message), bumps its revision
    /// and saves it.
    func present(_ state: ConversationState, definition: ConversationDefinition, session: FormSession, editing: Int64?, notice: InputRejection?) async throws {
        var state = state
        state.revision &+= 1
        state.definitionVersion = definition.version
        if case .screen(let name) = state.step, definition.screens[name] == nil, let first = definition.entryOrder.first {
            state.step = .screen(definition.entries[first]!.screen)
        }
        let view = try await self.view(of: state, definition: definition, session: session)
        var text = view.text
        if let notice {
            text = "⚠️ " + session.update.text(notice.key, notice.arguments) + "\n\n" + text
        }
        let keyboard = InlineKeyboardMarkup(inlineKeyboard: view.rows.enumerated().map { rowIndex, row in
            row.enumerated().map { columnIndex, button in
                InlineKeyboardButton(text: button.label, action: .callbackData(CallbackData.form(
                    code: definition.code, revision: state.revision, row: rowIndex, column: columnIndex
                ).encoded))
            }
        })
        let client = session.update.services.client
        guard let chatID = session.update.chatID else { return }
        if let editing, view.replyKeyboard == nil, try await MenuEditing.edit(session.update, messageID: editing, text: text, keyboard: keyboard) {
            state.menuMessageID = editing
            try await ConversationStore.save(state, ttl: draftLifetime, on: session.connection, logger: session.logger)
            return
        }
        let markup: ReplyMarkup = view.replyKeyboard.map { .replyKeyboard($0) } ?? .inlineKeyboard(keyboard)
        let sent = try await client.send(SendMessage(
            chatId: .id(chatID), text: text, parseMode: "HTML", linkPreviewOptions: LinkPreviewOptions(isDisabled: true), replyMarkup: markup
        ))
        state.menuMessageID = sent.messageId
        try await ConversationStore.save(state, ttl: draftLifetime, on: session.connection, logger: session.logger)
    }

    struct View {
        enum Target {
            case button(ButtonDefinition)
            case back
            case clear
            case option(String)
        }

        struct Button {
            var label: String
            var target: Target
        }

        var text: String
        var rows: [[Button]]
        var replyKeyboard: ReplyKeyboardMarkup?
    }

    /// The message and buttons of the state's step. Pure apart from catalogue look-ups, so a press can be
    /// resolved by drawing the same view again.
    func view(of state: ConversationState, definition: ConversationDefinition, session: FormSession) async throws -> View {
        let update = session.update
        let arguments = displayArguments(state.values, definition: definition, context: update)
        switch state.step {
        case .screen(let name):
            let screen = definition.screens[name] ?? definition.screens[definition.entries[definition.entryOrder[0]]!.screen]!
            var rows: [[View.Button]] = []
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
                    return View.Button(label: update.text(key, labelArguments), target: .button(button))
                }
                if !buttons.isEmpty { rows.append(buttons) }
            }
            return View(text: update.text(screen.text, arguments), rows: rows, replyKeyboard: nil)
        case .ask(let name):
            guard let field = definition.fields[name], let binding = bindings[definition.id] else {
                return View(text: update.text("menu.outdated"), rows: [], replyKeyboard: nil)
            }
            let prompt = update.text(field.prompt, ["current": arguments[name] ?? ""])
            let back = View.Button(label: update.text("form.button.back"), target: .back)
            switch field.kind {
            case .chat(let role, _):
                let requestID = Int64((definition.fieldOrder.firstIndex(of: name) ?? 0) + 1)
                let keyboard = ReplyKeyboardMarkup(
                    keyboard: [[KeyboardButton(text: update.text("form.button.pick_channel"), requestChat: binding.chatRequest(role: role, requestID: requestID))]],
                    resizeKeyboard: true, oneTimeKeyboard: true
                )
                return View(text: prompt, rows: [], replyKeyboard: keyboard)
            case .choice(let options, let prefix):
                let buttons = options.map { View.Button(label: update.text(prefix + "." + $0), target: .option($0)) }
                return View(text: prompt, rows: Self.chunk(buttons, by: 2) + [[back]], replyKeyboard: nil)
            case .catalogue(let catalogue, let filter):
                let options = try await binding.options(catalogue: catalogue, filter: filter.flatMap { state.values[$0] }, session: session)
                let buttons = options.map { View.Button(label: $0.label, target: .option($0.value)) }
                return View(text: prompt, rows: Self.chunk(buttons, by: 3) + [[back]], replyKeyboard: nil)
            default:
                var row = [back]
                if field.optional, !(state.values[name] ?? "").isEmpty {
                    row.append(View.Button(label: update.text("form.button.clear"), target: .clear))
                }
                return View(text: prompt, rows: [row], replyKeyboard: nil)
            }
        }
    }

    static func chunk<T>(_ items: [T], by size: Int) -> [[T]] {
        stride(from: 0, to: items.count, by: size).map { Array(items[$0..<min($0 + size, items.count)]) }
    }

    /// Every field's value as shown on screens: `{field}` placeholders.
    func displayArguments(_ values: [String: String], definition: ConversationDefinition, context: UpdateContext) -> [String: String] {
        var arguments: [String: String] = [:]
        for name in definition.fieldOrder {
            let field = definition.fields[name]!
            let value = values[name] ?? ""
            switch field.kind {
            case .toggle:
                arguments[name] = value == "true" ? "✅" : "❌"
            case _ where value.isEmpty:
                arguments[name] = context.text("form.value.unset")
            case .money:
                arguments[name] = context.text("form.value.usd", ["amount": value])
            case .integer:
                if let unit = field.unit, let count = Int(value) {
                    arguments[name] = context.text(unit, count: count)
                } else {
                    arguments[name] = value
                }
            case .choice(_, let prefix):
                arguments[name] = context.text(prefix + "." + value)
            default:
                arguments[name] = value
            }
        }
        return arguments
    }
}
