import Conversations
import Logging
import PostgresNIO
import TelegramBotAPI

/// One choice of a catalogue field.
public struct ChoiceOption: Sendable, Hashable {
    public var value: String
    public var label: String

    public init(value: String, label: String) {
        self.value = value
        self.label = label
    }
}

/// A channel picked for a chat field, after the code running the conversation accepted it.
public struct ChosenChat: Sendable, Hashable {
    public var chatID: Int64
    public var title: String

    public init(chatID: Int64, title: String) {
        self.chatID = chatID
        self.title = title
    }
}

/// What a step of a conversation runs with: the update, and the connection of the transaction that holds
/// the person's conversation lock (writes made on it commit together with the conversation state).
public struct FormSession: Sendable {
    public let update: UpdateContext
    public let connection: PostgresConnection
    public let definition: ConversationDefinition
    public var logger: Logger { update.logger }
    public var userID: Int64 { update.user?.id ?? 0 }
}

/// What a named action decided.
public enum FormActionResult: Sendable {
    /// Redraw the current screen, with a notice above it when given.
    case stay(notice: InputRejection?)
    /// Show this screen.
    case show(String)
    /// The conversation is over: its state is deleted and the menu replaced by this (localized) text.
    case finish(text: String)
}

/// The code behind one conversation file: its catalogues, its chats, its actions and who may use it.
public protocol ConversationBinding: Sendable {
    var conversationID: String { get }
    /// The actions this binding implements; start-up fails when the definition uses another.
    var actions: Set<String> { get }
    /// The named validators this binding implements; start-up fails when the definition uses another.
    var validators: Set<String> { get }

    /// Whether the person may go on with this conversation (checked on every step: ownership).
    func isAllowed(_ state: ConversationState, session: FormSession) async throws -> Bool
    func options(catalogue: String, filter: String?, session: FormSession) async throws -> [ChoiceOption]
    /// A value for a field whose rules live in this code (a wallet address, checked for the network chosen in
    /// another field of `values`): the value to store, or why it is refused.
    func check(_ field: FieldDefinition, value: String, values: [String: String], session: FormSession) async throws -> Result<String, InputRejection>
    /// The native chat picker's request for a chat field of this role.
    func chatRequest(role: String, requestID: Int64) -> KeyboardButtonRequestChat
    /// The channel `message` points at (a shared chat, a forwarded post, a name), checked for a chat field of
    /// this role. Runs before the step's transaction, because it asks Telegram.
    func resolveChat(_ message: Message, role: String, state: ConversationState, context: UpdateContext) async throws -> Result<
        ChosenChat, InputRejection
    >
    /// Runs `action` in the step's transaction; its writes commit with the conversation's state.
    func perform(_ action: String, state: ConversationState, session: FormSession) async throws -> FormActionResult
    /// Applies named validator `validator` to a value that passed its kind's rules; `nil` accepts it.
    func validate(_ validator: String, value: String, state: ConversationState, session: FormSession) async throws -> InputRejection?
}
