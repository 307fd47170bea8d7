import Foundation

/// One statement of a SQL script, with the line it starts on (1-based) for error messages.
public struct SQLStatement: Sendable, Hashable {
    public var text: String
    public var line: Int

    public init(text: String, line: Int) {
        self.text = text
        self.line = line
    }
}

/// Why a SQL script could not be split into statements.
public enum SQLScriptError: Error, Sendable, Hashable, CustomStringConvertible {
    case unterminated(what: String, line: Int)
    case transactionControl(statement: String, line: Int)
    case metaCommand(line: Int)

    public var description: String {
        switch self {
        case .unterminated(let what, let line):
            return "line \(line): \(what) is never closed"
        case .transactionControl(let statement, let line):
            return "line \(line): '\(statement)' is not allowed; each migration already runs inside one transaction"
        case .metaCommand(let line):
            return "line \(line): psql meta-commands (lines starting with a backslash) are not supported"
        }
    }
}

/// Splits a SQL script into statements the way `psql` does.
///
/// PostgresNIO speaks only the extended query protocol, which takes one statement per query, so migration
/// files are split here. Semicolons end a statement only outside quotes, comments, dollar-quoted bodies,
/// parentheses and SQL-standard `BEGIN ATOMIC ... END` function bodies — the same rules as psql's lexer.
public enum SQLScript {
    public static func split(_ script: String) throws(SQLScriptError) -> [SQLStatement] {
        let bytes = Array(script.utf8)
        var scanner = Scanner(bytes: bytes)
        return try scanner.run()
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var line = 1
        var statements: [SQLStatement] = []

        // Per-statement state.
        var statementStart = 0
        var statementLine = 1
        var sawCode = false
        var parenDepth = 0
        var beginDepth = 0
        var words: [String] = []

        init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        mutating func run() throws(SQLScriptError) -> [SQLStatement] {
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\n"):
                    line += 1
                    index += 1
                case UInt8(ascii: "-") where peek(1) == UInt8(ascii: "-"):
                    skipLineComment()
                case UInt8(ascii: "/") where peek(1) == UInt8(ascii: "*"):
                    try skipBlockComment()
                case UInt8(ascii: "'"):
                    markCode()
                    let escapes = isEscapeStringPrefix()
                    try skipQuoted(UInt8(ascii: "'"), backslashEscapes: escapes, what: "a quoted string")
                case UInt8(ascii: "\""):
                    markCode()
                    try skipQuoted(UInt8(ascii: "\""), backslashEscapes: false, what: "a quoted identifier")
                case UInt8(ascii: "$"):
                    markCode()
                    if let tag = dollarTag() {
                        try skipDollarQuoted(tag: tag)
                    } else {
                        index += 1
                    }
                case UInt8(ascii: "("):
                    markCode()
                    parenDepth += 1
                    index += 1
                case UInt8(ascii: ")"):
                    markCode()
                    parenDepth = max(0, parenDepth - 1)
                    index += 1
                case UInt8(ascii: ";"):
                    index += 1
                    if parenDepth == 0 && beginDepth == 0 {
                        try finishStatement(end: index)
                    }
                case UInt8(ascii: "\\") where !sawCode:
                    throw .metaCommand(line: line)
                default:
                    if isIdentifierStart(byte) {
                        markCode()
                        readWord()
                    } else {
                        if !isWhitespace(byte) { markCode() }
                        index += 1
                    }
                }
            }
            try finishStatement(end: bytes.count)
            return statements
        }

        func peek(_ offset: Int) -> UInt8? {
            let position = index + offset
            return position < bytes.count ? bytes[position] : nil
        }

        mutating func markCode() {
            if !sawCode {
                sawCode = true
                statementLine = line
            }
        }

        mutating func skipLineComment() {
            while index < bytes.count && bytes[index] != UInt8(ascii: "\n") {
                index += 1
            }
        }

        mutating func skipBlockComment() throws(SQLScriptError) {
            let startLine = line
            var depth = 0
            while index < bytes.count {
                if bytes[index] == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "*") {
                    depth += 1
                    index += 2
                } else if bytes[index] == UInt8(ascii: "*") && peek(1) == UInt8(ascii: "/") {
                    depth -= 1
                    index += 2
                    if depth == 0 { return }
                } else {
                    if bytes[index] == UInt8(ascii: "\n") { line += 1 }
                    index += 1
                }
            }
            throw .unterminated(what: "a /* comment", line: startLine)
        }

        /// `E'...'` strings honour backslash escapes; the `E` must stand alone, not end an identifier.
        func isEscapeStringPrefix() -> Bool {
            guard index >= 1, bytes[index - 1] == UInt8(ascii: "E") || bytes[index - 1] == UInt8(ascii: "e") else {
                return false
            }
            return index < 2 || !isIdentifierPart(bytes[index - 2])
        }

        mutating func skipQuoted(_ quote: UInt8, backslashEscapes: Bool, what: String) throws(SQLScriptError) {
            let startLine = line
            index += 1
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\n") { line += 1 }
                if backslashEscapes && byte == UInt8(ascii: "\\") {
                    if peek(1) == UInt8(ascii: "\n") { line += 1 }
                    index += 2
                    continue
                }
                if byte == quote {
                    if peek(1) == quote {
                        index += 2
                        continue
                    }
                    index += 1
                    return
                }
                index += 1
            }
            throw .unterminated(what: what, line: startLine)
        }

        /// A dollar quote opens with `$tag$` where tag is empty or an identifier; `$1` and `a$b` are not quotes.
        func dollarTag() -> [UInt8]? {
            if index > 0 && isIdentifierPart(bytes[index - 1]) { return nil }
            var end = index + 1
            while end < bytes.count && bytes[end] != UInt8(ascii: "$") {
                let byte = bytes[end]
                let valid = end == index + 1 ? isIdentifierStart(byte) : isIdentifierPart(byte) && byte != UInt8(ascii: "$")
                if !valid { return nil }
                end += 1
            }
            guard end < bytes.count else { return nil }
            return Array(bytes[index...end])
        }

        mutating func skipDollarQuoted(tag: [UInt8]) throws(SQLScriptError) {
            let startLine = line
            index += tag.count
            while index < bytes.count {
                if bytes[index] == UInt8(ascii: "$") && bytes[index...].starts(with: tag) {
                    index += tag.count
                    return
                }
                if bytes[index] == UInt8(ascii: "\n") { line += 1 }
                index += 1
            }
            throw .unterminated(what: "a dollar-quoted body", line: startLine)
        }

        mutating func readWord() {
            let start = index
            while index < bytes.count && isIdentifierPart(bytes[index]) {
                index += 1
            }
            let word = String(decoding: bytes[start..<index], as: UTF8.self).uppercased()
            words.append(word)
            trackAtomicBody(word)
        }

        /// Mirrors psql: inside CREATE FUNCTION/PROCEDURE, `BEGIN` (and `CASE` within it) opens a block
        /// that `END` closes, so the semicolons of a `BEGIN ATOMIC` body do not end the statement.
        mutating func trackAtomicBody(_ word: String) {
            guard isRoutineDefinition else { return }
            switch word {
            case "BEGIN":
                beginDepth += 1
            case "CASE" where beginDepth > 0:
                beginDepth += 1
            case "END" where beginDepth > 0:
                beginDepth -= 1
            default:
                break
            }
        }

        var isRoutineDefinition: Bool {
            guard words.first == "CREATE" else { return false }
            var rest = words.dropFirst()
            if rest.first == "OR", rest.dropFirst().first == "REPLACE" {
                rest = rest.dropFirst(2)
            }
            return rest.first == "FUNCTION" || rest.first == "PROCEDURE"
        }

        mutating func finishStatement(end: Int) throws(SQLScriptError) {
            defer {
                statementStart = end
                sawCode = false
                parenDepth = 0
                beginDepth = 0
                words = []
            }
            guard sawCode else { return }
            if beginDepth > 0 || parenDepth > 0 {
                throw .unterminated(what: beginDepth > 0 ? "a BEGIN ... END body" : "a parenthesis", line: statementLine)
            }
            let raw = String(decoding: bytes[statementStart..<end], as: UTF8.self)
            let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            try rejectTransactionControl()
            statements.append(SQLStatement(text: text, line: statementLine))
        }

        func rejectTransactionControl() throws(SQLScriptError) {
            guard let first = words.first else { return }
            let second = words.dropFirst().first
            let forbidden: Bool
            switch first {
            case "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "END", "ABORT":
                forbidden = true
            case "START":
                forbidden = second == "TRANSACTION"
            case "PREPARE":
                forbidden = second == "TRANSACTION"
            default:
                forbidden = false
            }
            if forbidden {
                throw .transactionControl(statement: ([first] + (second.map { [$0] } ?? [])).joined(separator: " "), line: statementLine)
            }
        }

        func isWhitespace(_ byte: UInt8) -> Bool {
            byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0C
        }

        func isIdentifierStart(_ byte: UInt8) -> Bool {
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == UInt8(ascii: "_") || byte >= 0x80
        }

        func isIdentifierPart(_ byte: UInt8) -> Bool {
            isIdentifierStart(byte) || (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "$")
        }
    }
}
