import Foundation
import Localization
import TestSupport
import Testing

/// The sandbox page names its words by catalog key (`data-i18n…` attributes in the HTML, `t("…")` in the
/// script); every key it names is in the String Catalog with every language, and the page shows no English
/// of its own outside the catalog.
@Suite("The sandbox page's words come from the String Catalog")
struct SandboxPageStringsTests {
    static let web = RepositoryPaths.root + "/Sources/Sandbox/Web"

    static func keys(in text: String, pattern: String) throws -> Set<String> {
        Set(text.matches(of: try Regex(pattern)).compactMap { match in match.output[1].substring.map(String.init) })
    }

    @Test("every key the page names exists in every language, and the catalog's sandbox.page keys are all used")
    func keysExist() throws {
        let localizer = try Localizer.load(directory: RepositoryPaths.root + "/Localization")
        let html = try String(contentsOfFile: Self.web + "/index.html", encoding: .utf8)
        let script = try String(contentsOfFile: Self.web + "/app.js", encoding: .utf8)
        let named = try Self.keys(in: html, pattern: #"data-i18n(?:-title|-aria|-placeholder)?="([a-z_.]+)""#)
            .union(try Self.keys(in: script, pattern: #"\bt\(\s*"([a-z_.]+)""#))
            .union(try Self.keys(in: script, pattern: #""(sandbox\.page\.[a-z_]+)""#))
        #expect(named.count > 40)
        for key in named.sorted() {
            #expect(key.hasPrefix("sandbox.page."), "\(key) is not a sandbox page key")
            for language in localizer.languages {
                #expect(localizer.catalogs[language]?[key] != nil, "\(key) has no \(language) text")
            }
        }
        let catalogued = Set(localizer.catalogs["en"]?.keys.filter { $0.hasPrefix("sandbox.page.") } ?? [])
        #expect(catalogued.subtracting(named).isEmpty, "catalogued but unused: \(catalogued.subtracting(named).sorted())")
    }

    @Test("the script sets no English text of its own: every textContent, toast and title it writes is data or t(…)")
    func noLiteralText() throws {
        let script = try String(contentsOfFile: Self.web + "/app.js", encoding: .utf8)
        let literal = try Regex(#"(?:textContent\s*=|toast\(|\.append\(|\.title\s*=)\s*"[A-Za-z]"#)
        for (number, line) in script.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where line.contains(literal) {
            Issue.record("app.js:\(number + 1) writes English text: \(line.trimmingCharacters(in: .whitespaces))")
        }
    }
}
