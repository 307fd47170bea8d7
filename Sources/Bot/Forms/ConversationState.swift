import Foundation
import PostgresNIO

/// Where a person is in a conversation: one row of `conversation_states`.
public struct ConversationState: Sendable, Hashable {
    /// The view being shown: a screen of buttons, or a question about one field.
    public enum Step: Sendable, Hashable {
        case screen(String)
        case ask(String)

        var stored: String {
            switch self {
            case .screen(let name): "screen:\(name)"
            case .ask(let field): "ask:\(field)"
            }
        }

        init?(stored: String) {
            let parts = stored.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { return nil }
            switch parts[0] {
            case "screen": self = .screen(parts[1])
            case "ask": self = .ask(parts[1])
            default: return nil
            }
        }
    }

    public var chatID: Int64
    public var userID: Int64
    public var conversation: String
    public var step: Step
    /// Field values as canonical text (toggles `true`/`false`; money with its decimals).
    public var values: [String: String]
    /// Fields still to ask after the current one, then the screen to return to.
    public var pending: [String]
    public var returnScreen: String
    /// What the code running the conversation needs to remember (e.g. which channel is being edited).
    public var context: [String: String]
    public var revision: UInt32
    public var menuMessageID: Int64?
    public var definitionVersion: String
    public var expiresAt: Date

    struct Draft: Codable {
        var values: [String: String]
        var pending: [String]
        var returnScreen: String
        var context: [String: String]

        enum CodingKeys: String, CodingKey {
            case values, pending, context
            case returnScreen = "return"
        }
    }
}
