import App
import Foundation
import NOWPaymentsFake
import Sandbox
import TelegramFake
import TestSupport
import Testing

@Suite("The sandbox reaches no real service, and serve cannot start it")
struct SandboxGuardTests {
    func sandboxEnvironment() -> [String: String] {
        Sandbox.environment(
            settings: SandboxSettings(dataDirectory: "/tmp/unused", port: 8080, resourcesDirectory: RepositoryPaths.root),
            telegramURL: "http://127.0.0.1:40001", telegramToken: FakeBotAPI().token, paymentsURL: "http://127.0.0.1:40002/v1",
            payments: FakeNOWPayments()
        )
    }

    @Test("the sandbox's own configuration points every outside service at this machine")
    func ownConfigurationPasses() throws {
        let configuration = try Configuration.load(environment: sandboxEnvironment())
        try SandboxGuard.requireSimulated(configuration)
    }

    @Test("the sandbox refuses to start against the real Telegram Bot API")
    func refusesRealTelegram() throws {
        var environment = sandboxEnvironment()
        environment["TELEPAY_TELEGRAM_API_URL"] = "https://api.telegram.org"
        let configuration = try Configuration.load(environment: environment)
        #expect(throws: SandboxError.reachesRealService(variable: "TELEPAY_TELEGRAM_API_URL", url: "https://api.telegram.org")) {
            try SandboxGuard.requireSimulated(configuration)
        }
    }

    @Test("the sandbox refuses to start against the real NOWPayments API (production or NOWPayments' own sandbox)")
    func refusesRealNOWPayments() throws {
        for url in ["https://api.nowpayments.io/v1", "https://api-sandbox.nowpayments.io/v1"] {
            var environment = sandboxEnvironment()
            environment["TELEPAY_NOWPAYMENTS_API_URL"] = url
            let configuration = try Configuration.load(environment: environment)
            #expect(throws: SandboxError.reachesRealService(variable: "TELEPAY_NOWPAYMENTS_API_URL", url: url)) {
                try SandboxGuard.requireSimulated(configuration)
            }
        }
    }

    @Test("the sandbox refuses a real exchange, chain or database, and TelePay's defaults are all real services")
    func refusesOtherRealServices() throws {
        for (variable, url) in [
            ("TELEPAY_CHANGENOW_API_URL", "https://api.changenow.io"), ("TELEPAY_ETH_RPC_URL", "https://ethereum-rpc.publicnode.com"),
        ] {
            var environment = sandboxEnvironment()
            environment[variable] = url
            #expect(throws: SandboxError.reachesRealService(variable: variable, url: url)) {
                try SandboxGuard.requireSimulated(try Configuration.load(environment: environment))
            }
        }
        var external = sandboxEnvironment()
        external["DATABASE_URL"] = "postgres://telepay@db.example.com/telepay"
        #expect(throws: SandboxError.externalDatabase) { try SandboxGuard.requireSimulated(try Configuration.load(environment: external)) }
        // What `telepay serve` runs with when nothing is set: every service is the real one, which the guard refuses.
        #expect(throws: SandboxError.self) { try SandboxGuard.requireSimulated(try Configuration.load(environment: [:])) }
    }

    @Test("only loopback addresses count as this machine")
    func loopback() {
        for url in ["http://127.0.0.1:8080", "http://localhost/x", "http://[::1]:9/", "https://127.1.2.3"] {
            #expect(SandboxGuard.isLoopback(url), "\(url)")
        }
        for url in [
            "https://api.telegram.org", "http://127.0.0.1.example.com", "http://10.0.0.1", "ftp://127.0.0.1", "127.0.0.1",
            "http://localhost.evil.com",
        ] {
            #expect(!SandboxGuard.isLoopback(url), "\(url)")
        }
    }

    @Test("telepay (serve) links none of the simulations: no fake is among the targets it is built from")
    func serveHasNoFakes() throws {
        let manifest = try String(contentsOfFile: RepositoryPaths.root + "/Package.swift", encoding: .utf8)
        let graph = try ManifestGraph(manifest)
        let reachable = graph.closure(of: "telepay")
        #expect(reachable.contains("App") && reachable.contains("Bot"), "the manifest reader found telepay's targets: \(reachable.sorted())")
        for fake in ["TelegramFake", "NOWPaymentsFake", "TestPeers", "TestSupport", "Sandbox"] {
            #expect(!reachable.contains(fake), "telepay depends on \(fake)")
        }
        #expect(graph.closure(of: "telepay-sandbox").isSuperset(of: ["Sandbox", "TelegramFake", "NOWPaymentsFake", "App"]))
    }
}

/// The target dependency graph read from Package.swift's text: each `.target`/`.executableTarget`/`.testTarget`
/// with the targets (not products) its `dependencies:` list names.
struct ManifestGraph {
    var dependencies: [String: [String]] = [:]

    init(_ manifest: String) throws {
        let declaration = try Regex(#"\.(?:target|executableTarget|testTarget|systemLibrary)\(\s*name:\s*"([^"]+)""#)
        let matches = manifest.matches(of: declaration)
        for (index, match) in matches.enumerated() {
            let name = String(match.output[1].substring ?? "")
            let end = index + 1 < matches.count ? matches[index + 1].range.lowerBound : manifest.endIndex
            let body = manifest[match.range.upperBound..<end]
            guard let list = body.range(of: "dependencies: [") else {
                dependencies[name] = []
                continue
            }
            var depth = 1
            var cursor = list.upperBound
            while depth > 0, cursor < body.endIndex {
                if body[cursor] == "[" { depth += 1 } else if body[cursor] == "]" { depth -= 1 }
                cursor = body.index(after: cursor)
            }
            let withoutProducts = String(body[list.upperBound..<cursor]).replacing(try Regex(#"\.product\([^)]*\)"#), with: "")
            dependencies[name] = withoutProducts.matches(of: try Regex(#""([^"]+)""#)).compactMap { $0.output[1].substring.map(String.init) }
        }
    }

    func closure(of target: String) -> Set<String> {
        var seen: Set<String> = []
        var pending = [target]
        while let next = pending.popLast() {
            for dependency in dependencies[next] ?? [] where seen.insert(dependency).inserted {
                pending.append(dependency)
            }
        }
        return seen
    }
}
