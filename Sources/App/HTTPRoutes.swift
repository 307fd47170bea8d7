import Foundation
import Hummingbird
import Logging
import Metrics
import Payments
import Storage

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

/// Ready when the database answers and no migration is pending.
public struct DatabaseReadinessProbe: ReadinessProbe {
    public var database: Database
    public var migrations: MigrationRunner

    public init(database: Database, migrations: MigrationRunner) {
        self.database = database
        self.migrations = migrations
    }

    public func check() async -> Readiness {
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
}

/// A JSON error body: `{"error":"not_found","message":"…"}`.
struct ErrorBody: Codable {
    var error: String
    var message: String
}

/// Builds TelePay's HTTP router: health, readiness and metrics, with errors rendered as JSON.
public enum HTTPRoutes {
    /// `nowPaymentsIPN`, when given, serves `POST /payments/nowpayments/ipn`.
    public static func buildRouter(
        readiness: any ReadinessProbe,
        telemetry: Telemetry,
        maxBodyBytes: Int,
        nowPaymentsIPN: NOWPaymentsIPNReceiver? = nil,
        logger: Logger
    ) -> Router<BasicRequestContext> {
        buildRouter(
            readiness: readiness, telemetry: telemetry, maxBodyBytes: maxBodyBytes, telegramWebhook: nil,
            nowPaymentsIPN: nowPaymentsIPN, logger: logger
        )
    }

    static func buildRouter(
        readiness: any ReadinessProbe,
        telemetry: Telemetry,
        maxBodyBytes: Int,
        telegramWebhook: TelegramWebhookRoute?,
        nowPaymentsIPN: NOWPaymentsIPNReceiver?,
        paymentReturn: PaymentReturnRoute? = nil,
        logger: Logger
    ) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: HTTPMetricsMiddleware(factory: telemetry.factory))
        router.add(middleware: JSONErrorMiddleware(logger: logger))
        router.add(middleware: BodyLimitMiddleware(maxBytes: maxBodyBytes))

        router.get("healthz") { _, _ in
            jsonResponse(.ok, ["status": "ok"])
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
            NOWPaymentsIPNRoute(receiver: nowPaymentsIPN, maxBodyBytes: maxBodyBytes).register(on: router)
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
            return HTTPRoutes.jsonResponse(error.status, ErrorBody(error: Self.code(error.status), message: message))
        } catch {
            logger.error("request failed", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "error": "\(String(reflecting: error))"])
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

/// Refuses bodies larger than the configured limit before any handler reads them.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > maxBytes {
            throw HTTPError(.contentTooLarge, message: "request body exceeds \(maxBytes) bytes")
        }
        var request = request
        if request.headers[.contentLength] == nil, request.method == .post || request.method == .put || request.method == .patch {
            // A chunked body has no declared length: read it up to the limit now, so handlers see a bounded body.
            let buffer = try await request.collectBody(upTo: maxBytes)
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
        Metrics.Timer(label: "telepay_http_request_duration_seconds", dimensions: [("method", request.method.rawValue), ("route", route)], factory: factory)
            .record(duration: ContinuousClock.now - started)
        return response
    }
}
