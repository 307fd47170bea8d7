import Foundation
import Storage
import TestSupport
import Testing

@Suite("The built programs")
struct SandboxBinaryTests {
    var binaries: URL { URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent() }

    func contents(_ name: String) throws -> Data {
        let path = binaries.appendingPathComponent(name).path
        try #require(FileManager.default.isExecutableFile(atPath: path), "build \(name) first (swift build --build-tests)")
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    @Test("the telepay binary (serve) holds none of the simulations' code; telepay-sandbox does")
    func serveBinaryHasNoFakes() throws {
        let serve = try contents("telepay")
        let sandbox = try contents("telepay-sandbox")
        for name in ["FakeBotAPI", "FakeNOWPayments", "EthereumTestNode"] {
            #expect(serve.range(of: Data(name.utf8)) == nil, "telepay contains \(name)")
            #expect(sandbox.range(of: Data(name.utf8)) != nil, "telepay-sandbox lacks \(name): the check would prove nothing")
        }
    }

    @Test("telepay sandbox hands its arguments over to telepay-sandbox")
    func sandboxSubcommand() async throws {
        let binary = binaries.appendingPathComponent("telepay").path
        let folder = try RepositoryPaths.makeTemporaryDirectory("telepay-sandbox-help")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let pid = try ProcessRunner.spawn(binary, ["sandbox", "--help"], environment: [:], outputPath: folder + "/help.txt")
        #expect(await ProcessRunner.waitForExit(pid) == 0)
        let help = try String(contentsOfFile: folder + "/help.txt", encoding: .utf8)
        #expect(help.contains("USAGE: telepay-sandbox"), "\(help)")
        #expect(help.contains("--no-chain"))
    }
}
