import Foundation
import MetricsTestKit
import PostgresNIO
import Storage
import TestSupport
import Testing

@testable import Jobs

/// A job whose handler fails a set number of times before succeeding.
struct FlakyJob: JobPayload {
    static let kind = "test.flaky"
    static let maxAttempts = 3
    var failures: Int
    var permanent = false
}

struct FlakyHandler: JobHandler {
    let runs: Log<Int>

    var options: JobKindOptions {
        // Short real delays keep the test quick; what it checks is the schedule the engine wrote.
        JobKindOptions(concurrency: 4, retry: RetryPolicy(initialDelay: .milliseconds(60), maximumDelay: .seconds(10), jitterPercent: 20))
    }

    func run(_ payload: FlakyJob, context: JobContext) async throws {
        runs.append(context.attempt)
        if payload.permanent { throw JobFailure.permanent("the invoice was deleted") }
        if context.attempt <= payload.failures { throw JobFailure.retryable("exchange answered 503 on attempt \(context.attempt)") }
    }
}

@Suite("Retries and failures")
struct RetryTests {
    @Test("backoff doubles per attempt within the jitter band, keeps growing until the cap, and never passes it")
    func backoffShape() {
        let policy = RetryPolicy(initialDelay: .seconds(1), maximumDelay: .seconds(3600), jitterPercent: 20)
        for seed in 0..<500 {
            var generator = SeededGenerator(state: UInt64(seed))
            var previous = Duration.zero
            for attempt in 1...30 {
                let delay = policy.delay(afterAttempt: attempt, using: &generator)
                let base = min(Int64(1000) << min(attempt - 1, 20), 3_600_000)
                #expect(delay.milliseconds >= base * 80 / 100 && delay.milliseconds <= min(base * 120 / 100, 3_600_000))
                if base < 3_600_000 / 2 {
                    #expect(delay > previous, "attempt \(attempt) with seed \(seed)")
                }
                previous = delay
            }
        }
    }

    @Test("without jitter the delays are exact powers of two up to the cap")
    func backoffWithoutJitter() {
        let policy = RetryPolicy(initialDelay: .milliseconds(500), maximumDelay: .seconds(5), jitterPercent: 0)
        var generator = SeededGenerator(state: 1)
        let delays = (1...7).map { policy.delay(afterAttempt: $0, using: &generator).milliseconds }
        #expect(delays == [500, 1000, 2000, 4000, 5000, 5000, 5000])
    }

    @Test("errors classify as permanent only when the handler says so")
    func classification() {
        let handler = FlakyHandler(runs: Log())
        #expect(handler.classify(JobFailure.permanent("x")) == .permanent)
        #expect(handler.classify(JobFailure.retryable("x")) == .retryable)
        #expect(handler.classify(CancellationError()) == .retryable)
        let retry = RetryPolicy()
        #expect(
            JobWorkerPool.outcome(of: JobFailure.retryable("x"), class: .retryable, attempt: 3, maxAttempts: 3, retry: retry).isPermanentFailure
                == false)
        if case .failed = JobWorkerPool.outcome(of: JobFailure.retryable("x"), class: .retryable, attempt: 3, maxAttempts: 3, retry: retry) {
        } else {
            Issue.record("a retryable error on the final attempt must fail the job")
        }
        if case .retry = JobWorkerPool.outcome(of: JobFailure.retryable("x"), class: .retryable, attempt: 2, maxAttempts: 3, retry: retry) {
        } else {
            Issue.record("a retryable error before the final attempt must schedule a retry")
        }
    }

    func withFlakyPool<Result: Sendable>(
        _ body: @Sendable (JobQueue, JobWorkerPool, Log<Int>, RecordingAlertHook, TestMetrics) async throws -> Result
    ) async throws -> Result {
        try await withMigratedDatabase(poolSize: 10) { database in
            let metrics = TestMetrics()
            let queue = JobQueue(database: database, metrics: metrics, logger: quietLogger)
            let runs = Log<Int>()
            let alerts = RecordingAlertHook()
            var registry = JobRegistry()
            registry.register(FlakyHandler(runs: runs))
            let pool = JobWorkerPool(
                registry: registry, database: database, configuration: fastPoolConfiguration(), alertHook: alerts,
                metrics: metrics, logger: quietLogger
            )
            return try await withRunningPool(pool) {
                try await body(queue, pool, runs, alerts, metrics)
            }
        }
    }

    @Test("a job failing twice then succeeding runs three times, each retry waiting longer than the last")
    func failTwiceThenSucceed() async throws {
        try await withFlakyPool { queue, pool, runs, alerts, metrics in
            let id = try #require(try await queue.enqueue(FlakyJob(failures: 2)).enqueuedID)
            try await waitUntil("the job completed") { try await queue.job(id)?.state == .completed }
            let job = try #require(try await queue.job(id))
            #expect(runs.all == [1, 2, 3])
            #expect(job.attempt == 3)
            #expect(job.errors.map(\.attempt) == [1, 2])
            let delays = job.errors.compactMap { error in error.retryAt.map { $0.timeIntervalSince(error.at) } }
            #expect(delays.count == 2)
            #expect(delays[0] > 0 && delays[1] > delays[0], "delays \(delays)")
            #expect(alerts.alerts.isEmpty)
            try await waitUntil("the success is counted") { pool.statistics.succeeded == 1 }
            #expect(try metrics.expectCounter("telepay_jobs_retried_total", [("kind", FlakyJob.kind)]).totalValue == 2)
            #expect(try metrics.expectCounter("telepay_jobs_started_total", [("kind", FlakyJob.kind)]).totalValue == 3)
            #expect(try metrics.expectCounter("telepay_jobs_succeeded_total", [("kind", FlakyJob.kind)]).totalValue == 1)
            #expect(try metrics.expectCounter("telepay_jobs_enqueued_total", [("kind", FlakyJob.kind)]).totalValue == 1)
            #expect(try metrics.expectTimer("telepay_jobs_pickup_latency_seconds", [("kind", FlakyJob.kind)]).values.count == 3)
        }
    }

    @Test("a permanent error moves the job straight to failed and alerts once")
    func permanentError() async throws {
        try await withFlakyPool { queue, pool, runs, alerts, metrics in
            let id = try #require(try await queue.enqueue(FlakyJob(failures: 0, permanent: true)).enqueuedID)
            try await waitUntil("the alert hook was called") { !alerts.alerts.isEmpty }
            let job = try #require(try await queue.job(id))
            #expect(job.state == .failed)
            #expect(job.attempt == 1)
            #expect(job.lastError?.contains("the invoice was deleted") == true)
            #expect(runs.all == [1])
            #expect(alerts.alerts.map(\.id) == [id])
            #expect(alerts.alerts.first?.reason == .permanentError)
            #expect(try metrics.expectCounter("telepay_jobs_failed_total", [("kind", FlakyJob.kind)]).totalValue == 1)
        }
    }

    @Test("exhausted retries move the job to failed with the last error and call the alert hook once")
    func exhaustedRetries() async throws {
        let (id, alerts, runs) = try await withFlakyPool { queue, pool, runs, alerts, _ in
            let id = try #require(try await queue.enqueue(FlakyJob(failures: 99)).enqueuedID)
            try await waitUntil("the job failed") { try await queue.job(id)?.state == .failed }
            try await waitUntil("the failure is accounted") { pool.statistics.failed == 1 }
            let job = try #require(try await queue.job(id))
            #expect(job.attempt == 3)
            #expect(job.lastError?.contains("attempt 3") == true)
            #expect(job.errors.count == 3)
            #expect(job.errors.last?.retryAt == nil)
            return (id, alerts, runs)
        }
        // The pool has stopped: no alert can still be on its way.
        #expect(alerts.alerts.map(\.id) == [id])
        #expect(alerts.alerts.first?.reason == .attemptsExhausted)
        #expect(runs.all == [1, 2, 3])
    }

    @Test("retrying a failed job by hand runs it again with one more attempt; other states are refused")
    func manualRetry() async throws {
        try await withFlakyPool { queue, pool, runs, alerts, _ in
            let failing = try #require(try await queue.enqueue(FlakyJob(failures: 0, permanent: true)).enqueuedID)
            try await waitUntil("the job failed") { try await queue.job(failing)?.state == .failed }
            let requeued = try await queue.retry(failing)
            #expect(requeued.state == .available)
            #expect(requeued.maxAttempts == 3)
            try await waitUntil("it failed again") { runs.count == 2 }
            try await waitUntil("the second failure is written") {
                let job = try await queue.job(failing)
                return job?.attempt == 2 && job?.state == .failed
            }

            let fine = try #require(try await queue.enqueue(FlakyJob(failures: 0)).enqueuedID)
            try await waitUntil("the other job completed") { try await queue.job(fine)?.state == .completed }
            await #expect(throws: JobQueueError.notRetryable(fine, state: .completed)) { try await queue.retry(fine) }
            await #expect(throws: JobQueueError.jobNotFound(JobID(999_999))) { try await queue.retry(JobID(999_999)) }
        }
    }

    @Test("a job that used every attempt gets exactly one more when retried by hand")
    func manualRetryAfterExhaustion() async throws {
        try await withFlakyPool { queue, pool, runs, alerts, _ in
            let id = try #require(try await queue.enqueue(FlakyJob(failures: 3)).enqueuedID)
            try await waitUntil("the job failed") { try await queue.job(id)?.state == .failed }
            let requeued = try await queue.retry(id)
            #expect(requeued.attempt == 3 && requeued.maxAttempts == 4)
            try await waitUntil("the extra attempt succeeded") { try await queue.job(id)?.state == .completed }
            #expect(runs.all == [1, 2, 3, 4])
        }
    }

    @Test("re-queueing is refused while another job holds the same unique key")
    func manualRetryRespectsUniqueKey() async throws {
        try await withMigratedDatabase { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            let first = try #require(try await queue.enqueue(EchoJob(value: 1), options: JobOptions(uniqueKey: "payout:7")).enqueuedID)
            _ = try await database.withConnection { connection in
                try await connection.query(
                    "UPDATE jobs SET state = 'failed', finalized_at = now(), attempt = 1 WHERE id = \(first.rawValue)",
                    logger: quietLogger
                )
            }
            let second = try #require(try await queue.enqueue(EchoJob(value: 2), options: JobOptions(uniqueKey: "payout:7")).enqueuedID)
            await #expect(throws: JobQueueError.uniqueKeyTaken(second, key: "payout:7")) { try await queue.retry(first) }
        }
    }
}
