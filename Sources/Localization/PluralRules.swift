/// CLDR plural categories.
public enum PluralCategory: String, Sendable, CaseIterable, Codable {
    case zero, one, two, few, many, other
}

/// The CLDR cardinal plural rules for the languages TelePay ships, for whole numbers.
public enum PluralRules {
    /// The categories a catalog must provide for `language`.
    public static func requiredCategories(for language: String) -> Set<PluralCategory> {
        switch language {
        case "ru", "uk": return [.one, .few, .many, .other]
        default: return [.one, .other]
        }
    }

    public static func category(for count: Int, language: String) -> PluralCategory {
        let n = abs(count)
        switch language {
        case "ru", "uk":
            // CLDR: one = i%10=1 and i%100!=11; few = i%10=2..4 and i%100!=12..14; many = the other integers.
            let lastDigit = n % 10
            let lastTwo = n % 100
            if lastDigit == 1 && lastTwo != 11 { return .one }
            if (2...4).contains(lastDigit) && !(12...14).contains(lastTwo) { return .few }
            return .many
        default:
            return n == 1 ? .one : .other
        }
    }
}
