/// The transition graph of a conversation, as text for review or as Graphviz DOT for docs.
public enum ConversationGraph {
    public struct Edge: Sendable, Hashable {
        public var from: String
        public var to: String
        public var label: String

        public init(from: String, to: String, label: String) {
            self.from = from
            self.to = to
            self.label = label
        }
    }

    /// States are `screen:<name>`, `ask:<field>` and `action:<name>`; every button and entry is an edge.
    public static func edges(of definition: ConversationDefinition) -> [Edge] {
        var edges: [Edge] = []
        func chain(from start: String, asking fields: [String], returningTo screen: String, label: String) {
            var current = start
            var first = true
            for field in fields {
                edges.append(Edge(from: current, to: "ask:\(field)", label: first ? label : "valid"))
                current = "ask:\(field)"
                first = false
            }
            edges.append(Edge(from: current, to: "screen:\(screen)", label: first ? label : "valid"))
        }
        for name in definition.entryOrder {
            let entry = definition.entries[name]!
            chain(from: "entry:\(name)", asking: entry.ask, returningTo: entry.screen, label: "start")
        }
        for name in definition.screenOrder {
            let screen = definition.screens[name]!
            let here = "screen:\(name)"
            for button in screen.rows.joined() {
                let guardText = button.condition.map { " [when \($0.field)=\(describe($0.expected))]" } ?? ""
                switch button.effect {
                case .go(let target):
                    edges.append(Edge(from: here, to: "screen:\(target)", label: (button.label ?? "") + guardText))
                case .edit(let fields):
                    chain(from: here, asking: fields, returningTo: name, label: "edit " + fields.joined(separator: ", ") + guardText)
                    edges.append(Edge(from: "ask:\(fields[0])", to: here, label: "back"))
                case .toggle(let field, let then):
                    edges.append(Edge(from: here, to: here, label: "toggle \(field)" + guardText))
                    if !then.isEmpty {
                        chain(from: here, asking: then, returningTo: name, label: "toggle \(field) on, unset " + then.joined(separator: ", "))
                    }
                case .action(let action):
                    edges.append(Edge(from: here, to: "action:\(action)", label: (button.label ?? action) + guardText))
                }
            }
        }
        var seen: Set<Edge> = []
        return edges.filter { seen.insert($0).inserted }
    }

    static func describe(_ expected: Condition.Expected) -> String {
        switch expected {
        case .set: "set"
        case .unset: "unset"
        case .value(let value): value
        }
    }

    public static func text(_ definition: ConversationDefinition) -> String {
        var lines = ["conversation \(definition.id) (code \(definition.code), version \(definition.version), \(definition.file))"]
        for edge in edges(of: definition) {
            lines.append("  \(edge.from) --[\(edge.label)]--> \(edge.to)")
        }
        return lines.joined(separator: "\n")
    }

    public static func dot(_ definition: ConversationDefinition) -> String {
        func quoted(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        var lines = ["digraph \(definition.id) {", "  rankdir=LR;"]
        for edge in edges(of: definition) {
            lines.append("  \(quoted(edge.from)) -> \(quoted(edge.to)) [label=\(quoted(edge.label))];")
        }
        lines.append("}")
        return lines.joined(separator: "\n")
    }
}
