import Foundation
import PostgresNIO
import Storage
import TestSupport
import Testing

@testable import Jobs

/// A stand-in for a business change that must happen together with its follow-up job.
private struct BusinessFailure: Error {}

@Suite("Enqueueing")
struct EnqueueTests {
    func claimAll(_ kind: String, on database: Database) async throws -> [ClaimedJob] {
        try await database.withConnection { connection in
            try await JobStore.claim(wanted: [(kind, 100)], workerID: "probe", lease: .seconds(30), on: connection, logger: quietLogger)
        }
    }

    @Test("a rolled-back transaction leaves neither the business row nor its job")
    func rollbackLeavesNothing() async throws {
        try await withMigratedDatabase { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            _ = try await database.withConnection { connection in
                try await connection.query("CREATE TABLE business_rows (id INT PRIMARY KEY)", logger: quietLogger)
            }
            await #expect(throws: BusinessFailure.self) {
                try await database.withTransaction { connection in
                    try await connection.query("INSERT INTO business_rows VALUES (1)", logger: quietLogger)
                    try await queue.enqueue(EchoJob(value: 1), on: connection)
                    throw BusinessFailure()
                }
            }
            await #expect(throws: BusinessFailure.self) {
                try await queue.transaction { transaction in
                    try await transaction.connection.query("INSERT INTO business_rows VALUES (2)", logger: quietLogger)
                    try await transaction.enqueue(EchoJob(value: 2))
                    throw BusinessFailure()
                }
            }
            #expect(try await count("SELECT count(*) FROM business_rows", on: database) == 0)
            #expect(try await count("SELECT count(*) FROM jobs", on: database) == 0)
        }
    }

    @Test("a job enqueued in a transaction becomes claimable only when that transaction commits")
    func visibleOnlyAfterCommit() async throws {
        try await withMigratedDatabase(poolSize: 6) { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            let committed = try await database.withTransaction { connection in
                let result = try await queue.enqueue(EchoJob(value: 7), on: connection)
                // Another connection, as a worker would use, sees nothing to claim yet.
                let claimedBeforeCommit = try await claimAll(EchoJob.kind, on: database)
                #expect(claimedBeforeCommit.isEmpty)
                return result
            }
            let claimed = try await claimAll(EchoJob.kind, on: database)
            #expect(claimed.map(\.id) == [committed.enqueuedID].compactMap { $0 })
            #expect(claimed.first?.attempt == 1)
            #expect(try JSONDecoder().decode(EchoJob.self, from: Data(claimed[0].payload.utf8)) == EchoJob(value: 7))
        }
    }

    @Test("a running pool runs committed jobs, woken by notification whichever way they were enqueued")
    func poolRunsJobs() async throws {
        try await withMigratedDatabase(poolSize: 10) { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            let runs = Log<(value: Int, attempt: Int)>()
            var registry = JobRegistry()
            registry.register(EchoHandler(runs: runs))
            // A poll interval far longer than the test, so only a notification can wake the pool.
            var configuration = fastPoolConfiguration()
            configuration.pollInterval = .seconds(3600)
            let pool = JobWorkerPool(
                registry: registry, database: database, configuration: configuration, alertHook: RecordingAlertHook(), logger: quietLogger)
            try await withRunningPool(pool) {
                try await waitUntil("the pool listens for notifications") { pool.isListening }
                try await queue.enqueue(EchoJob(value: 1))
                try await database.withTransaction { connection in
                    try await queue.enqueue(EchoJob(value: 2), on: connection)
                    try await queue.enqueueBatch([EchoJob(value: 3)], on: connection)
                }
                try await queue.transaction { transaction in
                    try await transaction.enqueue(EchoJob(value: 4))
                    try await transaction.enqueueBatch([EchoJob(value: 5)])
                }
                try await waitUntil("all five jobs ran") { runs.count == 5 }
                try await waitUntil("all five completions are written") { pool.statistics.succeeded == 5 }
            }
            #expect(Set(runs.all.map(\.value)) == [1, 2, 3, 4, 5])
            #expect(try await count("SELECT count(*) FROM jobs WHERE state = 'completed' AND attempt = 1", on: database) == 5)
        }
    }

    @Test("with notifications off, polling still picks jobs up")
    func pollingWithoutNotifications() async throws {
        try await withMigratedDatabase(poolSize: 10) { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            let runs = Log<(value: Int, attempt: Int)>()
            var registry = JobRegistry()
            registry.register(EchoHandler(runs: runs))
            let pool = JobWorkerPool(
                registry: registry, database: database, configuration: fastPoolConfiguration(listens: false),
                alertHook: RecordingAlertHook(), logger: quietLogger
            )
            try await withRunningPool(pool) {
                try await queue.enqueue(EchoJob(value: 42))
                try await waitUntil("the job ran") { pool.statistics.succeeded == 1 }
            }
            #expect(runs.all.map(\.value) == [42])
        }
    }

    @Test("a job scheduled for later is not claimable before its time")
    func scheduledLater() async throws {
        try await withMigratedDatabase { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            try await queue.enqueue(EchoJob(value: 1), options: JobOptions(runAt: Date().addingTimeInterval(3600)))
            let past = try await queue.enqueue(EchoJob(value: 2), options: JobOptions(runAt: Date().addingTimeInterval(-1)))
            let claimed = try await claimAll(EchoJob.kind, on: database)
            #expect(claimed.map(\.id) == [past.enqueuedID].compactMap { $0 })
        }
    }

    @Test("concurrent duplicate enqueues of one unique key produce one job; the others say they were duplicates")
    func concurrentDuplicates() async throws {
        try await withMigratedDatabase(poolSize: 12) { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            let results = try await withThrowingTaskGroup(of: EnqueueResult.self) { group in
                for value in 0..<24 {
                    group.addTask {
                        try await database.withTransaction { connection in
                            try await queue.enqueue(EchoJob(value: value), options: JobOptions(uniqueKey: "invoice:42"), on: connection)
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let enqueued = results.compactMap(\.enqueuedID)
            #expect(enqueued.count == 1)
            #expect(results.filter(\.isDuplicate).count == 23)
            #expect(try await count("SELECT count(*) FROM jobs WHERE unique_key = 'invoice:42'", on: database) == 1)
            // Every duplicate that found the job still waiting names it.
            for case .duplicate(let existing?) in results {
                #expect(existing == enqueued.first)
            }
        }
    }

    @Test("a unique key is free again once its job has finished")
    func uniqueKeyFreedAfterCompletion() async throws {
        try await withMigratedDatabase { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            let first = try await queue.enqueue(EchoJob(value: 1), options: JobOptions(uniqueKey: "k"))
            #expect(try await queue.enqueue(EchoJob(value: 2), options: JobOptions(uniqueKey: "k")) == .duplicate(existing: first.enqueuedID))
            let claimed = try await claimAll(EchoJob.kind, on: database)
            #expect(try await queue.enqueue(EchoJob(value: 3), options: JobOptions(uniqueKey: "k")).isDuplicate, "a running job still holds its key")
            _ = try await database.withConnection { connection in
                try await JobStore.record([(claimed[0].id, claimed[0].attempt, .succeeded)], on: connection, logger: quietLogger)
            }
            #expect(try await queue.enqueue(EchoJob(value: 4), options: JobOptions(uniqueKey: "k")).enqueuedID != nil)
        }
    }

    @Test("invalid kinds, attempts and unique keys are refused before reaching the database")
    func validation() async throws {
        struct BadKind: JobPayload {
            static let kind = "Bad Kind"
        }
        try await withMigratedDatabase { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            await #expect(throws: JobQueueError.invalidKind("Bad Kind")) { try await queue.enqueue(BadKind()) }
            await #expect(throws: JobQueueError.invalidMaxAttempts(kind: EchoJob.kind, 0)) {
                try await queue.enqueue(EchoJob(value: 1), options: JobOptions(maxAttempts: 0))
            }
            await #expect(throws: JobQueueError.invalidUniqueKey("")) {
                try await queue.enqueue(EchoJob(value: 1), options: JobOptions(uniqueKey: ""))
            }
        }
    }
}
