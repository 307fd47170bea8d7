import App
import Bot
import Foundation
import Logging
import Money
import NOWPaymentsFake
import Payouts
import Storage
import Subscriptions
import Synchronization
import TelegramFake

/// How to run the sandbox.
public struct SandboxSettings: Sendable {
    /// The sandbox's own data folder (its embedded database lives in `postgres/` under it).
    public var dataDirectory: String
    public var port: Int
    /// Whether to start the local chain (when its Python packages are installed) for the hot wallet and payouts.
    public var startsChain: Bool
    /// Folder holding `Migrations/`, `Localization/` and `Conversations/` (found like `telepay`'s when nil).
    public var resourcesDirectory: String?
    public var logLevel: String

    public init(
        dataDirectory: String = "./.telepay-sandbox", port: Int = 8080, resourcesDirectory: String? = nil, logLevel: String = "notice",
        startsChain: Bool = true
    ) {
        self.dataDirectory = dataDirectory
        self.port = port
        self.startsChain = startsChain
        self.resourcesDirectory = resourcesDirectory
        self.logLevel = logLevel
    }
}

/// The simulated outside world the sandbox wires TelePay to, and what the web page reads and drives.
public final class SandboxWorldState: Sendable {
    public let bot: FakeBotAPI
    public let payments: FakeNOWPayments
    public let clock: SandboxClock
    public let transcript = Transcript()
    /// The local chain with the hot wallet, or why there is none.
    public let chain: Result<SandboxChain, SandboxChainUnavailable>
    private let boundPort = Mutex<Int?>(nil)

    init(bot: FakeBotAPI, payments: FakeNOWPayments, clock: SandboxClock, chain: Result<SandboxChain, SandboxChainUnavailable>) {
        self.bot = bot
        self.payments = payments
        self.clock = clock
        self.chain = chain
    }

    /// The port TelePay's HTTP server listens on, once it does.
    public var port: Int? { boundPort.withLock { $0 } }

    func serverRunning(on port: Int) {
        boundPort.withLock { $0 = port }
    }

    /// The sandbox's page.
    public var url: String? { port.map { "http://127.0.0.1:\($0)/sandbox" } }
}

/// What a persona typed or did in their chat with the bot (the fake Bot API keeps only what the bot sent).
public actor Transcript {
    public struct Entry: Sendable, Hashable, Codable {
        public var persona: Int64
        /// The newest bot message in the chat when the persona wrote: the entry shows after it.
        public var afterMessageID: Int64
        public var sequence: Int
        public var text: String
    }

    private(set) public var entries: [Entry] = []
    private(set) public var addedPersonas: [Persona] = []
    /// Join requests personas filed through invite links, per channel, in order (their outcome is read from the
    /// fake: still pending, or a member now, or neither).
    private(set) public var joinRequests: [Int64: [Int64]] = [:]

    public func recordJoinRequest(chat: Int64, persona: Int64) {
        if joinRequests[chat]?.contains(persona) != true { joinRequests[chat, default: []].append(persona) }
    }

    public func record(persona: Int64, after messageID: Int64, _ text: String) {
        entries.append(Entry(persona: persona, afterMessageID: messageID, sequence: entries.count, text: text))
    }

    public func add(_ persona: Persona) {
        addedPersonas.append(persona)
    }

    public func entries(of persona: Int64) -> [Entry] {
        entries.filter { $0.persona == persona }
    }

    public var version: Int { entries.count + addedPersonas.count * 1_000_000 + joinRequests.values.map(\.count).reduce(0, +) * 1_000 }
}

/// A started sandbox: TelePay itself, built on the simulations, and the simulations' servers.
public struct RunningSandbox: Sendable {
    public let application: TelePayApplication
    public let world: SandboxWorldState
    let servers: [Task<Void, any Error>]

    /// Runs TelePay until it is shut down (SIGINT/SIGTERM, or `stop()`), then stops the simulations.
    public func run() async throws {
        defer { servers.forEach { $0.cancel() } }
        try await application.run()
    }

    public func stop() async {
        await application.triggerGracefulShutdown()
    }
}

/// Starts the real TelePay — dispatcher, forms, purchase flow, jobs, ledger — on its own embedded database,
/// wired to in-process simulations of Telegram and NOWPayments instead of the network.
public enum Sandbox {
    /// The environment TelePay is configured from in the sandbox. Nothing of the caller's environment is used,
    /// so no real token, key or URL can slip in.
    public static func environment(
        settings: SandboxSettings, telegramURL: String, telegramToken: String, paymentsURL: String, payments: FakeNOWPayments,
        chain: [String: String] = [:]
    ) -> [String: String] {
        var environment = [
            "TELEPAY_DATA_DIR": settings.dataDirectory,
            "TELEPAY_HTTP_HOST": "127.0.0.1",
            "TELEPAY_HTTP_PORT": "\(settings.port)",
            "TELEPAY_LOG_LEVEL": settings.logLevel,
            // Payment callbacks and return links point at this process.
            "TELEPAY_PUBLIC_URL": "http://127.0.0.1:\(settings.port == 0 ? 8080 : settings.port)",
            "TELEGRAM_BOT_TOKEN": telegramToken,
            "TELEPAY_TELEGRAM_API_URL": telegramURL,
            "TELEPAY_NOWPAYMENTS_API_URL": paymentsURL,
            "TELEPAY_NOWPAYMENTS_API_KEY": payments.apiKey,
            "TELEPAY_NOWPAYMENTS_IPN_SECRET": payments.ipnSecret,
            "TELEPAY_NOWPAYMENTS_EMAIL": payments.account.email,
            "TELEPAY_NOWPAYMENTS_PASSWORD": payments.account.password,
            // Without a chain there is no exchange either (the simulated one settles on the chain): without their
            // keys TelePay never calls them, and these loopback addresses keep even a mistake on this machine.
            "TELEPAY_CHANGENOW_API_URL": "http://127.0.0.1:9",
            "TELEPAY_ETH_RPC_URL": "http://127.0.0.1:9",
            "TELEPAY_ADMIN_TELEGRAM_IDS": "\(SandboxWorld.admin.id)",
            "TELEPAY_JOBS_POLL_INTERVAL_MS": "250",
            "TELEPAY_OFFER_POST_COOLDOWN_SECONDS": "0",
        ]
        if let resources = settings.resourcesDirectory { environment["TELEPAY_RESOURCES_DIR"] = resources }
        environment.merge(chain) { $1 }
        return environment
    }

    /// Makes `folder` an empty sandbox data folder: each start is a fresh world, because the simulated Telegram
    /// and chain start afresh too. A folder the sandbox did not make (no marker file) is refused, not emptied.
    public static func prepareDataDirectory(_ folder: String) throws {
        let files = FileManager.default
        let marker = folder + "/.telepay-sandbox"
        if files.fileExists(atPath: folder) {
            let contents = try files.contentsOfDirectory(atPath: folder)
            if !contents.isEmpty && !files.fileExists(atPath: marker) { throw SandboxStartError.foreignDataDirectory(folder) }
            if files.fileExists(atPath: folder + "/postgres/cluster/postmaster.pid") { throw SandboxStartError.dataDirectoryInUse(folder) }
            for item in contents where item != ".telepay-sandbox" {
                try files.removeItem(atPath: folder + "/" + item)
            }
        } else {
            try files.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        _ = files.createFile(atPath: marker, contents: Data("A TelePay sandbox's data: emptied each time the sandbox starts.\n".utf8))
    }

    /// Starts the simulations, seeds the world, and builds TelePay on them; `run()` the result.
    public static func start(
        settings: SandboxSettings, logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws -> RunningSandbox {
        let page = try SandboxPage.load(resourcesDirectory: settings.resourcesDirectory)
        try prepareDataDirectory(settings.dataDirectory)
        let bot = FakeBotAPI()
        await SandboxWorld.seed(bot)
        let payments = FakeNOWPayments()
        let (telegramURL, telegramServer) = try await bot.start()
        let paymentsServer: (baseURL: String, server: Task<Void, any Error>)
        do {
            paymentsServer = try await payments.start()
        } catch {
            telegramServer.cancel()
            throw error
        }
        var servers = [telegramServer, paymentsServer.server]
        do {
            let chain: Result<SandboxChain, SandboxChainUnavailable> =
                settings.startsChain
                ? await SandboxChain.start(logger: logger)
                : .failure(SandboxChainUnavailable(reason: "started without a chain"))
            var chainEnvironment: [String: String] = [:]
            switch chain {
            case .success(let chain):
                await chain.settle(payments)
                chainEnvironment = chain.environment
                // ChangeNOW is simulated on the same chain; without it only ETH owners would be paid.
                let exchange = try await chain.startExchange(logger: logger)
                servers.append(exchange.server)
                chainEnvironment.merge(exchange.environment) { $1 }
            case .failure(let why): logger.notice("the sandbox runs without a local chain", metadata: ["reason": "\(why.reason)"])
            }
            var configuration = try Configuration.load(
                environment: environment(
                    settings: settings, telegramURL: telegramURL, telegramToken: bot.token, paymentsURL: paymentsServer.baseURL, payments: payments,
                    chain: chainEnvironment
                ))
            try SandboxGuard.requireSimulated(configuration)
            let world = SandboxWorldState(bot: bot, payments: payments, clock: SandboxClock(), chain: chain)
            // Offer posts are refreshed on the same clock, so moving time shows the scheduled re-posts too.
            configuration.owners.offerPosts.clock = world.clock
            let databaseBox = Mutex<Database?>(nil)
            let application = try await TelePayApplication.build(
                configuration: configuration, logger: logger,
                additionalRoutes: { router, database, queue in
                    databaseBox.withLock { $0 = database }
                    SandboxRoutes(world: world, page: page, database: database, queue: queue, logger: logger).add(to: router)
                },
                clock: world.clock,
                onServerRunning: { port in
                    // The gas money the sandbox put in the hot wallet is the operator's capital, booked as an operator
                    // would (`telepay ledger --record-deposit`), so reconciliation explains every wei.
                    if case .success = chain, let database = databaseBox.withLock({ $0 }) {
                        do {
                            _ = try await Reconciliation.recordDeposit(
                                asset: "ETH", units: SettlementAsset.ether.unitsPerCoin * Decimal(SandboxChain.gasEther),
                                note: "the sandbox's gas money",
                                database: database, logger: logger
                            )
                        } catch {
                            logger.warning("could not book the sandbox's gas money", metadata: ["error": "\(error)"])
                        }
                    }
                    world.serverRunning(on: port)
                    await onServerRunning(port)
                }
            )
            return RunningSandbox(application: application, world: world, servers: servers)
        } catch {
            servers.forEach { $0.cancel() }
            throw error
        }
    }
}
