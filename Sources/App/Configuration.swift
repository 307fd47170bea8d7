import Bot
import Broadcasts
import Ethereum
import Foundation
import Logging
import Money
import Storage
import Subscriptions

/// A secret value from the configuration. It prints as `<redacted>` everywhere (interpolation, `dump`,
/// `debugPrint`, mirrors), so a secret cannot reach a log line or an error message by accident.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The secret itself; read it only where it is handed to the service it authenticates against.
    public let value: String

    public init(_ value: String) {
        self.value = value
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: []) }
}

/// How updates arrive from Telegram.
public enum TelegramMode: String, Sendable, Hashable, CaseIterable {
    /// `getUpdates` long polling: one instance, no public address needed.
    case polling
    /// Telegram posts updates to `TELEPAY_PUBLIC_URL/telegram/webhook`; several instances may share the load.
    case webhook
}

/// Where TelePay's database lives.
public enum DatabaseLocation: Sendable, Hashable {
    /// A private cluster in the data folder, started and stopped by TelePay.
    case embedded
    /// An existing server. The URL may carry a password, so it is kept as a secret.
    case external(DatabaseURL, url: Secret)
}

/// One problem found while reading the configuration, naming the variable.
public struct ConfigurationProblem: Sendable, Hashable, CustomStringConvertible {
    public var variable: String
    public var message: String

    public var description: String { "\(variable): \(message)" }
}

/// Every problem found at once, so an operator fixes them in one round.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigurationProblem]

    public var description: String {
        "invalid configuration:\n" + problems.map { "  \($0)" }.joined(separator: "\n")
    }
}

/// TelePay's validated configuration, built once at start-up from environment variables and an optional
/// `.env`-style file (the environment wins).
public struct Configuration: Sendable, CustomStringConvertible {
    public var dataDirectory: String
    public var database: DatabaseLocation
    public var databasePoolSize: Int
    public var httpHost: String
    public var httpPort: Int
    public var httpMaxBodyBytes: Int
    /// Timeouts, the connection cap and the payment-callback body limit of the HTTP server.
    public var httpLimits: HTTPLimits
    /// How long start-up keeps retrying a database that is not reachable yet (refused, timed out).
    public var databaseConnectTimeout: Duration
    public var logLevel: Logger.Level
    public var publicURL: URL?
    public var resourcesDirectory: String?
    public var shutdownTimeoutSeconds: Int
    public var telegramBotToken: Secret?
    public var telegramAPIURL: URL
    public var telegramConcurrency: Int
    public var telegramMode: TelegramMode
    public var telegramWebhookSecret: Secret?
    public var owners: OwnerSettings
    public var nowPaymentsAPIURL: URL
    public var nowPaymentsAPIKey: Secret?
    public var nowPaymentsIPNSecret: Secret?
    /// The NOWPayments account's e-mail and password: listing an invoice's payments needs its JWT.
    public var nowPaymentsEmail: String?
    public var nowPaymentsPassword: Secret?
    public var changeNowAPIURL: URL
    public var changeNowAPIKey: Secret?
    /// ChangeNOW's private key, the only key its transaction list (`GET /v2/exchanges`) accepts.
    public var changeNowPrivateAPIKey: Secret?
    /// How often recorded exchanges not yet final are polled.
    public var exchangePollInterval: Duration
    /// An exchange held in `verifying` (ChangeNOW's AML/KYC check) longer than this alerts the admins.
    public var exchangeVerifyingAlertAfter: Duration = .seconds(3600)
    /// Telegram users (private chats) told about failed jobs, wallet and exchange alerts.
    public var adminTelegramIDs: [Int64]
    /// Hosted RPC URLs often carry an API key in their path, so the URL is treated as a secret.
    public var ethereumRPCURL: Secret
    public var ethereumPrivateKey: Secret?
    public var jobs: JobsSettings
    /// The chain the hot wallet signs for; the sender refuses an RPC node that serves another.
    public var ethereumChainId: UInt64
    /// Blocks, counting its own, before a hot-wallet transfer counts as final.
    public var ethereumConfirmations: UInt64
    /// Fees, invites, expiry and reminders of subscriber purchases.
    public var subscriptions: SubscriptionSettings
    /// Limits of owners' broadcasts.
    public var broadcasts = BroadcastSettings()
    /// Batch conversion and threshold payouts.
    public var thresholdPayouts = ThresholdPayoutSettings()

    /// The account NOWPayments issues JWTs for, when both parts are set.
    public var nowPaymentsAccount: (email: String, password: String)? {
        guard let nowPaymentsEmail, let nowPaymentsPassword else { return nil }
        return (nowPaymentsEmail, nowPaymentsPassword.value)
    }

    /// Every variable TelePay reads, with its default and meaning; the README's table is checked against it.
    public static let variables: [Variable] = [
        Variable("TELEPAY_DATA_DIR", default: "./.telepay", "Data folder; holds the embedded database when DATABASE_URL is unset."),
        Variable(
            "DATABASE_URL", default: nil,
            "postgres://user:password@host:5432/db — use this server instead of the embedded one. sslmode defaults to require (prefer for a local server); "
                + "sslmode=verify-full&sslrootcert=/path/ca.pem checks the server's certificate and name.",
            secret: true
        ),
        Variable("TELEPAY_DATABASE_POOL_SIZE", default: "10", "Most database connections TelePay opens (1–100)."),
        Variable(
            "TELEPAY_DATABASE_CONNECT_TIMEOUT_SECONDS", default: "30",
            "How long start-up retries a database that refuses or does not answer (1–600); wrong credentials or a missing database stop start-up at once."
        ),
        Variable("TELEPAY_HTTP_HOST", default: "127.0.0.1", "Address the HTTP server binds to."),
        Variable("TELEPAY_HTTP_PORT", default: "8080", "Port the HTTP server listens on (0 picks a free port)."),
        Variable("TELEPAY_HTTP_MAX_BODY_BYTES", default: "1048576", "Largest request body accepted; larger ones get 413."),
        Variable(
            "TELEPAY_HTTP_MAX_CONNECTIONS", default: "4096",
            "Most HTTP connections open at once (16–100000); further ones wait in the listen backlog."),
        Variable(
            "TELEPAY_HTTP_HEADER_TIMEOUT_SECONDS", default: "10",
            "How long a client may take to send a request's headers (1–300) before the connection is closed."),
        Variable(
            "TELEPAY_HTTP_REQUEST_TIMEOUT_SECONDS", default: "30", "How long a client may take to send a whole request, headers and body (1–600)."),
        Variable("TELEPAY_HTTP_IDLE_TIMEOUT_SECONDS", default: "60", "How long a keep-alive connection may stay idle between requests (1–3600)."),
        Variable(
            "TELEPAY_NOWPAYMENTS_IPN_MAX_BODY_BYTES", default: "65536",
            "Largest payment callback body accepted (1024 up to TELEPAY_HTTP_MAX_BODY_BYTES); NOWPayments' callbacks are a few kB."
        ),
        Variable("TELEPAY_LOG_LEVEL", default: "info", "trace, debug, info, notice, warning, error or critical."),
        Variable(
            "TELEPAY_PUBLIC_URL", default: nil, "How the outside world reaches the HTTP server (https://…); payment callbacks are built from it."),
        Variable(
            "TELEPAY_RESOURCES_DIR", default: nil, "Folder holding Migrations/ (found next to the working folder or the executable when unset)."),
        Variable("TELEPAY_SHUTDOWN_TIMEOUT_SECONDS", default: "30", "How long a graceful shutdown may take before it is forced."),
        Variable("TELEGRAM_BOT_TOKEN", default: nil, "Bot token from @BotFather.", secret: true),
        Variable("TELEPAY_TELEGRAM_API_URL", default: "https://api.telegram.org", "Bot API server base URL (http only to a loopback address)."),
        Variable(
            "TELEPAY_TELEGRAM_CONCURRENCY", default: "32", "Most updates handled at once (different users; one user's updates always run in order)."),
        Variable("TELEPAY_MAX_CHANNELS_PER_OWNER", default: "10", "Most channel pairs one owner may configure (1–1000)."),
        Variable(
            "TELEPAY_OWNER_BROADCASTS_PER_DAY", default: "3", "Broadcasts one owner may start to their channels' subscribers in any 24 hours (1–100)."
        ),
        Variable("TELEPAY_DRAFT_LIFETIME_HOURS", default: "24", "How long an unsaved form draft lives after its last step (1–720 hours)."),
        Variable(
            "TELEPAY_OFFER_POST_REFRESH_HOURS", default: "24",
            "How often each channel's offer post is deleted and posted anew in its public channel (1–720 hours)."),
        Variable(
            "TELEPAY_OFFER_POST_COOLDOWN_SECONDS", default: "300",
            "How long an owner waits between two \"post now\" presses on a channel card (0–86400 seconds)."),
        Variable(
            "TELEPAY_TELEGRAM_MODE", default: "polling",
            "polling (getUpdates) or webhook (needs TELEPAY_PUBLIC_URL and TELEPAY_TELEGRAM_WEBHOOK_SECRET)."),
        Variable(
            "TELEPAY_TELEGRAM_WEBHOOK_SECRET", default: nil, "Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token (1–256 of A-Z a-z 0-9 _ -).",
            secret: true),
        Variable(
            "TELEPAY_NOWPAYMENTS_API_URL", default: "https://api.nowpayments.io/v1",
            "NOWPayments API base URL (sandbox: https://api-sandbox.nowpayments.io/v1; http only to a loopback address)."),
        Variable("TELEPAY_NOWPAYMENTS_API_KEY", default: nil, "NOWPayments API key.", secret: true),
        Variable("TELEPAY_NOWPAYMENTS_IPN_SECRET", default: nil, "NOWPayments IPN secret used to verify callbacks.", secret: true),
        Variable(
            "TELEPAY_NOWPAYMENTS_EMAIL", default: nil,
            "NOWPayments account e-mail; with the password, lets TelePay list an invoice's payments to find those whose callbacks were lost."),
        Variable(
            "TELEPAY_NOWPAYMENTS_PASSWORD", default: nil, "NOWPayments account password (for the 5-minute JWT that listing payments needs).",
            secret: true),
        Variable(
            "TELEPAY_INVOICE_LIFETIME_HOURS", default: "24", "How long an invoice can be paid (1–168); an order with no payment by then expires."),
        Variable(
            "TELEPAY_PAYMENT_RECHECK_SECONDS", default: "60",
            "How often payments not yet final and unpaid orders are looked up at NOWPayments in case callbacks were lost (15–3600); each is asked again after a quarter of its age."
        ),
        Variable(
            "TELEPAY_SETTLEMENT_CURRENCY", default: "eth",
            "What NOWPayments pays the platform in (its payout currency in the NOWPayments dashboard); each finished payment's outcome is booked in it. Only eth (ETH on the hot wallet's Ethereum chain) is supported."
        ),
        Variable("TELEPAY_CHANGENOW_API_URL", default: "https://api.changenow.io", "ChangeNOW API base URL (http only to a loopback address)."),
        Variable("TELEPAY_CHANGENOW_API_KEY", default: nil, "ChangeNOW API key.", secret: true),
        Variable(
            "TELEPAY_CHANGENOW_PRIVATE_API_KEY", default: nil,
            "ChangeNOW private API key; only it may list exchanges (`telepay exchange reconcile`). Issued on request by ChangeNOW.", secret: true),
        Variable(
            "TELEPAY_EXCHANGE_POLL_SECONDS", default: "30",
            "How often ChangeNOW is asked for the status of every exchange not yet finished, failed or refunded (5–3600)."),
        Variable(
            "TELEPAY_EXCHANGE_VERIFYING_ALERT_MINUTES", default: "60",
            "An exchange held in ChangeNOW's `verifying` (AML/KYC) longer than this alerts the admins (5–10080)."),
        Variable(
            "TELEPAY_CONVERSION_MINUTES", default: "15",
            "How often threshold owners' pending shares may start a batch conversion to USDT (1–1440 minutes)."),
        Variable(
            "TELEPAY_CONVERSION_MINIMUM_USD", default: "20",
            "A batch conversion starts once the pooled shares were worth this many dollars at payment time (1–100000), and at least ChangeNOW's minimum."
        ),
        Variable(
            "TELEPAY_THRESHOLD_PAYOUT_MINUTES", default: "5",
            "How often owners whose converted USDT balance reached their threshold are paid (1–1440 minutes)."),
        Variable(
            "TELEPAY_USDT_CONTRACT", default: nil,
            "The USDT (ERC-20) contract on the hot wallet's chain, for threshold payouts. Mainnet (chain 1) defaults to 0xdAC17F958D2ee523a2206206994597C13D831ec7; on another chain threshold payouts stay off without it."
        ),
        Variable(
            "TELEPAY_ADMIN_TELEGRAM_IDS", default: nil,
            "Comma-separated Telegram user ids told in Telegram about failed jobs, hot-wallet and exchange alerts (needs TELEGRAM_BOT_TOKEN); only they can use /admin."
        ),
        Variable(
            "TELEPAY_ETH_RPC_URL", default: "https://ethereum-rpc.publicnode.com", "Ethereum JSON-RPC URL (http only to a loopback address).",
            secret: true),
        Variable("TELEPAY_ETH_PRIVATE_KEY", default: nil, "Hot-wallet private key, 64 hex digits (a valid secp256k1 key).", secret: true),
        Variable(
            "TELEPAY_JOBS_POLL_INTERVAL_MS", default: "1000",
            "How often job workers look for due jobs without a notification (50–60000); also bounds the delay of scheduled jobs and retries."),
        Variable(
            "TELEPAY_JOBS_LISTEN", default: "true",
            "Wake job workers through LISTEN/NOTIFY as soon as a job is committed (true/false); polling runs either way."),
        Variable(
            "TELEPAY_JOBS_LEASE_SECONDS", default: "15",
            "How long a claimed job stays reserved without a heartbeat (2–25); a killed worker's jobs run again within this plus 5 s."),
        Variable(
            "TELEPAY_JOBS_RETENTION_HOURS", default: "24",
            "How long completed jobs are kept before housekeeping deletes them (1–8760); failed jobs are kept."),
        Variable(
            "TELEPAY_JOBS_SHUTDOWN_GRACE_SECONDS", default: "10",
            "On shutdown, how long running jobs may finish before they are cancelled and given back; must be below TELEPAY_SHUTDOWN_TIMEOUT_SECONDS."),
        Variable(
            "TELEPAY_ETH_CHAIN_ID", default: "1",
            "Chain id the hot wallet signs for (1 mainnet, 11155111 Sepolia); an RPC node on another chain is refused."),
        Variable("TELEPAY_ETH_CONFIRMATIONS", default: "12", "Blocks, counting its own, before a hot-wallet transfer counts as final (1–1000)."),
        Variable(
            "TELEPAY_PLATFORM_FEE_PERCENT", default: "3",
            "Platform's share of each subscription payment, in percent (0–50, at most two decimals); the owner's pending balance gets the rest."),
        Variable(
            "TELEPAY_PARTIAL_PAYMENT_TOLERANCE_PERCENT", default: "0",
            "Money that arrived short of the order's price by at most this percentage still completes it, the shortfall booked as payment variance (0–10; 0 asks for the full price)."
        ),
        Variable(
            "TELEPAY_INVITE_MODE", default: "join_request",
            "join_request (links file join requests; only subscribers are approved) or single_use (one-use links that expire; anyone else who joins is removed)."
        ),
        Variable("TELEPAY_INVITE_LINK_TTL_HOURS", default: "24", "How long a single_use invite link stays valid (1–720)."),
        Variable(
            "TELEPAY_EXPIRY_DRY_RUN", default: "false", "When true, the expiry sweep only logs whom it would remove; nobody is removed or expired."),
        Variable(
            "TELEPAY_REMINDER_DAYS", default: "3,1",
            "Days before a subscription ends at which its subscriber is reminded, comma-separated (each 1–365; empty list: none)."),
    ]

    /// A configuration variable as documented.
    public struct Variable: Sendable {
        public var name: String
        public var defaultValue: String?
        public var meaning: String
        public var isSecret: Bool

        init(_ name: String, default defaultValue: String?, _ meaning: String, secret: Bool = false) {
            self.name = name
            self.defaultValue = defaultValue
            self.meaning = meaning
            self.isSecret = secret
        }
    }

    /// Builds the configuration; throws one error listing every problem.
    public static func load(environment: [String: String], envFile: String? = nil) throws(ConfigurationError) -> Configuration {
        var reader = Reader(values: environment)
        if let envFile {
            do {
                let fileValues = try EnvFile.parse(contentsOf: envFile)
                reader.values = fileValues.merging(environment) { _, fromEnvironment in fromEnvironment }
            } catch {
                reader.problems.append(ConfigurationProblem(variable: "--env-file", message: "\(error)"))
            }
        }
        let configuration = reader.build()
        guard reader.problems.isEmpty, let configuration else {
            throw ConfigurationError(problems: reader.problems)
        }
        return configuration
    }

    public var description: String {
        let database: String
        switch self.database {
        case .embedded: database = "embedded(\(dataDirectory))"
        case .external(let url, _): database = url.redacted
        }
        func state(_ secret: Secret?) -> String { secret == nil ? "unset" : "set" }
        return "data_dir=\(dataDirectory) database=\(database) pool=\(databasePoolSize) http=\(httpHost):\(httpPort) "
            + "http_limits=\(httpLimits) db_connect_timeout=\(databaseConnectTimeout.components.seconds)s "
            + "log_level=\(logLevel) public_url=\(publicURL?.absoluteString ?? "unset") "
            + "telegram_token=\(state(telegramBotToken)) telegram_api=\(telegramAPIURL.absoluteString) telegram_mode=\(telegramMode.rawValue) "
            + "nowpayments_api=\(nowPaymentsAPIURL.absoluteString) nowpayments_key=\(state(nowPaymentsAPIKey)) "
            + "nowpayments_ipn_secret=\(state(nowPaymentsIPNSecret)) nowpayments_account=\(state(nowPaymentsPassword)) changenow_api=\(changeNowAPIURL.absoluteString) "
            + "changenow_key=\(state(changeNowAPIKey)) changenow_private_key=\(state(changeNowPrivateAPIKey)) "
            + "exchange_poll=\(exchangePollInterval.components.seconds)s admins=\(adminTelegramIDs.count) eth_rpc=set eth_private_key=\(state(ethereumPrivateKey)) "
            + "jobs=\(jobs) eth_chain_id=\(ethereumChainId) eth_confirmations=\(ethereumConfirmations) "
            + "fee=\(subscriptions.platformFeePercent)% partial_tolerance=\(subscriptions.partialPaymentTolerancePercent)% "
            + "invite_mode=\(subscriptions.inviteMode.rawValue) expiry_dry_run=\(subscriptions.expiryDryRun) "
            + "reminder_days=\(subscriptions.reminderDays.map(String.init).joined(separator: ","))"
    }
}

/// How the durable job engine runs in this process.
public struct JobsSettings: Sendable, Hashable, CustomStringConvertible {
    public var pollInterval: Duration
    public var listensForNotifications: Bool
    public var lease: Duration
    public var completedRetention: Duration
    public var shutdownGrace: Duration

    public init(pollInterval: Duration, listensForNotifications: Bool, lease: Duration, completedRetention: Duration, shutdownGrace: Duration) {
        self.pollInterval = pollInterval
        self.listensForNotifications = listensForNotifications
        self.lease = lease
        self.completedRetention = completedRetention
        self.shutdownGrace = shutdownGrace
    }

    /// A third of the lease: two heartbeats can be lost before the lease runs out.
    public var heartbeatInterval: Duration { lease / 3 }

    /// The rescuer sweeps this often; with the lease it bounds how soon a dead worker's job runs again.
    public static let rescueSweepInterval: Duration = .seconds(5)

    public var description: String {
        "poll:\(pollInterval.milliseconds)ms,"
            + "listen:\(listensForNotifications),lease:\(lease.components.seconds)s,"
            + "retention:\(completedRetention.components.seconds / 3600)h,grace:\(shutdownGrace.components.seconds)s"
    }
}

/// What the HTTP server allows a client before it has proven anything.
public struct HTTPLimits: Sendable, Hashable, CustomStringConvertible {
    /// Most connections open at once; further ones wait in the kernel's listen backlog.
    public var maxConnections: Int
    /// From a connection's opening (or its previous response) to the end of the next request's headers.
    public var headerTimeout: Duration
    /// From a connection's opening (or its previous response) to the end of the next request's body.
    public var requestTimeout: Duration
    /// How long a kept-alive connection may sit idle between requests.
    public var idleTimeout: Duration
    /// Largest body `POST /payments/nowpayments/ipn` reads.
    public var paymentCallbackMaxBodyBytes: Int

    public init(maxConnections: Int, headerTimeout: Duration, requestTimeout: Duration, idleTimeout: Duration, paymentCallbackMaxBodyBytes: Int) {
        self.maxConnections = maxConnections
        self.headerTimeout = headerTimeout
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
        self.paymentCallbackMaxBodyBytes = paymentCallbackMaxBodyBytes
    }

    public var description: String {
        "connections:\(maxConnections),header:\(headerTimeout.components.seconds)s,request:\(requestTimeout.components.seconds)s,"
            + "idle:\(idleTimeout.components.seconds)s,ipn_body:\(paymentCallbackMaxBodyBytes)"
    }
}

/// Reads variables, collecting problems instead of stopping at the first.
private struct Reader {
    var values: [String: String]
    var problems: [ConfigurationProblem] = []

    init(values: [String: String]) {
        self.values = values
    }

    mutating func problem(_ variable: String, _ message: String) {
        problems.append(ConfigurationProblem(variable: variable, message: message))
    }

    /// A plain value, trimmed; empty counts as unset.
    func string(_ name: String) -> String? {
        guard let raw = values[name] else { return nil }
        let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    func defaultValue(_ name: String) -> String? {
        Configuration.variables.first { $0.name == name }?.defaultValue
    }

    mutating func integer(_ name: String, in range: ClosedRange<Int>) -> Int? {
        guard let text = string(name) ?? defaultValue(name) else { return nil }
        guard let value = Int(text) else {
            problem(name, "'\(text)' is not a whole number")
            return nil
        }
        guard range.contains(value) else {
            problem(name, "\(value) is outside \(range.lowerBound)–\(range.upperBound)")
            return nil
        }
        return value
    }

    mutating func boolean(_ name: String) -> Bool? {
        guard let text = (string(name) ?? defaultValue(name))?.lowercased() else { return nil }
        switch text {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default:
            problem(name, "'\(text)' is not true or false")
            return nil
        }
    }

    /// An absolute http(s) URL without a trailing slash. Secret URLs are never echoed back. A URL that
    /// carries credentials (`carriesCredentials`: a key travels in its path or headers) must use https
    /// unless it points at this machine, where plain http is fine for tests and local nodes.
    mutating func url(_ name: String, secret: Bool = false, carriesCredentials: Bool = false) -> URL? {
        guard let text = string(name) ?? defaultValue(name) else { return nil }
        let shown = secret ? "the value" : "'\(text)'"
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), url.host?.isEmpty == false else {
            problem(name, "\(shown) is not an absolute URL (expected https://host/path)")
            return nil
        }
        guard scheme == "https" || scheme == "http" else {
            problem(name, "\(shown) must use http or https")
            return nil
        }
        guard url.query == nil && url.fragment == nil || secret else {
            problem(name, "\(shown) must not have a query or fragment")
            return nil
        }
        if carriesCredentials, scheme == "http", !DatabaseURL.isLocal(url.host ?? "") {
            problem(
                name,
                "uses plain http to a host that is not this machine, so its key or token would cross the network unencrypted; use https (http is allowed only for localhost and loopback addresses)"
            )
            return nil
        }
        var trimmed = url.absoluteString
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        return URL(string: trimmed)
    }

    /// Comma-separated positive whole numbers (Telegram user ids), duplicates dropped; unset is empty.
    mutating func adminIDs(_ name: String) -> [Int64]? {
        guard let text = string(name) else { return [] }
        var ids: [Int64] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = item.trimmingCharacters(in: .whitespaces)
            guard let id = Int64(trimmed), id > 0, trimmed.allSatisfy(\.isNumber) else {
                problem(name, "'\(trimmed)' is not a Telegram user id (a positive whole number); separate ids with commas")
                return nil
            }
            if !ids.contains(id) { ids.append(id) }
        }
        return ids
    }

    /// A secret, trimmed of surrounding whitespace (a trailing newline in a secret once cost days).
    mutating func secret(_ name: String, validate: (String) -> String? = { _ in nil }) -> Secret? {
        guard let value = string(name) else { return nil }
        if let reason = validate(value) {
            problem(name, reason)
            return nil
        }
        return Secret(value)
    }

    mutating func build() -> Configuration? {
        let dataDirectory = string("TELEPAY_DATA_DIR") ?? defaultValue("TELEPAY_DATA_DIR")!
        var database = DatabaseLocation.embedded
        if let url = string("DATABASE_URL") {
            do {
                database = .external(try DatabaseURL(parsing: url), url: Secret(url))
            } catch {
                problem("DATABASE_URL", "\(error)")
            }
        }
        let poolSize = integer("TELEPAY_DATABASE_POOL_SIZE", in: 1...100)
        let host = string("TELEPAY_HTTP_HOST") ?? defaultValue("TELEPAY_HTTP_HOST")!
        if host.contains(where: { $0.isWhitespace || $0 == "/" }) {
            problem("TELEPAY_HTTP_HOST", "'\(host)' is not a host name or IP address")
        }
        let connectTimeout = integer("TELEPAY_DATABASE_CONNECT_TIMEOUT_SECONDS", in: 1...600)
        let port = integer("TELEPAY_HTTP_PORT", in: 0...65535)
        let maxBody = integer("TELEPAY_HTTP_MAX_BODY_BYTES", in: 1024...(64 * 1024 * 1024))
        let maxConnections = integer("TELEPAY_HTTP_MAX_CONNECTIONS", in: 16...100_000)
        let headerTimeout = integer("TELEPAY_HTTP_HEADER_TIMEOUT_SECONDS", in: 1...300)
        let requestTimeout = integer("TELEPAY_HTTP_REQUEST_TIMEOUT_SECONDS", in: 1...600)
        let idleTimeout = integer("TELEPAY_HTTP_IDLE_TIMEOUT_SECONDS", in: 1...3600)
        let ipnMaxBody = integer("TELEPAY_NOWPAYMENTS_IPN_MAX_BODY_BYTES", in: 1024...(64 * 1024 * 1024))
        if let ipnMaxBody, let maxBody, ipnMaxBody > maxBody {
            problem("TELEPAY_NOWPAYMENTS_IPN_MAX_BODY_BYTES", "\(ipnMaxBody) is above TELEPAY_HTTP_MAX_BODY_BYTES (\(maxBody))")
        }
        if let headerTimeout, let requestTimeout, headerTimeout > requestTimeout {
            problem(
                "TELEPAY_HTTP_HEADER_TIMEOUT_SECONDS",
                "\(headerTimeout) is above TELEPAY_HTTP_REQUEST_TIMEOUT_SECONDS (\(requestTimeout)), which includes the headers")
        }
        let levelText = (string("TELEPAY_LOG_LEVEL") ?? defaultValue("TELEPAY_LOG_LEVEL")!).lowercased()
        let level = Logger.Level(rawValue: levelText)
        if level == nil {
            problem("TELEPAY_LOG_LEVEL", "'\(levelText)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        let publicURL = url("TELEPAY_PUBLIC_URL")
        let resources = string("TELEPAY_RESOURCES_DIR")
        let shutdown = integer("TELEPAY_SHUTDOWN_TIMEOUT_SECONDS", in: 1...600)
        let token = secret("TELEGRAM_BOT_TOKEN") { value in
            Self.isBotToken(value) ? nil : "is not a bot token (expected <digits>:<35 characters> from @BotFather)"
        }
        let telegramURL = url("TELEPAY_TELEGRAM_API_URL", carriesCredentials: true)
        let telegramConcurrency = integer("TELEPAY_TELEGRAM_CONCURRENCY", in: 1...256)
        let maximumChannels = integer("TELEPAY_MAX_CHANNELS_PER_OWNER", in: 1...1000)
        let draftHours = integer("TELEPAY_DRAFT_LIFETIME_HOURS", in: 1...720)
        let ownerBroadcasts = integer("TELEPAY_OWNER_BROADCASTS_PER_DAY", in: 1...100)
        let postRefreshHours = integer("TELEPAY_OFFER_POST_REFRESH_HOURS", in: 1...720)
        let postCooldown = integer("TELEPAY_OFFER_POST_COOLDOWN_SECONDS", in: 0...86400)
        let modeText = (string("TELEPAY_TELEGRAM_MODE") ?? defaultValue("TELEPAY_TELEGRAM_MODE")!).lowercased()
        let telegramMode = TelegramMode(rawValue: modeText)
        if telegramMode == nil {
            problem("TELEPAY_TELEGRAM_MODE", "'\(modeText)' is not polling or webhook")
        }
        let webhookSecret = secret("TELEPAY_TELEGRAM_WEBHOOK_SECRET") { value in
            (1...256).contains(value.count) && value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
                ? nil : "must be 1–256 characters of A-Z a-z 0-9 _ -"
        }
        let nowURL = url("TELEPAY_NOWPAYMENTS_API_URL", carriesCredentials: true)
        let nowKey = secret("TELEPAY_NOWPAYMENTS_API_KEY")
        let ipnSecret = secret("TELEPAY_NOWPAYMENTS_IPN_SECRET")
        let nowEmail = string("TELEPAY_NOWPAYMENTS_EMAIL")
        let nowPassword = secret("TELEPAY_NOWPAYMENTS_PASSWORD")
        if (nowEmail == nil) != (nowPassword == nil) {
            problem(
                nowEmail == nil ? "TELEPAY_NOWPAYMENTS_EMAIL" : "TELEPAY_NOWPAYMENTS_PASSWORD",
                "is needed together with \(nowEmail == nil ? "TELEPAY_NOWPAYMENTS_PASSWORD" : "TELEPAY_NOWPAYMENTS_EMAIL")")
        }
        let invoiceHours = integer("TELEPAY_INVOICE_LIFETIME_HOURS", in: 1...168)
        let recheckSeconds = integer("TELEPAY_PAYMENT_RECHECK_SECONDS", in: 15...3600)
        let settlementText = (string("TELEPAY_SETTLEMENT_CURRENCY") ?? defaultValue("TELEPAY_SETTLEMENT_CURRENCY")!).lowercased()
        if settlementText != SettlementAsset.ether.currency {
            problem(
                "TELEPAY_SETTLEMENT_CURRENCY", "'\(settlementText)' is not supported: the hot wallet receives eth (ETH on its Ethereum chain) only")
        }
        let changeNowURL = url("TELEPAY_CHANGENOW_API_URL", carriesCredentials: true)
        let changeNowKey = secret("TELEPAY_CHANGENOW_API_KEY")
        let changeNowPrivateKey = secret("TELEPAY_CHANGENOW_PRIVATE_API_KEY")
        let exchangePoll = integer("TELEPAY_EXCHANGE_POLL_SECONDS", in: 5...3600)
        let verifyingMinutes = integer("TELEPAY_EXCHANGE_VERIFYING_ALERT_MINUTES", in: 5...10080)
        let conversionMinutes = integer("TELEPAY_CONVERSION_MINUTES", in: 1...1440)
        let conversionMinimum = integer("TELEPAY_CONVERSION_MINIMUM_USD", in: 1...100000)
        let thresholdMinutes = integer("TELEPAY_THRESHOLD_PAYOUT_MINUTES", in: 1...1440)
        var usdtContract: Address?
        if let text = string("TELEPAY_USDT_CONTRACT") {
            do {
                usdtContract = try Address(parsing: text)
            } catch {
                problem("TELEPAY_USDT_CONTRACT", "'\(text)' is not an Ethereum address (0x and 40 hexadecimal digits)")
            }
        }
        let admins = adminIDs("TELEPAY_ADMIN_TELEGRAM_IDS")
        if let admins, !admins.isEmpty, token == nil, string("TELEGRAM_BOT_TOKEN") == nil {
            problem("TELEPAY_ADMIN_TELEGRAM_IDS", "needs TELEGRAM_BOT_TOKEN: alerts reach admins through the bot")
        }
        let rpcURL = url("TELEPAY_ETH_RPC_URL", secret: true, carriesCredentials: true)
        let privateKey = secret("TELEPAY_ETH_PRIVATE_KEY") { value in
            let hex = value.hasPrefix("0x") ? value.dropFirst(2) : Substring(value)
            guard hex.count == 64, hex.allSatisfy(\.isHexDigit) else { return "must be 64 hexadecimal digits (optionally 0x-prefixed)" }
            guard hex.contains(where: { $0 != "0" }) else { return "must not be zero" }
            guard let bytes = try? Hex.decodeData("0x" + hex), (try? PrivateKey(bytes: bytes)) != nil else {
                return "is not a valid secp256k1 private key (it must be below the curve order)"
            }
            return nil
        }
        if telegramMode == .webhook {
            if string("TELEPAY_TELEGRAM_WEBHOOK_SECRET") == nil {
                problem("TELEPAY_TELEGRAM_WEBHOOK_SECRET", "is required when TELEPAY_TELEGRAM_MODE=webhook")
            }
            if string("TELEPAY_PUBLIC_URL") == nil {
                problem("TELEPAY_PUBLIC_URL", "is required when TELEPAY_TELEGRAM_MODE=webhook (Telegram must reach us)")
            }
        }
        let pollInterval = integer("TELEPAY_JOBS_POLL_INTERVAL_MS", in: 50...60000)
        let listen = boolean("TELEPAY_JOBS_LISTEN")
        let lease = integer("TELEPAY_JOBS_LEASE_SECONDS", in: 2...25)
        let retention = integer("TELEPAY_JOBS_RETENTION_HOURS", in: 1...8760)
        let grace = integer("TELEPAY_JOBS_SHUTDOWN_GRACE_SECONDS", in: 1...600)
        if let grace, let shutdown, grace >= shutdown {
            problem(
                "TELEPAY_JOBS_SHUTDOWN_GRACE_SECONDS",
                "\(grace) must be below TELEPAY_SHUTDOWN_TIMEOUT_SECONDS (\(shutdown)), or jobs are cut off before they can be given back"
            )
        }
        // 2^53 − 1 bounds every chain id in use (EIP-2294).
        let chainId = integer("TELEPAY_ETH_CHAIN_ID", in: 1...9_007_199_254_740_991)
        let confirmations = integer("TELEPAY_ETH_CONFIRMATIONS", in: 1...1000)
        let fee = percent("TELEPAY_PLATFORM_FEE_PERCENT", maximum: 50)
        let tolerance = percent("TELEPAY_PARTIAL_PAYMENT_TOLERANCE_PERCENT", maximum: 10)
        let inviteText = (string("TELEPAY_INVITE_MODE") ?? defaultValue("TELEPAY_INVITE_MODE")!).lowercased()
        let inviteMode = InviteMode(rawValue: inviteText)
        if inviteMode == nil {
            problem("TELEPAY_INVITE_MODE", "'\(inviteText)' is not join_request or single_use")
        }
        let linkHours = integer("TELEPAY_INVITE_LINK_TTL_HOURS", in: 1...720)
        let dryRun = boolean("TELEPAY_EXPIRY_DRY_RUN")
        let reminderDays = dayList("TELEPAY_REMINDER_DAYS")
        guard let poolSize, let connectTimeout, let port, let maxBody, let level,
            let maxConnections, let headerTimeout, let requestTimeout, let idleTimeout, let ipnMaxBody, ipnMaxBody <= maxBody,
            headerTimeout <= requestTimeout, let shutdown, let telegramURL, let telegramConcurrency, let telegramMode,
            let nowURL, let changeNowURL, let rpcURL, let exchangePoll, let verifyingMinutes, let admins,
            let pollInterval, let listen, let lease, let retention, let grace, grace < shutdown,
            let chainId, let confirmations, let maximumChannels, let draftHours, let postRefreshHours, let postCooldown,
            let fee, let tolerance, let inviteMode, let linkHours, let dryRun, let reminderDays, let invoiceHours, let recheckSeconds,
            let ownerBroadcasts, let conversionMinutes, let conversionMinimum, let thresholdMinutes
        else {
            return nil
        }
        var configuration = Configuration(
            dataDirectory: dataDirectory,
            database: database,
            databasePoolSize: poolSize,
            httpHost: host,
            httpPort: port,
            httpMaxBodyBytes: maxBody,
            httpLimits: HTTPLimits(
                maxConnections: maxConnections, headerTimeout: .seconds(headerTimeout), requestTimeout: .seconds(requestTimeout),
                idleTimeout: .seconds(idleTimeout), paymentCallbackMaxBodyBytes: ipnMaxBody
            ),
            databaseConnectTimeout: .seconds(connectTimeout),
            logLevel: level,
            publicURL: publicURL,
            resourcesDirectory: resources,
            shutdownTimeoutSeconds: shutdown,
            telegramBotToken: token,
            telegramAPIURL: telegramURL,
            telegramConcurrency: telegramConcurrency,
            telegramMode: telegramMode,
            telegramWebhookSecret: webhookSecret,
            owners: OwnerSettings(
                maximumChannelsPerOwner: maximumChannels, draftLifetime: .seconds(draftHours * 3600),
                offerPosts: OfferPostSettings(refreshInterval: TimeInterval(postRefreshHours * 3600), manualCooldown: TimeInterval(postCooldown))
            ),
            nowPaymentsAPIURL: nowURL,
            nowPaymentsAPIKey: nowKey,
            nowPaymentsIPNSecret: ipnSecret,
            nowPaymentsEmail: nowEmail,
            nowPaymentsPassword: nowPassword,
            changeNowAPIURL: changeNowURL,
            changeNowAPIKey: changeNowKey,
            changeNowPrivateAPIKey: changeNowPrivateKey,
            exchangePollInterval: .seconds(exchangePoll),
            exchangeVerifyingAlertAfter: .seconds(verifyingMinutes * 60),
            adminTelegramIDs: admins,
            ethereumRPCURL: Secret(rpcURL.absoluteString),
            ethereumPrivateKey: privateKey,
            jobs: JobsSettings(
                pollInterval: .milliseconds(pollInterval),
                listensForNotifications: listen,
                lease: .seconds(lease),
                completedRetention: .seconds(retention * 3600),
                shutdownGrace: .seconds(grace)
            ),
            ethereumChainId: UInt64(chainId),
            ethereumConfirmations: UInt64(confirmations),
            subscriptions: SubscriptionSettings(
                platformFeePercent: fee, partialPaymentTolerancePercent: tolerance, inviteMode: inviteMode,
                singleUseLinkLifetime: .seconds(linkHours * 3600), expiryDryRun: dryRun, reminderDays: reminderDays, publicURL: publicURL,
                invoiceLifetime: .seconds(invoiceHours * 3600), paymentRecheckInterval: .seconds(recheckSeconds), settlement: .ether
            )
        )
        configuration.broadcasts.ownerDailyCap = ownerBroadcasts
        configuration.thresholdPayouts = ThresholdPayoutSettings(
            conversionInterval: .seconds(conversionMinutes * 60), conversionMinimumUSD: Decimal(conversionMinimum),
            payoutInterval: .seconds(thresholdMinutes * 60),
            usdtContract: usdtContract ?? (chainId == 1 ? ThresholdPayoutSettings.mainnetUSDT : nil)
        )
        return configuration
    }

    /// A percentage from 0 to `maximum` with at most two decimals, e.g. `3` or `2.5`.
    mutating func percent(_ name: String, maximum: Decimal) -> Decimal? {
        guard let text = string(name) ?? defaultValue(name) else { return nil }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            parts.count == 1 || parts[1].count <= 2,
            let value = DecimalText.parse(text)
        else {
            problem(name, "'\(text)' is not a percentage like 3 or 2.5")
            return nil
        }
        guard value <= maximum else {
            problem(name, "\(text) is outside 0–\(maximum)")
            return nil
        }
        return value
    }

    /// Comma-separated whole days, each 1–365, without repeats; empty means none.
    mutating func dayList(_ name: String) -> [Int]? {
        let text = values[name].map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? defaultValue(name)!
        if text.isEmpty { return [] }
        var days: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let value = Int(part.trimmingCharacters(in: .whitespaces)), (1...365).contains(value) else {
                problem(name, "'\(text)' must be whole days 1–365 separated by commas, e.g. 3,1")
                return nil
            }
            if !days.contains(value) { days.append(value) }
        }
        return days.sorted(by: >)
    }

    static func isBotToken(_ value: String) -> Bool {
        let parts = value.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy(\.isASCII), parts[0].allSatisfy(\.isNumber) else { return false }
        return parts[1].count >= 30 && parts[1].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }
}

/// Reads `.env`-style files: `KEY=value` lines, `#` comments, optional `export ` and matching quotes.
public enum EnvFile {
    public struct ParseError: Error, CustomStringConvertible {
        public var path: String
        public var line: Int
        public var reason: String

        public var description: String { "\(path):\(line): \(reason)" }
    }

    public static func parse(contentsOf path: String) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ParseError(path: path, line: 0, reason: "cannot read the file")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String = "<env>") throws -> [String: String] {
        var values: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            guard let equals = line.firstIndex(of: "=") else {
                throw ParseError(path: path, line: index + 1, reason: "expected KEY=value")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw ParseError(path: path, line: index + 1, reason: "'\(key)' is not a variable name")
            }
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            values[key] = value
        }
        return values
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    var milliseconds: Int64 {
        let parts = components
        return parts.seconds * 1000 + parts.attoseconds / 1_000_000_000_000_000
    }
}

/// Batch conversion to USDT and threshold payouts (`TELEPAY_CONVERSION_*`, `TELEPAY_THRESHOLD_PAYOUT_MINUTES`,
/// `TELEPAY_USDT_CONTRACT`).
public struct ThresholdPayoutSettings: Sendable, Hashable {
    public var conversionInterval: Duration = .seconds(900)
    public var conversionMinimumUSD: Decimal = 20
    public var payoutInterval: Duration = .seconds(300)
    /// `nil`: threshold payouts are off (no USDT contract known on this chain).
    public var usdtContract: Address?

    /// Tether USD on Ethereum mainnet.
    public static let mainnetUSDT = try! Address(parsing: "0xdAC17F958D2ee523a2206206994597C13D831ec7")

    public init(
        conversionInterval: Duration = .seconds(900), conversionMinimumUSD: Decimal = 20, payoutInterval: Duration = .seconds(300),
        usdtContract: Address? = nil
    ) {
        self.conversionInterval = conversionInterval
        self.conversionMinimumUSD = conversionMinimumUSD
        self.payoutInterval = payoutInterval
        self.usdtContract = usdtContract
    }
}
