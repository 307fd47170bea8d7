import App
import AsyncHTTPClient
import Foundation
import Hummingbird
import Jobs
import Logging
import Metrics
import NIOCore
import Payments
import PostgresNIO
import Storage

/// Genuine traffic while the server is attacked, through TelePay's real HTTP server (connection cap,
/// deadlines, the callback route's body limit and failed-signature throttle) and its real callback route
/// (signature check, inbox insert and processing job), run in a child process (`telepay-bench
/// hostile-server`) with `telepay serve`'s limits and pool size, so that its memory is measured alone and its
/// threads are not shared with the clients':
///
/// - 2,000 idle keep-alive connections opened first (from 127.0.0.3), held for the whole run;
/// - forged callbacks at `forgedRate`/s from 127.0.0.2, alternately `{"a":[0,0,…]}` and a flat object of
///   900 keys (under the 1,000-value bound, so its signature variants are computed), each just under the route's 64 kB limit, with a bogus signature;
/// - genuine signed callbacks at `genuineRate`/s and `/healthz` at 100/s from 127.0.0.1, each timed from its
///   scheduled send time, so queueing behind the attack is not hidden.
///
/// The server's resident memory is read from `/proc` when it is idle, at the end of the attack, and 2 s and
/// 10 s after every client has gone.
struct HostileTrafficBenchmark {
    var genuineRate = 500
    var forgedRate = 200
    var idleConnections = 2_000
    var seconds = 20
    /// When set, RSS is also read this many seconds after the clients left (past the database pool's 60 s idle
    /// timeout, its connections are closed too).
    var settleSeconds = 0

    static let secret = "bench-hostile-secret"
    static let serverArgument = "hostile-server"
    static let socketVariable = "TELEPAY_BENCH_SERVER_SOCKET"

    struct AlwaysReady: ReadinessProbe {
        func check() async -> Readiness { .ready }
    }

    /// The child process: TelePay's server and callback route on the benchmark's database (its socket in
    /// `TELEPAY_BENCH_SERVER_SOCKET`), with `telepay serve`'s default pool size and limits. Prints
    /// its port on a line of its own and serves until SIGTERM.
    static func serve(logger: Logger) async throws {
        guard let socket = ProcessInfo.processInfo.environment[socketVariable] else {
            throw BenchmarkServerFailure.noDatabaseSocket
        }
        let configuration = try Configuration.load(environment: [:])
        let database = Database(
            configuration: .init(unixSocketPath: socket, username: EmbeddedPostgres.username, password: nil, database: EmbeddedPostgres.database),
            poolSize: configuration.databasePoolSize, logger: logger, metrics: NOOPMetricsHandler.instance
        )
        let pool = Task { await database.run() }
        defer { pool.cancel() }
        let telemetry = Telemetry()
        let router = HTTPRoutes.buildRouter(
            readiness: AlwaysReady(), telemetry: telemetry, maxBodyBytes: configuration.httpMaxBodyBytes,
            nowPaymentsIPN: NOWPaymentsIPNReceiver.processing(
                secret: secret, database: database, queue: JobQueue(database: database, logger: logger), logger: logger),
            ipnMaxBodyBytes: configuration.httpLimits.paymentCallbackMaxBodyBytes, logger: logger
        )
        let app = TelePayHTTPServer.application(
            router: router, host: "127.0.0.1", port: 0, limits: configuration.httpLimits, telemetry: telemetry, logger: logger,
            onServerRunning: { channel in
                FileHandle.standardOutput.write(Data("port \(channel.localAddress?.port ?? 0)\n".utf8))
            }
        )
        try await app.runService()
    }

    enum BenchmarkServerFailure: Error {
        case noDatabaseSocket
        case didNotStart(String)
    }

    func run(database: PostgresClient.Configuration, logger: Logger) async throws -> String {
        guard let socket = database.unixSocketPath else { throw BenchmarkServerFailure.noDatabaseSocket }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        server.arguments = [Self.serverArgument]
        server.environment = ProcessInfo.processInfo.environment.merging([Self.socketVariable: socket]) { $1 }
        let output = Pipe()
        server.standardOutput = output
        try server.run()
        defer {
            if server.isRunning {
                server.terminate()
                server.waitUntilExit()
            }
        }
        let announcement = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        guard announcement.hasPrefix("port "), let port = Int(announcement.dropFirst(5).prefix { $0.isNumber }) else {
            throw BenchmarkServerFailure.didNotStart(announcement)
        }
        let pid = server.processIdentifier
        let rssIdle = Self.residentMegabytes(of: pid)

        var idle: [any Channel] = []
        for _ in 0..<idleConnections {
            let channel = try await ClientBootstrap(group: Self.attackers)
                .bind(to: try SocketAddress(ipAddress: "127.0.0.3", port: 0))
                .connect(host: "127.0.0.1", port: port).get()
            try await channel.writeAndFlush(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"))
            idle.append(channel)
        }

        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let signer = IPNSignatureVerifier(secret: Self.secret)
        let genuine: [(body: [UInt8], signature: String)] = (0..<(genuineRate * seconds)).map { index in
            let body = IPNBenchmark.body(paymentID: 8_000_000_000 + Int64(index))
            return (body.javaScriptText(), signer.sign(body))
        }
        let bomb = Array("{\"a\":[".utf8) + Array(repeating: Array("0,".utf8), count: 32_000).flatMap { $0 } + Array("0]}".utf8)
        let flat = Array(("{" + (0..<900).map { "\"k\($0)\":\"\(String(repeating: "v", count: 55))\"" }.joined(separator: ",") + "}").utf8)
        let forged = [bomb, flat].map { body in
            Array(
                "POST /payments/nowpayments/ipn HTTP/1.1\r\nHost: bench\r\nConnection: close\r\nContent-Type: application/json\r\nx-nowpayments-sig: \(String(repeating: "ab", count: 64))\r\nContent-Length: \(body.count)\r\n\r\n"
                    .utf8) + body
        }
        let url = "http://127.0.0.1:\(port)"

        do {
            return try await measure(
                client: client, url: url, port: port, genuine: genuine, forged: forged, idle: idle, server: pid, rssIdle: rssIdle
            )
        } catch {
            for channel in idle { try? await channel.close() }
            try? await client.shutdown()
            throw error
        }
    }

    func measure(
        client: HTTPClient, url: String, port: Int, genuine: [(body: [UInt8], signature: String)], forged: [[UInt8]],
        idle: [any Channel], server: Int32, rssIdle: Int
    ) async throws -> String {
        let started = ContinuousClock.now + .milliseconds(200)
        async let genuineLatencies = Self.openLoop(rate: genuineRate, count: genuine.count, start: started) { index in
            try await IPNBenchmark.post(client: client, url: url + "/payments/nowpayments/ipn", genuine[index])
        }
        async let healthLatencies = Self.openLoop(rate: 100, count: 100 * seconds, start: started) { _ in
            let response = try await client.execute(HTTPClientRequest(url: url + "/healthz"), timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 10)
            guard response.status == .ok else { throw IPNBenchmark.BenchmarkFailure.unexpectedStatus(Int(response.status.code)) }
        }
        let statuses = StatusTally()
        async let forgedLatencies = Self.openLoop(rate: max(forgedRate, 1), count: forgedRate * seconds, start: started) { index in
            await statuses.add(try await Self.sendRaw(forged[index % 2], port: port, from: "127.0.0.2"))
        }
        let (genuineResult, healthResult, forgedResult) = try await (genuineLatencies, healthLatencies, forgedLatencies)
        let rssLoaded = Self.residentMegabytes(of: server)
        for channel in idle { try? await channel.close() }
        try await client.shutdown()
        try await Task.sleep(for: .seconds(2))
        let rssAfter = Self.residentMegabytes(of: server)
        try await Task.sleep(for: .seconds(8))
        let rssLater = Self.residentMegabytes(of: server)
        var settled = ""
        if settleSeconds > 10 {
            try await Task.sleep(for: .seconds(settleSeconds - 10))
            settled = String(format: ", %d s after %d MB", settleSeconds, Self.residentMegabytes(of: server))
        }
        return String(
            format:
                "hostile: %d idle connections, forged %d/s (answers %@; -1 = reset before an answer), genuine %d/s for %d s: genuine p50 %@, p99 %@, max %@; "
                + "/healthz p50 %@, p99 %@, max %@; forged p99 %@; server RSS idle %d MB, loaded %d MB, 2 s after %d MB, 10 s after %d MB",
            idleConnections, forgedRate, await statuses.summary, genuineRate, seconds,
            IPNBenchmark.percentile(genuineResult, 0.5), IPNBenchmark.percentile(genuineResult, 0.99), IPNBenchmark.percentile(genuineResult, 1.0),
            IPNBenchmark.percentile(healthResult, 0.5), IPNBenchmark.percentile(healthResult, 0.99), IPNBenchmark.percentile(healthResult, 1.0),
            IPNBenchmark.percentile(forgedResult, 0.99), rssIdle, rssLoaded, rssAfter, rssLater
        ) + settled
    }

    /// Calls `send(i)` at start + i / rate whether or not earlier calls finished; each latency from its due time.
    static func openLoop(
        rate: Int, count: Int, start: ContinuousClock.Instant, _ send: @escaping @Sendable (Int) async throws -> Void
    ) async throws -> [Duration] {
        let interval = Duration.seconds(1) / rate
        return try await withThrowingTaskGroup(of: Duration.self) { group in
            for index in 0..<count {
                let due = start + interval * index
                try await Task.sleep(until: due, clock: .continuous)
                group.addTask {
                    try await send(index)
                    return ContinuousClock.now - due
                }
            }
            return try await group.reduce(into: [Duration]()) { $0.append($1) }
        }
    }

    /// Sends `bytes` on a new connection from `source` and returns the response's status code.
    static func sendRaw(_ bytes: [UInt8], port: Int, from source: String) async throws -> Int {
        let channel = try await ClientBootstrap(group: attackers)
            .bind(to: try SocketAddress(ipAddress: source, port: 0))
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            // The server may answer (413, 429) and close before the whole body is written; a refused write
            // or a reset after the answer is part of the attack, not a failure of the benchmark.
            try? await outbound.write(ByteBuffer(bytes: bytes))
            var received = ""
            do {
                for try await buffer in inbound {
                    received += String(buffer: buffer)
                    if received.count >= 12 { break }
                }
            } catch {
                if received.count < 12 { return -1 }
            }
            return Int(received.dropFirst(9).prefix(3)) ?? 0
        }
    }

    /// The attackers' own event loop, so their sockets' work is not done on the server's event loops (in
    /// production the attack comes from other machines).
    static let attackers = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    static func residentMegabytes(of process: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(process)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
    }
}

/// Counts the forged callbacks' answers by status.
actor StatusTally {
    private var counts: [Int: Int] = [:]

    func add(_ status: Int) {
        counts[status, default: 0] += 1
    }

    var summary: String {
        counts.sorted { $0.key < $1.key }.map { "\($0.value)×\($0.key)" }.joined(separator: ", ")
    }
}
