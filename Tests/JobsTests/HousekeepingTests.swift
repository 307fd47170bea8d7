import Foundation
import PostgresNIO
import Storage
import TestSupport
import Testing

@testable import Jobs

@Suite("Housekeeping and inspection")
struct HousekeepingTests {
    func execute(_ sql: String, on database: Database) async throws {
        _ = try await database.withConnection { connection in
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: quietLogger)
        }
    }

    @Test("completed jobs past the retention period are deleted; recent completions, waiting and failed jobs stay")
    func deletesOnlyExpiredCompletions() async throws {
        try await withMigratedDatabase { database in
            try await execute(
                """
                INSERT INTO jobs (kind, state, attempt, max_attempts, finalized_at, run_at)
                SELECT 'test.echo', 'completed', 1, 1, now() - interval '2 days', now() - interval '2 days' FROM generate_series(1, 12);
                """,
                on: database
            )
            try await execute(
                "INSERT INTO jobs (kind, state, attempt, max_attempts, finalized_at) VALUES ('test.echo', 'completed', 1, 1, now() - interval '1 hour')",
                on: database
            )
            try await execute(
                "INSERT INTO jobs (kind, state, attempt, max_attempts, finalized_at, last_error) VALUES ('test.echo', 'failed', 1, 1, now() - interval '30 days', 'boom')",
                on: database
            )
            try await execute("INSERT INTO jobs (kind, max_attempts, run_at) VALUES ('test.echo', 1, now() - interval '3 days')", on: database)
            // A chunk smaller than the backlog proves the loop goes on until nothing is left.
            let housekeeper = Housekeeper(database: database, retention: .seconds(24 * 3600), chunkSize: 5)
            let removed = try await housekeeper.deleteExpired()
            #expect(removed.jobs == 12)
            #expect(try await count("SELECT count(*) FROM jobs WHERE state = 'completed'", on: database) == 1)
            #expect(try await count("SELECT count(*) FROM jobs WHERE state = 'failed'", on: database) == 1)
            #expect(try await count("SELECT count(*) FROM jobs WHERE state = 'available'", on: database) == 1)
        }
    }

    @Test("old periodic slot records are pruned, but each task keeps its newest for catch-up")
    func prunesSlots() async throws {
        try await withMigratedDatabase { database in
            try await execute(
                """
                INSERT INTO periodic_slots (task, slot_start, covers_from)
                SELECT task, now() - (n || ' days')::interval, now() - (n || ' days')::interval
                FROM (VALUES ('expiry'), ('payouts')) AS t(task), generate_series(2, 5) AS n
                """,
                on: database
            )
            try await execute("INSERT INTO periodic_slots (task, slot_start, covers_from) VALUES ('expiry', now(), now())", on: database)
            let removed = try await Housekeeper(database: database, retention: .seconds(24 * 3600)).deleteExpired()
            #expect(removed.slots == 7)
            #expect(try await count("SELECT count(*) FROM periodic_slots WHERE task = 'expiry'", on: database) == 1)
            #expect(try await count("SELECT count(*) FROM periodic_slots WHERE task = 'payouts'", on: database) == 1)
            #expect(
                try await count("SELECT count(*) FROM periodic_slots WHERE task = 'payouts' AND slot_start > now() - interval '3 days'", on: database)
                    == 1)
        }
    }

    @Test("housekeeping runs as a periodic job through the ordinary worker pool")
    func housekeepingAsPeriodicJob() async throws {
        try await withMigratedDatabase(poolSize: 10) { database in
            try await execute(
                "INSERT INTO jobs (kind, state, attempt, max_attempts, finalized_at) VALUES ('test.echo', 'completed', 1, 1, now() - interval '2 days')",
                on: database
            )
            let queue = JobQueue(database: database, logger: quietLogger)
            let scheduler = try PeriodicScheduler(tasks: [try Housekeeper.periodicTask()], queue: queue, logger: quietLogger)
            let slots = await scheduler.enqueueDueSlots()
            #expect(slots.map(\.task) == ["jobs.housekeeping"])
            var registry = JobRegistry()
            registry.register(Housekeeper(database: database, retention: .seconds(3600)))
            let pool = JobWorkerPool(
                registry: registry, database: database, configuration: fastPoolConfiguration(), alertHook: RecordingAlertHook(), logger: quietLogger
            )
            try await withRunningPool(pool) {
                try await waitUntil("housekeeping ran") { pool.statistics.succeeded == 1 }
            }
            #expect(try await count("SELECT count(*) FROM jobs WHERE kind = 'test.echo'", on: database) == 0)
        }
    }

    @Test("the summary counts jobs by kind and state, names the oldest waiting job and lists recent failures")
    func summary() async throws {
        try await withMigratedDatabase { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            try await execute("INSERT INTO jobs (kind, max_attempts, run_at) VALUES ('test.echo', 1, now() - interval '90 seconds')", on: database)
            try await execute("INSERT INTO jobs (kind, max_attempts, run_at) VALUES ('test.echo', 1, now() - interval '10 seconds')", on: database)
            try await execute("INSERT INTO jobs (kind, max_attempts, run_at) VALUES ('test.echo', 1, now() + interval '1 hour')", on: database)
            try await execute(
                """
                INSERT INTO jobs (kind, state, attempt, max_attempts, finalized_at, last_error, errors)
                VALUES ('test.flaky', 'failed', 2, 2, now(), 'exchange down',
                        jsonb_build_array(jsonb_build_object('attempt', 2, 'at', now(), 'error', 'exchange down')))
                """,
                on: database
            )
            let summary = try await queue.summary()
            #expect(
                summary.counts == [
                    .init(kind: "test.echo", state: "available", count: 2),
                    .init(kind: "test.echo", state: "scheduled", count: 1),
                    .init(kind: "test.flaky", state: "failed", count: 1),
                ])
            let oldest = try #require(summary.oldestWaiting)
            #expect(oldest.kind == "test.echo" && oldest.waitingSeconds >= 90)
            #expect(summary.recentFailures.map(\.lastError) == ["exchange down"])
            #expect(summary.recentFailures.first?.errors.map(\.attempt) == [2])
            #expect(summary.recentFailures.first?.errors.first?.retryAt == nil)
        }
    }
}
