import Foundation
import Money

/// A key of the donation keypad. The raw values travel in callback data.
public enum DonationKey: String, Sendable, Hashable, CaseIterable, Codable {
    case d0 = "0", d1 = "1", d2 = "2", d3 = "3", d4 = "4", d5 = "5", d6 = "6", d7 = "7", d8 = "8", d9 = "9"
    case dot = "."
    case backspace = "b"
    case clear = "c"
    case confirm = "ok"
    case cancel = "x"

    public var digit: Character? { rawValue.count == 1 && rawValue.first!.isNumber ? rawValue.first : nil }
}

/// Why the keypad refused a key or an amount; each is a localized sentence (`donation.rejected.<raw value>`).
public enum DonationRejection: String, Sendable, Hashable, CaseIterable, Error {
    /// A fifth digit before the decimal point.
    case tooManyIntegerDigits = "integer_digits"
    /// A third digit after the decimal point.
    case tooManyDecimals = "decimals"
    /// A digit after a leading zero ("05").
    case leadingZero = "leading_zero"
    /// A second decimal point.
    case secondDot = "second_dot"
    /// ⌫ or Clear with nothing typed.
    case nothingToDelete = "nothing_to_delete"
    /// Confirm with nothing typed, or a zero amount.
    case empty
    case belowMinimum = "below_minimum"
    case aboveMaximum = "above_maximum"
}

/// The amounts a channel accepts, inclusive.
public struct DonationRange: Sendable, Hashable {
    public var minimum: Decimal
    public var maximum: Decimal

    public static let `default` = DonationRange(minimum: Decimal(string: "4.99")!, maximum: Decimal(string: "9999.99")!)

    public init(minimum: Decimal, maximum: Decimal) {
        self.minimum = minimum
        self.maximum = maximum
    }
}

/// The keypad's rules, without I/O: what typing a key does to the amount shown, and whether an amount may
/// be confirmed. At most 4 digits before the point and 2 after, no leading zeros.
public enum DonationKeypad {
    public static let maximumIntegerDigits = 4
    public static let maximumDecimals = 2

    /// What pressing an editing key does to `amount`; `confirm` and `cancel` leave it as it is.
    public static func press(_ key: DonationKey, on amount: String) -> Result<String, DonationRejection> {
        let parts = amount.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let integer = parts.first.map(String.init) ?? ""
        let hasDot = parts.count == 2
        let decimals = hasDot ? String(parts[1]) : ""
        if let digit = key.digit {
            if hasDot {
                return decimals.count < maximumDecimals ? .success(amount + String(digit)) : .failure(.tooManyDecimals)
            }
            if integer == "0" { return .failure(.leadingZero) }
            return integer.count < maximumIntegerDigits ? .success(amount + String(digit)) : .failure(.tooManyIntegerDigits)
        }
        switch key {
        case .dot:
            if hasDot { return .failure(.secondDot) }
            return .success(integer.isEmpty ? "0." : amount + ".")
        case .backspace:
            return amount.isEmpty ? .failure(.nothingToDelete) : .success(String(amount.dropLast()))
        case .clear:
            return amount.isEmpty ? .failure(.nothingToDelete) : .success("")
        default:
            return .success(amount)
        }
    }

    /// The amount to invoice, when `amount` is a whole amount within `range`.
    public static func confirm(_ amount: String, range: DonationRange) -> Result<Decimal, DonationRejection> {
        let typed = amount.hasSuffix(".") ? String(amount.dropLast()) : amount
        guard !typed.isEmpty, let value = DecimalText.parse(typed), value > 0 else { return .failure(.empty) }
        if value < range.minimum { return .failure(.belowMinimum) }
        if value > range.maximum { return .failure(.aboveMaximum) }
        return .success(value)
    }

    /// The amount as the keypad shows it: `$12.5_` while typing, `$0.00` when empty.
    public static func display(_ amount: String) -> String {
        amount.isEmpty ? "$0.00" : "$" + amount
    }
}
