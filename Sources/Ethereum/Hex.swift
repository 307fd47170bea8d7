import BigInt

/// Why a `0x`-prefixed hex string could not be read as data or a quantity.
public enum HexError: Error, Equatable, Sendable {
    case missingPrefix
    case oddLength
    case invalidCharacter(Character)
    case emptyQuantity
    case leadingZero
    case overflow(bits: Int)
}

/// JSON-RPC hex encodings: byte strings ("data") and minimal unsigned integers ("quantities").
public enum Hex {
    /// Lowercase, `0x`-prefixed, two digits per byte; empty data is `"0x"`.
    public static func encodeData(_ bytes: [UInt8]) -> String {
        var digits = [UInt8]()
        digits.reserveCapacity(2 + bytes.count * 2)
        digits.append(UInt8(ascii: "0"))
        digits.append(UInt8(ascii: "x"))
        for byte in bytes {
            digits.append(lowercaseDigits[Int(byte >> 4)])
            digits.append(lowercaseDigits[Int(byte & 0x0f)])
        }
        return String(decoding: digits, as: UTF8.self)
    }

    /// Accepts either letter case, since clients and users mix them freely.
    public static func decodeData(_ text: String) throws(HexError) -> [UInt8] {
        let digits = try digitValues(afterPrefixOf: text)
        guard digits.count.isMultiple(of: 2) else { throw .oddLength }
        var bytes = [UInt8]()
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            bytes.append(digits[index] << 4 | digits[index + 1])
            index += 2
        }
        return bytes
    }

    /// Minimal form: no leading zeros, and zero is `"0x0"`.
    public static func encodeQuantity(_ value: BigUInt) -> String {
        "0x" + String(value, radix: 16)
    }

    /// Minimal form: no leading zeros, and zero is `"0x0"`.
    public static func encodeQuantity(_ value: UInt64) -> String {
        "0x" + String(value, radix: 16)
    }

    /// Rejects `"0x"` and leading zeros, as the execution-apis spec defines quantities.
    public static func decodeQuantity(_ text: String) throws(HexError) -> BigUInt {
        let digits = try quantityDigits(text)
        var value = BigUInt(0)
        for digit in digits {
            value = value << 4 | BigUInt(digit)
        }
        return value
    }

    /// Like `decodeQuantity`, for values such as nonces and gas that must fit 64 bits.
    public static func decodeQuantityUInt64(_ text: String) throws(HexError) -> UInt64 {
        let digits = try quantityDigits(text)
        guard digits.count <= 16 else { throw .overflow(bits: 64) }
        return digits.reduce(0) { $0 << 4 | UInt64($1) }
    }

    private static let lowercaseDigits = Array("0123456789abcdef".utf8)

    private static func quantityDigits(_ text: String) throws(HexError) -> [UInt8] {
        let digits = try digitValues(afterPrefixOf: text)
        guard let first = digits.first else { throw .emptyQuantity }
        if first == 0 && digits.count > 1 { throw .leadingZero }
        return digits
    }

    private static func digitValues(afterPrefixOf text: String) throws(HexError) -> [UInt8] {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "0"), utf8[1] == UInt8(ascii: "x") else {
            throw .missingPrefix
        }
        var values = [UInt8]()
        values.reserveCapacity(utf8.count - 2)
        for character in text.dropFirst(2) {
            guard let value = character.hexDigitValue, character.isASCII else {
                throw .invalidCharacter(character)
            }
            values.append(UInt8(value))
        }
        return values
    }
}
