import Foundation

/// A Bot API method: its request is the value itself (encoded as JSON), its answer is `Result`.
public protocol TelegramMethod: Encodable, Sendable {
    associatedtype Result: Decodable & Sendable
    static var name: String { get }
}

/// A chat addressed by numeric id or by `@username` (channels and supergroups).
public enum ChatID: Sendable, Hashable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    case id(Int64)
    case username(String)

    public init(integerLiteral value: Int64) {
        self = .id(value)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let id = try? container.decode(Int64.self) {
            self = .id(id)
        } else {
            self = .username(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .id(let id): try container.encode(id)
        case .username(let name): try container.encode(name)
        }
    }

    public var description: String {
        switch self {
        case .id(let id): return String(id)
        case .username(let name): return name
        }
    }
}

/// The keyboard attached to a sent message: inline buttons, a reply keyboard, its removal, or a forced reply.
public enum ReplyMarkup: Sendable, Hashable, Codable {
    case inlineKeyboard(InlineKeyboardMarkup)
    case replyKeyboard(ReplyKeyboardMarkup)
    case removeKeyboard(ReplyKeyboardRemove)
    case forceReply(ForceReply)

    enum ProbeKeys: String, CodingKey {
        case inlineKeyboard = "inline_keyboard"
        case keyboard
        case removeKeyboard = "remove_keyboard"
        case forceReply = "force_reply"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ProbeKeys.self)
        if container.contains(.inlineKeyboard) {
            self = .inlineKeyboard(try InlineKeyboardMarkup(from: decoder))
        } else if container.contains(.keyboard) {
            self = .replyKeyboard(try ReplyKeyboardMarkup(from: decoder))
        } else if container.contains(.removeKeyboard) {
            self = .removeKeyboard(try ReplyKeyboardRemove(from: decoder))
        } else if container.contains(.forceReply) {
            self = .forceReply(try ForceReply(from: decoder))
        } else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown reply markup"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .inlineKeyboard(let markup): try markup.encode(to: encoder)
        case .replyKeyboard(let markup): try markup.encode(to: encoder)
        case .removeKeyboard(let markup): try markup.encode(to: encoder)
        case .forceReply(let markup): try markup.encode(to: encoder)
        }
    }
}

/// What message edits return: the edited message, or `true` for messages sent via inline mode.
public enum MessageOrTrue: Sendable, Hashable, Decodable {
    case message(Message)
    case `true`

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let flag = try? container.decode(Bool.self), flag {
            self = .true
        } else {
            self = .message(try container.decode(Message.self))
        }
    }
}

/// Boxes a value so a type can contain itself (a message's `reply_to_message` is a message).
public final class Indirect<Value: Sendable & Hashable & Codable>: Sendable, Hashable, Codable {
    public let value: Value

    public init(_ value: Value) {
        self.value = value
    }

    public required init(from decoder: any Decoder) throws {
        value = try Value(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try value.encode(to: encoder)
    }

    public static func == (lhs: Indirect, rhs: Indirect) -> Bool {
        lhs.value == rhs.value
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(value)
    }
}
