import Foundation
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import Storage

/// Sweeps for running jobs whose lease expired (their worker was killed or froze) and makes them claimable
/// again; also refreshes the queue-depth gauges. Every instance runs one: a sweep is a single idempotent UPDATE
/// with `SKIP LOCKED`, so instances never fight over it.
public struct JobRescuer: Service {
    public var database: Database
    /// How often to sweep. The rescue window is the workers' lease plus this interval.
    public var sweepInterval: Duration
    /// How often the depth gauges are refreshed (a grouped count over waiting and running jobs).
    public var depthInterval: Duration
    let metrics: JobMetrics
    let alertHook: any JobAlertHook
    let logger: Logger

    static let sweepLimit = 1000

    public init(
        database: Database,
        sweepInterval: Duration = .seconds(5),
        depthInterval: Duration = .seconds(15),
        alertHook: any JobAlertHook,
        metrics: any MetricsFactory = NOOPMetricsHandler.instance,
        logger: Logger
    ) {
        self.init(
            database: database, sweepInterval: sweepInterval, depthInterval: depthInterval, alertHook: alertHook,
            metrics: JobMetrics(factory: metrics), logger: logger
        )
    }

    init(database: Database, sweepInterval: Duration, depthInterval: Duration, alertHook: any JobAlertHook, metrics: JobMetrics, logger: Logger) {
        self.database = database
        self.sweepInterval = sweepInterval
        self.depthInterval = depthInterval
        self.alertHook = alertHook
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        var lastDepth: ContinuousClock.Instant?
        repeat {
            do {
                try await sweep()
            } catch {
                logger.warning("rescuing expired jobs failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            if lastDepth.map({ ContinuousClock.now - $0 >= depthInterval }) ?? true {
                lastDepth = .now
                do {
                    try await refreshDepth()
                } catch {
                    logger.warning("measuring queue depth failed", metadata: ["error": "\(String(reflecting: error))"])
                }
            }
        } while await sleepUnlessShuttingDown(for: sweepInterval)
    }

    /// Rescues every job whose lease has expired; returns how many became claimable again.
    @discardableResult
    public func sweep() async throws -> Int {
        var total = 0
        while true {
            let (rescuedKinds, failed) = try await database.withConnection { connection in
                try await JobStore.rescueExpired(limit: Self.sweepLimit, on: connection, logger: logger)
            }
            let rescued = rescuedKinds.count
            total += rescued
            for kind in rescuedKinds { metrics.kind(kind).rescued.increment() }
            if rescued > 0 {
                logger.notice("rescued jobs whose worker stopped renewing the lease", metadata: ["count": "\(rescued)"])
            }
            for row in failed {
                metrics.kind(row.kind).failed.increment()
                await alertHook.jobFailed(
                    FailedJob(
                        id: row.id, kind: row.kind, attempt: row.attempt, maxAttempts: row.maxAttempts, error: row.error,
                        reason: .leaseExpiredOnFinalAttempt
                    ))
            }
            if rescued + failed.count < Self.sweepLimit { return total }
        }
    }

    func refreshDepth() async throws {
        let (counts, oldest) = try await database.withConnection { connection in
            let rows = try await JobStore.counts(in: [.available, .running, .failed], on: connection, logger: logger)
            var counts: [JobMetrics.DepthKey: Int] = [:]
            for row in rows { counts[JobMetrics.DepthKey(kind: row.kind, state: row.state)] = row.count }
            return (counts, try await JobStore.oldestWaitingAge(on: connection, logger: logger))
        }
        metrics.recordDepth(counts)
        metrics.oldestWaitingAge.record(oldest)
    }
}
