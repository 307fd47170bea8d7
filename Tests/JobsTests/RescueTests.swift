import Foundation
import MetricsTestKit
import PostgresNIO
import Storage
import TestSupport
import Testing

@testable import Jobs

/// A job held by the test: its first attempt waits at a gate, later attempts return at once.
struct HeldJob: JobPayload {
    static let kind = "test.held"
    var failLate = false
}

struct HeldHandler: JobHandler {
    let gate: Gate
    let runs: Log<(worker: String, attempt: Int)>
    let worker: String
    var concurrency = 10

    var options: JobKindOptions { JobKindOptions(concurrency: concurrency) }

    func run(_ payload: HeldJob, context: JobContext) async throws {
        runs.append((worker, context.attempt))
        guard context.attempt == 1 else { return }
        try await gate.wait()
        if payload.failLate { throw JobFailure.permanent("late failure from a stale attempt") }
    }
}

@Suite("Leases, rescue and fencing")
struct RescueTests {
    func claim(on database: Database, lease: Duration = .seconds(30)) async throws -> [ClaimedJob] {
        try await database.withConnection { connection in
            try await JobStore.claim(wanted: [(EchoJob.kind, 100)], workerID: "probe", lease: lease, on: connection, logger: quietLogger)
        }
    }

    func expireLeases(on database: Database) async throws {
        _ = try await database.withConnection { connection in
            try await connection.query(
                "UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE state = 'running'", logger: quietLogger
            )
        }
    }

    @Test("an expired lease makes the job claimable again with its attempt kept, and the next claim counts a new attempt")
    func rescueKeepsAttempt() async throws {
        try await withMigratedDatabase { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            let id = try #require(try await queue.enqueue(EchoJob(value: 1)).enqueuedID)
            #expect(try await claim(on: database).map(\.attempt) == [1])
            let rescuer = JobRescuer(database: database, alertHook: RecordingAlertHook(), logger: quietLogger)
            #expect(try await rescuer.sweep() == 0, "a live lease is left alone")
            try await expireLeases(on: database)
            #expect(try await rescuer.sweep() == 1)
            let rescued = try #require(try await queue.job(id))
            #expect(rescued.state == .available && rescued.attempt == 1)
            #expect(rescued.lastError?.contains("lease expired") == true)
            #expect(try await claim(on: database).map(\.attempt) == [2])
        }
    }

    @Test("fencing: every outcome of a rescued attempt is ignored once a later attempt holds the job")
    func fencedWrites() async throws {
        try await withMigratedDatabase { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            let id = try #require(try await queue.enqueue(EchoJob(value: 1)).enqueuedID)
            _ = try await claim(on: database)
            try await expireLeases(on: database)
            try await JobRescuer(database: database, alertHook: RecordingAlertHook(), logger: quietLogger).sweep()
            _ = try await claim(on: database)
            let stale: [AttemptOutcome] = [
                .succeeded, .failed(error: "late", permanent: true), .retry(after: .seconds(1), error: "late"), .released,
            ]
            for outcome in stale {
                let result = try await database.withConnection { connection in
                    try await JobStore.record([(id, 1, outcome)], on: connection, logger: quietLogger)
                }
                #expect(result.applied.isEmpty && result.failed.isEmpty, "\(outcome.category) of attempt 1")
                let alive = try await database.withConnection { connection in
                    try await JobStore.heartbeat([(id, 1)], lease: .seconds(30), on: connection, logger: quietLogger)
                }
                #expect(alive.isEmpty, "a heartbeat for attempt 1 must not renew attempt 2's lease")
            }
            let job = try #require(try await queue.job(id))
            #expect(job.state == .running && job.attempt == 2)
            let current = try await database.withConnection { connection in
                try await JobStore.record([(id, 2, .succeeded)], on: connection, logger: quietLogger)
            }
            #expect(current.applied == [id])
        }
    }

    @Test("the rescuer reports queue depth by kind and state, dropping emptied pairs to zero, and the oldest wait")
    func queueDepth() async throws {
        try await withMigratedDatabase { database in
            let metrics = TestMetrics()
            let queue = JobQueue(database: database, logger: quietLogger)
            try await queue.enqueue(EchoJob(value: 1), options: JobOptions(runAt: Date().addingTimeInterval(-120)))
            try await queue.enqueue(EchoJob(value: 2))
            try await queue.enqueue(EchoJob(value: 3), options: JobOptions(runAt: Date().addingTimeInterval(3600)))
            let rescuer = JobRescuer(database: database, alertHook: RecordingAlertHook(), metrics: metrics, logger: quietLogger)
            func depth(_ state: String) throws -> Double? {
                try metrics.expectGauge("telepay_jobs_queue_depth", [("kind", EchoJob.kind), ("state", state)]).lastValue
            }
            try await rescuer.refreshDepth()
            #expect(try depth("available") == 2)
            #expect(try depth("scheduled") == 1)
            #expect(try metrics.expectGauge("telepay_jobs_oldest_waiting_seconds").lastValue ?? 0 >= 120)
            _ = try await claim(on: database)
            try await rescuer.refreshDepth()
            #expect(try depth("available") == 0)
            #expect(try depth("running") == 2)
        }
    }

    @Test("a job whose lease expires on its final attempt fails and alerts instead of looping")
    func leaseExpiredOnFinalAttempt() async throws {
        try await withMigratedDatabase { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            let id = try #require(try await queue.enqueue(EchoJob(value: 1), options: JobOptions(maxAttempts: 1)).enqueuedID)
            _ = try await claim(on: database)
            try await expireLeases(on: database)
            let alerts = RecordingAlertHook()
            #expect(try await JobRescuer(database: database, alertHook: alerts, logger: quietLogger).sweep() == 0)
            #expect(try await queue.job(id)?.state == .failed)
            #expect(alerts.alerts.map(\.reason) == [.leaseExpiredOnFinalAttempt])
        }
    }

    @Test("a worker that stops heartbeating has its jobs re-run by another within the rescue window; its late outcomes change nothing")
    func frozenWorker() async throws {
        try await withMigratedDatabase(poolSize: 16) { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            let gate = Gate()
            let runs = Log<(worker: String, attempt: Int)>()
            let alerts = RecordingAlertHook()
            // Worker A claims with a 2 s lease and never renews it: a frozen process, as seen from the database.
            var registryA = JobRegistry()
            // Its two slots stay taken by the frozen handlers, so it cannot claim the rescued jobs itself.
            registryA.register(HeldHandler(gate: gate, runs: runs, worker: "A", concurrency: 2))
            let poolA = JobWorkerPool(
                registry: registryA, database: database,
                configuration: fastPoolConfiguration(workerID: "worker-a", lease: .seconds(2), heartbeat: .seconds(3600)),
                alertHook: alerts, logger: quietLogger
            )
            var registryB = JobRegistry()
            registryB.register(HeldHandler(gate: gate, runs: runs, worker: "B"))
            let poolB = JobWorkerPool(
                registry: registryB, database: database,
                configuration: fastPoolConfiguration(workerID: "worker-b", lease: .seconds(2), heartbeat: .milliseconds(500)),
                alertHook: alerts, logger: quietLogger
            )
            let rescuer = JobRescuer(database: database, sweepInterval: .milliseconds(200), alertHook: alerts, logger: quietLogger)

            let completes = try #require(try await queue.enqueue(HeldJob()).enqueuedID)
            let fails = try #require(try await queue.enqueue(HeldJob(failLate: true)).enqueuedID)
            try await withRunningPool(poolA) {
                try await waitUntil("worker A holds both jobs") { runs.count == 2 }
                try await withRunningService({ try await rescuer.run() }) {
                    try await withRunningPool(poolB) {
                        // The rescue window the issue sets: a dead worker's job runs again within 30 seconds.
                        try await waitUntil("worker B re-ran both jobs", timeout: .seconds(30)) {
                            let first = try await queue.job(completes)
                            let second = try await queue.job(fails)
                            return first?.state == .completed && second?.state == .completed
                        }
                    }
                }
                gate.open()
                try await waitUntil("worker A's late outcomes were refused") { poolA.statistics.staleWrites == 2 }
            }
            for id in [completes, fails] {
                let job = try #require(try await queue.job(id))
                #expect(job.state == .completed)
                #expect(job.attempt == 2)
                #expect(job.attemptedBy == "worker-b")
            }
            #expect(runs.all.filter { $0.worker == "B" }.map(\.attempt) == [2, 2])
            #expect(poolA.statistics.succeeded == 0 && poolA.statistics.failed == 0)
            #expect(alerts.alerts.isEmpty, "a stale attempt's failure must not alert")
        }
    }

    @Test("heartbeats keep a long job's lease alive, so it is never rescued while its worker lives")
    func heartbeatKeepsLease() async throws {
        try await withMigratedDatabase(poolSize: 12) { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            let gate = Gate()
            let runs = Log<(worker: String, attempt: Int)>()
            var registry = JobRegistry()
            registry.register(HeldHandler(gate: gate, runs: runs, worker: "A"))
            let pool = JobWorkerPool(
                registry: registry, database: database,
                // A lease long enough that a starved heartbeat on a loaded 2-core machine still lands in time.
                configuration: fastPoolConfiguration(lease: .seconds(3), heartbeat: .milliseconds(300)),
                alertHook: RecordingAlertHook(), logger: quietLogger
            )
            let rescuer = JobRescuer(database: database, sweepInterval: .milliseconds(100), alertHook: RecordingAlertHook(), logger: quietLogger)
            let id = try #require(try await queue.enqueue(HeldJob()).enqueuedID)
            try await withRunningPool(pool) {
                try await withRunningService({ try await rescuer.run() }) {
                    try await waitUntil("the job runs") { runs.count == 1 }
                    // Two lease lengths past the claim, still held: only heartbeats can have done that.
                    try await waitUntil("the lease was renewed well past its first expiry") {
                        try await count(
                            "SELECT count(*) FROM jobs WHERE state = 'running' AND lease_expires_at > attempted_at + interval '6 seconds'",
                            on: database
                        ) == 1
                    }
                    gate.open()
                    try await waitUntil("the job completed") { try await queue.job(id)?.state == .completed }
                }
            }
            #expect(try await queue.job(id)?.attempt == 1)
            #expect(runs.count == 1)
            #expect(pool.statistics.staleWrites == 0)
        }
    }
}
