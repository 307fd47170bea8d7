import Conversations
import Foundation
import Bot
import Broadcasts
import Exchange
import ExchangeOrders
import Hummingbird
import Jobs
import Localization
import Logging
import NIOCore
import Payments
import Payouts
import ServiceLifecycle
import UnixSignals
import HotWallet
import Storage
import Subscriptions

#if canImport(Glibc)
import Glibc
#endif

/// Why TelePay could not start.
public enum StartupError: Error, CustomStringConvertible {
    case resourcesNotFound(configured: String?)
    /// `Localization/` or `Conversations/` in the resources folder is missing or malformed.
    case resourcesUnusable(folder: String, reason: String)
    /// Signed callbacks would be stored whose processing needs the API key to re-fetch each payment.
    case ipnSecretWithoutAPIKey
    /// Another process listens on the configured address.
    case addressInUse(host: String, port: Int)

    public var description: String {
        switch self {
        case .resourcesNotFound(let configured?):
            return "TELEPAY_RESOURCES_DIR=\(configured) has no Migrations/ folder"
        case .resourcesNotFound(nil):
            return "cannot find the Migrations/ folder next to the working folder or the executable; set TELEPAY_RESOURCES_DIR"
        case .resourcesUnusable(let folder, let reason):
            return "the resources folder's \(folder)/ cannot be used: \(reason); check TELEPAY_RESOURCES_DIR"
        case .ipnSecretWithoutAPIKey:
            return "TELEPAY_NOWPAYMENTS_IPN_SECRET is set but TELEPAY_NOWPAYMENTS_API_KEY is not: callbacks would be accepted "
                + "and their payments never processed (processing re-fetches each payment with the key); set the key, or unset the secret"
        case .addressInUse(let host, let port):
            return "cannot listen on \(host):\(port): the address is already in use (another TelePay?); stop that process or choose "
                + "another TELEPAY_HTTP_PORT (or TELEPAY_HTTP_HOST)"
        }
    }
}

/// The exit code for an error that stopped TelePay: 2 when the configuration (variables, resources, the
/// database's credentials) must change, 1 for anything else.
public func exitCode(for error: any Error) -> Int32 {
    switch error {
    case is ConfigurationError: return 2
    case let error as StartupError:
        if case .addressInUse = error { return 1 }
        return 2
    case let error as DatabaseStartupError: return error.isConfigurationProblem ? 2 : 1
    default: return 1
    }
}

/// The database TelePay talks to, plus the embedded server behind it when there is one.
public struct DatabaseHandle: Sendable {
    public var database: Database
    public var embedded: RunningEmbeddedPostgres?

    /// Opens the configured database: starts (or adopts) the embedded cluster, or points at `DATABASE_URL`.
    /// The returned pool must run (`database.run()`) before queries are served.
    /// An external database is tried once before the pool is made: wrong credentials or an unknown database
    /// throw `DatabaseStartupError.refusedByServer` at once; an unreachable one is retried with warnings for
    /// `connectTimeout` (by default TELEPAY_DATABASE_CONNECT_TIMEOUT_SECONDS).
    public static func open(
        configuration: Configuration, telemetry: Telemetry, connectTimeout: Duration? = nil, logger: Logger
    ) async throws -> DatabaseHandle {
        switch configuration.database {
        case .embedded:
            let binaries = try PostgresServerBinaries.locate()
            let cluster = EmbeddedPostgres(dataDirectory: configuration.dataDirectory, binaries: binaries, logger: logger)
            let running = try await cluster.start()
            let database = Database(
                configuration: running.clientConfiguration(), poolSize: configuration.databasePoolSize,
                logger: logger, metrics: telemetry.factory
            )
            return DatabaseHandle(database: database, embedded: running)
        case .external(let url, _):
            logger.info("using external database", metadata: ["database": "\(url.redacted)"])
            try await DatabaseReachability.waitUntilReachable(
                try url.connectionConfiguration(), location: url.redacted, timeout: connectTimeout ?? configuration.databaseConnectTimeout, logger: logger
            )
            let database = Database(
                configuration: url.clientConfiguration, poolSize: configuration.databasePoolSize,
                logger: logger, metrics: telemetry.factory
            )
            return DatabaseHandle(database: database, embedded: nil)
        }
    }
}

/// Loads the migration files the configuration points at.
public func loadMigrations(configuration: Configuration, logger: Logger) throws -> MigrationRunner {
    let migrations = try Migration.load(directory: try resourcesDirectory(configuration) + "/Migrations")
    return MigrationRunner(migrations: migrations, logger: logger)
}

/// Loads and cross-checks the string catalogs.
public func loadLocalizer(configuration: Configuration) throws -> Localizer {
    let directory = try resourcesDirectory(configuration)
    do {
        return try Localizer.load(directory: directory + "/Localization")
    } catch {
        throw StartupError.resourcesUnusable(folder: "Localization", reason: "\(error)")
    }
}

/// Loads and checks `Conversations/*.yaml`; a malformed definition throws with its file, line and reason.
public func loadConversations(configuration: Configuration, localizer: Localizer) throws -> [ConversationDefinition] {
    let directory = try resourcesDirectory(configuration)
    do {
        return try BotAssembly.loadConversations(directory: directory + "/Conversations", localizer: localizer)
    } catch {
        throw StartupError.resourcesUnusable(folder: "Conversations", reason: "\(error)")
    }
}

func resourcesDirectory(_ configuration: Configuration) throws -> String {
    guard let resources = ResourceLocator.locate(configured: configuration.resourcesDirectory) else {
        throw StartupError.resourcesNotFound(configured: configuration.resourcesDirectory)
    }
    return resources
}

/// Runs the connection pool as a service of the group.
struct DatabaseService: Service {
    let database: Database

    func run() async throws {
        await database.run()
    }
}

/// Supervises the embedded server while the group runs and stops it when the group shuts down. It is the
/// first service, so the group tears it down last, after everything that uses the database has stopped.
///
/// TelePay does not restart a server that dies under it: it marks itself failing (`/healthz` 503), logs a
/// critical line and fails, which shuts the group down and makes `telepay serve` exit 1, so systemd or
/// Kubernetes restart the whole process (and with it the server, from a clean state).
struct EmbeddedPostgresService: Service {
    let server: RunningEmbeddedPostgres
    let liveness: Liveness
    let watchdog: ShutdownWatchdog?
    /// How long the rest of the group may take to stop once the server is gone, before the watchdog ends it.
    let shutdownLimit: Duration
    let logger: Logger

    func run() async throws {
        let server = self.server
        let failure = await cancelWhenGracefulShutdown { await server.waitForFailure() }
        if let failure {
            liveness.fail("embedded database: \(failure)")
            logger.critical("embedded database server stopped unexpectedly; TelePay is shutting down so its supervisor can restart it", metadata: [
                "reason": "\(failure)", "data_dir": "\(server.cluster.dataDirectory)",
            ])
            watchdog?.arm(after: shutdownLimit, reason: "embedded database stopped")
            try? await server.stop()
            throw EmbeddedPostgresError.serverStopped(reason: failure)
        }
        try await server.stop()
    }
}

/// Applies pending migrations, then serves HTTP and runs the bot until shutdown. The HTTP server, the bot
/// and the job services only start on an up-to-date schema; a migration problem stops start-up with a
/// message naming the file.
struct CoreService: Service {
    let migrations: MigrationRunner
    let database: Database
    let schemaReady: SchemaGate
    let http: Application<RouterResponder<TelePayRequestContext>>
    let httpHost: String
    let httpPort: Int
    let bot: TelegramBot?
    let logger: Logger

    func run() async throws {
        let applied = try await migrations.apply(on: database)
        logger.info("database schema up to date", metadata: ["applied_now": "\(applied.count)", "known": "\(migrations.migrations.count)"])
        schemaReady.open()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await http.runService()
                } catch let error as IOError where error.errnoCode == EADDRINUSE {
                    throw StartupError.addressInUse(host: httpHost, port: httpPort)
                }
            }
            if let bot {
                group.addTask { try await bot.run() }
            } else {
                logger.notice("Telegram is not configured (TELEGRAM_BOT_TOKEN is unset): serving health and metrics only")
            }
            try await group.waitForAll()
        }
    }
}

/// Runs the hot-wallet sender when a key is configured: it refuses to start against a node on another
/// chain, re-sends stored unconfirmed transfers, then passes every few seconds until shutdown.
struct HotWalletService: Service {
    let sender: TransferSender

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await sender.run(every: .seconds(5))
            }
        } catch is CancellationError {
            // Shutdown cancels the wait between passes; that is a clean stop.
        }
    }
}

/// Adds routes to TelePay's HTTP server, given the database; only the sandbox uses it.
public typealias AdditionalRoutes = @Sendable (Router<TelePayRequestContext>, Database) -> Void

/// The assembled TelePay process: every long-running part as one service group, torn down in reverse order.
public struct TelePayApplication: Sendable {
    public let configuration: Configuration
    public let telemetry: Telemetry
    public let database: DatabaseHandle
    public let jobs: JobsRuntime
    public let serviceGroup: ServiceGroup

    /// Builds the application. `onServerRunning` receives the bound port (useful with `TELEPAY_HTTP_PORT=0`);
    /// `alertHook` hears about failed jobs (by default they are logged at error level and, with admins
    /// configured, sent to them in Telegram). `additionalRoutes` adds routes to TelePay's own HTTP server
    /// (the sandbox's pages) and `clock` replaces the system clock for purchases, payments, access and the periodic
    /// scheduler (the sandbox's clock that can be moved forward); `telepay serve` passes neither.
    public static func build(
        configuration: Configuration,
        logger: Logger,
        gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint],
        alertHook: (any JobAlertHook)? = nil,
        watchdog: ShutdownWatchdog? = nil,
        additionalRoutes: AdditionalRoutes? = nil,
        clock: (any WallClock)? = nil,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws -> TelePayApplication {
        logger.info("starting TelePay", metadata: ["version": "\(TelePayVersion.current)", "configuration": "\(configuration)"])
        if configuration.nowPaymentsIPNSecret != nil && configuration.nowPaymentsAPIKey == nil {
            throw StartupError.ipnSecretWithoutAPIKey
        }
        // Everything read from files is checked before the database starts, so a bad folder costs nothing to undo.
        let migrations = try loadMigrations(configuration: configuration, logger: logger)
        let localizer = try loadLocalizer(configuration: configuration)
        let conversations = try loadConversations(configuration: configuration, localizer: localizer)
        let telemetry = Telemetry()
        let handle = try await DatabaseHandle.open(configuration: configuration, telemetry: telemetry, logger: logger)
        do {
            return try await assemble(
                configuration: configuration, logger: logger, gracefulShutdownSignals: gracefulShutdownSignals, alertHook: alertHook,
                watchdog: watchdog, additionalRoutes: additionalRoutes, clock: clock, onServerRunning: onServerRunning, migrations: migrations, localizer: localizer, conversations: conversations,
                telemetry: telemetry, handle: handle
            )
        } catch {
            // Nothing started so far may outlive a failed start-up: the embedded server above all.
            try? await handle.embedded?.stop()
            throw error
        }
    }

    private static func assemble(
        configuration: Configuration,
        logger: Logger,
        gracefulShutdownSignals: [UnixSignal],
        alertHook: (any JobAlertHook)?,
        watchdog: ShutdownWatchdog?,
        additionalRoutes: AdditionalRoutes?,
        clock: (any WallClock)?,
        onServerRunning: @escaping @Sendable (Int) async -> Void,
        migrations: MigrationRunner,
        localizer: Localizer,
        conversations: [ConversationDefinition],
        telemetry: Telemetry,
        handle: DatabaseHandle
    ) async throws -> TelePayApplication {
        let settings = configuration.subscriptions
        let provider: (any PaymentProvider)? = configuration.nowPaymentsAPIKey.map { key in
            NOWPaymentsClient(
                configuration: .init(baseURL: configuration.nowPaymentsAPIURL, apiKey: key.value, account: configuration.nowPaymentsAccount),
                logger: logger
            )
        }
        if provider == nil {
            logger.notice("subscriber purchases are off: TELEPAY_NOWPAYMENTS_API_KEY is unset")
        } else if configuration.nowPaymentsAccount == nil {
            logger.warning("an order whose every callback is lost cannot be found: set TELEPAY_NOWPAYMENTS_EMAIL and TELEPAY_NOWPAYMENTS_PASSWORD to let TelePay list an invoice's payments")
        }
        let queue = JobQueue(database: handle.database, metrics: telemetry.factory, logger: logger)
        let clock = clock ?? SystemWallClock()
        let purchases = PurchaseService(database: handle.database, provider: provider, settings: settings, clock: clock, logger: logger)
        let telegramClient = configuration.telegramBotToken.map { TelegramBot.makeClient(configuration: configuration, token: $0, logger: logger) }
        let access = telegramClient.map { client in
            AccessService(
                database: handle.database, queue: queue, access: TelegramChannelAccess(client: client), clock: clock, settings: settings, logger: logger
            )
        }
        let botUsername = BotUsername()
        let bot = try telegramClient.map { client in
            try TelegramBot(
                configuration: configuration, client: client, database: handle.database, localizer: localizer,
                conversations: conversations, subscriber: access.map { SubscriberCommands(purchases: purchases, access: $0) },
                botUsername: botUsername, jobs: queue, logger: logger
            )
        }
        let nowPaymentsIPN = configuration.nowPaymentsIPNSecret.map { secret in
            NOWPaymentsIPNReceiver.processing(secret: secret.value, database: handle.database, queue: queue, logger: logger)
        }
        if nowPaymentsIPN == nil {
            logger.notice("NOWPayments callbacks are not accepted: TELEPAY_NOWPAYMENTS_IPN_SECRET is unset")
            if provider != nil {
                logger.warning("invoices will be created but no payment can complete: set TELEPAY_NOWPAYMENTS_IPN_SECRET")
            }
        }
        if provider != nil && settings.publicURL == nil {
            logger.warning("invoices carry no callback or return URL: set TELEPAY_PUBLIC_URL (NOWPayments then uses the dashboard's IPN URL)")
        }
        let liveness = Liveness()
        let router = HTTPRoutes.buildRouter(
            readiness: DatabaseReadinessProbe(database: handle.database, migrations: migrations, embedded: handle.embedded),
            telemetry: telemetry,
            maxBodyBytes: configuration.httpMaxBodyBytes,
            telegramWebhook: bot?.webhookRoute(maxBodyBytes: configuration.httpMaxBodyBytes),
            nowPaymentsIPN: nowPaymentsIPN,
            ipnMaxBodyBytes: configuration.httpLimits.paymentCallbackMaxBodyBytes,
            liveness: liveness,
            paymentReturn: PaymentReturnRoute(purchases: purchases, database: handle.database, localizer: localizer, botUsername: botUsername),
            logger: logger
        )
        additionalRoutes?(router, handle.database)
        let http = TelePayHTTPServer.application(
            router: router, host: configuration.httpHost, port: configuration.httpPort, limits: configuration.httpLimits,
            telemetry: telemetry, logger: logger, onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.httpPort
                logger.info("HTTP server listening", metadata: ["host": "\(configuration.httpHost)", "port": "\(port)"])
                await onServerRunning(port)
            }
        )
        // Alerts reach admins in Telegram through durable jobs when both a bot and admins are configured.
        let adminAlerts = AdminAlerts(
            queue: queue,
            adminChatIDs: bot == nil ? [] : configuration.adminTelegramIDs, logger: logger
        )
        if !adminAlerts.adminChatIDs.isEmpty {
            logger.info("alerts go to admins in Telegram", metadata: ["admins": "\(adminAlerts.adminChatIDs.count)"])
        }
        let changeNow = configuration.changeNowAPIKey.map { key in
            let client = ChangeNowClient(baseURL: configuration.changeNowAPIURL.absoluteString, apiKey: key.value)
            return (client: client, orders: ExchangeOrderService(database: handle.database, api: client, alerts: adminAlerts, logger: logger))
        }
        let exchangeTracking = changeNow.map {
            (tracker: ExchangeTracker(orders: $0.orders, logger: logger), interval: configuration.exchangePollInterval)
        }
        let hotWallet = try HotWalletConfiguration.key(configuration).map { key in
            let rpc = HotWalletConfiguration.rpc(configuration, timeout: .seconds(30))
            let sender = TransferSender(
                key: key, chainId: configuration.ethereumChainId, rpc: rpc,
                database: handle.database, policy: SenderPolicy(confirmations: configuration.ethereumConfirmations),
                alerts: adminAlerts, logger: logger
            )
            return (sender: sender, rpc: rpc)
        }
        // Owners who take the settlement asset itself are paid straight from the hot wallet; owners of other
        // coins through ChangeNOW (when its key is set), funded by the hot wallet, refunds to the hot wallet.
        let payouts = hotWallet.map { wallet in
            PayoutService(
                database: handle.database, queue: queue, wallet: HotWalletPayouts(sender: wallet.sender, rpc: wallet.rpc),
                settlement: settings.settlement,
                exchange: changeNow.map {
                    PayoutExchange(
                        orders: $0.orders, api: $0.client, refundAddress: wallet.sender.wallet.checksummed,
                        verifyingAlertAfter: configuration.exchangeVerifyingAlertAfter
                    )
                },
                // Owners get a link to their transaction on mainnet and Sepolia; on another chain, the bare hash.
                explorer: [1: "https://etherscan.io/tx/", 11_155_111: "https://sepolia.etherscan.io/tx/"][configuration.ethereumChainId] ?? "",
                logger: logger
            )
        }
        if payouts != nil && changeNow == nil {
            logger.warning("owners paid in coins other than ETH on Ethereum are not paid: set TELEPAY_CHANGENOW_API_KEY")
        }
        // Threshold owners: their shares are converted to USDT in batches (paid to the hot wallet itself) and
        // paid in USDT (directly, or through ChangeNOW) once the converted balance reaches the threshold.
        let threshold = configuration.thresholdPayouts
        let thresholdPayouts: (conversions: ConversionService, payouts: PayoutService)? = {
            guard let wallet = hotWallet, let changeNow, let usdt = threshold.usdtContract else { return nil }
            let explorer = [1: "https://etherscan.io/tx/", 11_155_111: "https://sepolia.etherscan.io/tx/"][configuration.ethereumChainId] ?? ""
            let conversions = ConversionService(
                database: handle.database, queue: queue, wallet: HotWalletPayouts(sender: wallet.sender, rpc: wallet.rpc),
                arrivals: ChainConversionArrivals(rpc: wallet.rpc, token: usdt, wallet: wallet.sender.wallet, confirmations: configuration.ethereumConfirmations),
                settlement: settings.settlement,
                exchange: PayoutExchange(
                    orders: changeNow.orders, api: changeNow.client, refundAddress: wallet.sender.wallet.checksummed,
                    verifyingAlertAfter: configuration.exchangeVerifyingAlertAfter
                ),
                hotWallet: wallet.sender.wallet.checksummed,
                settings: ConversionSettings(minimumUSD: threshold.conversionMinimumUSD, interval: threshold.conversionInterval),
                logger: logger
            )
            let payouts = PayoutService(
                database: handle.database, queue: queue, wallet: HotWalletPayouts(sender: wallet.sender, rpc: wallet.rpc, asset: .token(usdt)),
                settlement: .usdt,
                exchange: PayoutExchange(
                    orders: changeNow.orders, api: changeNow.client, refundAddress: wallet.sender.wallet.checksummed,
                    from: ExchangeLeg(currency: "usdt", network: "eth"), verifyingAlertAfter: configuration.exchangeVerifyingAlertAfter
                ),
                explorer: explorer, planning: .converted(unitsPerUSD: SettlementAsset.usdt.unitsPerCoin), planInterval: threshold.payoutInterval,
                logger: logger
            )
            return (conversions, payouts)
        }()
        if payouts != nil && thresholdPayouts == nil {
            logger.warning(
                "owners on the threshold strategy are not paid: threshold payouts need TELEPAY_CHANGENOW_API_KEY and a USDT contract (TELEPAY_USDT_CONTRACT off mainnet)"
            )
        }
        let jobs = try JobsRuntime.build(
            settings: configuration.jobs, database: handle.database, telemetry: telemetry,
            alertHook: alertHook ?? adminAlerts, telegram: bot?.client, exchangeTracking: exchangeTracking,
            payouts: payouts.map { PayoutRunner(services: [$0] + (thresholdPayouts.map { [$0.payouts] } ?? []), conversions: thresholdPayouts?.conversions, metrics: telemetry.factory) },
            reconciliation: hotWallet.map { wallet in
                ReconciliationRunner(
                    reconciliation: Reconciliation(
                        database: handle.database, sender: wallet.sender, rpc: wallet.rpc,
                        tokens: threshold.usdtContract.map { [SettlementAsset.usdt.asset: $0] } ?? [:], orders: changeNow?.orders,
                        lister: configuration.changeNowPrivateAPIKey.map { ChangeNowClient(baseURL: configuration.changeNowAPIURL.absoluteString, apiKey: $0.value) },
                        logger: logger
                    ),
                    queue: queue, metrics: telemetry.factory
                )
            },
            subscriptions: SubscriptionJobs(
                processor: provider.map { PaymentProcessor(database: handle.database, queue: queue, provider: $0, clock: clock, settings: settings, logger: logger) },
                access: access,
                notifier: telegramClient.map { UserNotifier(client: $0, database: handle.database, localizer: localizer) },
                ownerNotifier: telegramClient.map {
                    OwnerNotifier(client: $0, database: handle.database, localizer: localizer, feePercent: settings.platformFeePercent)
                },
                alerts: adminAlerts
            ),
            offerPosts: (configuration.owners.offerPosts, localizer),
            broadcasts: (BroadcastSenderSettings(), localizer),
            clock: clock,
            logger: logger
        )
        let schemaReady = SchemaGate()
        // The group stops services in reverse order: HTTP first (no new work arrives), then the scheduler, the
        // rescuer and the workers (which finish or give back their jobs), and the database pool after all of them.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let embedded = handle.embedded {
            services.append(.init(
                service: EmbeddedPostgresService(
                    server: embedded, liveness: liveness, watchdog: watchdog,
                    shutdownLimit: .seconds(min(configuration.shutdownTimeoutSeconds, 15) + 5), logger: logger
                ),
                failureTerminationBehavior: .gracefullyShutdownGroup,
                serviceName: "embedded-postgres"
            ))
        }
        services.append(.init(service: DatabaseService(database: handle.database), serviceName: "database-pool"))
        if let sender = hotWallet?.sender {
            logger.info("hot wallet configured", metadata: ["wallet": "\(sender.wallet)", "chain_id": "\(configuration.ethereumChainId)"])
            services.append(.init(
                service: AfterMigrations(gate: schemaReady, inner: HotWalletService(sender: sender)),
                failureTerminationBehavior: .gracefullyShutdownGroup,
                serviceName: "hot-wallet"
            ))
        }
        services.append(.init(
            service: AfterMigrations(gate: schemaReady, inner: jobs.pool),
            successTerminationBehavior: .gracefullyShutdownGroup,
            failureTerminationBehavior: .gracefullyShutdownGroup,
            serviceName: "jobs-workers"
        ))
        services.append(.init(
            service: AfterMigrations(gate: schemaReady, inner: jobs.rescuer),
            successTerminationBehavior: .gracefullyShutdownGroup,
            failureTerminationBehavior: .gracefullyShutdownGroup,
            serviceName: "jobs-rescuer"
        ))
        services.append(.init(
            service: AfterMigrations(gate: schemaReady, inner: jobs.scheduler),
            successTerminationBehavior: .gracefullyShutdownGroup,
            failureTerminationBehavior: .gracefullyShutdownGroup,
            serviceName: "jobs-scheduler"
        ))
        services.append(.init(
            service: CoreService(
                migrations: migrations, database: handle.database, schemaReady: schemaReady, http: http,
                httpHost: configuration.httpHost, httpPort: configuration.httpPort, bot: bot, logger: logger
            ),
            successTerminationBehavior: .gracefullyShutdownGroup,
            failureTerminationBehavior: .gracefullyShutdownGroup,
            serviceName: "core"
        ))
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: gracefulShutdownSignals, logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(configuration.shutdownTimeoutSeconds)
        return TelePayApplication(
            configuration: configuration,
            telemetry: telemetry,
            database: handle,
            jobs: jobs,
            serviceGroup: ServiceGroup(configuration: groupConfiguration)
        )
    }

    /// Runs until a shutdown signal (or `triggerGracefulShutdown()`), then stops every service in reverse order.
    public func run() async throws {
        try await serviceGroup.run()
    }

    public func triggerGracefulShutdown() async {
        await serviceGroup.triggerGracefulShutdown()
    }
}

/// TelePay's version, printed by `telepay --version` and logged at start-up.
public enum TelePayVersion {
    public static let current = "0.1.0"
}
