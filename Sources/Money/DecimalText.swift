import Foundation

/// Exact decimal text for money: the database, the wire and messages. One strict parser for the whole
/// code base: `Decimal(string:)` alone accepts `"12abc"` as 12, which must never become an amount.
public enum DecimalText {
    /// Plain notation (`0.0000001`, `12500`, `-0.3`), never an exponent.
    public static func plain(_ value: Decimal) -> String {
        var copy = value
        return NSDecimalString(&copy, Locale(identifier: "en_US_POSIX"))
    }

    /// Parses plain decimal notation only: an optional `-`, digits, and at most one point followed by digits.
    public static func parse(_ text: String) -> Decimal? {
        var body = Substring(text)
        if body.first == "-" { body = body.dropFirst() }
        let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, parts.count == 1 || !parts[1].isEmpty,
            parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } })
        else { return nil }
        return Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))
    }

    /// Parses text the database or a provider sent, where anything but a decimal is a broken promise: the
    /// caller gets an error to surface, never a silent zero.
    public static func require(_ text: String, _ what: @autoclosure () -> String) throws(DecimalTextError) -> Decimal {
        guard let value = parse(text) else { throw DecimalTextError(what: what(), text: String(text.prefix(64))) }
        return value
    }

    /// Dollars with two decimals, e.g. `9.90` (half-up to the cent).
    public static func usd(_ value: Decimal) -> String {
        let text = plain(rounded(value, scale: 2, .plain))
        guard let dot = text.firstIndex(of: ".") else { return text + ".00" }
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        return decimals >= 2 ? text : text + String(repeating: "0", count: 2 - decimals)
    }

    /// `value` rounded to `scale` decimals in `mode`.
    public static func rounded(_ value: Decimal, scale: Int, _ mode: NSDecimalNumber.RoundingMode) -> Decimal {
        var value = value
        var result = Decimal()
        NSDecimalRound(&result, &value, scale, mode)
        return result
    }
}

/// Text that should have been a decimal amount and was not.
public struct DecimalTextError: Error, Sendable, Hashable, CustomStringConvertible {
    public var what: String
    public var text: String

    public init(what: String, text: String) {
        self.what = what
        self.text = text
    }

    public var description: String { "\(what) is not a decimal amount: '\(text)'" }
}
