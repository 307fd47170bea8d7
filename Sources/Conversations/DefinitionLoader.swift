import Crypto
import Foundation
import Money
import Yams

/// Why a conversation file was refused: the file, the line and what is wrong.
public struct ConversationDefinitionError: Error, Sendable, CustomStringConvertible, Hashable {
    public var file: String
    public var line: Int
    public var reason: String

    public init(file: String, line: Int, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String { "\(file):\(line): \(reason)" }
}

/// Reads and checks `Conversations/*.yaml`. Every reference (screens, fields, conditions, localization keys)
/// is resolved at load time, so a malformed definition stops the process at start-up instead of failing in
/// front of a user.
public enum ConversationLoader {
    static var namePattern: Regex<Substring> { /^[a-z][a-z0-9_]{0,23}$/ }
    static var codePattern: Regex<Substring> { /^[a-z][a-z0-9]{0,5}$/ }
    static var keyPattern: Regex<Substring> { /^[a-z0-9_]+(?:\.[a-z0-9_]+)+$/ }

    /// Loads every `.yaml` file of `directory`. `knownKeys` (when given) are the localization keys that exist;
    /// a definition using another key is refused.
    public static func loadDirectory(_ directory: String, knownKeys: Set<String>? = nil) throws -> [ConversationDefinition] {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        guard !files.isEmpty else {
            throw ConversationDefinitionError(file: directory, line: 0, reason: "no conversation definitions (*.yaml) found")
        }
        var definitions: [ConversationDefinition] = []
        for file in files {
            let path = directory + "/" + file
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ConversationDefinitionError(file: file, line: 0, reason: "cannot read: \(error)")
            }
            definitions.append(try parse(text, file: file, knownKeys: knownKeys))
        }
        var ids: [String: String] = [:]
        var codes: [String: String] = [:]
        for definition in definitions {
            if let other = ids[definition.id] {
                throw ConversationDefinitionError(file: definition.file, line: 1, reason: "id '\(definition.id)' is also used by \(other)")
            }
            if let other = codes[definition.code] {
                throw ConversationDefinitionError(file: definition.file, line: 1, reason: "code '\(definition.code)' is also used by \(other)")
            }
            ids[definition.id] = definition.file
            codes[definition.code] = definition.file
        }
        return definitions
    }

    /// Parses one definition.
    public static func parse(_ text: String, file: String, knownKeys: Set<String>? = nil) throws -> ConversationDefinition {
        let reader = Reader(file: file)
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else { throw reader.error(1, "the file is empty") }
            root = node
        } catch let error as ConversationDefinitionError {
            throw error
        } catch let error as YamlError {
            throw reader.yamlError(error)
        }
        let top = try reader.mapping(root, allowed: ["id", "code", "entries", "fields", "screens"], context: "the file")
        let id = try reader.name(try reader.required(top, "id", in: root), pattern: namePattern, what: "id")
        let code = try reader.name(
            try reader.required(top, "code", in: root), pattern: codePattern, what: "code (1–6 of a-z0-9, starting with a letter)")

        var fields: [String: FieldDefinition] = [:]
        var fieldOrder: [String] = []
        let fieldsNode = try reader.required(top, "fields", in: root)
        for (keyNode, valueNode) in try reader.pairs(fieldsNode, context: "fields") {
            let name = try reader.name(keyNode, pattern: namePattern, what: "field name")
            if fields[name] != nil { throw reader.error(keyNode, "field '\(name)' is declared twice") }
            fields[name] = try field(name, valueNode, reader: reader)
            fieldOrder.append(name)
        }

        var screens: [String: ScreenDefinition] = [:]
        var screenOrder: [String] = []
        let screensNode = try reader.required(top, "screens", in: root)
        for (keyNode, valueNode) in try reader.pairs(screensNode, context: "screens") {
            let name = try reader.name(keyNode, pattern: namePattern, what: "screen name")
            if screens[name] != nil { throw reader.error(keyNode, "screen '\(name)' is declared twice") }
            screens[name] = try screen(name, valueNode, reader: reader)
            screenOrder.append(name)
        }

        var entries: [String: ConversationDefinition.Entry] = [:]
        var entryOrder: [String] = []
        let entriesNode = try reader.required(top, "entries", in: root)
        for (keyNode, valueNode) in try reader.pairs(entriesNode, context: "entries") {
            let name = try reader.name(keyNode, pattern: namePattern, what: "entry name")
            let map = try reader.mapping(valueNode, allowed: ["ask", "screen"], context: "entry '\(name)'")
            let ask = try map["ask"].map { try reader.names($0, what: "field") } ?? []
            let screen = try reader.name(try reader.required(map, "screen", in: valueNode), pattern: namePattern, what: "screen")
            entries[name] = .init(ask: ask, screen: screen, line: reader.line(valueNode))
            entryOrder.append(name)
        }
        guard !entries.isEmpty else { throw reader.error(entriesNode, "declare at least one entry") }

        var definition = ConversationDefinition(
            id: id, code: code, version: version(of: text), file: file, fields: fields, fieldOrder: fieldOrder,
            screens: screens, screenOrder: screenOrder, entries: entries, entryOrder: entryOrder
        )
        try check(&definition, knownKeys: knownKeys)
        return definition
    }

    static func version(of text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
    }

    // MARK: - Fields

    static func field(_ name: String, _ node: Node, reader: Reader) throws -> FieldDefinition {
        let common: Set<String> = ["kind", "label", "prompt", "optional", "when", "unit", "validator"]
        let kindNode = try reader.required(try reader.mapping(node, allowed: nil, context: "field '\(name)'"), "kind", in: node)
        let kindName = try reader.string(kindNode, what: "kind")
        let extra: Set<String>
        switch kindName {
        case "text": extra = ["min_length", "max_length"]
        case "money": extra = ["min", "max", "decimals"]
        case "integer": extra = ["min", "max"]
        case "choice": extra = ["options", "option_labels"]
        case "catalogue": extra = ["catalogue", "filter_by"]
        case "toggle", "telegram_user": extra = []
        case "chat": extra = ["role", "title_field"]
        case "wallet": extra = ["network_field"]
        default:
            throw reader.error(
                kindNode,
                "field '\(name)' has unknown kind '\(kindName)' (text, money, integer, choice, catalogue, toggle, chat, wallet, telegram_user)")
        }
        let map = try reader.mapping(node, allowed: common.union(extra), context: "field '\(name)'")
        let kind: FieldKind
        switch kindName {
        case "text":
            let minimum = try map["min_length"].map { try reader.integer($0, what: "min_length") } ?? 1
            let maximum = try reader.integer(try reader.required(map, "max_length", in: node), what: "max_length")
            guard minimum >= 0, minimum <= maximum, maximum <= 4096 else {
                throw reader.error(node, "field '\(name)': need 0 ≤ min_length ≤ max_length ≤ 4096")
            }
            kind = .text(minLength: Int(minimum), maxLength: Int(maximum))
        case "money":
            let minimum = try reader.decimal(try reader.required(map, "min", in: node), what: "min")
            let maximum = try reader.decimal(try reader.required(map, "max", in: node), what: "max")
            let decimals = try map["decimals"].map { try reader.integer($0, what: "decimals") } ?? 2
            guard minimum <= maximum, (0...8).contains(decimals) else {
                throw reader.error(node, "field '\(name)': need min ≤ max and 0 ≤ decimals ≤ 8")
            }
            kind = .money(min: minimum, max: maximum, decimals: Int(decimals))
        case "integer":
            let minimum = try reader.integer(try reader.required(map, "min", in: node), what: "min")
            let maximum = try reader.integer(try reader.required(map, "max", in: node), what: "max")
            guard minimum <= maximum else { throw reader.error(node, "field '\(name)': min is above max") }
            kind = .integer(min: minimum, max: maximum)
        case "choice":
            let optionsNode = try reader.required(map, "options", in: node)
            let options = try reader.names(optionsNode, what: "option")
            guard !options.isEmpty, Set(options).count == options.count else {
                throw reader.error(optionsNode, "field '\(name)': options must be distinct and not empty")
            }
            let prefix = try reader.key(try reader.required(map, "option_labels", in: node))
            kind = .choice(options: options, labelPrefix: prefix)
        case "catalogue":
            let catalogue = try reader.name(try reader.required(map, "catalogue", in: node), pattern: namePattern, what: "catalogue")
            let filter = try map["filter_by"].map { try reader.name($0, pattern: namePattern, what: "filter_by") }
            kind = .catalogue(name: catalogue, filterBy: filter)
        case "toggle": kind = .toggle
        case "telegram_user": kind = .telegramUser
        case "chat":
            let role = try reader.name(try reader.required(map, "role", in: node), pattern: namePattern, what: "role")
            let title = try map["title_field"].map { try reader.name($0, pattern: namePattern, what: "title_field") }
            kind = .chat(role: role, titleField: title)
        default:
            let network = try reader.name(try reader.required(map, "network_field", in: node), pattern: namePattern, what: "network_field")
            kind = .wallet(networkField: network)
        }
        return FieldDefinition(
            name: name, kind: kind,
            label: try reader.key(try reader.required(map, "label", in: node)),
            prompt: try reader.key(try reader.required(map, "prompt", in: node)),
            optional: try map["optional"].map { try reader.bool($0, what: "optional") } ?? false,
            condition: try map["when"].map { try condition($0, reader: reader) },
            unit: try map["unit"].map { try reader.key($0) },
            validator: try map["validator"].map { try reader.name($0, pattern: namePattern, what: "validator") },
            line: reader.line(node)
        )
    }

    static func condition(_ node: Node, reader: Reader) throws -> Condition {
        let pairs = try reader.pairs(node, context: "when")
        guard pairs.count == 1, let (fieldNode, valueNode) = pairs.first else {
            throw reader.error(node, "'when' takes exactly one `field: value` pair")
        }
        let field = try reader.name(fieldNode, pattern: namePattern, what: "field")
        let value = try reader.string(valueNode, what: "condition value")
        let expected: Condition.Expected = value == "set" ? .set : value == "unset" ? .unset : .value(value)
        return Condition(field: field, expected: expected)
    }

    // MARK: - Screens

    static func screen(_ name: String, _ node: Node, reader: Reader) throws -> ScreenDefinition {
        let map = try reader.mapping(node, allowed: ["text", "rows"], context: "screen '\(name)'")
        let text = try reader.key(try reader.required(map, "text", in: node))
        let rowsNode = try reader.required(map, "rows", in: node)
        guard let rowNodes = rowsNode.sequence else { throw reader.error(rowsNode, "screen '\(name)': rows must be a list of lists") }
        var rows: [[ButtonDefinition]] = []
        for rowNode in rowNodes {
            guard let buttonNodes = rowNode.sequence, !buttonNodes.isEmpty else {
                throw reader.error(rowNode, "screen '\(name)': each row is a non-empty list of buttons")
            }
            rows.append(try buttonNodes.map { try button($0, reader: reader) })
        }
        guard rows.count <= 20, rows.allSatisfy({ $0.count <= 8 }) else {
            throw reader.error(rowsNode, "screen '\(name)': at most 20 rows of 8 buttons")
        }
        return ScreenDefinition(name: name, text: text, rows: rows, line: reader.line(node))
    }

    static func button(_ node: Node, reader: Reader) throws -> ButtonDefinition {
        let map = try reader.mapping(node, allowed: ["go", "edit", "toggle", "then_ask", "action", "label", "args", "when"], context: "button")
        let effects = ["go", "edit", "toggle", "action"].filter { map[$0] != nil }
        guard effects.count == 1 else { throw reader.error(node, "a button needs exactly one of go, edit, toggle, action") }
        let effect: ButtonEffect
        switch effects[0] {
        case "go": effect = .go(try reader.name(map["go"]!, pattern: namePattern, what: "screen"))
        case "edit":
            let target = map["edit"]!
            let fields =
                target.sequence != nil ? try reader.names(target, what: "field") : [try reader.name(target, pattern: namePattern, what: "field")]
            guard !fields.isEmpty else { throw reader.error(target, "edit names no field") }
            effect = .edit(fields)
        case "toggle":
            let then = try map["then_ask"].map { try reader.names($0, what: "field") } ?? []
            effect = .toggle(try reader.name(map["toggle"]!, pattern: namePattern, what: "field"), thenAsk: then)
        default: effect = .action(try reader.name(map["action"]!, pattern: namePattern, what: "action"))
        }
        if map["then_ask"] != nil, case .toggle = effect {
        } else if map["then_ask"] != nil {
            throw reader.error(node, "then_ask only goes with toggle")
        }
        var arguments: [String: String] = [:]
        if let argsNode = map["args"] {
            for (key, value) in try reader.pairs(argsNode, context: "args") {
                arguments[try reader.name(key, pattern: namePattern, what: "argument")] = try reader.string(value, what: "argument value")
            }
        }
        return ButtonDefinition(
            label: try map["label"].map { try reader.key($0) }, labelArguments: arguments,
            condition: try map["when"].map { try condition($0, reader: reader) }, effect: effect, line: reader.line(node)
        )
    }

    // MARK: - Cross-references

    static func check(_ definition: inout ConversationDefinition, knownKeys: Set<String>?) throws {
        let reader = Reader(file: definition.file)
        func requireField(_ name: String, line: Int, _ what: String) throws -> FieldDefinition {
            guard let field = definition.fields[name] else { throw reader.error(line, "\(what) names unknown field '\(name)'") }
            return field
        }
        for name in definition.fieldOrder {
            let field = definition.fields[name]!
            if let condition = field.condition { _ = try requireField(condition.field, line: field.line, "field '\(name)': when") }
            switch field.kind {
            case .catalogue(_, let filter?):
                guard case .catalogue = try requireField(filter, line: field.line, "field '\(name)': filter_by").kind else {
                    throw reader.error(field.line, "field '\(name)': filter_by must name a catalogue field")
                }
            case .wallet(let network):
                guard case .catalogue = try requireField(network, line: field.line, "field '\(name)': network_field").kind else {
                    throw reader.error(field.line, "field '\(name)': network_field must name a catalogue field")
                }
            case .chat(_, let title?):
                guard case .text = try requireField(title, line: field.line, "field '\(name)': title_field").kind else {
                    throw reader.error(field.line, "field '\(name)': title_field must name a text field")
                }
            default: break
            }
        }
        for name in definition.screenOrder {
            let screen = definition.screens[name]!
            for button in screen.rows.joined() {
                if let condition = button.condition { _ = try requireField(condition.field, line: button.line, "button: when") }
                switch button.effect {
                case .go(let target):
                    guard definition.screens[target] != nil else { throw reader.error(button.line, "button goes to unknown screen '\(target)'") }
                    guard button.label != nil else { throw reader.error(button.line, "a go button needs a label") }
                case .edit(let fields):
                    for field in fields {
                        let declared = try requireField(field, line: button.line, "button: edit")
                        if case .toggle = declared.kind { throw reader.error(button.line, "edit cannot ask toggle '\(field)'; use toggle") }
                    }
                    guard button.label != nil else { throw reader.error(button.line, "an edit button needs a label") }
                case .toggle(let field, let then):
                    guard case .toggle = try requireField(field, line: button.line, "button: toggle").kind else {
                        throw reader.error(button.line, "toggle names '\(field)', which is not a toggle")
                    }
                    for asked in then { _ = try requireField(asked, line: button.line, "button: then_ask") }
                case .action:
                    guard button.label != nil else { throw reader.error(button.line, "an action button needs a label") }
                }
            }
        }
        for name in definition.entryOrder {
            let entry = definition.entries[name]!
            guard definition.screens[entry.screen] != nil else {
                throw reader.error(entry.line, "entry '\(name)' shows unknown screen '\(entry.screen)'")
            }
            for field in entry.ask {
                let declared = try requireField(field, line: entry.line, "entry '\(name)': ask")
                if case .toggle = declared.kind { throw reader.error(entry.line, "entry '\(name)' cannot ask toggle '\(field)'") }
            }
        }
        if let knownKeys {
            for key in definition.localizationKeys.sorted() where !knownKeys.contains(key) {
                throw reader.error(line(of: key, in: definition), "localization key '\(key)' is in no catalog")
            }
        }
    }

    static func line(of key: String, in definition: ConversationDefinition) -> Int {
        for name in definition.fieldOrder {
            let field = definition.fields[name]!
            var keys = [field.label, field.prompt]
            if let unit = field.unit { keys.append(unit) }
            if case .choice(let options, let prefix) = field.kind { keys += options.map { prefix + "." + $0 } }
            if keys.contains(key) { return field.line }
        }
        for name in definition.screenOrder {
            let screen = definition.screens[name]!
            if screen.text == key { return screen.line }
            if let button = screen.rows.joined().first(where: { $0.label == key }) { return button.line }
        }
        return 1
    }
}

/// Typed access to YAML nodes with errors that carry the line.
struct Reader {
    let file: String

    func error(_ line: Int, _ reason: String) -> ConversationDefinitionError {
        ConversationDefinitionError(file: file, line: line, reason: reason)
    }

    func error(_ node: Node, _ reason: String) -> ConversationDefinitionError {
        error(line(node), reason)
    }

    func line(_ node: Node) -> Int { node.mark?.line ?? 1 }

    func yamlError(_ error: YamlError) -> ConversationDefinitionError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return self.error(mark.line, "not valid YAML: \(problem)")
        default:
            return self.error(1, "not valid YAML: \(error)")
        }
    }

    func pairs(_ node: Node, context: String) throws -> [(Node, Node)] {
        guard let mapping = node.mapping else { throw error(node, "\(context) must be a mapping") }
        return mapping.map { ($0.key, $0.value) }
    }

    func mapping(_ node: Node, allowed: Set<String>?, context: String) throws -> [String: Node] {
        var result: [String: Node] = [:]
        for (key, value) in try pairs(node, context: context) {
            let name = try string(key, what: "key")
            if let allowed, !allowed.contains(name) {
                throw error(key, "\(context): unknown key '\(name)' (allowed: \(allowed.sorted().joined(separator: ", ")))")
            }
            if result[name] != nil { throw error(key, "\(context): key '\(name)' appears twice") }
            result[name] = value
        }
        return result
    }

    func required(_ map: [String: Node], _ key: String, in node: Node) throws -> Node {
        guard let value = map[key] else { throw error(node, "missing required key '\(key)'") }
        return value
    }

    func string(_ node: Node, what: String) throws -> String {
        guard let scalar = node.scalar else { throw error(node, "\(what) must be a single value") }
        return scalar.string
    }

    func name(_ node: Node, pattern: Regex<Substring>, what: String) throws -> String {
        let value = try string(node, what: what)
        guard value.wholeMatch(of: pattern) != nil else { throw error(node, "'\(value)' is not a valid \(what)") }
        return value
    }

    func names(_ node: Node, what: String) throws -> [String] {
        guard let sequence = node.sequence else { throw error(node, "expected a list of \(what)s") }
        return try sequence.map { try name($0, pattern: ConversationLoader.namePattern, what: what) }
    }

    func key(_ node: Node) throws -> String {
        let value = try string(node, what: "localization key")
        guard value.wholeMatch(of: ConversationLoader.keyPattern) != nil else {
            throw error(node, "'\(value)' is not a localization key (like form.title)")
        }
        return value
    }

    func integer(_ node: Node, what: String) throws -> Int64 {
        guard let value = Int64(try string(node, what: what)) else { throw error(node, "\(what) must be a whole number") }
        return value
    }

    func decimal(_ node: Node, what: String) throws -> Decimal {
        let text = try string(node, what: what)
        guard let value = DecimalText.parse(text) else {
            throw error(node, "\(what) must be a decimal number like 9999.99")
        }
        return value
    }

    func bool(_ node: Node, what: String) throws -> Bool {
        switch try string(node, what: what) {
        case "true": return true
        case "false": return false
        default: throw error(node, "\(what) must be true or false")
        }
    }
}
