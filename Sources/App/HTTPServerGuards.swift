import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import Synchronization

/// The request context of TelePay's routes: Hummingbird's basics plus the peer's address, which the
/// payment-callback route throttles failed signatures by.
public struct TelePayRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The peer's IP address, or "unknown" (requests sent straight to the router in tests have none).
    var clientKey: String {
        remoteAddress?.ipAddress ?? "unknown"
    }
}

/// TelePay's HTTP server: Hummingbird over HTTP/1 with the connection cap and the deadlines of `HTTPLimits`.
public enum TelePayHTTPServer {
    public static func application(
        router: Router<TelePayRequestContext>,
        host: String,
        port: Int,
        limits: HTTPLimits,
        telemetry: Telemetry,
        logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> Application<RouterResponder<TelePayRequestContext>> {
        Application(
            router: router,
            server: GuardedHTTP1Channel.builder(limits: limits, metrics: telemetry.factory, logger: logger),
            configuration: .init(
                address: .hostname(host, port: port), serverName: "TelePay",
                // Clients beyond the cap wait here; the kernel bounds the queue by net.core.somaxconn too.
                backlog: 1024,
                availableConnectionsDelegate: ConnectionCap(maximum: limits.maxConnections, metrics: telemetry.factory, logger: logger)
            ),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}

/// HTTP/1 with deadlines a client cannot stretch: a child channel that puts a `ConnectionDeadlineHandler`
/// in front of Hummingbird's HTTP/1 pipeline, where it sees the raw bytes.
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let inner: HTTP1Channel
    let limits: HTTPLimits
    let metrics: any MetricsFactory
    let logger: Logger

    static func builder(limits: HTTPLimits, metrics: any MetricsFactory, logger: Logger) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            GuardedHTTP1Channel(
                inner: HTTP1Channel(responder: responder, configuration: .init(idleTimeout: TimeAmount(limits.idleTimeout))),
                limits: limits, metrics: metrics, logger: logger
            )
        }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let limits = self.limits
        let metrics = self.metrics
        let ownLogger = self.logger
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
                ConnectionDeadlineHandler(limits: limits, metrics: metrics, logger: ownLogger), position: .first
            )
        }.flatMap {
            inner.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Closes a connection whose client is too slow, judged on the raw bytes before any HTTP parsing:
///
/// - a request's headers (first byte to the blank line) must arrive within the header timeout, and a
///   new connection must start its first request within it too;
/// - a request must be complete and answered (first byte to the first byte of the response) within the
///   request timeout;
/// - a kept-alive connection may sit idle between requests for the idle timeout.
///
/// Each connection holds one timer at a time, so thousands of connections cost thousands of timers.
final class ConnectionDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// Where the connection is in its request cycle.
    enum Phase: String {
        /// Connected, or answered; waiting for the first byte of a request.
        case idle
        /// Some bytes of a request arrived, but not the blank line that ends its headers.
        case headers
        /// Headers complete; the body (if any) and then the response are due.
        case request
    }

    private let limits: HTTPLimits
    private let logger: Logger
    private let timeouts: [Phase: Counter]
    private var phase = Phase.idle
    private var isFreshConnection = true
    private var requestStarted = NIODeadline.now()
    /// How many bytes of "\r\n\r\n" the stream has just matched (a bare "\n\n" also ends headers).
    private var terminatorProgress = 0
    private var timer: Scheduled<Void>?

    init(limits: HTTPLimits, metrics: any MetricsFactory, logger: Logger) {
        self.limits = limits
        self.logger = logger
        var timeouts: [Phase: Counter] = [:]
        for phase in [Phase.idle, .headers, .request] {
            timeouts[phase] = Counter(label: "telepay_http_connections_timed_out_total", dimensions: [("phase", phase.rawValue)], factory: metrics)
        }
        self.timeouts = timeouts
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { enter(.idle, context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        enter(.idle, context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if phase == .idle, buffer.readableBytes > 0 {
            requestStarted = .now()
            terminatorProgress = 0
            enter(.headers, context: context)
        }
        if phase == .headers, scanForEndOfHeaders(buffer) {
            enter(.request, context: context)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if phase != .idle {
            isFreshConnection = false
            enter(.idle, context: context)
        }
        context.write(data, promise: promise)
    }

    /// Feeds bytes through the "\r\n\r\n" matcher; true once the headers' blank line has passed.
    private func scanForEndOfHeaders(_ buffer: ByteBuffer) -> Bool {
        for byte in buffer.readableBytesView {
            switch (terminatorProgress, byte) {
            case (0, UInt8(ascii: "\r")), (2, UInt8(ascii: "\r")): terminatorProgress += 1
            case (1, UInt8(ascii: "\n")): terminatorProgress = 2
            case (3, UInt8(ascii: "\n")), (2, UInt8(ascii: "\n")): return true
            case (_, UInt8(ascii: "\n")): terminatorProgress = 2
            case (_, UInt8(ascii: "\r")): terminatorProgress = 1
            default: terminatorProgress = 0
            }
        }
        return false
    }

    private func enter(_ next: Phase, context: ChannelHandlerContext) {
        phase = next
        timer?.cancel()
        let deadline: NIODeadline
        switch next {
        case .idle:
            deadline = .now() + TimeAmount(isFreshConnection ? limits.headerTimeout : limits.idleTimeout)
        case .headers:
            deadline = min(requestStarted + TimeAmount(limits.headerTimeout), requestStarted + TimeAmount(limits.requestTimeout))
        case .request:
            deadline = requestStarted + TimeAmount(limits.requestTimeout)
        }
        let expired = next
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            guard self.phase == expired else { return }
            self.timer = nil
            self.timeouts[expired]?.increment()
            self.logger.debug(
                "closing a slow HTTP connection",
                metadata: [
                    "phase": "\(expired.rawValue)", "peer": "\(context.channel.remoteAddress?.ipAddress ?? "-")",
                ])
            context.close(promise: nil)
        }
    }
}

/// Caps the HTTP connections open at once. At the cap the server stops accepting, so further clients
/// wait in the kernel's listen backlog instead of exhausting file descriptors; accepting resumes as soon as
/// one closes. Reaching the cap is logged (at most once every ten seconds) and counted.
///
/// After a crowd of connections has gone (the open count fell to a tenth of its peak, a peak of at least
/// `reclaimAfterPeak`), the memory their buffers used is given back to the system (`MemoryReclaimer`), so
/// the process returns near its idle size after a flood instead of keeping the allocator's high-water mark.
struct ConnectionCap: AvailableConnectionsDelegate {
    let maximum: Int
    let logger: Logger
    let open: Gauge
    let reached: Counter
    let reclaim: @Sendable () -> Void
    private var crowd: CrowdWatch
    private var count = 0
    private var lastWarning: ContinuousClock.Instant?

    init(
        maximum: Int, metrics: any MetricsFactory, logger: Logger, reclaimAfterPeak: Int = 256,
        reclaim: @escaping @Sendable () -> Void = { MemoryReclaimer.reclaimSoon() }
    ) {
        self.maximum = maximum
        self.crowd = CrowdWatch(reclaimAfterPeak: reclaimAfterPeak)
        self.reclaim = reclaim
        self.logger = logger
        self.open = Gauge(label: "telepay_http_connections_open", dimensions: [], factory: metrics)
        self.reached = Counter(label: "telepay_http_connection_cap_reached_total", dimensions: [], factory: metrics)
        Gauge(label: "telepay_http_max_connections", dimensions: [], factory: metrics).record(maximum)
        open.record(0)
    }

    mutating func connectionOpened() {
        count += 1
        crowd.opened(count: count)
        open.record(count)
        if count == maximum {
            reached.increment()
            let now = ContinuousClock.now
            if lastWarning.map({ now - $0 >= .seconds(10) }) ?? true {
                lastWarning = now
                logger.warning(
                    "HTTP connection cap reached: new connections wait until one closes",
                    metadata: [
                        "open_connections": "\(count)", "cap": "\(maximum)", "variable": "TELEPAY_HTTP_MAX_CONNECTIONS",
                    ])
            }
        }
    }

    mutating func connectionClosed() {
        count -= 1
        open.record(count)
        if let peak = crowd.closed(count: count) {
            logger.info("connection crowd gone; giving its memory back", metadata: ["peak_connections": "\(peak)", "open_connections": "\(count)"])
            reclaim()
        }
    }

    func isAcceptingNewConnections() -> Bool {
        count < maximum
    }
}

/// Counts failed payment-callback signatures per client over a sliding window. A client that fails too
/// often is refused (429) before its body is read, until its failures age out; a genuine provider never
/// fails, so it is never throttled. The table is bounded: past `maximumClients`, the stalest entries go.
public final class FailedSignatureThrottle: Sendable {
    public let limit: Int
    public let window: Duration
    public let maximumClients: Int
    private let failures = Mutex<[String: [ContinuousClock.Instant]]>([:])

    public init(limit: Int = 20, window: Duration = .seconds(60), maximumClients: Int = 10_000) {
        self.limit = limit
        self.window = window
        self.maximumClients = maximumClients
    }

    /// How long `client` must wait before it may try again; nil when it may try now.
    public func retryAfter(_ client: String, now: ContinuousClock.Instant = .now) -> Duration? {
        failures.withLock { table in
            guard var times = table[client] else { return nil }
            times.removeAll { now - $0 >= window }
            table[client] = times.isEmpty ? nil : times
            guard times.count >= limit, let oldest = times.first else { return nil }
            return window - (now - oldest)
        }
    }

    public func recordFailure(_ client: String, now: ContinuousClock.Instant = .now) {
        failures.withLock { table in
            var times = table[client] ?? []
            times.removeAll { now - $0 >= window }
            times.append(now)
            if times.count > limit { times.removeFirst(times.count - limit) }
            table[client] = times
            if table.count > maximumClients {
                let stale = table.filter { $0.value.last.map { now - $0 >= window } ?? true }.map(\.key)
                for key in stale { table[key] = nil }
                while table.count > maximumClients, let victim = table.min(by: { ($0.value.last ?? now) < ($1.value.last ?? now) })?.key {
                    table[victim] = nil
                }
            }
        }
    }
}

/// Notices a crowd of connections leaving: a peak of at least `reclaimAfterPeak` open connections, then the
/// count down to a tenth of it. Each crowd is reported once.
public struct CrowdWatch: Sendable, Hashable {
    public let reclaimAfterPeak: Int
    private var peak = 0

    public init(reclaimAfterPeak: Int) {
        self.reclaimAfterPeak = reclaimAfterPeak
    }

    public mutating func opened(count: Int) {
        peak = max(peak, count)
    }

    /// The crowd's peak when `count` (after a close) ends one; `nil` otherwise.
    public mutating func closed(count: Int) -> Int? {
        guard peak >= reclaimAfterPeak, count <= peak / 10 else { return nil }
        defer { peak = count }
        return peak
    }
}

/// Gives the memory the allocator keeps after a burst back to the system: glibc's `malloc_trim(0)` releases
/// free pages of every arena (without it, RSS stays at a flood's high-water mark). Runs off the event loops.
/// Looked up at run time, since Swift's Glibc module does not export `malloc.h`; elsewhere it does nothing.
public enum MemoryReclaimer {
    private typealias Trim = @convention(c) (Int) -> Int32
    private static let trim: Trim? = {
        #if os(Linux)
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: Trim.self)
        #else
        return nil
        #endif
    }()

    /// Whether this platform can give memory back.
    public static var isAvailable: Bool { trim != nil }

    /// Trims now, on the calling thread; returns whether any memory was released.
    @discardableResult
    public static func reclaim() -> Bool {
        (trim?(0) ?? 0) == 1
    }

    /// Trims now and once more a second later, off the event loops: what the closing connections still
    /// held when the crowd was noticed is freed by then.
    public static func reclaimSoon() {
        DispatchQueue.global(qos: .utility).async { reclaim() }
        DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + 1) { reclaim() }
    }
}
