import App
import ArgumentParser
import Foundation
import Logging
import Sandbox

/// `telepay-sandbox` (also started by `telepay sandbox` and `scripts/run sandbox`): the whole of TelePay on this
/// machine, with simulated Telegram and NOWPayments, used from a browser.
@main
struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telepay-sandbox",
        abstract: "Run TelePay against simulated Telegram and NOWPayments and use it from a browser.",
        version: TelePayVersion.current
    )

    @Option(help: "The sandbox's own data folder (its embedded database lives there).")
    var dataDir = "./.telepay-sandbox"

    @Option(help: "Port of the HTTP server and the sandbox's page on 127.0.0.1.")
    var port = 8080

    @Option(help: "Folder holding Migrations/, Localization/ and Conversations/ (found next to the working folder or the executable when unset).")
    var resourcesDir: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "notice"

    @Flag(help: "Do not start the local chain: no hot wallet, payouts wait.")
    var noChain = false

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1 to 65535") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .notice
        LoggingSystem.bootstrap { label in KeyValueLogHandler(label: label, level: level) }
        let logger = Logger(label: "telepay-sandbox")
        let settings = SandboxSettings(
            dataDirectory: dataDir, port: port, resourcesDirectory: resourcesDir, logLevel: logLevel, startsChain: !noChain)
        let sandbox: RunningSandbox
        do {
            sandbox = try await Sandbox.start(
                settings: settings, logger: logger,
                onServerRunning: { port in
                    FileHandle.standardOutput.write(
                        Data("TelePay sandbox is running: open http://127.0.0.1:\(port)/sandbox (Ctrl-C stops it)\n".utf8))
                })
        } catch {
            FileHandle.standardError.write(Data("telepay-sandbox: \(error)\n".utf8))
            throw ExitCode(App.exitCode(for: error))
        }
        do {
            try await sandbox.run()
        } catch {
            FileHandle.standardError.write(Data("telepay-sandbox: \(error)\n".utf8))
            throw ExitCode(App.exitCode(for: error))
        }
    }
}
