import App
import Foundation
import TestSupport
import Testing

@Suite("telepay conversations")
struct ConversationsCommandTests {
    /// A copy of the repository's resources with `channel_form.yaml` replaced by `yaml`.
    func resources(withForm yaml: String?) throws -> String {
        let folder = try RepositoryPaths.makeTemporaryDirectory("telepay-conv")
        for name in ["Migrations", "Localization", "Conversations"] {
            try FileManager.default.copyItem(atPath: RepositoryPaths.root + "/" + name, toPath: folder + "/" + name)
        }
        if let yaml {
            try yaml.write(toFile: folder + "/Conversations/channel_form.yaml", atomically: true, encoding: .utf8)
        }
        return folder
    }

    func run(resources: String, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("telepay").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the telepay product first (swift build --build-tests)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["conversations"] + arguments
        process.environment = ["TELEPAY_RESOURCES_DIR": resources, "PATH": "/usr/bin:/bin"]
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    @Test("prints every transition of the shipped form, as text and as DOT")
    func printsGraph() throws {
        let folder = try resources(withForm: nil)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let text = try run(resources: folder, [])
        #expect(text.status == 0, "\(text.error)")
        #expect(text.output.contains("entry:new --[start]--> ask:closed_chat"))
        #expect(text.output.contains("screen:main --[form.button.save]--> action:save"))
        let dot = try run(resources: folder, ["--format", "dot"])
        #expect(dot.output.hasPrefix("digraph channel_form {"))
    }

    @Test("a malformed definition fails with its file, line and reason, at start-up as in the command")
    func malformedFails() throws {
        let original = try String(contentsOfFile: RepositoryPaths.root + "/Conversations/channel_form.yaml", encoding: .utf8)
        let broken = original.replacingOccurrences(of: "    kind: wallet\n", with: "    kind: purse\n")
        #expect(broken != original)
        let line = broken.components(separatedBy: "\n").firstIndex(of: "    kind: purse")! + 1
        let folder = try resources(withForm: broken)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = try run(resources: folder, [])
        #expect(result.status == 1)
        #expect(result.error.contains("channel_form.yaml:\(line): field 'wallet_address' has unknown kind 'purse'"), "\(result.error)")

        let configuration = try Configuration.load(environment: ["TELEPAY_RESOURCES_DIR": folder])
        #expect(throws: (any Error).self) {
            _ = try loadConversations(configuration: configuration, localizer: try loadLocalizer(configuration: configuration))
        }
    }
}
