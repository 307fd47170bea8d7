import App
import Foundation
import TestSupport
import Testing

@Suite("README")
struct DocumentationTests {
    @Test("the README's configuration table lists exactly the variables TelePay reads, with their defaults")
    func configurationTable() throws {
        let readme = try String(contentsOfFile: RepositoryPaths.root + "/README.md", encoding: .utf8)
        let start = try #require(readme.range(of: "<!-- configuration-table:start -->"))
        let end = try #require(readme.range(of: "<!-- configuration-table:end -->"))
        let rows = readme[start.upperBound..<end.lowerBound]
            .split(separator: "\n")
            .filter { $0.hasPrefix("| `") }
        var documented: [String: String] = [:]
        for row in rows {
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            let name = cells[0].split(separator: "`")[0]
            documented[String(name)] = cells[1]
        }
        #expect(Set(documented.keys) == Set(Configuration.variables.map(\.name)))
        for variable in Configuration.variables {
            let expected = variable.defaultValue.map { "`\($0)`" } ?? "—"
            #expect(documented[variable.name] == expected, "\(variable.name)")
        }
    }
}
