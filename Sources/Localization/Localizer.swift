import Foundation

/// A localized string: either one text, or one text per plural category (chosen by the `count` argument).
public enum LocalizedEntry: Sendable, Hashable {
    case text(String)
    case plural([PluralCategory: String])

    /// The `{name}` placeholders the entry uses, across all its variants.
    public var placeholders: Set<String> {
        switch self {
        case .text(let text): return Self.placeholders(in: text)
        case .plural(let variants): return variants.values.reduce(into: Set()) { $0.formUnion(Self.placeholders(in: $1)) }
        }
    }

    static func placeholders(in text: String) -> Set<String> {
        var names: Set<String> = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            let name = rest[rest.index(after: open)..<close]
            if !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) { names.insert(String(name)) }
            rest = rest[rest.index(after: close)...]
        }
        return names
    }
}

/// Why the catalogs could not be loaded.
public struct LocalizationError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var reason: String

    public var description: String { "\(file): \(reason)" }
}

/// The string catalogs of `Localization/`: Apple String Catalogs (`.xcstrings`, JSON), one file per table
/// (`Localizable.xcstrings`), each holding every language under each key as Xcode and translation tools
/// expect. Read at run time because Linux has no catalog compiler. Values use named `{placeholders}`; plural
/// entries are chosen by the `count` argument with CLDR rules.
public struct Localizer: Sendable {
    public static let fallbackLanguage = "en"

    /// Entries by language, then key.
    public let catalogs: [String: [String: LocalizedEntry]]

    public init(catalogs: [String: [String: LocalizedEntry]]) {
        self.catalogs = catalogs
    }

    public var languages: [String] { catalogs.keys.sorted() }

    /// Loads every `.xcstrings` table in `directory` and checks that every key has every language with the
    /// same placeholders; a key defined in two tables is refused.
    public static func load(directory: String) throws -> Localizer {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".xcstrings") }.sorted()
        guard !files.isEmpty else { throw LocalizationError(file: directory, reason: "no .xcstrings catalogs found") }
        var catalogs: [String: [String: LocalizedEntry]] = [:]
        var tableOf: [String: String] = [:]
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file))
            for (language, entries) in try parse(data, file: file) {
                for (key, entry) in entries {
                    if let other = tableOf[key], other != file {
                        throw LocalizationError(file: file, reason: "key '\(key)' is also defined in \(other)")
                    }
                    tableOf[key] = file
                    catalogs[language, default: [:]][key] = entry
                }
            }
        }
        let localizer = Localizer(catalogs: catalogs)
        let problems = localizer.consistencyProblems()
        if let first = problems.first {
            throw LocalizationError(file: directory, reason: first + (problems.count > 1 ? " (and \(problems.count - 1) more)" : ""))
        }
        return localizer
    }

    /// Parses one String Catalog into entries by language, then key.
    static func parse(_ data: Data, file: String) throws -> [String: [String: LocalizedEntry]] {
        let catalog: StringCatalog
        do {
            catalog = try JSONDecoder().decode(StringCatalog.self, from: data)
        } catch {
            throw LocalizationError(file: file, reason: "not a String Catalog: \(error)")
        }
        var entries: [String: [String: LocalizedEntry]] = [:]
        for (key, string) in catalog.strings {
            guard let localizations = string.localizations, !localizations.isEmpty else {
                throw LocalizationError(file: file, reason: "key '\(key)' has no localizations")
            }
            for (language, localization) in localizations {
                entries[language, default: [:]][key] = try entry(localization, key: key, language: language, file: file)
            }
        }
        return entries
    }

    static func entry(_ localization: StringCatalog.Localization, key: String, language: String, file: String) throws -> LocalizedEntry {
        if let value = localization.stringUnit?.value { return .text(value) }
        guard let plural = localization.variations?.plural else {
            throw LocalizationError(file: file, reason: "key '\(key)' has neither a value nor plural variations in '\(language)'")
        }
        var variants: [PluralCategory: String] = [:]
        for (name, variant) in plural {
            guard let category = PluralCategory(rawValue: name) else {
                throw LocalizationError(file: file, reason: "key '\(key)' has unknown plural category '\(name)' in '\(language)'")
            }
            variants[category] = variant.stringUnit.value
        }
        let missing = PluralRules.requiredCategories(for: language).subtracting(variants.keys)
        guard missing.isEmpty else {
            throw LocalizationError(
                file: file, reason: "key '\(key)' lacks \(language) plural forms \(missing.map(\.rawValue).sorted().joined(separator: ", "))")
        }
        return .plural(variants)
    }

    /// Keys missing from a catalog, or whose placeholders differ from the English ones.
    public func consistencyProblems() -> [String] {
        guard let reference = catalogs[Self.fallbackLanguage] else { return ["there is no \(Self.fallbackLanguage) catalog"] }
        var problems: [String] = []
        for (language, entries) in catalogs.sorted(by: { $0.key < $1.key }) where language != Self.fallbackLanguage {
            for (key, entry) in reference.sorted(by: { $0.key < $1.key }) {
                guard let translated = entries[key] else {
                    problems.append("\(language) lacks key '\(key)'")
                    continue
                }
                if translated.placeholders != entry.placeholders {
                    problems.append(
                        "\(language) key '\(key)' uses {\(translated.placeholders.sorted().joined(separator: ", "))} but en uses {\(entry.placeholders.sorted().joined(separator: ", "))}"
                    )
                }
            }
            for key in entries.keys where reference[key] == nil {
                problems.append("\(language) has key '\(key)' that en lacks")
            }
        }
        return problems
    }

    /// The language to answer in: the user's explicit choice, else Telegram's language code when we have
    /// that catalog, else English.
    public func resolveLanguage(chosen: String?, telegramCode: String?) -> String {
        if let chosen, catalogs[chosen] != nil { return chosen }
        if let code = telegramCode?.lowercased().split(separator: "-").first.map(String.init), catalogs[code] != nil { return code }
        return Self.fallbackLanguage
    }

    /// Renders `key` in `language`. Argument values are HTML-escaped, because messages are sent with
    /// `parse_mode: HTML` and a channel title or user name must never become markup. `html` values are
    /// markup the caller built from escaped parts (a user mention, a nested localized text) and go in as they are.
    public func text(_ key: String, language: String, _ arguments: [String: String] = [:], html: [String: String] = [:], count: Int? = nil) -> String
    {
        guard let entry = catalogs[language]?[key] ?? catalogs[Self.fallbackLanguage]?[key] else { return key }
        var template: String
        switch entry {
        case .text(let text):
            template = text
        case .plural(let variants):
            let category = PluralRules.category(for: count ?? 0, language: catalogs[language]?[key] == nil ? Self.fallbackLanguage : language)
            template = variants[category] ?? variants[.other] ?? variants.values.first ?? key
        }
        var values = arguments
        if let count { values["count"] = String(count) }
        for (name, value) in values {
            template = template.replacingOccurrences(of: "{\(name)}", with: Self.escapeHTML(value))
        }
        for (name, value) in html {
            template = template.replacingOccurrences(of: "{\(name)}", with: value)
        }
        return template
    }

    public func has(_ key: String) -> Bool {
        catalogs[Self.fallbackLanguage]?[key] != nil
    }

    public static func escapeHTML(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}

/// The parts of Apple's String Catalog JSON that TelePay reads.
struct StringCatalog: Decodable {
    var sourceLanguage: String
    var strings: [String: CatalogString]
    var version: String

    struct CatalogString: Decodable {
        var localizations: [String: Localization]?
    }

    struct Localization: Decodable {
        var stringUnit: StringUnit?
        var variations: Variations?
    }

    struct Variations: Decodable {
        var plural: [String: Variant]?
    }

    struct Variant: Decodable {
        var stringUnit: StringUnit
    }

    struct StringUnit: Decodable {
        var state: String
        var value: String
    }
}
