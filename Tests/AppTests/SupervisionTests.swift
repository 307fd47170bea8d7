import App
import Foundation
import Logging
import OperatorCommands
import PostgresNIO
import Storage
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A `telepay serve` child process and its log.
struct TelePayProcess {
    let pid: pid_t
    let logPath: String

    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("telepay").path
    }

    static func start(_ arguments: [String] = ["serve"], environment extra: [String: String], logPath: String) throws -> TelePayProcess {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TELEPAY_") && $0.key != "DATABASE_URL" }
        environment["TELEPAY_RESOURCES_DIR"] = RepositoryPaths.root
        environment["TELEPAY_HTTP_PORT"] = "0"
        environment["TELEPAY_LOG_LEVEL"] = "info"
        environment.merge(extra) { $1 }
        return TelePayProcess(pid: try ProcessRunner.spawn(binary, arguments, environment: environment, outputPath: logPath), logPath: logPath)
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits until the log contains `text`; false after `limit`.
    func waitForLog(_ text: String, limit: Duration = .seconds(60)) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if log.contains(text) { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return log.contains(text)
    }

    func port() async throws -> Int? {
        guard try await waitForLog("msg=\"HTTP server listening\"") else { return nil }
        let line = log.split(separator: "\n").first { $0.contains("msg=\"HTTP server listening\"") }
        return line?.split(separator: " ").first { $0.hasPrefix("port=") }.flatMap { Int($0.dropFirst(5)) }
    }

    /// The exit code, or nil when the process is still running after `limit` (it is then killed).
    func exitCode(within limit: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + limit
        var status: Int32 = 0
        while ContinuousClock.now < deadline {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
            try? await Task.sleep(for: .milliseconds(100))
        }
        kill(pid, SIGKILL)
        _ = await ProcessRunner.waitForExit(pid)
        return nil
    }
}

func httpStatus(_ url: String, timeout: TimeInterval = 5) async -> Int? {
    var request = URLRequest(url: URL(string: url)!)
    request.timeoutInterval = timeout
    guard let (_, response) = try? await URLSession.shared.data(for: request) else { return nil }
    return (response as? HTTPURLResponse)?.statusCode
}

/// Whether `pid` is a running process; a zombie (exited, not yet reaped by a container's init) is not.
func isRunning(_ pid: pid_t) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    return !status.contains("State:\tZ")
}

func embeddedCluster(_ dataDirectory: String) throws -> EmbeddedPostgres {
    EmbeddedPostgres(dataDirectory: dataDirectory, binaries: try PostgresServerBinaries.locate(), logger: quietLogger)
}

@Suite("Supervision and start-up failures", .serialized)
struct SupervisionTests {
    init() throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: TelePayProcess.binary), "build the telepay product first (swift build --build-tests)")
    }

    @Test("kill -9 of the embedded server: /readyz fails within seconds and telepay exits 1 with a clear line", arguments: ["kill", "pidfile"])
    func embeddedServerDies(how: String) async throws {
        let dataDirectory = try RepositoryPaths.makeTemporaryDirectory("telepay-death")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let telepay = try TelePayProcess.start(environment: ["TELEPAY_DATA_DIR": dataDirectory], logPath: dataDirectory + "/telepay.log")
        let port = try #require(try await telepay.port(), "\(telepay.log)")
        #expect(await httpStatus("http://127.0.0.1:\(port)/readyz") == 200)
        let cluster = try embeddedCluster(dataDirectory)
        let serverPID = try #require(cluster.serverPID())

        let killed = ContinuousClock.now
        if how == "kill" {
            kill(serverPID, SIGKILL)
        } else {
            try FileManager.default.removeItem(atPath: cluster.pidFile)
        }
        var readyAfter: Duration?
        // Within seconds (it took 66 s before); the bound leaves room for a loaded machine.
        while readyAfter == nil, ContinuousClock.now - killed < .seconds(20) {
            if await httpStatus("http://127.0.0.1:\(port)/readyz", timeout: 2) != 200 { readyAfter = ContinuousClock.now - killed }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(readyAfter != nil, "/readyz still 200 twenty seconds after the server went away")
        let code = await telepay.exitCode(within: .seconds(45))
        #expect(code == 1, "\(telepay.log)")
        #expect(telepay.log.contains("embedded database server stopped unexpectedly"))
        #expect(cluster.serverPID() == nil)
        try await Task.sleep(for: .seconds(1))
        #expect(!isRunning(serverPID), "the server process is gone once telepay has exited")
    }

    @Test("a guest instance whose owner stops the shared embedded server exits 1 with a clear line")
    func guestLosesOwner() async throws {
        let dataDirectory = try RepositoryPaths.makeTemporaryDirectory("telepay-guest")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let owner = try TelePayProcess.start(environment: ["TELEPAY_DATA_DIR": dataDirectory], logPath: dataDirectory + "/owner.log")
        _ = try #require(try await owner.port(), "\(owner.log)")
        let guest = try TelePayProcess.start(environment: ["TELEPAY_DATA_DIR": dataDirectory], logPath: dataDirectory + "/guest.log")
        _ = try #require(try await guest.port(), "\(guest.log)")
        #expect(guest.log.contains("connecting as a guest"))
        kill(owner.pid, SIGTERM)
        #expect(await owner.exitCode(within: .seconds(40)) == 0, "\(owner.log)")
        #expect(await guest.exitCode(within: .seconds(40)) == 1, "\(guest.log)")
        #expect(guest.log.contains("the TelePay process that owns the server stopped it"), "\(guest.log)")
    }

    @Test("/readyz gives up on a database that accepts connections but never answers within its deadline")
    func readinessDeadline() async throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 16) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let database = Database(
            configuration: .init(host: "127.0.0.1", port: port, username: "telepay", password: nil, database: "telepay", tls: .disable),
            poolSize: 2, logger: quietLogger, metrics: Telemetry().factory
        )
        let pool = Task { await database.run() }
        defer { pool.cancel() }
        let probe = DatabaseReadinessProbe(
            database: database,
            migrations: MigrationRunner(migrations: try Migration.load(directory: RepositoryPaths.migrations), logger: quietLogger),
            deadline: .seconds(2)
        )
        let started = ContinuousClock.now
        let answer = await probe.check()
        #expect(!answer.ready)
        #expect(ContinuousClock.now - started < .seconds(15), "the probe gives up after 2 s; the bound leaves room for a loaded machine")
    }

    @Test("wrong credentials or an unknown database: exit 2 with the server's own message, and doctor says so within seconds")
    func definitiveDatabaseRefusal() async throws {
        let server = try await TestPostgres.shared.server()
        let folder = try RepositoryPaths.makeTemporaryDirectory("telepay-badurl")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let socketFolder = server.cluster.socketDirectory
        let cases = [
            ("postgres://nosuchrole@/telepay?host=\(socketFolder)", "role \"nosuchrole\" does not exist"),
            ("postgres://telepay@/nosuchdb?host=\(socketFolder)", "database \"nosuchdb\" does not exist"),
        ]
        for (index, (url, message)) in cases.enumerated() {
            let telepay = try TelePayProcess.start(
                environment: ["DATABASE_URL": url, "TELEPAY_DATA_DIR": folder], logPath: folder + "/serve\(index).log")
            #expect(await telepay.exitCode(within: .seconds(20)) == 2, "\(telepay.log)")
            #expect(telepay.log.contains(message), "\(telepay.log)")

            let started = ContinuousClock.now
            let doctor = try TelePayProcess.start(
                ["doctor"], environment: ["DATABASE_URL": url, "TELEPAY_DATA_DIR": folder], logPath: folder + "/doctor\(index).log")
            #expect(await doctor.exitCode(within: .seconds(30)) == 1)
            #expect(ContinuousClock.now - started < .seconds(20))
            #expect(doctor.log.contains("FAIL  database") && doctor.log.contains(message), "\(doctor.log)")
        }
    }

    @Test("a refused connection is retried with a warning and a bound, and SIGTERM stops the retrying at once")
    func refusedConnectionRetried() async throws {
        let folder = try RepositoryPaths.makeTemporaryDirectory("telepay-refused")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let url = "postgres://telepay:pw@127.0.0.1:1/telepay"
        let waiting = try TelePayProcess.start(
            environment: ["DATABASE_URL": url, "TELEPAY_DATA_DIR": folder, "TELEPAY_DATABASE_CONNECT_TIMEOUT_SECONDS": "600"],
            logPath: folder + "/wait.log"
        )
        #expect(try await waiting.waitForLog("level=warning", limit: .seconds(20)), "\(waiting.log)")
        #expect(waiting.log.contains("database not reachable yet; retrying"))
        #expect(!waiting.log.contains(":pw@"))
        kill(waiting.pid, SIGTERM)
        #expect(await waiting.exitCode(within: .seconds(5)) == 0, "\(waiting.log)")

        let bounded = try TelePayProcess.start(
            environment: ["DATABASE_URL": url, "TELEPAY_DATA_DIR": folder, "TELEPAY_DATABASE_CONNECT_TIMEOUT_SECONDS": "2"],
            logPath: folder + "/bounded.log"
        )
        #expect(await bounded.exitCode(within: .seconds(20)) == 1, "\(bounded.log)")
        #expect(bounded.log.contains("was not reachable within 2 s"))
    }

    @Test("configuration errors found at start-up exit 2 and leave no database server running")
    func startupConfigurationErrors() async throws {
        let folder = try RepositoryPaths.makeTemporaryDirectory("telepay-startfail")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let resources = folder + "/resources"
        try FileManager.default.createDirectory(atPath: resources, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: resources + "/Migrations", withDestinationPath: RepositoryPaths.migrations)
        let cases: [(String, [String: String], String)] = [
            ("no-localization", ["TELEPAY_RESOURCES_DIR": resources], "Localization"),
            ("bad-key", ["TELEPAY_ETH_PRIVATE_KEY": String(repeating: "f", count: 64)], "TELEPAY_ETH_PRIVATE_KEY"),
            ("ipn-without-key", ["TELEPAY_NOWPAYMENTS_IPN_SECRET": "secret"], "TELEPAY_NOWPAYMENTS_API_KEY"),
        ]
        for (name, environment, mention) in cases {
            let dataDirectory = folder + "/" + name
            var extra = environment
            extra["TELEPAY_DATA_DIR"] = dataDirectory
            let telepay = try TelePayProcess.start(environment: extra, logPath: folder + "/\(name).log")
            #expect(await telepay.exitCode(within: .seconds(60)) == 2, "\(name): \(telepay.log)")
            #expect(telepay.log.contains(mention), "\(name): \(telepay.log)")
            #expect(try embeddedCluster(dataDirectory).serverPID() == nil, "\(name) left the database running")
        }
    }

    @Test("a busy port names the address and the variable, and the database started for the run is stopped")
    func busyPort() async throws {
        let folder = try RepositoryPaths.makeTemporaryDirectory("telepay-busy")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 4) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let telepay = try TelePayProcess.start(
            environment: ["TELEPAY_DATA_DIR": folder + "/data", "TELEPAY_HTTP_PORT": String(port)], logPath: folder + "/telepay.log"
        )
        #expect(await telepay.exitCode(within: .seconds(60)) == 1, "\(telepay.log)")
        #expect(telepay.log.contains("127.0.0.1:\(port)"), "\(telepay.log)")
        #expect(telepay.log.contains("TELEPAY_HTTP_PORT"))
        #expect(try embeddedCluster(folder + "/data").serverPID() == nil)
    }

    @Test("SIGINT during the first start (initdb, pg_ctl start) stops telepay and leaves no database server")
    func interruptedFirstStart() async throws {
        let folder = try RepositoryPaths.makeTemporaryDirectory("telepay-sigint")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for (round, moment) in ["initialising embedded database cluster", "embedded database ready"].enumerated() {
            let dataDirectory = folder + "/data\(round)"
            let telepay = try TelePayProcess.start(environment: ["TELEPAY_DATA_DIR": dataDirectory], logPath: folder + "/run\(round).log")
            #expect(try await telepay.waitForLog(moment, limit: .seconds(90)), "\(telepay.log)")
            kill(telepay.pid, SIGINT)
            let code = await telepay.exitCode(within: .seconds(60))
            #expect(code != nil, "\(telepay.log)")
            #expect(try embeddedCluster(dataDirectory).serverPID() == nil, "interrupted at '\(moment)', the server was left running: \(telepay.log)")
        }
    }

    @Test("a postmaster.pid naming another cluster's live server is reported with the file to remove and why")
    func pidFileOfAnotherCluster() async throws {
        let shared = try await TestPostgres.shared.server()
        let otherPID = try #require(shared.cluster.serverPID())
        let dataDirectory = try RepositoryPaths.makeTemporaryDirectory("telepay-pidfile")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let cluster = try embeddedCluster(dataDirectory)
        try await cluster.start().stop()
        try "\(otherPID)\n\(shared.cluster.clusterDirectory)\n".write(toFile: cluster.pidFile, atomically: true, encoding: .utf8)
        let started = ContinuousClock.now
        let error = await #expect(throws: EmbeddedPostgresError.self) { try await cluster.start() }
        #expect(ContinuousClock.now - started < .seconds(15), "at once, not after a 10 s connect timeout and an opaque error")
        let message = try #require(error).description
        #expect(message.contains(cluster.pidFile))
        #expect(message.contains("remove"))
        #expect(message.contains("\(otherPID)"))
        #expect(shared.cluster.serverPID() == otherPID, "the other cluster's server is left alone")
    }

    @Test("the IPN secret without the API key is refused at start-up (exit 2), and doctor fails it")
    func ipnSecretWithoutAPIKey() async throws {
        let configuration = try Configuration.load(environment: [
            "TELEPAY_NOWPAYMENTS_IPN_SECRET": "s", "TELEPAY_RESOURCES_DIR": RepositoryPaths.root,
        ])
        let error = await #expect(throws: StartupError.self) { try await TelePayApplication.build(configuration: configuration, logger: quietLogger) }
        #expect(exitCode(for: try #require(error)) == 2)
        let checks = await Doctor.checkNOWPayments(configuration, logger: quietLogger)
        #expect(checks.contains { $0.name == "ipn-callbacks" && $0.outcome == .failed })
    }
}
