import Bot
import Broadcasts
import ExchangeOrders
import Jobs
import Localization
import Logging
import Payouts
import ServiceLifecycle
import Storage
import Subscriptions
import Synchronization
import TelegramBotAPI

/// The job handlers of subscriber purchases, as far as this process can run them: payment processing needs
/// the provider, everything that talks to Telegram needs the bot.
public struct SubscriptionJobs: Sendable {
    public var processor: PaymentProcessor?
    public var access: AccessService?
    public var notifier: UserNotifier?
    /// Sends channel owners their notifications (sales, donations, refunds, payouts, tests).
    public var ownerNotifier: OwnerNotifier?
    /// Where payment and access alerts go (the admins, the log).
    public var alerts: any SubscriptionAlertSink

    public init(
        processor: PaymentProcessor?, access: AccessService?, notifier: UserNotifier?, ownerNotifier: OwnerNotifier? = nil,
        alerts: any SubscriptionAlertSink
    ) {
        self.processor = processor
        self.access = access
        self.notifier = notifier
        self.ownerNotifier = ownerNotifier
        self.alerts = alerts
    }
}

/// The job engine as wired into TelePay: the queue that components enqueue through, and the services that run
/// jobs (worker pool, rescuer, periodic scheduler).
public struct JobsRuntime: Sendable {
    public let queue: JobQueue
    public let pool: JobWorkerPool
    public let rescuer: JobRescuer
    public let scheduler: PeriodicScheduler

    /// Every job kind TelePay runs and every periodic task it schedules is registered here. The scheduler reads
    /// `clock` (the sandbox's can be moved forward, and then the missed slots run at once).
    public static func build(
        settings: JobsSettings,
        database: Database,
        telemetry: Telemetry,
        alertHook: any JobAlertHook,
        telegram: TelegramClient? = nil,
        exchangeTracking: (tracker: ExchangeTracker, interval: Duration)? = nil,
        payouts: PayoutRunner? = nil,
        reconciliation: ReconciliationRunner? = nil,
        subscriptions: SubscriptionJobs? = nil,
        offerPosts: (settings: OfferPostSettings, localizer: Localizer)? = nil,
        broadcasts: (settings: BroadcastSenderSettings, localizer: Localizer)? = nil,
        clock: any WallClock = SystemWallClock(),
        logger: Logger
    ) throws -> JobsRuntime {
        let queue = JobQueue(database: database, metrics: telemetry.factory, logger: logger)
        var registry = JobRegistry()
        registry.register(Housekeeper(database: database, retention: settings.completedRetention))
        var tasks = [try Housekeeper.periodicTask()]
        if let telegram {
            registry.register(TelegramMessageSender(client: telegram))
            if let offerPosts {
                registry.register(OfferPostPublisher(
                    client: telegram, database: database, localizer: offerPosts.localizer, queue: queue, settings: offerPosts.settings
                ))
                registry.register(OfferPostScanner(database: database, queue: queue, clock: offerPosts.settings.clock))
                tasks.append(try OfferPostScanner.periodicTask())
            }
            if let broadcasts {
                let store = BroadcastStore(database: database, logger: logger)
                registry.register(BroadcastSender(
                    store: store, delivery: TelegramBroadcastDelivery(client: telegram, database: database, logger: logger),
                    display: TelegramBroadcastProgress(client: telegram, localizer: broadcasts.localizer, logger: logger),
                    settings: broadcasts.settings
                ))
                registry.register(BroadcastResumeScan(store: store, queue: queue))
                tasks.append(try BroadcastResumeScan.periodicTask())
            }
        }
        if let exchangeTracking {
            registry.register(ExchangeStatusPoller(tracker: exchangeTracking.tracker))
            tasks.append(try ExchangeStatusPoller.periodicTask(every: exchangeTracking.interval))
        }
        if let payouts {
            registry.register(payouts)
            tasks.append(try PayoutRunner.periodicTask(every: .seconds(15)))
        }
        if let reconciliation {
            registry.register(reconciliation)
            tasks.append(try ReconciliationRunner.periodicTask(every: .seconds(3600)))
        }
        if let subscriptions, let processor = subscriptions.processor {
            registry.register(processor)
            registry.register(PaymentRechecker(processor: processor))
            tasks.append(try PaymentRechecker.periodicTask(every: processor.settings.paymentRecheckInterval))
        }
        if let subscriptions, subscriptions.processor != nil || subscriptions.access != nil {
            registry.register(SubscriptionAlertDeliverer(sink: subscriptions.alerts))
        }
        if let notifier = subscriptions?.notifier {
            registry.register(notifier)
        }
        if let ownerNotifier = subscriptions?.ownerNotifier {
            registry.register(ownerNotifier)
        }
        if let access = subscriptions?.access {
            registry.register(InviteDeliverer(service: access))
            registry.register(JoinRequestDecider(service: access))
            registry.register(MemberJoinChecker(service: access))
            registry.register(ExpirySweeper(service: access))
            registry.register(ReminderSender(service: access))
            tasks += [try ExpirySweeper.periodicTask(), try ReminderSender.periodicTask()]
        }

        let pool = JobWorkerPool(
            registry: registry,
            database: database,
            configuration: JobWorkerConfiguration(
                pollInterval: settings.pollInterval,
                listensForNotifications: settings.listensForNotifications,
                lease: settings.lease,
                heartbeatInterval: settings.heartbeatInterval,
                shutdownGrace: settings.shutdownGrace
            ),
            alertHook: alertHook,
            metrics: telemetry.factory,
            logger: logger
        )
        let rescuer = JobRescuer(
            database: database, sweepInterval: JobsSettings.rescueSweepInterval, alertHook: alertHook,
            metrics: telemetry.factory, logger: logger
        )
        let scheduler = try PeriodicScheduler(tasks: tasks, queue: queue, clock: clock, logger: logger)
        return JobsRuntime(queue: queue, pool: pool, rescuer: rescuer, scheduler: scheduler)
    }
}

/// Opens once the schema is migrated; services that need the schema wait for it.
final class SchemaGate: Sendable {
    private struct State {
        var isOpen = false
        var waiters: [Int: CheckedContinuation<Void, any Error>] = [:]
        var nextID = 0
    }

    private enum WaitDecision {
        case proceed, cancelled, wait
    }

    private let state = Mutex(State())

    func open() {
        let waiters = state.withLock { state in
            state.isOpen = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once open; throws `CancellationError` if the task is cancelled first.
    func wait() async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Decided under the lock, so a cancellation racing with this registration is never missed.
                let decision: WaitDecision = state.withLock { state in
                    if state.isOpen { return .proceed }
                    if Task.isCancelled { return .cancelled }
                    state.waiters[id] = continuation
                    return .wait
                }
                switch decision {
                case .proceed: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .wait: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }
}

/// Runs a service only once the schema is up to date. The group starts every service at once, but workers must
/// not claim from a `jobs` table that a pending migration has yet to create.
struct AfterMigrations<Inner: Service>: Service {
    let gate: SchemaGate
    let inner: Inner

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { [gate] in try await gate.wait() }
        } catch is CancellationError {
            return
        }
        try await inner.run()
    }
}
