import Bot
import Foundation
import Localization
import TestSupport
import Testing

@Suite("Localization")
struct LocalizationTests {
    @Test("every catalog has every key with the same placeholders, and the plural forms its language needs")
    func catalogsConsistent() throws {
        let localizer = try Localizer.load(directory: RepositoryPaths.root + "/Localization")
        #expect(localizer.languages == ["en", "ru"])
        #expect(localizer.consistencyProblems().isEmpty)
        #expect(Set(localizer.catalogs["en"]!.keys) == Set(localizer.catalogs["ru"]!.keys))
    }

    @Test("the catalog is one String Catalog per table holding every language, as Xcode and translation tools read it")
    func oneTableEveryLanguage() throws {
        let folder = RepositoryPaths.root + "/Localization"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".xcstrings") }
        #expect(files == ["Localizable.xcstrings"])
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/Localizable.xcstrings"))) as? [String: Any]
        #expect(json?["sourceLanguage"] as? String == "en")
        let strings = try #require(json?["strings"] as? [String: [String: Any]])
        for (key, string) in strings {
            let languages = (string["localizations"] as? [String: Any]).map { Set($0.keys) }
            #expect(languages == ["en", "ru"], "\(key)")
        }
    }

    @Test("a key missing a language, using other placeholders, or defined in two tables is refused at load time")
    func inconsistentCatalogRefused() throws {
        func write(_ folder: String, _ table: String, _ strings: [String: [String: String]]) throws {
            let entries = strings.mapValues { values in
                ["localizations": values.mapValues { ["stringUnit": ["state": "translated", "value": $0]] }]
            }
            let data = try JSONSerialization.data(withJSONObject: ["sourceLanguage": "en", "version": "1.0", "strings": entries])
            try data.write(to: URL(fileURLWithPath: "\(folder)/\(table).xcstrings"))
        }
        let missing = try RepositoryPaths.makeTemporaryDirectory("telepay-l10n")
        try write(missing, "Localizable", ["greeting": ["en": "Hi {name}", "ru": "Привет {name}"], "bye": ["en": "Bye"]])
        let error = #expect(throws: LocalizationError.self) { try Localizer.load(directory: missing) }
        #expect(try #require(error).description.contains("ru lacks key 'bye'"))

        let renamed = try RepositoryPaths.makeTemporaryDirectory("telepay-l10n")
        try write(renamed, "Localizable", ["greeting": ["en": "Hi {name}", "ru": "Привет {имя}"]])
        let placeholder = #expect(throws: LocalizationError.self) { try Localizer.load(directory: renamed) }
        #expect(try #require(placeholder).description.contains("uses {имя}"))

        let twice = try RepositoryPaths.makeTemporaryDirectory("telepay-l10n")
        try write(twice, "Localizable", ["greeting": ["en": "Hi", "ru": "Привет"]])
        try write(twice, "Other", ["greeting": ["en": "Hello", "ru": "Здравствуйте"]])
        let duplicate = #expect(throws: LocalizationError.self) { try Localizer.load(directory: twice) }
        #expect(try #require(duplicate).description.contains("also defined in"))
    }

    @Test("Russian plurals follow CLDR one/few/many, English one/other")
    func plurals() throws {
        let localizer = try Localizer.load(directory: RepositoryPaths.root + "/Localization")
        let russian = [
            1: "1 день", 2: "2 дня", 4: "4 дня", 5: "5 дней", 11: "11 дней", 12: "12 дней", 14: "14 дней", 21: "21 день", 22: "22 дня", 25: "25 дней",
            101: "101 день", 111: "111 дней", 0: "0 дней",
        ]
        for (count, expected) in russian {
            #expect(localizer.text("days.count", language: "ru", count: count) == expected)
        }
        #expect(localizer.text("days.count", language: "en", count: 1) == "1 day")
        #expect(localizer.text("days.count", language: "en", count: 30) == "30 days")
    }

    @Test("language resolution: explicit choice, else Telegram's code when we have it, else English")
    func resolution() throws {
        let localizer = try Localizer.load(directory: RepositoryPaths.root + "/Localization")
        #expect(localizer.resolveLanguage(chosen: "ru", telegramCode: "en") == "ru")
        #expect(localizer.resolveLanguage(chosen: nil, telegramCode: "ru-RU") == "ru")
        #expect(localizer.resolveLanguage(chosen: nil, telegramCode: "de") == "en")
        #expect(localizer.resolveLanguage(chosen: "xx", telegramCode: nil) == "en")
    }

    @Test("every key the code uses exists in the catalogs")
    func usedKeysExist() throws {
        let localizer = try Localizer.load(directory: RepositoryPaths.root + "/Localization")
        let sources = RepositoryPaths.root + "/Sources"
        let files = FileManager.default.enumerator(atPath: sources)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        let pattern = try Regex(#"(?:reply|text|InputRejection)\(\s*"([a-z_0-9]+(?:\.[a-z_0-9]+)+)""#)
        var used: Set<String> = []
        for file in files {
            let source = try String(contentsOfFile: sources + "/" + file, encoding: .utf8)
            for match in source.matches(of: pattern) {
                if let key = match.output[1].substring { used.insert(String(key)) }
            }
        }
        used.formUnion(BotCommandName.allCases.map { "command.\($0.rawValue).description" })
        for definition in BotHarness.conversations { used.formUnion(definition.localizationKeys) }
        #expect(used.count > 10, "the scan found the keys")
        for key in used.sorted() {
            #expect(localizer.has(key), "missing key \(key)")
        }
    }
}
