import Foundation
import Storage
import TestSupport
import Testing

@Suite("README command table")
struct CommandTableTests {
    @Test("the README's command table has a row for every subcommand telepay --help lists")
    func everySubcommandDocumented() async throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("telepay").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the telepay product first (swift build --build-tests)")
        let folder = try RepositoryPaths.makeTemporaryDirectory("telepay-help")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let pid = try ProcessRunner.spawn(binary, ["--help"], environment: [:], outputPath: folder + "/help.txt")
        #expect(await ProcessRunner.waitForExit(pid) == 0)
        let help = try String(contentsOfFile: folder + "/help.txt", encoding: .utf8)
        let subcommands =
            help.components(separatedBy: "SUBCOMMANDS:").last?
            .split(separator: "\n")
            .compactMap { line -> String? in
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard line.hasPrefix("  "), !line.hasPrefix("   "), let name = trimmed.split(separator: " ").first,
                    name.allSatisfy({ $0.isLowercase })
                else { return nil }
                return String(name)
            } ?? []
        #expect(subcommands.contains("jobs"))
        let readme = try String(contentsOfFile: RepositoryPaths.root + "/README.md", encoding: .utf8)
        let start = try #require(readme.range(of: "| command | what it does |"))
        let table = readme[start.upperBound...].prefix { _ in true }.split(separator: "\n").prefix { $0.hasPrefix("|") }.joined(separator: "\n")
        for name in subcommands {
            #expect(table.contains("`telepay \(name)"), "README's command table lacks a row for `telepay \(name)`")
        }
    }
}
