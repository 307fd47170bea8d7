import App
import Foundation
import Logging
import Storage
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

@Suite("Process lifecycle", .serialized)
struct LifecycleTests {
    func environment(dataDirectory: String) -> [String: String] {
        [
            "TELEPAY_DATA_DIR": dataDirectory,
            "TELEPAY_HTTP_PORT": "0",
            "TELEPAY_RESOURCES_DIR": RepositoryPaths.root,
            "TELEPAY_LOG_LEVEL": "info",
        ]
    }

    func get(_ url: String) async throws -> (Int, String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    @Test("graceful shutdown of the service group stops HTTP and then the embedded server")
    func inProcessShutdown() async throws {
        let dataDirectory = try RepositoryPaths.makeTemporaryDirectory("telepay-life")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let configuration = try Configuration.load(environment: environment(dataDirectory: dataDirectory))
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = try await TelePayApplication.build(
            configuration: configuration, logger: quietLogger, gracefulShutdownSignals: [],
            onServerRunning: { continuation.yield($0) }
        )
        let running = Task { try await application.run() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())

        let (status, body) = try await get("http://127.0.0.1:\(port)/readyz")
        #expect(status == 200)
        #expect(body.contains("ready"))
        let cluster = try #require(application.database.embedded).cluster
        #expect(cluster.serverPID() != nil)

        await application.triggerGracefulShutdown()
        try await running.value
        #expect(cluster.serverPID() == nil, "the embedded server stops with the application")
        await #expect(throws: (any Error).self) { try await get("http://127.0.0.1:\(port)/healthz") }
    }

    @Test("SIGTERM makes the telepay process shut down cleanly, exit 0 and stop its database")
    func sigtermStopsProcess() async throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("telepay").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the telepay product first (swift build --build-tests)")
        let dataDirectory = try RepositoryPaths.makeTemporaryDirectory("telepay-sigterm")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let logPath = dataDirectory + "/telepay.log"
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TELEPAY_") && $0.key != "DATABASE_URL" }
        environment.merge(self.environment(dataDirectory: dataDirectory)) { $1 }
        let pid = try ProcessRunner.spawn(binary, ["serve"], environment: environment, outputPath: logPath)

        var port: Int?
        for _ in 0..<600 where port == nil {
            try await Task.sleep(for: .milliseconds(100))
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let line = log.split(separator: "\n").first(where: { $0.contains("msg=\"HTTP server listening\"") }),
                let value = line.split(separator: " ").first(where: { $0.hasPrefix("port=") })?.dropFirst(5)
            {
                port = Int(value)
            }
        }
        let boundPort = try #require(port, "telepay did not start: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
        #expect(try await get("http://127.0.0.1:\(boundPort)/healthz").0 == 200)

        kill(pid, SIGTERM)
        let exitCode = await ProcessRunner.waitForExit(pid)
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        #expect(exitCode == 0, "\(log)")
        #expect(log.contains("msg=\"embedded database stopped\""))
        #expect(log.contains("msg=\"TelePay stopped\""))
        let cluster = EmbeddedPostgres(dataDirectory: dataDirectory, binaries: try PostgresServerBinaries.locate(), logger: quietLogger)
        #expect(cluster.serverPID() == nil)
    }

    @Test("a configuration problem exits with code 2 and names the variable")
    func badConfigurationExitCode() async throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("telepay").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the telepay product first (swift build --build-tests)")
        let folder = try RepositoryPaths.makeTemporaryDirectory("telepay-badconfig")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TELEPAY_") }
        environment["TELEPAY_HTTP_PORT"] = "http"
        environment["TELEGRAM_BOT_TOKEN"] = "bad token value"
        let pid = try ProcessRunner.spawn(binary, ["doctor"], environment: environment, outputPath: folder + "/out.log")
        #expect(await ProcessRunner.waitForExit(pid) == 1)
        let pid2 = try ProcessRunner.spawn(binary, ["migrate", "--status"], environment: environment, outputPath: folder + "/out2.log")
        #expect(await ProcessRunner.waitForExit(pid2) == 2)
        let output = try String(contentsOfFile: folder + "/out2.log", encoding: .utf8)
        #expect(output.contains("TELEPAY_HTTP_PORT"))
        #expect(output.contains("TELEGRAM_BOT_TOKEN"))
        #expect(!output.contains("bad token value"))
    }
}
