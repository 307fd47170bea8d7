import Foundation

/// A JSON document that keeps what a signature or an amount depends on: every number's literal text as
/// received (never routed through `Double`), every string as its UTF-16 code units (so even a lone surrogate
/// from a `\ud800` escape survives, as it does in JavaScript), and object members in document order.
public indirect enum ExactJSON: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(JSONString)
    case array([ExactJSON])
    case object([Member])

    /// One `"key": value` pair of an object.
    public struct Member: Sendable, Hashable {
        public var key: JSONString
        public var value: ExactJSON

        public init(_ key: String, _ value: ExactJSON) {
            self.key = JSONString(key)
            self.value = value
        }

        public init(key: JSONString, value: ExactJSON) {
            self.key = key
            self.value = value
        }
    }

    /// The member named `key` of an object; `nil` for a missing key or a value that is not an object.
    public subscript(key: String) -> ExactJSON? {
        guard case .object(let members) = self else { return nil }
        let units = Array(key.utf16)
        return members.first { $0.key.utf16 == units }?.value
    }

    public var stringValue: String? {
        if case .string(let text) = self { return text.value }
        return nil
    }

    public var numberValue: JSONNumber? {
        if case .number(let number) = self { return number }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Convenience for building documents: a string value.
    public static func text(_ value: String) -> ExactJSON { .string(JSONString(value)) }
}

/// A JSON string as UTF-16 code units, the unit JavaScript sorts and escapes by.
public struct JSONString: Sendable, Hashable, CustomStringConvertible {
    public let utf16: [UInt16]

    public init(_ value: String) {
        utf16 = Array(value.utf16)
    }

    public init(utf16: [UInt16]) {
        self.utf16 = utf16
    }

    /// The text, with any lone surrogate replaced by U+FFFD (Swift strings cannot hold one).
    public var value: String { String(decoding: utf16, as: UTF16.self) }

    public var description: String { value }
}

/// A JSON number kept as the exact literal text it was written with (`1.10` stays `1.10`).
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    public let literal: String

    /// Wraps literal text; `nil` unless it is a valid JSON number (RFC 8259 §6).
    public init?(literal: String) {
        var parser = JSONParser(bytes: Array(literal.utf8))
        guard let parsed = try? parser.parseNumberLiteral(), parser.position == parser.bytes.count else { return nil }
        self.literal = parsed
    }

    /// The exact literal of a finite decimal, e.g. `9.99` (Decimal prints plain digits, never an exponent).
    public init?(_ decimal: Decimal) {
        guard decimal.isFinite else { return nil }
        self.init(literal: decimal.description)
    }

    public init(_ integer: Int64) {
        literal = String(integer)
    }

    /// True for literals without a fraction or exponent, e.g. `5077125051`.
    public var isIntegerLiteral: Bool {
        !literal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" })
    }

    /// The exact value as a `Decimal`, parsed from the literal digits; throws rather than round.
    public func decimal() throws(DecimalParseError) -> Decimal {
        try ExactDecimal.parse(literal)
    }

    public var description: String { literal }
}

/// Why a text could not become an exact `Decimal`.
public enum DecimalParseError: Error, Sendable, Hashable, CustomStringConvertible {
    case notANumber(String)
    /// More significant digits than `Decimal` holds (38); rounding money silently is not an option.
    case tooManyDigits(String)
    case exponentOutOfRange(String)

    public var description: String {
        switch self {
        case .notANumber(let text): return "'\(text.prefix(40))' is not a decimal number"
        case .tooManyDigits(let text): return "'\(text.prefix(40))' has more than 38 significant digits"
        case .exponentOutOfRange(let text): return "'\(text.prefix(40))' is too large or too small for Decimal"
        }
    }
}

/// Exact text → `Decimal` conversion, digit by digit, for amounts that arrive as JSON numbers or strings.
public enum ExactDecimal {
    /// Parses a JSON-number-shaped text (`-12.50`, `1e-7`, `0.00414231`) exactly.
    public static func parse(_ text: String) throws(DecimalParseError) -> Decimal {
        var parser = JSONParser(bytes: Array(text.utf8))
        guard (try? parser.parseNumberLiteral()) != nil, parser.position == parser.bytes.count else {
            throw .notANumber(text)
        }
        var negative = false
        var digits: [UInt8] = []
        var fractionDigits = 0
        var exponent = 0
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        if utf8[index] == UInt8(ascii: "-") {
            negative = true
            index = utf8.index(after: index)
        }
        var inFraction = false
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: ".") {
                inFraction = true
            } else if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                let exponentText = String(text[utf8.index(after: index)...])
                // An exponent beyond Int's range is certainly beyond Decimal's.
                guard let value = Int(exponentText.hasPrefix("+") ? String(exponentText.dropFirst()) : exponentText),
                    abs(value) < 10_000
                else { throw .exponentOutOfRange(text) }
                exponent = value
                break
            } else {
                digits.append(byte - UInt8(ascii: "0"))
                if inFraction { fractionDigits += 1 }
            }
            index = utf8.index(after: index)
        }
        var scale = exponent - fractionDigits
        while let first = digits.first, first == 0, digits.count > 1 { digits.removeFirst() }
        while digits.count > 1, digits.last == 0 {
            digits.removeLast()
            scale += 1
        }
        guard digits.count <= 38 else { throw .tooManyDigits(text) }
        var significand = Decimal(0)
        for digit in digits {
            significand = significand * 10 + Decimal(Int(digit))
        }
        if significand == 0 { return Decimal(0) }
        guard (-128...127).contains(scale) else { throw .exponentOutOfRange(text) }
        return Decimal(sign: negative ? .minus : .plus, exponent: scale, significand: significand)
    }
}

/// Why a body is not JSON: the byte offset and what was wrong there.
public struct JSONSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    public var offset: Int
    public var reason: String

    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

extension ExactJSON {
    /// The deepest nesting accepted; real payment bodies nest two levels, and a bound keeps a hostile body
    /// from exhausting the stack.
    public static let maximumDepth = 128

    /// Parses a complete JSON text (RFC 8259: any value at the top, surrounding whitespace allowed, input
    /// must be UTF-8). Duplicate keys keep the first key's position and the last value, as `JSON.parse` does.
    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONSyntaxError) -> ExactJSON {
        var parser = JSONParser(bytes: Array(bytes))
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == parser.bytes.count else {
            throw JSONSyntaxError(offset: parser.position, reason: "unexpected data after the JSON value")
        }
        return value
    }
}

/// A recursive-descent parser over bytes; strings are decoded to UTF-16, numbers kept as literal text.
struct JSONParser {
    let bytes: [UInt8]
    var position = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    func fail(_ reason: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(offset: offset ?? position, reason: reason)
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> ExactJSON {
        guard position < bytes.count else { throw fail("unexpected end of input, expected a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let literal = try parseNumberLiteral()
            return .number(JSONNumber(verifiedLiteral: literal))
        default:
            throw fail("unexpected character '\(Self.show(bytes[position]))', expected a value")
        }
    }

    mutating func expectWord(_ word: StaticString) throws(JSONSyntaxError) {
        let start = position
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for byte in expected {
            guard position < bytes.count, bytes[position] == byte else {
                throw fail("expected '\(word)'", at: start)
            }
            position += 1
        }
    }

    mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> ExactJSON {
        guard depth <= ExactJSON.maximumDepth else { throw fail("nested deeper than \(ExactJSON.maximumDepth) levels") }
        position += 1
        var members: [ExactJSON.Member] = []
        var indexByKey: [[UInt16]: Int] = [:]
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw fail(position < bytes.count ? "expected a string key" : "unexpected end of input inside an object")
            }
            let key = try parseString()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':' after an object key") }
            position += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            if let existing = indexByKey[key.utf16] {
                members[existing].value = value
            } else {
                indexByKey[key.utf16] = members.count
                members.append(ExactJSON.Member(key: key, value: value))
            }
            skipWhitespace()
            guard position < bytes.count else { throw fail("unexpected end of input inside an object") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard bytes[position] == UInt8(ascii: "}") else { throw fail("expected ',' or '}' in an object") }
            position += 1
            return .object(members)
        }
    }

    mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> ExactJSON {
        guard depth <= ExactJSON.maximumDepth else { throw fail("nested deeper than \(ExactJSON.maximumDepth) levels") }
        position += 1
        var elements: [ExactJSON] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard position < bytes.count else { throw fail("unexpected end of input inside an array") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard bytes[position] == UInt8(ascii: "]") else { throw fail("expected ',' or ']' in an array") }
            position += 1
            return .array(elements)
        }
    }

    /// Parses a string token; the input is already known to be valid UTF-8.
    mutating func parseString() throws(JSONSyntaxError) -> JSONString {
        let start = position
        position += 1
        var units: [UInt16] = []
        var runStart = position
        // Outside strings any non-ASCII byte is a syntax error, so checking each raw run of string bytes
        // is enough to reject input that is not UTF-8.
        func flushRun(_ end: Int) throws(JSONSyntaxError) {
            guard end > runStart else { return }
            guard let text = String(validating: bytes[runStart..<end], as: UTF8.self) else {
                throw fail("string is not valid UTF-8", at: runStart)
            }
            units.append(contentsOf: text.utf16)
        }
        while true {
            guard position < bytes.count else { throw fail("unterminated string", at: start) }
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                try flushRun(position)
                position += 1
                return JSONString(utf16: units)
            case UInt8(ascii: "\\"):
                try flushRun(position)
                position += 1
                guard position < bytes.count else { throw fail("unterminated escape") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""): units.append(0x22)
                case UInt8(ascii: "\\"): units.append(0x5C)
                case UInt8(ascii: "/"): units.append(0x2F)
                case UInt8(ascii: "b"): units.append(0x08)
                case UInt8(ascii: "f"): units.append(0x0C)
                case UInt8(ascii: "n"): units.append(0x0A)
                case UInt8(ascii: "r"): units.append(0x0D)
                case UInt8(ascii: "t"): units.append(0x09)
                case UInt8(ascii: "u"):
                    guard position + 4 <= bytes.count, let unit = UInt16(String(decoding: bytes[position..<position + 4], as: UTF8.self), radix: 16),
                        bytes[position..<position + 4].allSatisfy({ Self.isHexDigit($0) })
                    else {
                        throw fail("\\u must be followed by four hexadecimal digits", at: position - 2)
                    }
                    // Kept as a code unit: a pair of escapes forms one character, an unpaired one stays a lone
                    // surrogate, exactly as JSON.parse leaves it.
                    units.append(unit)
                    position += 4
                default:
                    throw fail("invalid escape '\\\(Self.show(escape))'", at: position - 2)
                }
                runStart = position
            case 0x00..<0x20:
                throw fail("unescaped control character U+\(String(format: "%04X", byte)) in a string")
            default:
                position += 1
            }
        }
    }

    /// Parses `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` and returns its text.
    mutating func parseNumberLiteral() throws(JSONSyntaxError) -> String {
        let start = position
        func digits() -> Int {
            let from = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
            return position - from
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count else { throw fail("a number needs digits", at: start) }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                throw fail("numbers must not have leading zeros", at: start)
            }
        } else if digits() == 0 {
            throw fail("a number needs digits", at: start)
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw fail("a decimal point must be followed by digits", at: start) }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw fail("an exponent needs digits", at: start) }
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }

    static func show(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? String(UnicodeScalar(byte)) : String(format: "\\x%02X", byte)
    }
}

extension JSONNumber {
    /// For literals the parser has already checked.
    init(verifiedLiteral: String) {
        literal = verifiedLiteral
    }
}
