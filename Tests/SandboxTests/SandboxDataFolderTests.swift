import Foundation
import Sandbox
import TestSupport
import Testing

@Suite("The sandbox's data folder")
struct SandboxDataFolderTests {
    @Test("each start empties the sandbox's own folder, and a folder it did not make is refused, not emptied")
    func freshEachStart() throws {
        let parent = try RepositoryPaths.makeTemporaryDirectory("telepay-sandbox-folder")
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let own = parent + "/own"
        try Sandbox.prepareDataDirectory(own)
        try Data("old".utf8).write(to: URL(fileURLWithPath: own + "/leftover"))
        try Sandbox.prepareDataDirectory(own)
        #expect(try FileManager.default.contentsOfDirectory(atPath: own) == [".telepay-sandbox"])

        let foreign = parent + "/foreign"
        try FileManager.default.createDirectory(atPath: foreign, withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: URL(fileURLWithPath: foreign + "/notes.txt"))
        #expect(throws: SandboxStartError.foreignDataDirectory(foreign)) { try Sandbox.prepareDataDirectory(foreign) }
        #expect(FileManager.default.fileExists(atPath: foreign + "/notes.txt"))
    }
}
