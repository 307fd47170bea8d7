import Foundation

/// A conversation declared in `Conversations/<id>.yaml`: the fields it edits, the screens it shows and how
/// their buttons move between them. The engine in `Bot` runs it as a state machine persisted in PostgreSQL.
public struct ConversationDefinition: Sendable {
    /// The name stored in `conversation_states.conversation`.
    public var id: String
    /// A short code carried in callback data, so buttons fit Telegram's 64 bytes.
    public var code: String
    /// Changes whenever the file changes; a state saved under another version is re-rendered, not trusted.
    public var version: String
    public var file: String
    public var fields: [String: FieldDefinition]
    /// Field names in file order (the order they are validated and listed in).
    public var fieldOrder: [String]
    public var screens: [String: ScreenDefinition]
    public var screenOrder: [String]
    /// Named ways in: each asks a chain of fields (maybe none) and then shows a screen.
    public var entries: [String: Entry]
    public var entryOrder: [String]

    public struct Entry: Sendable, Hashable {
        public var ask: [String]
        public var screen: String
        public var line: Int
    }

    /// The named actions the screens use; the code that runs the conversation must implement each.
    public var actions: Set<String> {
        var names: Set<String> = []
        for screen in screens.values {
            for button in screen.rows.joined() {
                if case .action(let name) = button.effect { names.insert(name) }
            }
        }
        return names
    }

    /// The named validators the fields use; the code that runs the conversation must implement each.
    public var validators: Set<String> {
        Set(fields.values.compactMap(\.validator))
    }

    /// Every localization key the definition uses.
    public var localizationKeys: Set<String> {
        var keys: Set<String> = []
        for field in fields.values {
            keys.insert(field.label)
            keys.insert(field.prompt)
            if case .choice(let options, let prefix) = field.kind {
                for option in options { keys.insert(prefix + "." + option) }
            }
            if let unit = field.unit { keys.insert(unit) }
        }
        for screen in screens.values {
            keys.insert(screen.text)
            for button in screen.rows.joined() { if let label = button.label { keys.insert(label) } }
        }
        return keys
    }
}

/// One value the conversation collects.
public struct FieldDefinition: Sendable, Hashable {
    public var name: String
    public var kind: FieldKind
    /// Localization key of the field's name (used on buttons and in errors).
    public var label: String
    /// Localization key of the question asked when the field is edited.
    public var prompt: String
    /// An optional field may be cleared and may be empty on save.
    public var optional: Bool
    /// Shown (and required) only while this holds.
    public var condition: Condition?
    /// A plural localization key used to display the value (e.g. `days.count`).
    public var unit: String?
    /// A named check the code running the conversation applies after the kind's own rules (e.g. that a
    /// user id belongs to someone the bot can message).
    public var validator: String?
    public var line: Int
}

/// How a field's value is entered and checked.
public enum FieldKind: Sendable, Hashable {
    /// Free text, trimmed, `minLength...maxLength` characters.
    case text(minLength: Int, maxLength: Int)
    /// A decimal amount in `min...max` with at most `decimals` fraction digits.
    case money(min: Decimal, max: Decimal, decimals: Int)
    /// A whole number in `min...max`.
    case integer(min: Int64, max: Int64)
    /// One of fixed options; labels are `<labelPrefix>.<option>`.
    case choice(options: [String], labelPrefix: String)
    /// One of the rows of a database catalogue, optionally narrowed by another field's value.
    case catalogue(name: String, filterBy: String?)
    /// On or off.
    case toggle
    /// A Telegram channel picked with the native chat picker, a forwarded post or `@username`; the chosen
    /// channel's title goes into `titleField`.
    case chat(role: String, titleField: String?)
    /// A payout wallet address, validated for the network chosen in `networkField`.
    case wallet(networkField: String)
    /// A Telegram user id.
    case telegramUser

    public var name: String {
        switch self {
        case .text: "text"
        case .money: "money"
        case .integer: "integer"
        case .choice: "choice"
        case .catalogue: "catalogue"
        case .toggle: "toggle"
        case .chat: "chat"
        case .wallet: "wallet"
        case .telegramUser: "telegram_user"
        }
    }

    /// Fields whose value is typed as text (as opposed to chosen with buttons or toggled).
    public var isTyped: Bool {
        switch self {
        case .text, .money, .integer, .wallet, .telegramUser: true
        case .choice, .catalogue, .toggle, .chat: false
        }
    }

    /// Other fields this one's validity depends on (changing them re-checks this one).
    public var dependsOn: String? {
        switch self {
        case .catalogue(_, let filter): filter
        case .wallet(let network): network
        default: nil
        }
    }
}

/// "Show this only when field F has value V" (`true`/`false` for toggles, `set`/`unset` for presence).
public struct Condition: Sendable, Hashable {
    public enum Expected: Sendable, Hashable {
        case value(String)
        case set
        case unset
    }

    public var field: String
    public var expected: Expected

    public func holds(in values: [String: String]) -> Bool {
        let value = values[field]
        switch expected {
        case .set: return !(value ?? "").isEmpty
        case .unset: return (value ?? "").isEmpty
        case .value(let wanted):
            if wanted == "false" { return value == nil || value == "false" }
            return value == wanted
        }
    }
}

/// A message with an inline keyboard.
public struct ScreenDefinition: Sendable, Hashable {
    public var name: String
    /// Localization key of the message; every field's displayed value is available as `{field_name}`.
    public var text: String
    public var rows: [[ButtonDefinition]]
    public var line: Int
}

public struct ButtonDefinition: Sendable, Hashable {
    /// Localization key; toggles may leave it out to use the field's label.
    public var label: String?
    /// Fixed placeholder values for the label.
    public var labelArguments: [String: String]
    public var condition: Condition?
    public var effect: ButtonEffect
    public var line: Int
}

public enum ButtonEffect: Sendable, Hashable {
    /// Show another screen.
    case go(String)
    /// Ask these fields one after another, then come back.
    case edit([String])
    /// Flip a toggle; when it turns on and any of `thenAsk` is empty, ask those.
    case toggle(String, thenAsk: [String])
    /// Run a named action implemented in code (save, cancel, …).
    case action(String)
}

extension ConversationDefinition {
    /// Whether `field` is shown with these values: its condition holds, and so does the condition of the
    /// field that condition reads (a threshold hidden behind a hidden strategy is hidden too).
    public func isActive(_ field: String, in values: [String: String]) -> Bool {
        var visited: Set<String> = []
        var current = field
        while let condition = fields[current]?.condition, visited.insert(current).inserted {
            guard condition.holds(in: values) else { return false }
            current = condition.field
        }
        return true
    }

    /// The values of the fields that are active; hidden fields keep their draft value but are not saved.
    public func activeValues(_ values: [String: String]) -> [String: String] {
        values.filter { fields[$0.key] != nil && isActive($0.key, in: values) }
    }

    /// Active, non-optional fields without a value, in file order.
    public func missingFields(_ values: [String: String]) -> [FieldDefinition] {
        fieldOrder.compactMap { name in
            let field = fields[name]!
            if case .toggle = field.kind { return nil }
            guard !field.optional, isActive(name, in: values), (values[name] ?? "").isEmpty else { return nil }
            return field
        }
    }

    /// Fields whose stored value must be re-checked when `field` changes.
    public func dependents(of field: String) -> [FieldDefinition] {
        fieldOrder.compactMap { fields[$0] }.filter { $0.kind.dependsOn == field }
    }
}
