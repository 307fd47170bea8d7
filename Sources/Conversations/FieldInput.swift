import Foundation
import Localization
import Money

/// A refused input: the localization key of the sentence the person sees, and its placeholder values.
public struct InputRejection: Error, Sendable, Hashable {
    public var key: String
    public var arguments: [String: String]

    public init(_ key: String, _ arguments: [String: String] = [:]) {
        self.key = key
        self.arguments = arguments
    }
}

/// Checks typed input against a field's rules and returns the value to store (canonical text). Pure, so
/// every rule is tested without a bot.
public enum FieldInput {
    static let posix = Locale(identifier: "en_US_POSIX")

    public static func parse(_ input: String, as kind: FieldKind) -> Result<String, InputRejection> {
        let text = input.trimmingCharacters(in: .whitespacesAndNewlines)
        switch kind {
        case .text(let minimum, let maximum):
            if text.isEmpty { return .failure(InputRejection(L10n.formErrorEmpty)) }
            // Measured as Telegram and the database measure it (`TextLength`), never as Swift counts characters.
            let length = TextLength.of(text)
            if length < minimum { return .failure(InputRejection(L10n.formErrorTooShort, ["min": String(minimum)])) }
            if length > maximum {
                return .failure(InputRejection(L10n.formErrorTooLong, ["max": String(maximum), "length": String(length)]))
            }
            return .success(text)
        case .money(let minimum, let maximum, let decimals):
            return money(text, min: minimum, max: maximum, decimals: decimals)
        case .integer(let minimum, let maximum):
            let digits = text.replacingOccurrences(of: " ", with: "")
            guard digits.wholeMatch(of: /-?[0-9]{1,18}/) != nil, let value = Int64(digits) else {
                return .failure(InputRejection(L10n.formErrorNotWholeNumber))
            }
            guard (minimum...maximum).contains(value) else {
                return .failure(InputRejection(L10n.formErrorOutOfRange, ["min": String(minimum), "max": String(maximum)]))
            }
            return .success(String(value))
        case .telegramUser:
            guard text.wholeMatch(of: /[0-9]{5,15}/) != nil, let value = Int64(text), value > 0 else {
                return .failure(InputRejection(L10n.formErrorNotUserId))
            }
            return .success(String(value))
        case .choice, .catalogue, .toggle, .chat, .wallet:
            return .failure(InputRejection(L10n.formErrorUseButtons))
        }
    }

    /// Accepts `12`, `12.5`, `12.50`, `$12.50`, `12,50`; refuses more fraction digits than allowed, signs,
    /// exponents and thousands separators (ambiguous between languages).
    static func money(_ text: String, min minimum: Decimal, max maximum: Decimal, decimals: Int) -> Result<String, InputRejection> {
        var body = text
        if body.hasPrefix("$") { body.removeFirst() }
        if body.lowercased().hasSuffix("usd") { body.removeLast(3) }
        body = body.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ",", with: ".")
        guard let match = body.wholeMatch(of: /([0-9]{1,12})(?:\.([0-9]+))?/) else {
            return .failure(InputRejection(L10n.formErrorNotAmount))
        }
        let fraction = match.output.2.map(String.init) ?? ""
        guard fraction.count <= decimals else {
            return .failure(InputRejection(L10n.formErrorTooManyDecimals, ["decimals": String(decimals)]))
        }
        guard let value = DecimalText.parse(body) else { return .failure(InputRejection(L10n.formErrorNotAmount)) }
        guard value >= minimum, value <= maximum else {
            return .failure(
                InputRejection(L10n.formErrorOutOfRange, ["min": format(minimum, decimals: decimals), "max": format(maximum, decimals: decimals)]))
        }
        return .success(format(value, decimals: decimals))
    }

    /// `value` with exactly `decimals` fraction digits (`12.5` → `12.50`); exact, no binary floating point.
    public static func format(_ value: Decimal, decimals: Int) -> String {
        var rounded = Decimal()
        var input = value
        NSDecimalRound(&rounded, &input, decimals, .plain)
        let text = NSDecimalNumber(decimal: rounded).description(withLocale: posix)
        guard decimals > 0 else { return text }
        let parts = text.split(separator: ".", maxSplits: 1)
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        return String(parts[0]) + "." + fraction.padding(toLength: decimals, withPad: "0", startingAt: 0)
    }
}
