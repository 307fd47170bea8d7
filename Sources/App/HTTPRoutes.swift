import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import Payments
import Storage
import Synchronization

/// Whether TelePay can serve traffic now, and why not. Encodes as `{"status":"ready"}` or
/// `{"status":"not_ready","reason":"…"}`.
public struct Readiness: Sendable, Codable, Equatable {
    public var ready: Bool
    public var reason: String?

    enum CodingKeys: String, CodingKey {
        case status, reason
    }

    public init(ready: Bool, reason: String?) {
        self.ready = ready
        self.reason = reason
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        ready = try container.decode(String.self, forKey: .status) == "ready"
        reason = try container.decodeIfPresent(String.self, forKey: .reason)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ready ? "ready" : "not_ready", forKey: .status)
        try container.encodeIfPresent(reason, forKey: .reason)
    }

    public static let ready = Readiness(ready: true, reason: nil)

    public static func notReady(_ reason: String) -> Readiness {
        Readiness(ready: false, reason: reason)
    }
}

/// Answers `/readyz`.
public protocol ReadinessProbe: Sendable {
    func check() async -> Readiness
}

/// Ready when the database answers within `deadline` and no migration is pending. A dead embedded server
/// is noticed without asking the pool (which would keep trying to connect for a minute).
public struct DatabaseReadinessProbe: ReadinessProbe {
    public var database: Database
    public var migrations: MigrationRunner
    public var embedded: RunningEmbeddedPostgres?
    public var deadline: Duration

    public init(database: Database, migrations: MigrationRunner, embedded: RunningEmbeddedPostgres? = nil, deadline: Duration = .seconds(2)) {
        self.database = database
        self.migrations = migrations
        self.embedded = embedded
        self.deadline = deadline
    }

    public func check() async -> Readiness {
        if let failure = embedded?.failure() {
            return .notReady("embedded database: \(failure)")
        }
        let database = self.database
        let migrations = self.migrations
        let answer = await firstResult(within: deadline) { () -> Readiness in
            do {
                let status = try await migrations.status(on: database)
                guard status.isUpToDate else {
                    return .notReady("\(status.pending.count) migration(s) pending: " + status.pending.map(\.fileName).joined(separator: ", "))
                }
                return .ready
            } catch let error as MigrationError {
                return .notReady("\(error)")
            } catch {
                database.logger.warning("readiness check could not reach the database", metadata: ["error": "\(String(reflecting: error))"])
                return .notReady("database unreachable")
            }
        }
        return answer ?? .notReady("database did not answer within \(deadline.components.seconds) s")
    }
}

/// The result of `operation`, or nil when it takes longer than `limit`. On time-out the operation is
/// cancelled but not awaited, so a caller never waits on a query stuck behind a dead connection.
package func firstResult<T: Sendable>(within limit: Duration, _ operation: @escaping @Sendable () async -> T) async -> T? {
    let answer = OnceContinuation<T?>()
    return await withCheckedContinuation { continuation in
        answer.set(continuation)
        let work = Task { answer.resume(returning: await operation()) }
        Task {
            try? await Task.sleep(for: limit)
            if answer.resume(returning: nil) { work.cancel() }
        }
    }
}

/// A continuation resumed by whichever of several racers comes first; later attempts do nothing.
final class OnceContinuation<T: Sendable>: Sendable {
    private let waiting = Mutex<CheckedContinuation<T, Never>?>(nil)

    func set(_ continuation: CheckedContinuation<T, Never>) {
        waiting.withLock { $0 = continuation }
    }

    /// True when this call resumed the continuation.
    @discardableResult
    func resume(returning value: T) -> Bool {
        let continuation = waiting.withLock { current -> CheckedContinuation<T, Never>? in
            defer { current = nil }
            return current
        }
        continuation?.resume(returning: value)
        return continuation != nil
    }
}

/// Whether the process can still do its work. `/healthz` answers 503 with the reason once something the
/// process cannot recover from by itself has failed (the embedded database died), so a supervisor's liveness
/// probe sees it even in the seconds before the process exits.
public final class Liveness: Sendable {
    private let reason = Mutex<String?>(nil)

    public init() {}

    public var failure: String? { reason.withLock { $0 } }

    public func fail(_ why: String) {
        reason.withLock { current in
            if current == nil { current = why }
        }
    }
}

/// A JSON error body: `{"error":"not_found","message":"…"}`.
struct ErrorBody: Codable {
    var error: String
    var message: String
}

/// Builds TelePay's HTTP router: health, readiness and metrics, with errors rendered as JSON.
public enum HTTPRoutes {
    /// `nowPaymentsIPN`, when given, serves `POST /payments/nowpayments/ipn`.
    /// `ipnMaxBodyBytes` bounds the payment-callback route's bodies (it defaults to `maxBodyBytes`);
    /// `liveness` turns `/healthz` into 503 once the process can no longer work.
    public static func buildRouter(
        readiness: any ReadinessProbe,
        telemetry: Telemetry,
        maxBodyBytes: Int,
        nowPaymentsIPN: NOWPaymentsIPNReceiver? = nil,
        ipnMaxBodyBytes: Int? = nil,
        ipnThrottle: FailedSignatureThrottle = FailedSignatureThrottle(),
        liveness: Liveness = Liveness(),
        logger: Logger
    ) -> Router<TelePayRequestContext> {
        buildRouter(
            readiness: readiness, telemetry: telemetry, maxBodyBytes: maxBodyBytes, telegramWebhook: nil,
            nowPaymentsIPN: nowPaymentsIPN, ipnMaxBodyBytes: ipnMaxBodyBytes, ipnThrottle: ipnThrottle, liveness: liveness, logger: logger
        )
    }

    static func buildRouter(
        readiness: any ReadinessProbe,
        telemetry: Telemetry,
        maxBodyBytes: Int,
        telegramWebhook: TelegramWebhookRoute?,
        nowPaymentsIPN: NOWPaymentsIPNReceiver?,
        ipnMaxBodyBytes: Int? = nil,
        ipnThrottle: FailedSignatureThrottle = FailedSignatureThrottle(),
        liveness: Liveness = Liveness(),
        paymentReturn: PaymentReturnRoute? = nil,
        logger: Logger
    ) -> Router<TelePayRequestContext> {
        let ipnLimit = min(ipnMaxBodyBytes ?? maxBodyBytes, maxBodyBytes)
        let router = Router(context: TelePayRequestContext.self)
        router.add(middleware: HTTPMetricsMiddleware(factory: telemetry.factory))
        router.add(middleware: JSONErrorMiddleware(logger: logger))
        router.add(middleware: BodyLimitMiddleware(maxBytes: maxBodyBytes, routeLimits: ["/" + NOWPaymentsIPNRoute.path: ipnLimit]))

        router.get("healthz") { _, _ in
            if let reason = liveness.failure {
                return jsonResponse(.serviceUnavailable, ["status": "failing", "reason": reason])
            }
            return jsonResponse(.ok, ["status": "ok"])
        }
        router.get("readyz") { _, _ in
            let result = await readiness.check()
            return jsonResponse(result.ready ? .ok : .serviceUnavailable, result)
        }
        router.get("metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: telemetry.render()))
            )
        }
        telegramWebhook?.register(on: router)
        if let nowPaymentsIPN {
            NOWPaymentsIPNRoute(receiver: nowPaymentsIPN, maxBodyBytes: ipnLimit, throttle: ipnThrottle, logger: logger).register(on: router)
        }
        paymentReturn?.register(on: router)
        return router
    }

    static func jsonResponse(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}

/// Turns every error into a JSON response with a short machine-readable code; unexpected errors are logged
/// in full and answered with a generic 500, so no internals or stack traces reach a client.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let message = error.body ?? Self.defaultMessage(error.status, request: request)
            var response = HTTPRoutes.jsonResponse(error.status, ErrorBody(error: Self.code(error.status), message: message))
            response.headers.append(contentsOf: error.headers)
            return response
        } catch is NIOTooManyBytesError {
            // A body without a declared length (chunked) that outgrew its limit while being read.
            return HTTPRoutes.jsonResponse(.contentTooLarge, ErrorBody(error: Self.code(.contentTooLarge), message: "request body is too large"))
        } catch {
            logger.error(
                "request failed", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "error": "\(String(reflecting: error))"])
            return HTTPRoutes.jsonResponse(.internalServerError, ErrorBody(error: "internal_error", message: "internal server error"))
        }
    }

    static func code(_ status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: return "not_found"
        case .contentTooLarge: return "payload_too_large"
        case .methodNotAllowed: return "method_not_allowed"
        case .badRequest: return "bad_request"
        case .unauthorized: return "unauthorized"
        case .serviceUnavailable: return "unavailable"
        default: return status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_")
        }
    }

    static func defaultMessage(_ status: HTTPResponse.Status, request: Request) -> String {
        switch status {
        case .notFound: return "no route for \(request.method) \(request.uri.path)"
        default: return status.reasonPhrase
        }
    }
}

/// Refuses bodies larger than the limit before any handler reads them: the route's own limit where it has
/// one (payment callbacks are small, and anyone can send one), else the server's.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBytes: Int
    var routeLimits: [String: Int] = [:]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let limit = routeLimits[request.uri.path] ?? maxBytes
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw HTTPError(.contentTooLarge, message: "request body exceeds \(limit) bytes")
        }
        var request = request
        if request.headers[.contentLength] == nil, request.method == .post || request.method == .put || request.method == .patch {
            // A chunked body has no declared length: read it up to the limit now, so handlers see a bounded body.
            let buffer = try await request.collectBody(upTo: limit)
            request.body = RequestBody(buffer: buffer)
        }
        return try await next(request, context)
    }
}

/// Counts requests and times them per route template (never per raw path, which would explode the label set).
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let factory: any MetricsFactory

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response = try await next(request, context)
        let route = response.status == .notFound ? "unmatched" : context.endpointPath ?? "unmatched"
        let dimensions = [("method", request.method.rawValue), ("route", route), ("status", String(response.status.code))]
        Counter(label: "telepay_http_requests_total", dimensions: dimensions, factory: factory).increment()
        Metrics.Timer(
            label: "telepay_http_request_duration_seconds", dimensions: [("method", request.method.rawValue), ("route", route)], factory: factory
        )
        .record(duration: ContinuousClock.now - started)
        return response
    }
}
