import App
import Foundation
import Logging
import TestSupport
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    static let token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw-x"
    static let privateKey = "4646464646464646464646464646464646464646464646464646464646464646"

    func problems(_ environment: [String: String]) -> [ConfigurationProblem] {
        do {
            _ = try Configuration.load(environment: environment)
            return []
        } catch {
            return error.problems
        }
    }

    @Test("an empty environment gives the documented defaults, pointing at the real services")
    func defaults() throws {
        let configuration = try Configuration.load(environment: [:])
        #expect(configuration.dataDirectory == "./.telepay")
        #expect(configuration.database == .embedded)
        #expect(configuration.httpHost == "127.0.0.1")
        #expect(configuration.httpPort == 8080)
        #expect(configuration.logLevel == .info)
        #expect(configuration.telegramAPIURL.absoluteString == "https://api.telegram.org")
        #expect(configuration.nowPaymentsAPIURL.absoluteString == "https://api.nowpayments.io/v1")
        #expect(configuration.changeNowAPIURL.absoluteString == "https://api.changenow.io")
        #expect(configuration.telegramBotToken == nil)
        for variable in Configuration.variables where variable.defaultValue != nil {
            #expect(problems([variable.name: variable.defaultValue!]).isEmpty, "the default of \(variable.name) must itself be valid")
        }
    }

    @Test("each invalid variable is reported by name")
    func invalidByName() {
        let cases: [(String, String)] = [
            ("TELEPAY_HTTP_PORT", "eighty"),
            ("TELEPAY_HTTP_PORT", "70000"),
            ("TELEPAY_DATABASE_POOL_SIZE", "0"),
            ("TELEPAY_LOG_LEVEL", "loud"),
            ("TELEPAY_PUBLIC_URL", "not a url"),
            ("TELEPAY_PUBLIC_URL", "ftp://example.com"),
            ("TELEPAY_TELEGRAM_API_URL", "api.telegram.org"),
            ("TELEPAY_NOWPAYMENTS_API_URL", "https://"),
            ("TELEPAY_CHANGENOW_API_URL", "mailto:x@example.com"),
            ("TELEPAY_ETH_RPC_URL", "localhost:8545"),
            ("TELEPAY_ETH_PRIVATE_KEY", "1234"),
            ("TELEGRAM_BOT_TOKEN", "not-a-token"),
            ("DATABASE_URL", "mysql://u:p@h/db"),
            ("DATABASE_URL", "postgres://user@host"),
            ("TELEPAY_SHUTDOWN_TIMEOUT_SECONDS", "0"),
            ("TELEPAY_HTTP_MAX_BODY_BYTES", "12"),
        ]
        for (name, value) in cases {
            let found = problems([name: value])
            #expect(found.count == 1, "\(name)=\(value)")
            #expect(found.first?.variable == name, "\(name)=\(value)")
        }
    }

    @Test("every problem is reported at once, each on its own line naming the variable")
    func allProblemsTogether() throws {
        let environment = [
            "TELEPAY_HTTP_PORT": "-1",
            "TELEPAY_LOG_LEVEL": "chatty",
            "TELEPAY_TELEGRAM_API_URL": "nope",
            "TELEPAY_ETH_PRIVATE_KEY": "zz",
        ]
        let error = #expect(throws: ConfigurationError.self) { try Configuration.load(environment: environment) }
        let configurationError = try #require(error)
        #expect(Set(configurationError.problems.map(\.variable)) == Set(environment.keys))
        let lines = configurationError.description.split(separator: "\n")
        for name in environment.keys {
            #expect(lines.filter { $0.contains(name) }.count == 1)
        }
    }

    @Test("secrets are trimmed of surrounding whitespace, including a trailing newline")
    func trimsSecrets() throws {
        let configuration = try Configuration.load(environment: [
            "TELEGRAM_BOT_TOKEN": "  \(Self.token)\n",
            "TELEPAY_NOWPAYMENTS_IPN_SECRET": "\tipn-secret-value\r\n",
            "TELEPAY_ETH_PRIVATE_KEY": "0x\(Self.privateKey)\n",
            "TELEPAY_HTTP_PORT": " 9090 ",
        ])
        #expect(configuration.telegramBotToken?.value == Self.token)
        #expect(configuration.nowPaymentsIPNSecret?.value == "ipn-secret-value")
        #expect(configuration.ethereumPrivateKey?.value == "0x\(Self.privateKey)")
        #expect(configuration.httpPort == 9090)
    }

    @Test("secrets never appear in descriptions, dumps, logs or error messages")
    func secretsNeverPrinted() throws {
        let secrets = [
            "TELEGRAM_BOT_TOKEN": Self.token,
            "TELEPAY_NOWPAYMENTS_API_KEY": "NPKEY-SHOULD-NOT-LEAK",
            "TELEPAY_NOWPAYMENTS_IPN_SECRET": "IPN-SECRET-SHOULD-NOT-LEAK",
            "TELEPAY_CHANGENOW_API_KEY": "CN-KEY-SHOULD-NOT-LEAK",
            "TELEPAY_ETH_PRIVATE_KEY": Self.privateKey,
            "TELEPAY_ETH_RPC_URL": "https://eth-mainnet.example.com/v2/RPC-KEY-SHOULD-NOT-LEAK",
            "DATABASE_URL": "postgres://telepay:DB-PASSWORD-SHOULD-NOT-LEAK@db.example.com:5432/telepay",
        ]
        let configuration = try Configuration.load(environment: secrets)
        var rendered = "\(configuration)\n\(String(reflecting: configuration))\n"
        dump(configuration, to: &rendered)
        let lines = LogCapture()
        let logger = Logger(label: "test") { label in KeyValueLogHandler(label: label, level: .trace, sink: lines.append) }
        logger.info("configuration", metadata: ["configuration": "\(configuration)", "token": "\(configuration.telegramBotToken!)"])
        rendered += lines.text
        for value in secrets.values.map(Self.secretPart) {
            #expect(!rendered.contains(value), "leaked \(value)")
        }
        #expect(configuration.telegramBotToken?.value == Self.token, "the value is still usable where it is needed")

        // Invalid secrets are rejected without echoing them.
        let bad = [
            "TELEGRAM_BOT_TOKEN": "leaky-token-VALUE",
            "TELEPAY_ETH_PRIVATE_KEY": "leaky-key-VALUE",
            "TELEPAY_ETH_RPC_URL": "leaky-rpc-VALUE",
            "DATABASE_URL": "mysql://user:leaky-db-VALUE@host/db",
        ]
        let error = #expect(throws: ConfigurationError.self) { try Configuration.load(environment: bad) }
        let message = try #require(error).description
        #expect(try #require(error).problems.count == 4)
        #expect(!message.contains("leaky"))
    }

    /// The part of a secret value that must never be printed (a URL's host alone is not secret).
    static func secretPart(_ value: String) -> String {
        if let range = value.range(of: "[A-Z0-9-]*SHOULD-NOT-LEAK", options: .regularExpression) {
            return String(value[range])
        }
        return value
    }

    @Test("an env file supplies values, the environment overrides them, and unreadable lines are reported")
    func envFile() throws {
        let folder = try RepositoryPaths.makeTemporaryDirectory("telepay-env")
        let path = folder + "/telepay.env"
        try """
        # comment
        export TELEPAY_HTTP_PORT=9000
        TELEPAY_LOG_LEVEL="debug"
        TELEPAY_DATA_DIR='/var/lib/telepay'
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = try Configuration.load(environment: ["TELEPAY_LOG_LEVEL": "warning"], envFile: path)
        #expect(configuration.httpPort == 9000)
        #expect(configuration.logLevel == .warning)
        #expect(configuration.dataDirectory == "/var/lib/telepay")

        try "TELEGRAM_BOT_TOKEN secret-without-equals".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: ConfigurationError.self) { try Configuration.load(environment: [:], envFile: path) }
        let message = try #require(error).description
        #expect(message.contains("--env-file"))
        #expect(message.contains("telepay.env:1"))
        #expect(!message.contains("secret-without-equals"))
        #expect(throws: ConfigurationError.self) { try Configuration.load(environment: [:], envFile: folder + "/missing.env") }
    }

    @Test("webhook mode requires a public URL and a well-formed webhook secret")
    func webhookModeRequirements() {
        #expect(Set(problems(["TELEPAY_TELEGRAM_MODE": "webhook"]).map(\.variable)) == ["TELEPAY_TELEGRAM_WEBHOOK_SECRET", "TELEPAY_PUBLIC_URL"])
        #expect(problems(["TELEPAY_TELEGRAM_MODE": "carrier-pigeon"]).map(\.variable) == ["TELEPAY_TELEGRAM_MODE"])
        #expect(
            problems([
                "TELEPAY_TELEGRAM_MODE": "webhook", "TELEPAY_PUBLIC_URL": "https://x.example", "TELEPAY_TELEGRAM_WEBHOOK_SECRET": "has spaces!",
            ]).map(\.variable)
                == ["TELEPAY_TELEGRAM_WEBHOOK_SECRET"])
        #expect(
            problems([
                "TELEPAY_TELEGRAM_MODE": "webhook", "TELEPAY_PUBLIC_URL": "https://x.example", "TELEPAY_TELEGRAM_WEBHOOK_SECRET": "ok_Secret-1",
            ]).isEmpty)
    }

    @Test("DATABASE_URL selects an external server with its TLS mode; the password stays out of the redacted form")
    func databaseURL() throws {
        let configuration = try Configuration.load(environment: ["DATABASE_URL": "postgresql://app:p%40ss@db.internal:6543/payments?sslmode=require"])
        guard case .external(let url, _) = configuration.database else {
            Issue.record("expected an external database")
            return
        }
        #expect(url.host == "db.internal")
        #expect(url.port == 6543)
        #expect(url.username == "app")
        #expect(url.password == "p@ss")
        #expect(url.database == "payments")
        #expect(url.tlsMode == .require)
        #expect(url.redacted == "postgres://app@db.internal:6543/payments")
    }
}

/// Collects log lines written by a `KeyValueLogHandler`.
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) {
        lock.withLock { lines.append(line) }
    }

    var text: String {
        lock.withLock { lines.joined(separator: "\n") }
    }
}

@Suite("Configuration of subscriber purchases")
struct PurchaseConfigurationTests {
    func problems(_ environment: [String: String]) -> [String] {
        do {
            _ = try Configuration.load(environment: environment)
            return []
        } catch {
            return error.problems.map(\.variable)
        }
    }

    @Test("defaults: 3 % fee, no partial-payment tolerance, join-request invites, real removals, reminders 3 and 1 days before")
    func defaults() throws {
        let settings = try Configuration.load(environment: ["TELEPAY_PUBLIC_URL": "https://pay.example.com/"]).subscriptions
        #expect(settings.platformFeePercent == 3)
        #expect(settings.partialPaymentTolerancePercent == 0)
        #expect(settings.inviteMode == .joinRequest)
        #expect(settings.singleUseLinkLifetime == .seconds(24 * 3600))
        #expect(!settings.expiryDryRun)
        #expect(settings.reminderDays == [3, 1])
        #expect(settings.publicURL?.absoluteString == "https://pay.example.com")
    }

    @Test("values are read exactly, and an empty reminder list turns reminders off")
    func values() throws {
        let settings = try Configuration.load(environment: [
            "TELEPAY_PLATFORM_FEE_PERCENT": "2.5", "TELEPAY_PARTIAL_PAYMENT_TOLERANCE_PERCENT": "0.75",
            "TELEPAY_INVITE_MODE": "single_use", "TELEPAY_INVITE_LINK_TTL_HOURS": "2", "TELEPAY_EXPIRY_DRY_RUN": "true",
            "TELEPAY_REMINDER_DAYS": "1, 7,3,7",
        ]).subscriptions
        #expect(settings.platformFeePercent == Decimal(string: "2.5"))
        #expect(settings.partialPaymentTolerancePercent == Decimal(string: "0.75"))
        #expect(settings.inviteMode == .singleUse)
        #expect(settings.singleUseLinkLifetime == .seconds(7200))
        #expect(settings.expiryDryRun)
        #expect(settings.reminderDays == [7, 3, 1])
        #expect(try Configuration.load(environment: ["TELEPAY_REMINDER_DAYS": ""]).subscriptions.reminderDays == [])
    }

    @Test(
        "bad values are reported by name",
        arguments: [
            ("TELEPAY_PLATFORM_FEE_PERCENT", "51"), ("TELEPAY_PLATFORM_FEE_PERCENT", "3.333"), ("TELEPAY_PLATFORM_FEE_PERCENT", "-1"),
            ("TELEPAY_PLATFORM_FEE_PERCENT", "3%"), ("TELEPAY_PARTIAL_PAYMENT_TOLERANCE_PERCENT", "11"), ("TELEPAY_INVITE_MODE", "open"),
            ("TELEPAY_INVITE_LINK_TTL_HOURS", "0"), ("TELEPAY_EXPIRY_DRY_RUN", "maybe"), ("TELEPAY_REMINDER_DAYS", "3,0"),
            ("TELEPAY_REMINDER_DAYS", "three"),
        ])
    func invalid(name: String, value: String) {
        #expect(problems([name: value]) == [name])
    }
}
