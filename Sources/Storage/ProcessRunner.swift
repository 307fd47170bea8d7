import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The outcome of a finished child process.
public struct ProcessResult: Sendable {
    public var exitCode: Int32
    public var output: String

    public var succeeded: Bool { exitCode == 0 }
}

/// Why a helper program could not be run at all.
public struct ProcessLaunchError: Error, Sendable, CustomStringConvertible {
    public var executable: String
    public var errno: Int32

    public var description: String { "cannot run \(executable): \(String(cString: strerror(errno)))" }
}

/// Runs short-lived helper programs (initdb, pg_ctl) and waits for them off the cooperative thread pool.
///
/// Built on `posix_spawn` + `waitpid` rather than Foundation's `Process`: `pg_ctl start` leaves a daemon
/// behind, and `Process` on Linux notices a child's exit only when every inherited copy of its internal
/// descriptor closes — which the daemon never does. Output goes to a temporary file for the same reason.
public enum ProcessRunner {
    public static func run(
        _ executable: String,
        _ arguments: [String],
        workingDirectory: String? = nil
    ) async throws -> ProcessResult {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("telepay-proc-\(UUID().uuidString).log").path
        defer { unlink(outputPath) }
        let pid = try spawn(executable, arguments, workingDirectory: workingDirectory, outputPath: outputPath)
        let exitCode = await waitForExit(pid)
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return ProcessResult(exitCode: exitCode, output: output.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Waits for a child to end; returns its exit code, or 128 + the signal number when a signal ended it.
    public static func waitForExit(_ pid: pid_t) async -> Int32 {
        let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            DispatchQueue.global().async {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                continuation.resume(returning: status)
            }
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Starts a program with its standard output and error appended to `outputPath`; the caller waits for it.
    public static func spawn(
        _ executable: String,
        _ arguments: [String],
        workingDirectory: String? = nil,
        environment: [String: String]? = nil,
        outputPath: String
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // posix_spawn has no portable chdir action, so a shell changes folder and then becomes the program.
        let command =
            workingDirectory.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0, executable] + arguments }
            ?? [executable] + arguments
        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let environmentStrings = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { environmentStrings?.forEach { free($0) } }
        let result =
            environmentStrings.map { strings in
                strings.withUnsafeBufferPointer { posix_spawn(&pid, command[0], &actions, nil, argv, UnsafeMutablePointer(mutating: $0.baseAddress)) }
            } ?? posix_spawn(&pid, command[0], &actions, nil, argv, environ)
        guard result == 0 else { throw ProcessLaunchError(executable: executable, errno: result) }
        return pid
    }
}
