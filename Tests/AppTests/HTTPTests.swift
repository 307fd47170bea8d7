import App
import Foundation
import Hummingbird
import HummingbirdTesting
import Storage
import TestSupport
import Testing

/// A probe with a fixed answer, for the HTTP shapes; the database-backed probe is tested separately.
struct FixedProbe: ReadinessProbe {
    var answer: Readiness
    func check() async -> Readiness { answer }
}

@Suite("HTTP endpoints")
struct HTTPTests {
    func makeApplication(probe: any ReadinessProbe = FixedProbe(answer: .ready), telemetry: Telemetry = Telemetry(), maxBody: Int = 1024)
        -> some ApplicationProtocol
    {
        Application(router: HTTPRoutes.buildRouter(readiness: probe, telemetry: telemetry, maxBodyBytes: maxBody, logger: quietLogger))
    }

    func json(_ buffer: ByteBuffer) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(buffer.readableBytesView))
    }

    @Test("/healthz answers 200 while the process is alive")
    func healthz() async throws {
        try await makeApplication(probe: FixedProbe(answer: .notReady("anything"))).test(.router) { client in
            do {
                let response = try await client.execute(uri: "/healthz", method: .get)
                #expect(response.status == .ok)
                #expect(try json(response.body) == ["status": "ok"])
            }
        }
    }

    @Test("/readyz answers 200 when ready and 503 with a JSON reason when not")
    func readyzStates() async throws {
        try await makeApplication().test(.router) { client in
            do {
                let response = try await client.execute(uri: "/readyz", method: .get)
                #expect(response.status == .ok)
                #expect(try json(response.body) == ["status": "ready"])
            }
        }
        try await makeApplication(probe: FixedProbe(answer: .notReady("database unreachable"))).test(.router) { client in
            do {
                let response = try await client.execute(uri: "/readyz", method: .get)
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
                #expect(try json(response.body) == ["status": "not_ready", "reason": "database unreachable"])
            }
        }
    }

    @Test("the database probe is not ready while migrations are pending and ready once applied")
    func databaseProbe() async throws {
        try await withTestDatabase { database in
            let runner = MigrationRunner(migrations: try Migration.load(directory: RepositoryPaths.migrations), logger: quietLogger)
            // A deadline a machine busy with the whole suite keeps; the 2 s default is for production.
            let probe = DatabaseReadinessProbe(database: database, migrations: runner, deadline: .seconds(30))
            let before = await probe.check()
            #expect(!before.ready)
            #expect(before.reason?.contains("0001_initial_schema.sql") == true)
            try await runner.apply(on: database)
            #expect(await probe.check() == .ready)
        }
    }

    @Test("/metrics serves the Prometheus text format with request counts")
    func metrics() async throws {
        let telemetry = Telemetry()
        try await makeApplication(telemetry: telemetry).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { _ in }
            do {
                let response = try await client.execute(uri: "/metrics", method: .get)
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
                let text = String(buffer: response.body)
                #expect(text.contains("# TYPE telepay_http_requests_total counter"))
                #expect(text.contains(#"telepay_http_requests_total{method="GET",route="/healthz",status="200"} 1"#))
                #expect(text.contains("telepay_http_request_duration_seconds_bucket"))
            }
        }
    }

    @Test("unknown paths get a 404 JSON body")
    func notFound() async throws {
        try await makeApplication().test(.router) { client in
            let response = try await client.execute(uri: "/no/such/thing", method: .get)
            #expect(response.status == .notFound)
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            #expect(try json(response.body) == ["error": "not_found", "message": "no route for GET /no/such/thing"])
        }
    }

    @Test("bodies over the limit get 413 JSON, whether declared or streamed")
    func tooLarge() async throws {
        try await makeApplication(maxBody: 1024).test(.router) { client in
            let response = try await client.execute(uri: "/healthz", method: .post, body: ByteBuffer(repeating: 0x41, count: 4096))
            #expect(response.status == .contentTooLarge)
            #expect(try json(response.body)["error"] == "payload_too_large")
        }
    }
}
