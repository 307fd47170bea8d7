import Foundation
import PostgresNIO
import Storage
import TestSupport
import Testing

@testable import Jobs

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the worker program could not be used.
enum CrashWorkerError: Error, CustomStringConvertible {
    case notBuilt(searched: [String])
    case failed(arguments: [String], exitCode: Int32, output: String)
    case hung(arguments: [String], output: String)

    var description: String {
        switch self {
        case .notBuilt(let searched):
            return "JobsCrashWorker is not built (looked in \(searched.joined(separator: ", "))); run `swift build --build-tests` first"
        case .failed(let arguments, let exitCode, let output):
            return "JobsCrashWorker \(arguments.joined(separator: " ")) exited with \(exitCode):\n\(output.suffix(3000))"
        case .hung(let arguments, let output):
            return "JobsCrashWorker \(arguments.joined(separator: " ")) did not exit:\n\(output.suffix(3000))"
        }
    }
}

/// Starts the `JobsCrashWorker` program against one test database.
struct CrashWorker {
    let executable: String
    let socketPath: String
    let databaseName: String

    static func locate() throws -> String {
        var folders: [String] = []
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            folders.append(URL(fileURLWithPath: executable).deletingLastPathComponent().path)
        }
        folders.append(RepositoryPaths.root + "/.build/debug")
        for folder in folders where FileManager.default.isExecutableFile(atPath: folder + "/JobsCrashWorker") {
            return folder + "/JobsCrashWorker"
        }
        throw CrashWorkerError.notBuilt(searched: folders)
    }

    static func make(for database: Database) async throws -> CrashWorker {
        let name = try await database.withConnection { connection in
            var name = ""
            for try await value in try await connection.query("SELECT current_database()", logger: quietLogger).decode(String.self) { name = value }
            return name
        }
        return CrashWorker(
            executable: try locate(), socketPath: try await TestPostgres.shared.server().cluster.socketPath, databaseName: name
        )
    }

    /// A started worker process; its output goes to a temporary file, read when something goes wrong.
    struct Running {
        let pid: pid_t
        let arguments: [String]
        let outputPath: String

        var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

        func signal(_ number: Int32) {
            kill(pid, number)
        }

        /// Waits for the exit; a process still running after `timeout` is killed and reported as hung.
        func exitCode(within timeout: Duration = .seconds(90)) async throws -> Int32 {
            let pid = self.pid
            let watchdog = Task { () -> Bool in
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return false
                }
                kill(pid, SIGKILL)
                return true
            }
            let code = await ProcessRunner.waitForExit(pid)
            watchdog.cancel()
            if await watchdog.value { throw CrashWorkerError.hung(arguments: arguments, output: output) }
            return code
        }
    }

    func start(_ arguments: [String]) throws -> Running {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("jobs-crash-worker-\(UUID().uuidString).log").path
        let all = [socketPath, databaseName] + arguments
        let pid = try ProcessRunner.spawn(executable, all, outputPath: outputPath)
        return Running(pid: pid, arguments: all, outputPath: outputPath)
    }

    /// Runs to completion and requires a clean exit.
    func run(_ arguments: [String]) async throws {
        let process = try start(arguments)
        let code = try await process.exitCode()
        guard code == 0 else { throw CrashWorkerError.failed(arguments: process.arguments, exitCode: code, output: process.output) }
    }
}

@Suite("Crashes and shutdown", .serialized)
struct CrashTests {
    @Test("crash campaign: a worker SIGKILLed at random points, many times, loses no job and duplicates no effect")
    func crashCampaign() async throws {
        try await withMigratedDatabase(poolSize: 4) { database in
            let worker = try await CrashWorker.make(for: database)
            let jobCount = 3000
            try await worker.run(["enqueue", "\(jobCount)", "60"])
            var generator = SystemRandomNumberGenerator()
            let kills = 30
            for kill in 1...kills {
                let executedBefore = try await count("SELECT count(*) FROM crash_runs", on: database)
                let process = try worker.start(["work", "1000", "500"])
                // Each kill lands at a random moment after this worker has started doing work, so none is wasted
                // on a process that is still connecting.
                try await waitUntil("worker \(kill) runs jobs") {
                    try await count("SELECT count(*) FROM crash_runs", on: database) > executedBefore
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...300, using: &generator)))
                process.signal(SIGKILL)
                let code = try await process.exitCode()
                #expect(code == 128 + SIGKILL, "the worker must die by the signal, not exit first: \(process.output.suffix(2000))")
            }
            let unfinished = try await count("SELECT count(*) FROM jobs WHERE state <> 'completed'", on: database)
            #expect(unfinished > 0, "the campaign must end with work still in flight, or later kills tested nothing")
            #expect(
                try await count("SELECT count(*) FROM jobs WHERE attempt > 1 OR state = 'running'", on: database) > 0,
                "the kills must have caught jobs in flight")

            // A last worker finishes the rest, including the jobs killed workers still held, once their leases expire.
            try await worker.run(["work", "1000", "500", "--exit-when-drained"])

            #expect(try await count("SELECT count(*) FROM jobs", on: database) == jobCount)
            #expect(try await count("SELECT count(*) FROM jobs WHERE state = 'completed'", on: database) == jobCount)
            #expect(try await count("SELECT count(*) FROM crash_effects", on: database) == jobCount)
            #expect(
                try await count("SELECT count(*) FROM jobs LEFT JOIN crash_effects e ON e.job_id = jobs.id WHERE e.job_id IS NULL", on: database) == 0
            )
            let executions = try await count("SELECT count(*) FROM crash_runs", on: database)
            #expect(executions >= jobCount, "every job ran at least once")
        }
    }

    @Test("SIGTERM during work loses nothing: running jobs finish or are given back at once, none waits for its lease")
    func sigtermLosesNothing() async throws {
        try await withMigratedDatabase(poolSize: 4) { database in
            let worker = try await CrashWorker.make(for: database)
            let jobCount = 48
            // First attempts take up to 3 s; the 1 s grace lets some finish and forces the rest to be given back.
            try await worker.run(["enqueue", "\(jobCount)", "3000"])
            // A 60 s lease: only an explicit release, not lease expiry, can free a job within this test.
            let process = try worker.start(["work", "60000", "1000"])
            try await waitUntil("the worker is running jobs") {
                try await count("SELECT count(*) FROM jobs WHERE state = 'running'", on: database) > 0
            }
            process.signal(SIGTERM)
            let code = try await process.exitCode()
            #expect(code == 0, "graceful exit: \(process.output.suffix(2000))")

            #expect(try await count("SELECT count(*) FROM jobs WHERE state = 'running'", on: database) == 0)
            #expect(try await count("SELECT count(*) FROM jobs WHERE state IN ('available', 'completed')", on: database) == jobCount)
            #expect(
                try await count("SELECT count(*) FROM jobs WHERE state = 'available' AND attempt = 1", on: database) > 0,
                "some jobs outlived the grace period and were released")
            // A released job may run again, but its last attempt is not lost: attempts stay within the allowance.
            #expect(try await count("SELECT count(*) FROM jobs WHERE attempt > max_attempts", on: database) == 0)

            try await worker.run(["work", "60000", "1000", "--exit-when-drained"])
            #expect(try await count("SELECT count(*) FROM jobs WHERE state = 'completed'", on: database) == jobCount)
            #expect(try await count("SELECT count(*) FROM crash_effects", on: database) == jobCount)
        }
    }
}
