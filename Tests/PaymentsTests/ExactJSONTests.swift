import Foundation
import Payments
import Testing

@Suite("Exact JSON")
struct ExactJSONTests {
    func parse(_ text: String) throws -> ExactJSON {
        try ExactJSON.parse(Array(text.utf8))
    }

    func roundTrip(_ text: String) throws -> String {
        String(decoding: try parse(text).javaScriptText(), as: UTF8.self)
    }

    @Test("number literals keep their exact text: 1.10, big integers, exponents, negative zero")
    func numberLiterals() throws {
        let json = try parse(#"{"a":1.10,"b":123456789012345678901234567890,"c":1E+5,"d":-0,"e":0.0000123,"f":1e-7,"g":-0.50}"#)
        #expect(json["a"]?.numberValue?.literal == "1.10")
        #expect(json["b"]?.numberValue?.literal == "123456789012345678901234567890")
        #expect(json["c"]?.numberValue?.literal == "1E+5")
        #expect(json["d"]?.numberValue?.literal == "-0")
        #expect(json["g"]?.numberValue?.literal == "-0.50")
        #expect(
            try roundTrip(#"{"a":1.10,"b":123456789012345678901234567890,"c":1E+5,"d":-0,"e":0.0000123,"f":1e-7,"g":-0.50}"#)
                == #"{"a":1.10,"b":123456789012345678901234567890,"c":1E+5,"d":-0,"e":0.0000123,"f":1e-7,"g":-0.50}"#)
    }

    @Test("amounts become exact Decimals from their literal text, never through Double")
    func exactDecimals() throws {
        #expect(try JSONNumber(literal: "0.00414231")!.decimal() == Decimal(string: "0.00414231"))
        #expect(try JSONNumber(literal: "1.10")!.decimal() == Decimal(string: "1.1"))
        #expect(try JSONNumber(literal: "1e-7")!.decimal() == Decimal(string: "0.0000001"))
        #expect(try JSONNumber(literal: "-12.5E2")!.decimal() == Decimal(-1250))
        #expect(try JSONNumber(literal: "0.000")!.decimal() == 0)
        // 0.1 + 0.2 is the classic Double failure; these stay exact.
        let sum = try JSONNumber(literal: "0.1")!.decimal() + JSONNumber(literal: "0.2")!.decimal()
        #expect(sum == Decimal(string: "0.3"))
        // 38 significant digits fit; a 39th would need rounding, which money must not do silently.
        #expect(try ExactDecimal.parse("12345678901234567890.123456789012345678") == Decimal(string: "12345678901234567890.123456789012345678"))
        #expect(throws: DecimalParseError.tooManyDigits("1234567890123456789012345678901234567891")) {
            try ExactDecimal.parse("1234567890123456789012345678901234567891")
        }
        #expect(throws: DecimalParseError.exponentOutOfRange("1e400")) { try ExactDecimal.parse("1e400") }
        #expect(throws: DecimalParseError.notANumber("1,5")) { try ExactDecimal.parse("1,5") }
        #expect(throws: DecimalParseError.notANumber(" 1")) { try ExactDecimal.parse(" 1") }
        #expect(JSONNumber(Decimal(string: "9.99")!)?.literal == "9.99")
    }

    @Test("nested objects and arrays parse in document order, duplicates keep the first position and the last value")
    func nesting() throws {
        let json = try parse(#" { "b" : [ 1 , { "x" : [ ] , "y" : { } } , [ [ null ] ] ] , "a" : true , "b2": false, "a": "again" } "#)
        guard case .object(let members) = json else {
            Issue.record("not an object")
            return
        }
        #expect(members.map(\.key.value) == ["b", "a", "b2"])
        #expect(json["a"]?.stringValue == "again")
        #expect(
            try roundTrip(#" { "b" : [ 1 , { "x" : [ ] , "y" : { } } , [ [ null ] ] ] , "a" : true } "#)
                == #"{"b":[1,{"x":[],"y":{}},[[null]]],"a":true}"#)
    }

    @Test("strings: escapes decode, non-ASCII and / come out raw, controls and lone surrogates as JavaScript escapes them")
    func strings() throws {
        let json = try parse(#"["caf\u00e9 — 😀 \ud83d\ude00","\/\"\\\b\f\n\r\t\u0001\u001f","\ud800 and \udfff","\u007f"]"#)
        guard case .array(let items) = json else {
            Issue.record("not an array")
            return
        }
        #expect(items[0].stringValue == "café — 😀 😀")
        #expect(items[1].stringValue == "/\"\\\u{8}\u{c}\n\r\t\u{1}\u{1f}")
        if case .string(let lone) = items[2] { #expect(lone.utf16.first == 0xD800 && lone.utf16.contains(0xDFFF)) }
        #expect(
            String(decoding: json.javaScriptText(), as: UTF8.self)
                == "[\"café — 😀 😀\",\"/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\",\"\\ud800 and \\udfff\",\"\u{7f}\"]")
    }

    @Test("invalid JSON is refused with the offset and a reason")
    func invalid() throws {
        let cases: [(String, Int, String)] = [
            ("", 0, "unexpected end of input"),
            ("{\"a\":1,}", 7, "expected a string key"),
            ("{\"a\" 1}", 5, "expected ':'"),
            ("[1 2]", 3, "expected ',' or ']'"),
            ("01", 0, "leading zeros"),
            ("1.", 0, "decimal point"),
            ("-", 0, "needs digits"),
            ("1e", 0, "exponent"),
            ("\"abc", 0, "unterminated string"),
            ("\"a\\x\"", 2, "invalid escape"),
            ("\"\\u12G4\"", 1, "four hexadecimal digits"),
            ("\"tab\there\"", 4, "control character"),
            ("tru", 0, "expected 'true'"),
            ("NaN", 0, "unexpected character 'N'"),
            ("{} {}", 3, "after the JSON value"),
            ("{\"payment_id\":1 \"payment_status\":\"finished\"}", 16, "expected ',' or '}'"),
        ]
        for (text, offset, reason) in cases {
            do {
                _ = try ExactJSON.parse(Array(text.utf8))
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.offset == offset, "\(text): \(error)")
                #expect(error.reason.contains(reason), "\(text): \(error)")
            }
        }
    }

    @Test("bytes that are not UTF-8 and nesting beyond the limit are refused")
    func limits() throws {
        #expect(throws: JSONSyntaxError.self) { try ExactJSON.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONSyntaxError.self) { try ExactJSON.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }
        #expect(throws: JSONSyntaxError.self) { try ExactJSON.parse([0xEF, 0xBB, 0xBF, 0x7B, 0x7D]) }
        let deep = String(repeating: "[", count: ExactJSON.maximumDepth + 1) + String(repeating: "]", count: ExactJSON.maximumDepth + 1)
        #expect(throws: JSONSyntaxError.self) { try parse(deep) }
        let allowed = String(repeating: "[", count: ExactJSON.maximumDepth) + String(repeating: "]", count: ExactJSON.maximumDepth)
        #expect(try roundTrip(allowed) == allowed)
    }
}
