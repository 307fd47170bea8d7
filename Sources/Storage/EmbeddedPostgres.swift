import Foundation
import Logging
import PostgresNIO

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the embedded PostgreSQL cluster could not be prepared, started or stopped.
public enum EmbeddedPostgresError: Error, Sendable, CustomStringConvertible {
    case binariesMissing(missing: [String], searched: [String])
    case systemUserMissing(String)
    case socketPathTooLong(String)
    case unsafePath(String)
    case dataDirectoryUnusable(path: String, reason: String)
    case inUseWithoutServer(path: String)
    case commandFailed(command: String, exitCode: Int32, output: String)
    /// `postmaster.pid` names a live PostgreSQL server that serves some other cluster: the file was left by
    /// a crash and the PID has since been reused, so PostgreSQL itself would refuse to start here.
    case pidFileNamesOtherServer(pidFile: String, pid: Int32)
    /// The server this process started (or adopted) is gone: killed, its `postmaster.pid` deleted, or, for a
    /// guest, stopped by the TelePay process that owns it.
    case serverStopped(reason: String)

    public var description: String {
        switch self {
        case .binariesMissing(let missing, let searched):
            return "PostgreSQL server binaries not found (\(missing.joined(separator: ", "))); searched PATH and "
                + "\(searched.joined(separator: ", ")). Install them with: apt-get install -y postgresql "
                + "(Debian/Ubuntu), or set DATABASE_URL to use an existing server."
        case .systemUserMissing(let user):
            return "running as root, the embedded server must run as the '\(user)' system user, which does not exist. "
                + "Install the postgresql package (it creates the user) or run TelePay as an unprivileged user."
        case .socketPathTooLong(let path):
            return "the database socket path '\(path)' exceeds the 107-byte Unix socket limit; choose a shorter TELEPAY_DATA_DIR"
        case .unsafePath(let path):
            return "the data folder path '\(path)' contains a quote character, which the server command line cannot carry"
        case .dataDirectoryUnusable(let path, let reason):
            return "the data folder '\(path)' cannot be used: \(reason)"
        case .inUseWithoutServer(let path):
            return "another TelePay process holds the data folder '\(path)' but its database server is not running; "
                + "stop that process or wait for it to finish starting"
        case .commandFailed(let command, let exitCode, let output):
            return "\(command) failed with exit code \(exitCode): \(output)"
        case .pidFileNamesOtherServer(let pidFile, let pid):
            return "\(pidFile) names PID \(pid), which is a PostgreSQL server of another cluster, not this one: the file is left over "
                + "from a crash and the PID was reused since. No server runs for this cluster; remove \(pidFile) and start TelePay again."
        case .serverStopped(let reason):
            return "the embedded database server stopped unexpectedly (\(reason)); TelePay exits so that its supervisor restarts it"
        }
    }
}

/// Where the PostgreSQL server programs live.
public struct PostgresServerBinaries: Sendable, Hashable {
    public var directory: String
    public var initdb: String { directory + "/initdb" }
    public var pgCtl: String { directory + "/pg_ctl" }
    public var postgres: String { directory + "/postgres" }

    public static let requiredPrograms = ["initdb", "pg_ctl", "postgres"]

    /// Finds a directory holding all server programs: first on `PATH`, then under `/usr/lib/postgresql/*/bin`,
    /// newest major version first (Debian installs the server there, off `PATH`).
    public static func locate(
        path: String? = ProcessInfo.processInfo.environment["PATH"],
        versionedRoots: [String] = ["/usr/lib/postgresql"]
    ) throws(EmbeddedPostgresError) -> PostgresServerBinaries {
        var candidates = (path ?? "").split(separator: ":").map(String.init)
        var searched: [String] = []
        for root in versionedRoots {
            searched.append(root + "/*/bin")
            let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            let sorted = versions.sorted { (Int($0) ?? 0, $0) > (Int($1) ?? 0, $1) }
            candidates += sorted.map { "\(root)/\($0)/bin" }
        }
        var found: Set<String> = []
        for directory in candidates {
            let present = requiredPrograms.filter { FileManager.default.isExecutableFile(atPath: "\(directory)/\($0)") }
            found.formUnion(present)
            if present.count == requiredPrograms.count {
                return PostgresServerBinaries(directory: directory)
            }
        }
        throw .binariesMissing(missing: requiredPrograms.filter { !found.contains($0) }.sorted().nilIfEmpty ?? requiredPrograms, searched: searched)
    }
}

extension Array {
    fileprivate var nilIfEmpty: Self? { isEmpty ? nil : self }
}

/// A private PostgreSQL cluster inside TelePay's data folder, reachable only through a Unix socket there.
///
/// Layout: `<data>/postgres/cluster` (the cluster), `<data>/postgres/.s.PGSQL.5432` (the socket),
/// `<data>/postgres/server.log` and `<data>/telepay.lock`, which one TelePay process holds while it owns the server.
public struct EmbeddedPostgres: Sendable {
    public static let username = "telepay"
    public static let database = "telepay"
    public static let port = 5432
    /// The account the server runs as when TelePay runs as root, because `initdb` refuses root.
    public static let rootFallbackUser = "postgres"

    public var dataDirectory: String
    public var binaries: PostgresServerBinaries
    public var maxConnections: Int
    public var logger: Logger

    /// `maxConnections` is written into a new cluster's configuration (an existing cluster keeps its own).
    public init(dataDirectory: String, binaries: PostgresServerBinaries, maxConnections: Int = 200, logger: Logger) {
        self.dataDirectory = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        self.binaries = binaries
        self.maxConnections = maxConnections
        self.logger = logger
    }

    public var serverDirectory: String { dataDirectory + "/postgres" }
    public var clusterDirectory: String { serverDirectory + "/cluster" }
    public var socketDirectory: String { serverDirectory }
    public var socketPath: String { "\(socketDirectory)/.s.PGSQL.\(Self.port)" }
    public var logFile: String { serverDirectory + "/server.log" }
    public var lockFile: String { dataDirectory + "/telepay.lock" }
    public var pidFile: String { clusterDirectory + "/postmaster.pid" }

    /// How `start()` found the cluster.
    public enum StartOutcome: String, Sendable {
        /// `initdb` ran: the cluster was created now.
        case initialised
        /// An existing cluster was started.
        case started
        /// A server left running by a previous run (which crashed) was taken over.
        case adopted
        /// Another live TelePay process owns the server; this one only connects and will not stop it.
        case guest
    }

    public func clientConfiguration(database: String = Self.database) -> PostgresClient.Configuration {
        PostgresClient.Configuration(unixSocketPath: socketPath, username: Self.username, password: nil, database: database)
    }

    /// Initialises the cluster if needed, starts (or adopts) the server and makes sure the TelePay database exists.
    public func start() async throws -> RunningEmbeddedPostgres {
        guard !dataDirectory.contains("'") && !dataDirectory.contains("\"") else {
            throw EmbeddedPostgresError.unsafePath(dataDirectory)
        }
        guard socketPath.utf8.count <= 107 else { throw EmbeddedPostgresError.socketPathTooLong(socketPath) }
        let serverUser = try serverAccount()
        try createDataDirectory()

        guard let lock = FileLock(path: lockFile) else {
            throw EmbeddedPostgresError.dataDirectoryUnusable(path: dataDirectory, reason: "cannot open \(lockFile)")
        }
        guard lock.tryLock() else {
            guard serverPID() != nil else { throw EmbeddedPostgresError.inUseWithoutServer(path: dataDirectory) }
            logger.info("embedded database owned by another TelePay process; connecting as a guest", metadata: ["data_dir": "\(dataDirectory)"])
            try await waitForSocket()
            return RunningEmbeddedPostgres(cluster: self, lock: nil, serverUser: serverUser, outcome: .guest, serverProcess: serverPID())
        }

        do {
            var outcome = StartOutcome.started
            if !FileManager.default.fileExists(atPath: clusterDirectory + "/PG_VERSION") {
                try await initialise(serverUser: serverUser)
                outcome = .initialised
            }
            try Task.checkCancellation()
            switch pidFileState() {
            case .running:
                logger.warning("adopting a database server left running by a previous run", metadata: ["data_dir": "\(dataDirectory)"])
                outcome = .adopted
            case .otherServer(let pid):
                throw EmbeddedPostgresError.pidFileNamesOtherServer(pidFile: pidFile, pid: pid)
            case .stale:
                removeStaleLockFiles()
                let options = "-c listen_addresses='' -c unix_socket_directories='\(socketDirectory)' -c port=\(Self.port)"
                do {
                    try await runServerCommand(
                        binaries.pgCtl,
                        ["-D", clusterDirectory, "-l", logFile, "-o", options, "-w", "-t", "120", "-s", "start"],
                        serverUser: serverUser
                    )
                } catch EmbeddedPostgresError.commandFailed(let command, let exitCode, let output) {
                    // pg_ctl only says "could not start server"; the server's own log says why.
                    let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
                    let tail = log.split(separator: "\n").suffix(8).joined(separator: " | ")
                    throw EmbeddedPostgresError.commandFailed(
                        command: command, exitCode: exitCode, output: tail.isEmpty ? output : output + " — server log: " + tail
                    )
                }
            }
            try Task.checkCancellation()
            try await waitForSocket()
            try await ensureDatabase()
            logger.info("embedded database ready", metadata: ["data_dir": "\(dataDirectory)", "outcome": "\(outcome.rawValue)"])
            return RunningEmbeddedPostgres(cluster: self, lock: lock, serverUser: serverUser, outcome: outcome, serverProcess: serverPID())
        } catch {
            // Whatever failed or interrupted start-up (a signal included), the server this process runs must not outlive it.
            if serverPID() != nil {
                logger.notice("stopping the embedded database after a failed start-up", metadata: ["data_dir": "\(dataDirectory)"])
                try? await stopServer(serverUser: serverUser)
            }
            lock.unlock()
            throw error
        }
    }

    /// What `postmaster.pid` says about the server of this cluster.
    public enum PIDFileState: Sendable, Equatable {
        /// No file, or it names a dead process or one that is not PostgreSQL (PIDs are reused after a reboot).
        case stale
        /// A live PostgreSQL server of this cluster.
        case running(Int32)
        /// A live PostgreSQL server of another cluster: the file is stale, but PostgreSQL would refuse to start.
        case otherServer(Int32)
    }

    public func pidFileState() -> PIDFileState {
        guard let contents = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let firstLine = contents.split(separator: "\n").first,
            let pid = Int32(firstLine.trimmingCharacters(in: .whitespaces)), pid > 0
        else { return .stale }
        guard Self.isPostgresProcess(pid) else { return .stale }
        return serves(pid) ? .running(pid) : .otherServer(pid)
    }

    /// The PID of a live server for this cluster, read from `postmaster.pid`; `nil` when no server runs.
    public func serverPID() -> Int32? {
        if case .running(let pid) = pidFileState() { return pid }
        return nil
    }

    /// Whether `pid` is alive and runs a PostgreSQL server program.
    static func isPostgresProcess(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let commandLine = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else { return false }
        let program = commandLine.split(separator: 0).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        return program.hasSuffix("postgres") || program.hasSuffix("postmaster")
    }

    /// Whether the server `pid` serves this cluster: its working folder (a postmaster changes into its data
    /// folder) or, when that is unreadable (another user's process), its command line names the cluster.
    func serves(_ pid: Int32) -> Bool {
        let cluster = URL(fileURLWithPath: clusterDirectory).resolvingSymlinksInPath().path
        if let workingDirectory = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd") {
            return URL(fileURLWithPath: workingDirectory).resolvingSymlinksInPath().path == cluster
        }
        guard let commandLine = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else { return false }
        let arguments = commandLine.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return arguments.contains { $0 == clusterDirectory || URL(fileURLWithPath: $0).resolvingSymlinksInPath().path == cluster }
    }

    /// Stops the server of this cluster (fast shutdown: open transactions roll back, clients disconnect).
    func stopServer(serverUser: String?) async throws {
        guard serverPID() != nil else { return }
        try await runServerCommand(binaries.pgCtl, ["-D", clusterDirectory, "-m", "fast", "-w", "-t", "60", "-s", "stop"], serverUser: serverUser)
    }

    private func serverAccount() throws(EmbeddedPostgresError) -> String? {
        guard geteuid() == 0 else { return nil }
        guard getpwnam(Self.rootFallbackUser) != nil else { throw .systemUserMissing(Self.rootFallbackUser) }
        return Self.rootFallbackUser
    }

    private func createDataDirectory() throws {
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw EmbeddedPostgresError.dataDirectoryUnusable(path: dataDirectory, reason: "\(error.localizedDescription)")
        }
        if geteuid() == 0 {
            // The server account only needs to pass through the data folder to reach its own subfolder.
            var info = stat()
            if stat(dataDirectory, &info) == 0 {
                chmod(dataDirectory, info.st_mode & 0o7777 | 0o011)
            }
        }
    }

    private func initialise(serverUser: String?) async throws {
        logger.info("initialising embedded database cluster", metadata: ["path": "\(clusterDirectory)"])
        try? FileManager.default.removeItem(atPath: clusterDirectory)
        try FileManager.default.createDirectory(atPath: serverDirectory, withIntermediateDirectories: true)
        chmod(serverDirectory, 0o700)
        if let serverUser, let account = getpwnam(serverUser) {
            chown(serverDirectory, account.pointee.pw_uid, account.pointee.pw_gid)
        }
        do {
            try await runServerCommand(
                binaries.initdb,
                ["-D", clusterDirectory, "-U", Self.username, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"],
                serverUser: serverUser
            )
        } catch {
            // A half-initialised cluster would be mistaken for a good one on the next start.
            try? FileManager.default.removeItem(atPath: clusterDirectory)
            throw error
        }
        let settings = """

            # Added by TelePay: reachable only through the Unix socket in the data folder.
            listen_addresses = ''
            max_connections = \(maxConnections)

            """
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: clusterDirectory + "/postgresql.conf"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(settings.utf8))
        try handle.close()
    }

    private func removeStaleLockFiles() {
        for path in [pidFile, socketPath + ".lock"] where FileManager.default.fileExists(atPath: path) {
            logger.warning("removing stale lock file from a previous run", metadata: ["path": "\(path)"])
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    private func runServerCommand(_ program: String, _ arguments: [String], serverUser: String?) async throws {
        let result: ProcessResult
        if let serverUser {
            result = try await ProcessRunner.run("/usr/sbin/runuser", ["-u", serverUser, "--", program] + arguments, workingDirectory: "/")
        } else {
            result = try await ProcessRunner.run(program, arguments, workingDirectory: "/")
        }
        guard result.succeeded else {
            var output = result.output
            if let log = try? String(contentsOfFile: logFile, encoding: .utf8), !log.isEmpty {
                output += "\nserver log tail:\n" + log.split(separator: "\n").suffix(10).joined(separator: "\n")
            }
            let name = URL(fileURLWithPath: program).lastPathComponent
            throw EmbeddedPostgresError.commandFailed(command: ([name] + arguments).joined(separator: " "), exitCode: result.exitCode, output: output)
        }
    }

    private func waitForSocket() async throws {
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: socketPath) {
            try await Task.sleep(for: .milliseconds(50))
        }
        guard FileManager.default.fileExists(atPath: socketPath) else {
            throw EmbeddedPostgresError.dataDirectoryUnusable(
                path: dataDirectory, reason: "the server's socket \(socketPath) did not appear within 10 s; see \(logFile)")
        }
    }

    private func ensureDatabase() async throws {
        let connection = try await PostgresConnection.connect(
            configuration: .init(unixSocketPath: socketPath, username: Self.username, password: nil, database: "postgres"),
            id: 1,
            logger: logger
        )
        do {
            if try await connection.run("SELECT 1 FROM pg_database WHERE datname = \(Self.database)", logger: logger) == 0 {
                try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(Self.database)"), logger: logger)
            }
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }
}

/// A started embedded cluster. `stop()` shuts the server down unless this process is only a guest.
public final class RunningEmbeddedPostgres: Sendable {
    public let cluster: EmbeddedPostgres
    public let outcome: EmbeddedPostgres.StartOutcome
    private let lock: FileLock?
    private let serverUser: String?
    /// The server's PID when start-up finished, to stop it even if its `postmaster.pid` is deleted later.
    private let serverProcess: Int32?

    init(cluster: EmbeddedPostgres, lock: FileLock?, serverUser: String?, outcome: EmbeddedPostgres.StartOutcome, serverProcess: Int32?) {
        self.cluster = cluster
        self.lock = lock
        self.serverUser = serverUser
        self.outcome = outcome
        self.serverProcess = serverProcess
    }

    /// Why the server is no longer usable, or nil while it is: the process started with is gone, or
    /// `postmaster.pid` no longer names it (PostgreSQL shuts itself down within a minute of losing that file).
    public func failure() -> String? {
        switch cluster.pidFileState() {
        case .running(let pid):
            if let serverProcess, pid != serverProcess { return "postmaster.pid names PID \(pid), not the server started as PID \(serverProcess)" }
            return nil
        case .stale, .otherServer:
            if let serverProcess, EmbeddedPostgres.isPostgresProcess(serverProcess) {
                return "\(cluster.pidFile) was removed while the server (PID \(serverProcess)) runs"
            }
            return ownsServer
                ? "the server process\(serverProcess.map { " (PID \($0))" } ?? "") is gone"
                : "the TelePay process that owns the server stopped it"
        }
    }

    /// Returns the reason once the server stops being usable; checks every `interval`. Returns nil when cancelled.
    public func waitForFailure(every interval: Duration = .milliseconds(500)) async -> String? {
        while !Task.isCancelled {
            if let reason = failure() { return reason }
            try? await Task.sleep(for: interval)
        }
        return nil
    }

    public var ownsServer: Bool { lock != nil }

    public func clientConfiguration(database: String = EmbeddedPostgres.database) -> PostgresClient.Configuration {
        cluster.clientConfiguration(database: database)
    }

    public func stop() async throws {
        guard let lock else { return }
        defer { lock.unlock() }
        if cluster.serverPID() == nil, let serverProcess, EmbeddedPostgres.isPostgresProcess(serverProcess), cluster.serves(serverProcess) {
            // pg_ctl finds the server through postmaster.pid; without it, ask the server itself for a fast shutdown.
            kill(serverProcess, SIGINT)
            for _ in 0..<300 where EmbeddedPostgres.isPostgresProcess(serverProcess) {
                try? await Task.sleep(for: .milliseconds(100))
            }
        } else {
            try await cluster.stopServer(serverUser: serverUser)
        }
        cluster.logger.info("embedded database stopped", metadata: ["data_dir": "\(cluster.dataDirectory)"])
    }
}

/// An exclusive `flock` on a file; the kernel releases it when the process dies, so a crashed run never
/// leaves the data folder locked.
final class FileLock: Sendable {
    private let descriptor: Int32

    init?(path: String) {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return nil }
        self.descriptor = descriptor
    }

    func tryLock() -> Bool {
        flock(descriptor, LOCK_EX | LOCK_NB) == 0
    }

    func unlock() {
        flock(descriptor, LOCK_UN)
    }

    deinit {
        close(descriptor)
    }
}
