import Foundation

extension ExactJSON {
    /// Compact JSON in document order, written as JavaScript's `JSON.stringify` writes it: no whitespace,
    /// non-ASCII as raw UTF-8, `/` unescaped, number literals exactly as stored.
    public func javaScriptText() -> [UInt8] {
        var output: [UInt8] = []
        JavaScriptWriter.write(self, into: &output)
        return output
    }
}

/// `JSON.stringify` output rules (ECMA-262 §25.5.2: SerializeJSONProperty, QuoteJSONString).
enum JavaScriptWriter {
    static func write(_ value: ExactJSON, into output: inout [UInt8]) {
        switch value {
        case .null: output += Array("null".utf8)
        case .bool(let flag): output += Array((flag ? "true" : "false").utf8)
        case .number(let number): output += Array(number.literal.utf8)
        case .string(let text): quote(text.utf16, into: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(element, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                quote(member.key.utf16, into: &output)
                output.append(UInt8(ascii: ":"))
                write(member.value, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// QuoteJSONString: the short escapes, other controls and lone surrogates as `\u` + lower-case hex,
    /// everything else (including U+007F and all non-ASCII) as raw UTF-8.
    static func quote(_ units: [UInt16], into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var index = 0
        while index < units.count {
            let unit = units[index]
            switch unit {
            case 0x22: output += [0x5C, 0x22]
            case 0x5C: output += [0x5C, 0x5C]
            case 0x08: output += [0x5C, UInt8(ascii: "b")]
            case 0x09: output += [0x5C, UInt8(ascii: "t")]
            case 0x0A: output += [0x5C, UInt8(ascii: "n")]
            case 0x0C: output += [0x5C, UInt8(ascii: "f")]
            case 0x0D: output += [0x5C, UInt8(ascii: "r")]
            case 0x00..<0x20: escapeUnit(unit, into: &output)
            case 0xD800...0xDBFF:
                if index + 1 < units.count, (0xDC00...0xDFFF).contains(units[index + 1]) {
                    let scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(units[index + 1]) - 0xDC00)
                    appendUTF8(scalar, into: &output)
                    index += 1
                } else {
                    escapeUnit(unit, into: &output)
                }
            case 0xDC00...0xDFFF: escapeUnit(unit, into: &output)
            default: appendUTF8(UInt32(unit), into: &output)
            }
            index += 1
        }
        output.append(UInt8(ascii: "\""))
    }

    static func escapeUnit(_ unit: UInt16, into output: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        output += [0x5C, UInt8(ascii: "u"), hex[Int(unit >> 12)], hex[Int((unit >> 8) & 0xF)], hex[Int((unit >> 4) & 0xF)], hex[Int(unit & 0xF)]]
    }

    static func appendUTF8(_ scalar: UInt32, into output: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            output.append(UInt8(scalar))
        case 0x80..<0x800:
            output += [UInt8(0xC0 | (scalar >> 6)), UInt8(0x80 | (scalar & 0x3F))]
        case 0x800..<0x10000:
            output += [UInt8(0xE0 | (scalar >> 12)), UInt8(0x80 | ((scalar >> 6) & 0x3F)), UInt8(0x80 | (scalar & 0x3F))]
        default:
            output += [
                UInt8(0xF0 | (scalar >> 18)), UInt8(0x80 | ((scalar >> 12) & 0x3F)),
                UInt8(0x80 | ((scalar >> 6) & 0x3F)), UInt8(0x80 | (scalar & 0x3F)),
            ]
        }
    }
}

/// Python's `json.dumps(value, separators=(',', ':'), sort_keys=True)` with its defaults
/// (`ensure_ascii=True`): keys sorted by code point, everything outside printable ASCII escaped as
/// `\uxxxx`, and floats re-printed by `repr` (`0.0000123` becomes `1.23e-05`, `15.0` stays `15.0`).
enum PythonWriter {
    static func write(_ value: ExactJSON, into output: inout [UInt8]) {
        switch value {
        case .null: output += Array("null".utf8)
        case .bool(let flag): output += Array((flag ? "true" : "false").utf8)
        case .number(let number): output += Array(pythonNumber(number.literal).utf8)
        case .string(let text): quote(text.utf16, into: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(element, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            let sorted = members.map { (codePoints($0.key.utf16), $0) }.sorted { $0.0.lexicographicallyPrecedes($1.0) }
            output.append(UInt8(ascii: "{"))
            for (index, (_, member)) in sorted.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                quote(member.key.utf16, into: &output)
                output.append(UInt8(ascii: ":"))
                write(member.value, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Python strings are code points: a surrogate pair is one character, a lone surrogate its own.
    static func codePoints(_ units: [UInt16]) -> [UInt32] {
        var result: [UInt32] = []
        result.reserveCapacity(units.count)
        var index = 0
        while index < units.count {
            let unit = units[index]
            if (0xD800...0xDBFF).contains(unit), index + 1 < units.count, (0xDC00...0xDFFF).contains(units[index + 1]) {
                result.append(0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(units[index + 1]) - 0xDC00))
                index += 2
            } else {
                result.append(UInt32(unit))
                index += 1
            }
        }
        return result
    }

    /// `ensure_ascii` escaping. A character above U+FFFF is written as its surrogate pair, so escaping
    /// UTF-16 unit by unit gives exactly Python's output.
    static func quote(_ units: [UInt16], into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for unit in units {
            switch unit {
            case 0x22: output += [0x5C, 0x22]
            case 0x5C: output += [0x5C, 0x5C]
            case 0x08: output += [0x5C, UInt8(ascii: "b")]
            case 0x09: output += [0x5C, UInt8(ascii: "t")]
            case 0x0A: output += [0x5C, UInt8(ascii: "n")]
            case 0x0C: output += [0x5C, UInt8(ascii: "f")]
            case 0x0D: output += [0x5C, UInt8(ascii: "r")]
            case 0x20...0x7E: output.append(UInt8(unit))
            default: JavaScriptWriter.escapeUnit(unit, into: &output)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    /// `json.loads` makes an `int` of a literal without fraction or exponent (printed back unchanged, but
    /// `-0` becomes `0`) and a `float` of anything else, printed by `repr`.
    static func pythonNumber(_ literal: String) -> String {
        if !literal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) {
            return literal == "-0" ? "0" : literal
        }
        // Only the signature's text is derived from this Double; amounts are read from the literal.
        let value = Double(literal) ?? .nan
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
        let (digits, point) = ShortestDigits.of(value)
        let sign = value < 0 ? "-" : ""
        if point <= -4 || point > 16 {
            var mantissa = String(digits.first!)
            if digits.count > 1 { mantissa += "." + digits.dropFirst() }
            let exponent = point - 1
            let magnitude = String(abs(exponent))
            return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + (magnitude.count < 2 ? "0" : "") + magnitude
        }
        if point <= 0 { return sign + "0." + String(repeating: "0", count: -point) + digits }
        if point >= digits.count { return sign + digits + String(repeating: "0", count: point - digits.count) + ".0" }
        return sign + digits.prefix(point) + "." + digits.dropFirst(point)
    }
}

/// The shortest decimal digits that round-trip to a `Double`, with the decimal point's position:
/// value = 0.d₁d₂…dₖ × 10^point. Swift's `description` already prints the shortest round-trip digits
/// (closest to the value when several qualify, like ECMAScript's Number::toString and Python's `repr`);
/// this only takes its text apart.
enum ShortestDigits {
    static func of(_ value: Double) -> (digits: String, point: Int) {
        let text = value.magnitude.description
        let parts = text.split(separator: "e", maxSplits: 1)
        let mantissa = parts[0]
        let exponent = parts.count > 1 ? Int(parts[1].hasPrefix("+") ? parts[1].dropFirst() : parts[1])! : 0
        let integerPart = mantissa.split(separator: ".", omittingEmptySubsequences: false)[0]
        var digits = Array(mantissa.filter { $0 != "." })
        var point = integerPart.count + exponent
        while digits.count > 1, digits.first == "0" {
            digits.removeFirst()
            point -= 1
        }
        while digits.count > 1, digits.last == "0" { digits.removeLast() }
        return (String(digits), point)
    }
}
