import App
import Logging
import Testing

@Suite("Key-value log lines")
struct KeyValueLogHandlerTests {
    /// Every scalar that ends a line for some reader, or is a control character: none may reach a log line raw.
    static let breaking: [Unicode.Scalar] =
        (0x00...0x1F).map { Unicode.Scalar(UInt8($0)) } + [Unicode.Scalar(UInt8(0x7F))]
        + (0x80...0x9F).map { Unicode.Scalar(UInt8($0)) } + [Unicode.Scalar(0x2028)!, Unicode.Scalar(0x2029)!]

    static func line(_ message: Logger.Message, metadata: Logger.Metadata) -> String {
        let lines = LogCapture()
        let logger = Logger(label: "test") { label in KeyValueLogHandler(label: label, level: .trace, sink: lines.append) }
        logger.info(message, metadata: metadata)
        return lines.text
    }

    @Test("CR LF, NEL, U+2028, U+2029 and every C0 and C1 control are escaped in values, keys and the message")
    func forgedLinesAreEscaped() {
        let forged = "x\r\nts=2026-01-01T00:00:00.000Z level=critical msg=forged\u{85}a\u{2028}b\u{2029}c\u{1B}[31m\u{0}\u{9B}"
        let everything = String(String.UnicodeScalarView(Self.breaking))
        let line = Self.line("pressed \(forged)", metadata: ["data": "\(forged)", "key\r\n\u{2028}x": "v", "all": "\(everything)"])
        for scalar in Self.breaking {
            #expect(!line.unicodeScalars.contains(scalar), "U+\(String(scalar.value, radix: 16)) reached the line raw: \(line)")
        }
        #expect(
            line.contains(#"data="x\r\nts=2026-01-01T00:00:00.000Z level=critical msg=forged\u{85}a\u{2028}b\u{2029}c\u{1B}[31m\u{0}\u{9B}""#),
            "\(line)")
        #expect(line.contains(#" "key\r\n\u{2028}x"=v"#), "\(line)")
        #expect(line.contains(#"msg="pressed x\r\nts="#), "\(line)")
    }

    @Test("plain values stay bare; quotes and backslashes are escaped inside quotes")
    func plainAndQuoted() {
        let line = Self.line("ready", metadata: ["port": "8080", "name": #"Tom "the" \cat"#])
        #expect(line.contains(" msg=ready "), "\(line)")
        #expect(line.hasSuffix(#"name="Tom \"the\" \\cat" port=8080"#), "\(line)")
    }
}
