import App
import FakeServing
import Foundation
import Hummingbird
import Logging
import Payments
import PostgresNIO
import Storage
import Synchronization
import TestSupport
import Testing

/// A raw TCP client over loopback, for what well-behaved HTTP clients never do: half-sent headers,
/// stalled bodies, idle connections, and a choice of loopback source address (a "different client").
/// A class so that its writer is always finished: NIO traps when an unfinished `NIOAsyncWriter` is
/// released, which a test that stops early (a failed expectation, a thrown error) would otherwise do.
final class RawConnection: Sendable {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        self.channel = channel
    }

    deinit {
        channel.outbound.finish()
        channel.channel.close(promise: nil)
    }

    static func open(port: Int, from source: String? = nil) async throws -> RawConnection {
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let source {
            bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0))
        }
        let channel = try await bootstrap.connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        return RawConnection(channel: channel)
    }

    func send(_ text: String) async throws {
        try await send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Everything the server sends until it closes the connection, by FIN or by reset (or `limit` passes: then nil).
    func readUntilClosed(limit: Duration) async throws -> String? {
        try await firstOf(limit: limit) { [inbound = channel.inbound] in
            var received = ""
            do {
                for try await buffer in inbound {
                    received += String(buffer: buffer)
                }
            } catch let error as IOError where error.errnoCode == ECONNRESET {
                // Closing with unread bytes in the socket makes the kernel send a reset: closed all the same.
            }
            return received
        }
    }

    /// The first response's status code, read without waiting for the connection to close.
    func readStatus(limit: Duration) async throws -> Int? {
        try await firstOf(limit: limit) { [inbound = channel.inbound] in
            var received = ""
            for try await buffer in inbound {
                received += String(buffer: buffer)
                if let line = received.split(separator: "\r\n").first, line.hasPrefix("HTTP/1.1 ") {
                    return Int(line.dropFirst(9).prefix(3)) ?? 0
                }
            }
            return 0
        }
    }

    func close() {
        channel.outbound.finish()
        channel.channel.close(promise: nil)
    }
}

/// A flag one task sets and another polls.
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// The value of `body`, or nil when it takes longer than `limit`.
func firstOf<T: Sendable>(limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

func request(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = []) -> [UInt8] {
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
    head += "\r\n"
    return Array(head.utf8) + body
}

/// A server built as TelePay builds it (limits, connection cap, routes), on a free loopback port.
struct HostileServer {
    let port: Int
    let telemetry: Telemetry
    let task: Task<Void, any Error>

    static let secret = "hostile-ipn-secret"

    static func start(
        limits: HTTPLimits, throttle: FailedSignatureThrottle = FailedSignatureThrottle(), logger: Logger = quietLogger
    ) async throws -> HostileServer {
        let telemetry = Telemetry()
        // Nothing here reaches the database: every request under test is refused before the insert.
        let database = Database(
            configuration: .init(unixSocketPath: "/nonexistent/.s.PGSQL.5432", username: "nobody", password: nil, database: "none"),
            poolSize: 1, logger: quietLogger, metrics: telemetry.factory
        )
        let router = HTTPRoutes.buildRouter(
            readiness: FixedProbe(answer: .ready), telemetry: telemetry, maxBodyBytes: 1 << 20,
            nowPaymentsIPN: NOWPaymentsIPNReceiver(secret: secret, database: database, logger: quietLogger),
            ipnMaxBodyBytes: limits.paymentCallbackMaxBodyBytes, ipnThrottle: throttle, logger: logger
        )
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = TelePayHTTPServer.application(
            router: router, host: "127.0.0.1", port: 0, limits: limits, telemetry: telemetry, logger: logger,
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }
        )
        let task = serveUntilCancelled(app, logger: logger)
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        return HostileServer(port: port, telemetry: telemetry, task: task)
    }

    func stop() {
        task.cancel()
    }

    /// One request on its own connection; the status code.
    func status(_ bytes: [UInt8], from source: String? = nil, limit: Duration = .seconds(10)) async throws -> Int? {
        let connection = try await RawConnection.open(port: port, from: source)
        defer { connection.close() }
        try await connection.send(bytes)
        return try await connection.readStatus(limit: limit)
    }
}

@Suite("HTTP against hostile clients", .serialized)
struct HostileHTTPTests {
    static let relaxed = HTTPLimits(
        maxConnections: 4096, headerTimeout: .seconds(10), requestTimeout: .seconds(30), idleTimeout: .seconds(60), paymentCallbackMaxBodyBytes: 65536
    )
    static let forgedSignature = String(repeating: "ab", count: 64)

    /// `{"a":[0,0,…]}` of about `bytes` bytes: cheap to send, once expensive to re-serialise four ways.
    static func arrayBomb(bytes: Int) -> [UInt8] {
        Array("{\"a\":[".utf8) + Array(repeating: Array("0,".utf8), count: (bytes - 8) / 2).flatMap { $0 } + Array("0]}".utf8)
    }

    static func ipn(_ body: [UInt8], signature: String = forgedSignature) -> [UInt8] {
        request("POST", "/payments/nowpayments/ipn", headers: ["x-nowpayments-sig": signature, "Content-Type": "application/json"], body: body)
    }

    @Test("a forged 1 MB callback is refused with 413 before its body is read")
    func oneMegabyteRefusedUnread() async throws {
        let server = try await HostileServer.start(limits: Self.relaxed)
        defer { server.stop() }
        let connection = try await RawConnection.open(port: server.port)
        defer { connection.close() }
        let full = Self.ipn(Self.arrayBomb(bytes: 1 << 20))
        // Only the headers and the first kilobyte: a 413 can only come from the declared length.
        try await connection.send(Array(full.prefix(full.count - (1 << 20) + 1024)))
        #expect(try await connection.readStatus(limit: .seconds(10)) == 413)
    }

    @Test("forged 64 kB callbacks are refused as unlike any callback or by signature, and /healthz answers throughout a flood")
    func floodAtTheRouteLimit() async throws {
        let server = try await HostileServer.start(limits: Self.relaxed, throttle: FailedSignatureThrottle(limit: 1_000_000))
        defer { server.stop() }
        #expect(try await server.status(Self.ipn(Self.arrayBomb(bytes: 65_000))) == 400)
        let flat = "{" + (0..<900).map { "\"k\($0)\":\"\(String(repeating: "v", count: 40))\"" }.joined(separator: ",") + "}"
        #expect(flat.utf8.count < 65536)
        #expect(try await server.status(Self.ipn(Array(flat.utf8))) == 401)

        // 8 senders × 12 forged bodies at the route's limit, while /healthz is asked every 50 ms until they finish.
        let done = Flag()
        let (refused, slowest) = try await withThrowingTaskGroup(of: (Int?, Duration?).self) { group in
            group.addTask {
                defer { done.set() }
                return (
                    try await withThrowingTaskGroup(of: Int.self) { senders in
                        for sender in 0..<8 {
                            senders.addTask {
                                var refused = 0
                                for round in 0..<12 {
                                    let body = (sender + round) % 2 == 0 ? Self.arrayBomb(bytes: 65_000) : Array(flat.utf8)
                                    if let status = try await server.status(Self.ipn(body)), status == 400 || status == 401 { refused += 1 }
                                }
                                return refused
                            }
                        }
                        return try await senders.reduce(0, +)
                    }, nil
                )
            }
            group.addTask {
                var slowest = Duration.zero
                while !done.isSet {
                    let started = ContinuousClock.now
                    let status = try await server.status(request("GET", "/healthz"))
                    slowest = max(slowest, status == 200 ? ContinuousClock.now - started : .seconds(3600))
                    try await Task.sleep(for: .milliseconds(50))
                }
                return (nil, slowest)
            }
            var refused = 0
            var slowest = Duration.zero
            for try await (count, latency) in group {
                if let count { refused = count }
                if let latency { slowest = latency }
            }
            return (refused, slowest)
        }
        #expect(refused == 96, "every forged callback is refused")
        // Generous for a loaded 2-core machine and a debug build; the release figures are in the README's benchmarks.
        #expect(slowest < .seconds(10), "the slowest /healthz took \(slowest) (22.5 s before the bounds)")
    }

    @Test("a client whose signatures keep failing gets 429 before its body is read; another client does not")
    func failedSignaturesThrottled() async throws {
        let server = try await HostileServer.start(limits: Self.relaxed, throttle: FailedSignatureThrottle(limit: 3, window: .seconds(60)))
        defer { server.stop() }
        let body = Array(#"{"payment_id":"1","payment_status":"finished"}"#.utf8)
        for _ in 0..<3 {
            #expect(try await server.status(Self.ipn(body), from: "127.0.0.2") == 401)
        }
        let connection = try await RawConnection.open(port: server.port, from: "127.0.0.2")
        defer { connection.close() }
        let full = Self.ipn(Array(repeating: UInt8(ascii: " "), count: 60_000))
        try await connection.send(Array(full.prefix(full.count - 59_000)))
        #expect(try await connection.readStatus(limit: .seconds(10)) == 429)
        #expect(try await server.status(Self.ipn(body), from: "127.0.0.1") == 401)
    }

    @Test("a chunked body over the route's limit gets 413, not 500")
    func chunkedOverLimit() async throws {
        let server = try await HostileServer.start(
            limits: HTTPLimits(
                maxConnections: 64, headerTimeout: .seconds(10), requestTimeout: .seconds(30), idleTimeout: .seconds(60),
                paymentCallbackMaxBodyBytes: 2048
            ))
        defer { server.stop() }
        let chunk = String(repeating: "x", count: 1000)
        let chunked =
            "POST /payments/nowpayments/ipn HTTP/1.1\r\nHost: 127.0.0.1\r\nx-nowpayments-sig: \(Self.forgedSignature)\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n" + String(repeating: "3e8\r\n\(chunk)\r\n", count: 4) + "0\r\n\r\n"
        #expect(try await server.status(Array(chunked.utf8)) == 413)
    }

    @Test("a validly signed callback with a NUL byte in order_id is refused with 400, so it cannot fail forever")
    func nulInOrderID() async throws {
        let server = try await HostileServer.start(limits: Self.relaxed)
        defer { server.stop() }
        let text = #"{"payment_id":"5077125051","payment_status":"finished","order_id":"ord\u0000-1"}"#
        let signature = IPNSignatureVerifier(secret: HostileServer.secret).sign(try ExactJSON.parse(Array(text.utf8)))
        let connection = try await RawConnection.open(port: server.port)
        defer { connection.close() }
        try await connection.send(
            request(
                "POST", "/payments/nowpayments/ipn", headers: ["x-nowpayments-sig": signature, "Connection": "close"], body: Array(text.utf8)
            ))
        let response = try #require(try await connection.readUntilClosed(limit: .seconds(10)))
        #expect(response.hasPrefix("HTTP/1.1 400"), "\(response)")
        #expect(response.contains("order_id"))
    }

    static let tight = HTTPLimits(
        maxConnections: 64, headerTimeout: .seconds(1), requestTimeout: .seconds(2), idleTimeout: .seconds(1), paymentCallbackMaxBodyBytes: 65536
    )

    @Test("a connection that sends nothing, half its headers, or half its body is closed by the timeouts")
    func slowClientsClosed() async throws {
        let server = try await HostileServer.start(limits: Self.tight)
        defer { server.stop() }
        let silent = try await RawConnection.open(port: server.port)
        let trickling = try await RawConnection.open(port: server.port)
        let stalledBody = try await RawConnection.open(port: server.port)
        defer { [silent, trickling, stalledBody].forEach { $0.close() } }
        try await stalledBody.send(
            "POST /payments/nowpayments/ipn HTTP/1.1\r\nHost: x\r\nx-nowpayments-sig: \(Self.forgedSignature)\r\nContent-Length: 100\r\n\r\n{\"a\":")
        let trickle = Task {
            try await trickling.send("GET /healthz HTTP/1.1\r\n")
            for _ in 0..<40 {
                try await Task.sleep(for: .milliseconds(250))
                try await trickling.send("X")
            }
        }
        defer { trickle.cancel() }
        // Generous bounds: the timeouts close these within a few seconds, but a machine running the whole suite
        // in parallel may be slow to tell; without the timeouts they would stay open for good.
        let started = ContinuousClock.now
        #expect(try await silent.readUntilClosed(limit: .seconds(30)) == "")
        #expect(try await trickling.readUntilClosed(limit: .seconds(30)) != nil, "headers that never end are cut off")
        #expect(try await stalledBody.readUntilClosed(limit: .seconds(30)) != nil, "a body that never ends is cut off")
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(server.telemetry.render().contains("telepay_http_connections_timed_out_total"))
    }

    @Test("a kept-alive connection is closed after the idle timeout, not kept for minutes")
    func idleKeepAliveClosed() async throws {
        let server = try await HostileServer.start(limits: Self.tight)
        defer { server.stop() }
        let connection = try await RawConnection.open(port: server.port)
        defer { connection.close() }
        try await connection.send(request("GET", "/healthz"))
        // Closed about a second after the answer; the bound is generous for a loaded machine (without the idle
        // timeout the connection would stay open for minutes).
        let response = try #require(try await connection.readUntilClosed(limit: .seconds(30)))
        #expect(response.hasPrefix("HTTP/1.1 200"), "answered, then closed once idle")
    }

    @Test("at the connection cap new clients wait, the cap is logged and counted, and service recovers when connections close")
    func connectionCap() async throws {
        let lines = LogCapture()
        let logger = Logger(label: "test") { label in KeyValueLogHandler(label: label, level: .info, sink: lines.append) }
        // Timeouts long enough that all 16 silent connections are open at once even on a slow machine.
        let limits = HTTPLimits(
            maxConnections: 16, headerTimeout: .seconds(10), requestTimeout: .seconds(20), idleTimeout: .seconds(10),
            paymentCallbackMaxBodyBytes: 65536
        )
        let server = try await HostileServer.start(limits: limits, logger: logger)
        defer { server.stop() }
        var held: [RawConnection] = []
        for _ in 0..<16 { held.append(try await RawConnection.open(port: server.port)) }
        defer { held.forEach { $0.close() } }
        try await Task.sleep(for: .milliseconds(300))
        // Served once the silent connections time out; that it had to wait is proven by the cap's log line and
        // counter, not by a duration (the machine running the test may be slow to open the 16 connections).
        let status = try await server.status(request("GET", "/healthz"), limit: .seconds(45))
        #expect(status == 200, "served once the silent connections timed out")
        #expect(lines.text.contains("HTTP connection cap reached"))
        #expect(lines.text.contains("TELEPAY_HTTP_MAX_CONNECTIONS"))
        let metrics = server.telemetry.render()
        #expect(metrics.contains("telepay_http_connection_cap_reached_total"))
        #expect(metrics.contains("telepay_http_connections_open"))
        #expect(try await server.status(request("GET", "/healthz")) == 200)
    }

    @Test(
        "a crowd of connections leaving (down to a tenth of a peak of at least 256) is noticed once, so its memory is given back; small crowds are not"
    )
    func crowdLeaving() {
        var watch = CrowdWatch(reclaimAfterPeak: 256)
        for count in 1...100 { watch.opened(count: count) }
        #expect((0..<100).reversed().compactMap { watch.closed(count: $0) }.isEmpty, "100 connections are not a crowd")
        for count in 1...2_000 { watch.opened(count: count) }
        var reported: [Int] = []
        for count in (0..<2_000).reversed() {
            if let peak = watch.closed(count: count) { reported.append(peak) }
        }
        #expect(reported == [2_000], "reported once, when 200 were left")
        #expect(MemoryReclaimer.isAvailable, "glibc's malloc_trim is found on Linux")
        // Memory freed after a burst of small allocations goes back to the system.
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<20_000 { blocks.append(malloc(4096)!) }
        for block in blocks { free(block) }
        #expect(MemoryReclaimer.reclaim(), "malloc_trim released pages")
    }
}
