import BigInt

/// Why a decimal amount cannot be converted to base units.
public enum TokenAmountError: Error, Equatable, Sendable {
    case empty
    case negative
    case invalidFormat
    case tooManyFractionalDigits(allowed: UInt8)
}

/// Exact conversion between human decimal amounts ("1.5") and integer base units, so that no
/// amount ever passes through binary floating point.
public enum TokenUnits {
    /// Accepts `digits` or `digits.digits`; signs, exponents, separators and whitespace are refused
    /// rather than guessed at.
    public static func baseUnits(fromDecimal text: String, decimals: UInt8) throws(TokenAmountError) -> BigUInt {
        guard !text.isEmpty else { throw .empty }
        guard !text.hasPrefix("-") else { throw .negative }
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0]
        let fraction = parts.count == 2 ? parts[1] : ""
        guard !whole.isEmpty, parts.count == 1 || !fraction.isEmpty,
            whole.allSatisfy(isASCIIDigit), fraction.allSatisfy(isASCIIDigit)
        else { throw .invalidFormat }
        guard fraction.count <= Int(decimals) else { throw .tooManyFractionalDigits(allowed: decimals) }

        let paddedFraction = fraction + String(repeating: "0", count: Int(decimals) - fraction.count)
        guard let units = BigUInt(whole + paddedFraction, radix: 10) else { throw .invalidFormat }
        return units
    }

    /// The shortest exact decimal: trailing fractional zeros and a bare point are dropped.
    public static func decimalString(fromBaseUnits units: BigUInt, decimals: UInt8) -> String {
        let digits = String(units, radix: 10)
        let scale = Int(decimals)
        guard scale > 0 else { return digits }
        let padded = String(repeating: "0", count: max(0, scale + 1 - digits.count)) + digits
        let whole = padded.dropLast(scale)
        var fraction = padded.suffix(scale)
        while fraction.last == "0" {
            fraction = fraction.dropLast()
        }
        return fraction.isEmpty ? String(whole) : "\(whole).\(fraction)"
    }

    private static func isASCIIDigit(_ character: Character) -> Bool {
        character.isASCII && character.isNumber
    }
}
