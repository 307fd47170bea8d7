import App
import Foundation
import Storage
import TestSupport
import Testing

/// Configuration that keeps secrets off the network and out of error messages (issue 12), and the limits
/// of the HTTP server (issue 18).
@Suite("Configuration against a hostile network")
struct HostileConfigurationTests {
    func problems(_ environment: [String: String]) -> [ConfigurationProblem] {
        do {
            _ = try Configuration.load(environment: environment)
            return []
        } catch {
            return error.problems
        }
    }

    func databaseURL(_ text: String) throws -> DatabaseURL {
        let location = try Configuration.load(environment: ["DATABASE_URL": text]).database
        guard case .external(let url, _) = location else {
            Issue.record("DATABASE_URL=\(text) did not select an external database")
            return try DatabaseURL(parsing: text)
        }
        return url
    }

    @Test("without sslmode a remote server gets require and a local one prefer; an explicit mode wins")
    func sslModeDefaults() throws {
        #expect(try databaseURL("postgres://u:p@db.example.com/app").tlsMode == .require)
        #expect(try databaseURL("postgres://u:p@10.0.0.5:5433/app").tlsMode == .require)
        #expect(try databaseURL("postgres://u:p@localhost/app").tlsMode == .prefer)
        #expect(try databaseURL("postgres://u:p@127.0.0.1/app").tlsMode == .prefer)
        #expect(try databaseURL("postgres://u:p@[::1]/app").tlsMode == .prefer)
        #expect(try databaseURL("postgres://u@/app?host=/var/run/postgresql").tlsMode == .disable)
        #expect(try databaseURL("postgres://u:p@db.example.com/app?sslmode=disable").tlsMode == .disable)
        #expect(try databaseURL("postgres://u:p@db.example.com/app?sslmode=verify-ca").tlsMode == .verifyCA)
    }

    @Test("verify-full takes its certificate authorities from sslrootcert, which must be readable and needs a verifying mode")
    func verifyFullWithRootCertificate() throws {
        let folder = try RepositoryPaths.makeTemporaryDirectory("telepay-ca")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let caFile = folder + "/ca.pem"
        try "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".write(toFile: caFile, atomically: true, encoding: .utf8)
        let url = try databaseURL("postgres://u:p@db.example.com/app?sslmode=verify-full&sslrootcert=\(caFile)")
        #expect(url.tlsMode == .verifyFull)
        #expect(url.rootCertificateFile == caFile)

        let missing = problems(["DATABASE_URL": "postgres://u:p@db.example.com/app?sslmode=verify-full&sslrootcert=/no/such/SECRET-PATH.pem"])
        #expect(missing.map(\.variable) == ["DATABASE_URL"])
        #expect(missing.first?.message.contains("sslrootcert") == true)
        #expect(missing.first?.message.contains("SECRET-PATH") == false)
        #expect(
            problems(["DATABASE_URL": "postgres://u:p@db.example.com/app?sslmode=require&sslrootcert=\(caFile)"]).map(\.variable) == ["DATABASE_URL"])
    }

    @Test("an unknown sslmode is refused without repeating it: it may be a pasted secret")
    func sslModeNotEchoed() {
        let found = problems(["DATABASE_URL": "postgres://u:p@db.example.com/app?sslmode=postgres://admin:HUNTER2@prod"])
        #expect(found.map(\.variable) == ["DATABASE_URL"])
        let message = found.first?.message ?? ""
        #expect(message.contains("sslmode"))
        #expect(!message.contains("HUNTER2"))
        #expect(!message.contains("admin"))
        #expect(!message.contains("db.example.com"))
    }

    @Test(
        "base URLs that carry keys refuse plain http to another machine",
        arguments: [
            "TELEPAY_TELEGRAM_API_URL", "TELEPAY_NOWPAYMENTS_API_URL", "TELEPAY_CHANGENOW_API_URL", "TELEPAY_ETH_RPC_URL",
        ])
    func plainHTTPOnlyToLoopback(variable: String) {
        let refused = problems([variable: "http://api.example.com/KEY-IN-PATH"])
        #expect(refused.map(\.variable) == [variable])
        #expect(refused.first?.message.contains("https") == true)
        if variable == "TELEPAY_ETH_RPC_URL" {
            #expect(refused.first?.message.contains("KEY-IN-PATH") == false)
        }
        #expect(problems([variable: "http://10.1.2.3:8545"]).map(\.variable) == [variable])
        for local in ["http://127.0.0.1:8081", "http://localhost:9000/v1", "http://[::1]:8545", "https://api.example.com"] {
            #expect(problems([variable: local]).isEmpty, "\(variable)=\(local)")
        }
    }

    @Test("a private key of 64 hex digits that is not a secp256k1 key is a configuration error, not echoed")
    func privateKeyOutsideCurve() {
        let found = problems(["TELEPAY_ETH_PRIVATE_KEY": String(repeating: "f", count: 64)])
        #expect(found.map(\.variable) == ["TELEPAY_ETH_PRIVATE_KEY"])
        #expect(found.first?.message.contains("secp256k1") == true)
        #expect(found.first?.message.contains("ffff") == false)
    }

    @Test("HTTP limits: documented defaults, bounds, and the callback limit within the server's")
    func httpLimits() throws {
        let limits = try Configuration.load(environment: [:]).httpLimits
        #expect(limits.paymentCallbackMaxBodyBytes == 65536)
        #expect(limits.maxConnections == 4096)
        #expect(limits.headerTimeout == .seconds(10))
        #expect(limits.requestTimeout == .seconds(30))
        #expect(limits.idleTimeout == .seconds(60))
        #expect(problems(["TELEPAY_NOWPAYMENTS_IPN_MAX_BODY_BYTES": "2000000"]).map(\.variable) == ["TELEPAY_NOWPAYMENTS_IPN_MAX_BODY_BYTES"])
        #expect(problems(["TELEPAY_HTTP_MAX_CONNECTIONS": "3"]).map(\.variable) == ["TELEPAY_HTTP_MAX_CONNECTIONS"])
        #expect(problems(["TELEPAY_HTTP_HEADER_TIMEOUT_SECONDS": "40"]).map(\.variable) == ["TELEPAY_HTTP_HEADER_TIMEOUT_SECONDS"])
        #expect(problems(["TELEPAY_DATABASE_CONNECT_TIMEOUT_SECONDS": "0"]).map(\.variable) == ["TELEPAY_DATABASE_CONNECT_TIMEOUT_SECONDS"])
    }
}
