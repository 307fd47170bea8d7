import Foundation
import Metrics
import Storage
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Embedded PostgreSQL cluster", .serialized)
struct EmbeddedPostgresTests {
    func makeCluster() throws -> EmbeddedPostgres {
        EmbeddedPostgres(
            dataDirectory: try RepositoryPaths.makeTemporaryDirectory("telepay-embedded"), binaries: try PostgresServerBinaries.locate(),
            logger: quietLogger)
    }

    func canQuery(_ server: RunningEmbeddedPostgres) async throws -> Bool {
        let database = Database(configuration: server.clientConfiguration(), poolSize: 1, logger: quietLogger, metrics: NOOPMetricsHandler.instance)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            defer { group.cancelAll() }
            return try await !database.ping().isEmpty
        }
    }

    @Test("first start initialises the cluster, the second reuses it, and shutdown stops the server")
    func initialiseReuseStop() async throws {
        let cluster = try makeCluster()
        defer { try? FileManager.default.removeItem(atPath: cluster.dataDirectory) }

        let first = try await cluster.start()
        #expect(first.outcome == .initialised)
        #expect(first.ownsServer)
        #expect(try await canQuery(first))
        try await first.stop()
        #expect(cluster.serverPID() == nil)
        #expect(!FileManager.default.fileExists(atPath: cluster.socketPath))

        let second = try await cluster.start()
        #expect(second.outcome == .started)
        #expect(try await canQuery(second))
        try await second.stop()
        #expect(cluster.serverPID() == nil)
        #expect(!FileManager.default.fileExists(atPath: cluster.socketPath))
    }

    @Test("a stale postmaster.pid left by a crash (its PID now belongs to another program) is recovered")
    func stalePidFile() async throws {
        let cluster = try makeCluster()
        defer { try? FileManager.default.removeItem(atPath: cluster.dataDirectory) }
        let first = try await cluster.start()
        let pidFileContents = try String(contentsOfFile: cluster.pidFile, encoding: .utf8)
        try await first.stop()

        // Forge what a power loss leaves: the old pid file, pointing at a live process that is not postgres.
        var lines = pidFileContents.split(separator: "\n", omittingEmptySubsequences: false)
        lines[0] = Substring(String(getpid()))
        try lines.joined(separator: "\n").write(toFile: cluster.pidFile, atomically: true, encoding: .utf8)
        #expect(cluster.serverPID() == nil, "a pid that is not a postgres process counts as stale")

        let second = try await cluster.start()
        #expect(second.outcome == .started)
        #expect(try await canQuery(second))
        try await second.stop()
    }

    @Test("a server left running by a killed TelePay is adopted and then stopped on shutdown")
    func adoptsOrphanedServer() async throws {
        let cluster = try makeCluster()
        defer { try? FileManager.default.removeItem(atPath: cluster.dataDirectory) }
        try await cluster.start().stop()
        // What a killed TelePay leaves behind: a running server and no process holding the data folder's lock.
        let options = "-c listen_addresses='' -c unix_socket_directories='\(cluster.socketDirectory)'"
        let start = [cluster.binaries.pgCtl, "-D", cluster.clusterDirectory, "-l", cluster.logFile, "-o", options, "-w", "start"]
        let manual =
            geteuid() == 0
            ? try await ProcessRunner.run("/usr/sbin/runuser", ["-u", "postgres", "--"] + start, workingDirectory: "/")
            : try await ProcessRunner.run(start[0], Array(start.dropFirst()), workingDirectory: "/")
        try #require(manual.succeeded, "\(manual.output)")
        let orphanPID = try #require(cluster.serverPID())

        let second = try await cluster.start()
        #expect(second.outcome == .adopted)
        #expect(cluster.serverPID() == orphanPID)
        try await second.stop()
        #expect(cluster.serverPID() == nil)
    }

    @Test("a second process on the same data folder joins as a guest and never stops the owner's server")
    func guestDoesNotStop() async throws {
        let cluster = try makeCluster()
        defer { try? FileManager.default.removeItem(atPath: cluster.dataDirectory) }
        let owner = try await cluster.start()
        let guest = try await cluster.start()
        #expect(guest.outcome == .guest)
        #expect(!guest.ownsServer)
        try await guest.stop()
        #expect(cluster.serverPID() != nil)
        try await owner.stop()
        #expect(cluster.serverPID() == nil)
    }

    @Test("missing server binaries name the package to install")
    func missingBinaries() throws {
        let empty = try RepositoryPaths.makeTemporaryDirectory("telepay-nobin")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let error = #expect(throws: EmbeddedPostgresError.self) {
            try PostgresServerBinaries.locate(path: empty, versionedRoots: [empty + "/postgresql"])
        }
        let message = try #require(error).description
        #expect(message.contains("apt-get install -y postgresql"))
        #expect(message.contains("initdb"))
        #expect(message.contains("DATABASE_URL"))
    }
}
