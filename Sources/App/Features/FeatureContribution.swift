import Jobs
import Localization
import Logging
import ServiceLifecycle
import Storage

/// What one feature adds to the process. `TelePayApplication` folds every contribution into the job engine
/// (handlers and periodic tasks) and the service group (long-running services), so adding a feature is
/// adding one contribution.
struct FeatureContribution {
    /// Registers the feature's job handlers.
    var registerJobs: (inout JobRegistry) -> Void = { _ in }
    /// The feature's periodic tasks; the scheduler enqueues them in the order the features come.
    var periodicTasks: [PeriodicTask] = []
    /// Long-running services; they start after the database pool and stop before it, once the job engine
    /// has stopped (the group stops services in reverse order).
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
}

/// What the composition root makes once and every feature is built from.
struct AssemblyContext: Sendable {
    let configuration: Configuration
    let database: Database
    /// The process's one job queue: the job engine, the bot, the callbacks, alerts and payouts share it.
    let queue: JobQueue
    let localizer: Localizer
    let telemetry: Telemetry
    let clock: any WallClock
    let alerts: AdminAlerts
    /// Opens once migrations are applied; feature services wait for it.
    let schemaReady: SchemaGate
    let logger: Logger
}
