import Conversations
import Localization
import Logging
import TelegramBotAPI

/// Runs the conversations of `Conversations/` as state machines persisted in `conversation_states`.
///
/// Every step — a button press or an answer — runs in one transaction that first takes the person's
/// conversation lock, then loads the state, runs the pure `FormMachine` on it (answering the questions it
/// asks through the conversation's binding) and saves or deletes the state. A failure in there rolls the
/// step back whole, so the person finds the form as it was. Only after the commit does `FormPresenter` talk
/// to Telegram. A chat named or shared in an answer is resolved by the binding before the transaction, since
/// that takes Telegram calls too.
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
                    throw ConversationDefinitionError(
                        file: definition.file, line: field.line,
                        reason: "validator '\(validator)' is not implemented (known: \(binding.validators.sorted().joined(separator: ", ")))")
                }
            }
            for name in definition.screenOrder {
                for button in definition.screens[name]!.rows.joined() {
                    if case .action(let action) = button.effect, !binding.actions.contains(action) {
                        throw ConversationDefinitionError(
                            file: definition.file, line: button.line,
                            reason: "action '\(action)' is not implemented (known: \(binding.actions.sorted().joined(separator: ", ")))")
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

    func machine(_ definition: ConversationDefinition, binding: any ConversationBinding, context: UpdateContext) -> FormMachine {
        FormMachine(
            definition: definition, localizer: context.services.localizer, language: context.language,
            chatRequest: { role, requestID in binding.chatRequest(role: role, requestID: requestID) }
        )
    }

    // MARK: - Starting

    /// Starts `conversationID` at `entry` for the update's sender, replacing any conversation they had in
    /// this chat. `prepare` runs inside the step's transaction (after the lock) to fill the draft, e.g. from
    /// the channel being edited; returning `nil` from it cancels the start.
    public func start(
        _ conversationID: String, entry: String, context: UpdateContext,
        prepare: @Sendable (FormSession) async throws -> (values: [String: String], context: [String: String])? = { _ in ([:], [:]) }
    ) async throws {
        guard let definition = byID[conversationID], let binding = bindings[definition.id], definition.entries[entry] != nil,
            let chatID = context.chatID, let userID = context.user?.id
        else { return }
        let machine = machine(definition, binding: binding, context: context)
        let output = try await context.services.database.withTransaction { connection -> [FormOutput] in
            try await ConversationStore.lock(chatID: chatID, userID: userID, on: connection, logger: context.logger)
            let session = FormSession(update: context, connection: connection, definition: definition)
            guard let prepared = try await prepare(session) else { return [] }
            let event = FormEvent.start(entry: entry, chatID: chatID, userID: userID, values: prepared.values, context: prepared.context)
            return try await settle(nil, event, machine: machine, binding: binding, session: session)
        }
        try await FormPresenter.show(output, context: context)
    }

    // MARK: - Button presses

    func press(code: String, revision: UInt32, row: Int, column: Int, context: UpdateContext) async throws {
        guard let definition = byCode[code], let binding = bindings[definition.id], let chatID = context.chatID,
            let userID = context.user?.id, context.update.callbackQuery != nil
        else {
            try await context.answerCallback(text: context.text(L10n.menuOutdated))
            return
        }
        let machine = machine(definition, binding: binding, context: context)
        let event = FormEvent.press(revision: revision, row: row, column: column, message: context.callbackMessageID)
        let output = try await context.services.database.withTransaction { connection -> [FormOutput] in
            try await ConversationStore.lock(chatID: chatID, userID: userID, on: connection, logger: context.logger)
            let stored = try await ConversationStore.load(chatID: chatID, userID: userID, on: connection, logger: context.logger)
            let session = FormSession(update: context, connection: connection, definition: definition)
            return try await settle(stored, event, machine: machine, binding: binding, session: session)
        }
        try await FormPresenter.show(output, context: context)
    }

    // MARK: - Answers (typed text, shared chats)

    /// Handles a message sent while a conversation waits for an answer; `false` when the sender has no
    /// conversation in this chat.
    func answer(_ context: UpdateContext) async throws -> Bool {
        guard let message = context.update.message, let chatID = context.chatID, chatID > 0, let userID = context.user?.id else { return false }
        // Most messages come from people in no form: one plain read, not a locked transaction, for them. The
        // read also tells whether a chat field is being asked, whose answer the binding resolves (with
        // Telegram calls) before the transaction.
        let seen = try await context.services.database.withConnection { connection in
            try await ConversationStore.load(chatID: chatID, userID: userID, on: connection, logger: context.logger)
        }
        guard let (seenState, seenExpired) = seen, let seenDefinition = byID[seenState.conversation], let seenBinding = bindings[seenDefinition.id]
        else {
            return false
        }
        var chat: ChatChoice?
        if !seenExpired, seenState.definitionVersion == seenDefinition.version, case .ask(let name) = seenState.step,
            case .chat(let role, _) = seenDefinition.fields[name]?.kind
        {
            let result = try await seenBinding.resolveChat(message, role: role, state: seenState, context: context)
            chat = ChatChoice(field: name, result: result)
        }
        let output = try await context.services.database.withTransaction { connection -> [FormOutput]? in
            try await ConversationStore.lock(chatID: chatID, userID: userID, on: connection, logger: context.logger)
            guard let stored = try await ConversationStore.load(chatID: chatID, userID: userID, on: connection, logger: context.logger),
                let definition = byID[stored.state.conversation], let binding = bindings[definition.id]
            else { return nil }
            let session = FormSession(update: context, connection: connection, definition: definition)
            let event = FormEvent.message(text: message.text, chat: stored.state.conversation == seenState.conversation ? chat : nil)
            return try await settle(
                stored, event, machine: machine(definition, binding: binding, context: context), binding: binding, session: session)
        }
        guard let output else { return false }
        try await FormPresenter.show(output, context: context)
        return true
    }

    // MARK: - Inside the transaction

    /// Runs the machine, answering its questions through the binding, then saves or deletes the state on
    /// the step's connection; returns what to send once the transaction commits.
    func settle(
        _ stored: FormMachine.Stored?, _ event: FormEvent, machine: FormMachine, binding: any ConversationBinding, session: FormSession
    ) async throws -> [FormOutput] {
        var facts = FormFacts()
        while true {
            switch machine.step(stored, event, facts: facts) {
            case .needs(let question):
                facts.answers[question] = try await resolve(question, stored: stored?.state, binding: binding, session: session)
            case .done(let transition):
                for log in transition.logs {
                    session.logger.log(level: log.level, "\(log.message)", metadata: log.metadata.mapValues { .string($0) })
                }
                switch transition.storage {
                case .keep:
                    break
                case .save(let state):
                    try await ConversationStore.save(state, ttl: draftLifetime, on: session.connection, logger: session.logger)
                case .delete:
                    if let stored {
                        try await ConversationStore.delete(
                            chatID: stored.state.chatID, userID: stored.state.userID, on: session.connection, logger: session.logger)
                    }
                }
                return transition.output
            }
        }
    }

    /// The binding's answer to what the machine asked; a question about the stored state when there is none
    /// (the machine never asks one then) gets the answer that changes nothing.
    func resolve(_ question: FormQuestion, stored: ConversationState?, binding: any ConversationBinding, session: FormSession) async throws
        -> FormFacts.Answer
    {
        switch question {
        case .allowed:
            guard let stored else { return .allowed(false) }
            return .allowed(try await binding.isAllowed(stored, session: session))
        case .options(let catalogue, let filter):
            return .options(try await binding.options(catalogue: catalogue, filter: filter, session: session))
        case .validation(let validator, let value):
            guard let stored else { return .validation(nil) }
            return .validation(try await binding.validate(validator, value: value, state: stored, session: session))
        case .check(let field, let value, let values):
            return .check(try await binding.check(session.definition.fields[field]!, value: value, values: values, session: session))
        case .action(let action):
            guard let stored else { return .action(.stay(notice: nil)) }
            return .action(try await binding.perform(action, state: stored, session: session))
        }
    }
}
