import Bot
import Conversations
import Foundation
import HotWallet
import Hummingbird
import Jobs
import Localization
import Logging
import NIOCore
import ServiceLifecycle
import Storage
import Subscriptions
import UnixSignals

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
                try url.connectionConfiguration(), location: url.redacted, timeout: connectTimeout ?? configuration.databaseConnectTimeout,
                logger: logger
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
            logger.critical(
                "embedded database server stopped unexpectedly; TelePay is shutting down so its supervisor can restart it",
                metadata: [
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

/// Adds routes to TelePay's HTTP server, given the database and the process's job queue; only the sandbox uses it.
public typealias AdditionalRoutes = @Sendable (Router<TelePayRequestContext>, Database, JobQueue) -> Void

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
        let features = try Features(configuration)
        // Everything read from files is checked before the database starts, so a bad folder costs nothing to undo.
        let migrations = try loadMigrations(configuration: configuration, logger: logger)
        let localizer = try loadLocalizer(configuration: configuration)
        let conversations = try loadConversations(configuration: configuration, localizer: localizer)
        let telemetry = Telemetry()
        let handle = try await DatabaseHandle.open(configuration: configuration, telemetry: telemetry, logger: logger)
        do {
            return try await assemble(
                configuration: configuration, features: features, logger: logger, gracefulShutdownSignals: gracefulShutdownSignals,
                alertHook: alertHook, watchdog: watchdog, additionalRoutes: additionalRoutes, clock: clock, onServerRunning: onServerRunning,
                migrations: migrations, localizer: localizer, conversations: conversations, telemetry: telemetry, handle: handle
            )
        } catch {
            // Nothing started so far may outlive a failed start-up: the embedded server above all.
            try? await handle.embedded?.stop()
            throw error
        }
    }

    /// The composition root: the shared pieces are made once (one job queue, one record of the bot's
    /// identity), each feature the configuration turns on is built from them and contributes its job kinds,
    /// periodic tasks and services, and everything is folded into one service group.
    private static func assemble(
        configuration: Configuration,
        features: Features,
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
        features.log(configuration, to: logger)
        let database = handle.database
        let queue = JobQueue(database: database, metrics: telemetry.factory, logger: logger)
        // Alerts reach admins in Telegram through durable jobs when both a bot and admins are configured.
        let adminAlerts = AdminAlerts(queue: queue, adminChatIDs: features.adminChatIDs, logger: logger)
        let context = AssemblyContext(
            configuration: configuration, database: database, queue: queue, localizer: localizer, telemetry: telemetry,
            clock: clock ?? SystemWallClock(), alerts: adminAlerts, schemaReady: SchemaGate(), logger: logger
        )
        let identity = BotIdentity()

        let payments = features.payments.map { PaymentsFeature(key: $0, callbackSecret: features.paymentCallbacks, context: context) }
        let purchases = PurchaseService(
            database: database, provider: payments?.provider, settings: configuration.subscriptions, clock: context.clock, logger: logger
        )
        let telegram = try features.telegram.map {
            try TelegramFeature(token: $0, context: context, purchases: purchases, conversations: conversations, identity: identity)
        }
        let exchange = features.exchange.map { ExchangeFeature(key: $0, context: context) }
        let hotWallet = features.hotWallet.map {
            HotWalletFeature(key: $0, thresholdUSDT: features.thresholdPayouts, exchange: exchange, context: context)
        }
        var contributions = [
            try telegram?.contribution(context), try exchange?.contribution(context), try hotWallet?.contribution(context),
            try payments?.contribution(),
        ].compactMap { $0 }
        if payments != nil || telegram != nil {
            // Payment and access alerts reach the admins through one job kind, whichever feature raises them.
            contributions.append(FeatureContribution(registerJobs: { $0.register(SubscriptionAlertDeliverer(sink: adminAlerts)) }))
        }

        let liveness = Liveness()
        let router = HTTPRoutes.buildRouter(
            readiness: DatabaseReadinessProbe(database: database, migrations: migrations, embedded: handle.embedded),
            telemetry: telemetry,
            maxBodyBytes: configuration.httpMaxBodyBytes,
            telegramWebhook: telegram?.bot.webhookRoute(maxBodyBytes: configuration.httpMaxBodyBytes),
            nowPaymentsIPN: payments?.callbacks,
            ipnMaxBodyBytes: configuration.httpLimits.paymentCallbackMaxBodyBytes,
            liveness: liveness,
            paymentReturn: PaymentReturnRoute(purchases: purchases, database: database, localizer: localizer, bot: identity),
            logger: logger
        )
        additionalRoutes?(router, database, queue)
        let http = TelePayHTTPServer.application(
            router: router, host: configuration.httpHost, port: configuration.httpPort, limits: configuration.httpLimits,
            telemetry: telemetry, logger: logger,
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.httpPort
                logger.info("HTTP server listening", metadata: ["host": "\(configuration.httpHost)", "port": "\(port)"])
                await onServerRunning(port)
            }
        )
        let jobs = try JobsRuntime.build(
            settings: configuration.jobs, database: database, queue: queue, telemetry: telemetry, alertHook: alertHook ?? adminAlerts,
            contributions: contributions, clock: context.clock, logger: logger
        )
        // The group stops services in reverse order: HTTP and the bot first (no new work arrives), then the
        // scheduler, the rescuer and the workers (which finish or give back their jobs), then the features'
        // own services (the hot wallet's sender), and the database pool after all of them.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let embedded = handle.embedded {
            services.append(
                .init(
                    service: EmbeddedPostgresService(
                        server: embedded, liveness: liveness, watchdog: watchdog,
                        shutdownLimit: .seconds(min(configuration.shutdownTimeoutSeconds, 15) + 5), logger: logger
                    ),
                    failureTerminationBehavior: .gracefullyShutdownGroup,
                    serviceName: "embedded-postgres"
                ))
        }
        services.append(.init(service: DatabaseService(database: database), serviceName: "database-pool"))
        services += contributions.flatMap(\.services)
        services.append(
            .init(
                service: AfterMigrations(gate: context.schemaReady, inner: jobs.pool),
                successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup,
                serviceName: "jobs-workers"
            ))
        services.append(
            .init(
                service: AfterMigrations(gate: context.schemaReady, inner: jobs.rescuer),
                successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup,
                serviceName: "jobs-rescuer"
            ))
        services.append(
            .init(
                service: AfterMigrations(gate: context.schemaReady, inner: jobs.scheduler),
                successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup,
                serviceName: "jobs-scheduler"
            ))
        services.append(
            .init(
                service: CoreService(
                    migrations: migrations, database: database, schemaReady: context.schemaReady, http: http,
                    httpHost: configuration.httpHost, httpPort: configuration.httpPort, bot: telegram?.bot, logger: logger
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
