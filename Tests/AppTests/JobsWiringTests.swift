import App
import Foundation
import Jobs
import OperatorCommands
import PostgresNIO
import Storage
import Synchronization
import TestSupport
import Testing

/// Collects alerts so the test can see the application's hook is the one it passed in.
private final class CollectingAlertHook: JobAlertHook {
    let failures = Mutex<[FailedJob]>([])

    func jobFailed(_ job: FailedJob) async {
        failures.withLock { $0.append(job) }
    }
}

@Suite("Jobs in the application")
struct JobsWiringTests {
    func environment(database: PostgresClient.Configuration, socketFolder: String) -> [String: String] {
        [
            "DATABASE_URL": "postgres://\(EmbeddedPostgres.username)@/\(database.database ?? "")?host=\(socketFolder)",
            "TELEPAY_HTTP_PORT": "0",
            "TELEPAY_RESOURCES_DIR": RepositoryPaths.root,
            "TELEPAY_JOBS_POLL_INTERVAL_MS": "50",
        ]
    }

    @Test("after migrating, the application schedules and runs housekeeping as a job, records job metrics, and stops cleanly")
    func housekeepingRunsInTheApplication() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let server = try await TestPostgres.shared.server()
        let configuration = try Configuration.load(environment: environment(database: database, socketFolder: server.cluster.socketDirectory))
        let application = try await TelePayApplication.build(
            configuration: configuration, logger: quietLogger, gracefulShutdownSignals: [], alertHook: CollectingAlertHook()
        )
        let running = Task { try await application.run() }
        let queue = application.jobs.queue
        var completed = false
        for _ in 0..<3000 where !completed {
            try await Task.sleep(for: .milliseconds(20))
            let summary = try? await queue.summary()
            completed = summary?.counts.contains { $0.kind == HousekeepingJob.kind && $0.state == "completed" && $0.count == 1 } == true
        }
        #expect(completed, "the housekeeping slot was enqueued at start-up and run by the worker pool")
        for _ in 0..<3000 where !application.telemetry.render().contains("telepay_jobs_succeeded_total{kind=\"jobs.housekeeping\"} 1") {
            try await Task.sleep(for: .milliseconds(20))
        }
        let metrics = application.telemetry.render()
        #expect(metrics.contains("telepay_jobs_succeeded_total{kind=\"jobs.housekeeping\"} 1"))
        #expect(metrics.contains("telepay_jobs_pickup_latency_seconds_count{kind=\"jobs.housekeeping\"} 1"))
        #expect(metrics.contains("telepay_jobs_enqueued_total{kind=\"jobs.housekeeping\"} 1"))

        await application.triggerGracefulShutdown()
        try await running.value
        #expect(application.jobs.pool.statistics.held == 0, "nothing is left claimed after shutdown")
    }

    @Test("job settings are read from the environment, and a shutdown grace as long as the whole shutdown is refused")
    func jobSettings() throws {
        let configuration = try Configuration.load(environment: [
            "TELEPAY_JOBS_POLL_INTERVAL_MS": "250", "TELEPAY_JOBS_LISTEN": "false", "TELEPAY_JOBS_LEASE_SECONDS": "9",
            "TELEPAY_JOBS_RETENTION_HOURS": "48", "TELEPAY_JOBS_SHUTDOWN_GRACE_SECONDS": "5",
        ])
        #expect(
            configuration.jobs
                == JobsSettings(
                    pollInterval: .milliseconds(250), listensForNotifications: false, lease: .seconds(9),
                    completedRetention: .seconds(48 * 3600), shutdownGrace: .seconds(5)
                ))
        #expect(configuration.jobs.heartbeatInterval == .seconds(3))
        #expect(throws: ConfigurationError.self) {
            try Configuration.load(environment: ["TELEPAY_JOBS_SHUTDOWN_GRACE_SECONDS": "30", "TELEPAY_SHUTDOWN_TIMEOUT_SECONDS": "30"])
        }
        do {
            _ = try Configuration.load(environment: ["TELEPAY_JOBS_LISTEN": "maybe", "TELEPAY_JOBS_LEASE_SECONDS": "60"])
            Issue.record("invalid job settings were accepted")
        } catch {
            #expect(Set(error.problems.map(\.variable)) == ["TELEPAY_JOBS_LISTEN", "TELEPAY_JOBS_LEASE_SECONDS"])
        }
    }

    @Test("telepay jobs shows counts by kind and state, the oldest waiting job and recent failures")
    func report() {
        let failedAt = Date(timeIntervalSince1970: 1_767_225_600)
        let summary = JobQueueSummary(
            counts: [
                .init(kind: "jobs.housekeeping", state: "completed", count: 12),
                .init(kind: "payments.confirm", state: "available", count: 3),
                .init(kind: "payments.confirm", state: "failed", count: 1),
            ],
            oldestWaiting: .init(id: JobID(41), kind: "payments.confirm", waitingSeconds: 95),
            recentFailures: [
                JobRecord(
                    id: JobID(7), kind: "payments.confirm", payload: "{}", state: .failed, attempt: 20, maxAttempts: 20, runAt: failedAt,
                    uniqueKey: nil, attemptedBy: "vm:1:2", lastError: "exchange answered 503\nagain", errors: [], createdAt: failedAt,
                    finalizedAt: failedAt
                )
            ]
        )
        #expect(
            JobsReport.render(summary) == """
                KIND               STATE         COUNT
                jobs.housekeeping  completed        12
                payments.confirm   available         3
                payments.confirm   failed            1

                oldest waiting job: #41 (payments.confirm), ready for 1m 35s
                recent failures (newest first; `telepay jobs retry ID` re-queues one):
                  #7 payments.confirm attempt 20/20, failed 2026-01-01T00:00:00Z: exchange answered 503 again
                """)
        #expect(
            JobsReport.render(JobQueueSummary(counts: [], oldestWaiting: nil, recentFailures: [])) == """
                no jobs

                oldest waiting job: none waiting
                recent failures: none
                """)
    }
}
