import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `telepay sandbox`: hands over to the `telepay-sandbox` program built next to this one. The simulations live
/// only in that program, so this binary (and `serve`) cannot start them.
struct SandboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run the whole of TelePay locally against simulated Telegram and NOWPayments, used from a browser (runs telepay-sandbox).",
        discussion: "Options go to telepay-sandbox: --port (8080), --data-dir (./.telepay-sandbox), --resources-dir, --log-level."
    )

    @Argument(parsing: .captureForPassthrough, help: "Options for telepay-sandbox.")
    var arguments: [String] = []

    func run() throws {
        let own = URL(fileURLWithPath: CommandLine.arguments[0], relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
            .standardizedFileURL.resolvingSymlinksInPath()
        let sandbox = own.deletingLastPathComponent().appendingPathComponent("telepay-sandbox").path
        guard FileManager.default.isExecutableFile(atPath: sandbox) else {
            printError(
                "telepay sandbox: \(sandbox) is not built; build it with `swift build --product telepay-sandbox`, or run `scripts/run sandbox`")
            throw ExitCode.failure
        }
        let argv = ([sandbox] + arguments).map { strdup($0) } + [nil]
        execv(sandbox, argv)
        printError("telepay sandbox: cannot start \(sandbox): \(String(cString: strerror(errno)))")
        throw ExitCode.failure
    }
}
