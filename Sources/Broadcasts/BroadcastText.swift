/// A broadcast's text is Telegram's HTML subset, checked before it is stored, so a mistake is reported to
/// the author at once instead of failing for every recipient. Plain text without `<`, `>` or `&` is valid
/// as it is.
public enum BroadcastText {
    /// Telegram's limit on a message's visible text, in UTF-16 code units (the unit Telegram counts in).
    public static let maximumLength = 4096

    /// Tags Telegram's HTML parse mode knows, and the attribute each one needs.
    static let tags: [String: String?] = [
        "b": nil, "strong": nil, "i": nil, "em": nil, "u": nil, "ins": nil, "s": nil, "strike": nil, "del": nil,
        "span": "class", "tg-spoiler": nil, "a": "href", "tg-emoji": "emoji-id", "code": nil, "pre": nil, "blockquote": nil,
    ]

    /// Returns the text a recipient will see, or the first problem.
    public static func check(_ html: String) -> Result<String, BroadcastTextProblem> {
        var visible = ""
        var open: [String] = []
        var index = html.startIndex
        while index < html.endIndex {
            let character = html[index]
            switch character {
            case "<":
                guard let close = html[index...].firstIndex(of: ">") else { return .failure(.unescaped("<")) }
                let inner = html[html.index(after: index)..<close]
                if inner.hasPrefix("/") {
                    let name = inner.dropFirst().trimmingWhitespace().lowercased()
                    guard let last = open.last else { return .failure(.unexpectedEndTag(name)) }
                    guard last == name else { return .failure(.unclosedTag(last)) }
                    open.removeLast()
                } else {
                    let words = inner.split(separator: " ", maxSplits: 1)
                    let name = words.first.map { $0.lowercased() } ?? ""
                    guard !name.isEmpty, let required = tags[name] else {
                        return .failure(name.isEmpty || !name.allSatisfy({ $0.isLetter || $0 == "-" }) ? .unescaped("<") : .unsupportedTag(name))
                    }
                    if let required, !(words.count > 1 && words[1].contains(required + "=")) {
                        return .failure(.missingAttribute(tag: name, attribute: required))
                    }
                    open.append(name)
                }
                index = html.index(after: close)
            case ">":
                return .failure(.unescaped(">"))
            case "&":
                guard let semicolon = html[index...].prefix(12).firstIndex(of: ";") else { return .failure(.unescaped("&")) }
                let entity = String(html[html.index(after: index)..<semicolon])
                guard let scalar = entityValue(entity) else { return .failure(.unknownEntity(entity)) }
                visible.unicodeScalars.append(scalar)
                index = html.index(after: semicolon)
            default:
                visible.append(character)
                index = html.index(after: index)
            }
        }
        if let last = open.last { return .failure(.unclosedTag(last)) }
        if visible.allSatisfy({ $0.isWhitespace }) { return .failure(.empty) }
        let length = visible.utf16.count
        if length > maximumLength { return .failure(.tooLong(length: length, maximum: maximumLength)) }
        return .success(visible)
    }

    private static func entityValue(_ entity: String) -> Unicode.Scalar? {
        switch entity {
        case "lt": return "<"
        case "gt": return ">"
        case "amp": return "&"
        case "quot": return "\""
        default:
            guard entity.hasPrefix("#") else { return nil }
            let digits = entity.dropFirst()
            let value = digits.hasPrefix("x") || digits.hasPrefix("X") ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
            return value.flatMap(Unicode.Scalar.init)
        }
    }
}

/// Why a broadcast text cannot be sent as it is.
public enum BroadcastTextProblem: Error, Sendable, Hashable {
    /// Nothing a recipient would see.
    case empty
    /// Longer than Telegram allows (UTF-16 code units of the visible text).
    case tooLong(length: Int, maximum: Int)
    /// A tag Telegram's HTML does not know.
    case unsupportedTag(String)
    /// A tag opened and not closed (or closed after a tag opened inside it).
    case unclosedTag(String)
    /// A closing tag with nothing open.
    case unexpectedEndTag(String)
    /// A tag without the attribute it needs (`href` of a link).
    case missingAttribute(tag: String, attribute: String)
    /// A `<`, `>` or `&` that is not part of a tag or an entity (write `&lt;`, `&gt;`, `&amp;`).
    case unescaped(Character)
    /// An entity other than `&lt;`, `&gt;`, `&amp;`, `&quot;` and numeric ones.
    case unknownEntity(String)
}

extension Substring {
    fileprivate func trimmingWhitespace() -> Substring {
        var slice = self
        while slice.first?.isWhitespace == true { slice.removeFirst() }
        while slice.last?.isWhitespace == true { slice.removeLast() }
        return slice
    }
}
