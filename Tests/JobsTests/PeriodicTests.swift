import Foundation
import PostgresNIO
import Storage
import Synchronization
import TestSupport
import Testing

@testable import Jobs

/// A clock the test moves by hand.
final class ManualClock: WallClock {
    private let current: Mutex<Date>

    init(_ start: Date) {
        current = Mutex(start)
    }

    func now() -> Date { current.withLock { $0 } }

    func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }
}

struct SweepJob: JobPayload {
    static let kind = "test.sweep"
    var slot: PeriodicSlot
}

struct DigestJob: JobPayload {
    static let kind = "test.digest"
    var slot: PeriodicSlot
}

@Suite("Periodic scheduling")
struct PeriodicTests {
    // 2026-01-01T00:00:00Z, a multiple of every interval used here.
    static let origin: Int64 = 1_767_225_600

    @Test("run-once plans the current slot, folding in any missed ones")
    func runOncePlans() {
        let plan = { (last: Int64?, now: Int64) in
            SlotPlanner.plan(intervalSeconds: 60, catchUp: .runOnce, lastStart: last, now: now)
        }
        let t = Self.origin
        #expect(plan(nil, t + 5) == .init(start: t, coversFrom: t), "the first run ever covers its own slot")
        #expect(plan(t, t + 59) == nil, "the slot is already enqueued")
        #expect(plan(t, t + 60) == .init(start: t + 60, coversFrom: t + 60), "the next slot, on time")
        #expect(plan(t, t + 600) == .init(start: t + 600, coversFrom: t + 60), "nine missed slots, one run")
        #expect(plan(t + 60, t + 30) == nil, "a clock behind the newest slot enqueues nothing")
    }

    @Test("skip plans a slot only when it is seen within its tolerance")
    func skipPlans() {
        let plan = { (last: Int64?, now: Int64) in
            SlotPlanner.plan(intervalSeconds: 3600, catchUp: .skip(tolerance: .seconds(120)), lastStart: last, now: now)
        }
        let t = Self.origin
        #expect(plan(t - 3600, t + 120) == .init(start: t, coversFrom: t))
        #expect(plan(t - 3600, t + 121) == nil, "late: dropped")
        #expect(plan(t - 3 * 3600, t + 30) == .init(start: t, coversFrom: t), "missed slots are dropped, the on-time one runs")
        #expect(plan(nil, t + 1800) == nil, "a new task waits for its next slot rather than run late")
        #expect(plan(t, t + 60) == nil)
    }

    @Test("slot boundaries align to the interval since the epoch")
    func boundaries() {
        #expect(SlotPlanner.nextBoundary(after: Self.origin, intervalSeconds: 300) == Self.origin + 300)
        #expect(SlotPlanner.nextBoundary(after: Self.origin + 299, intervalSeconds: 300) == Self.origin + 300)
        #expect(SlotPlanner.floorDiv(-1, 60) == -1)
    }

    @Test("tasks with bad names, fractional intervals or duplicate names are refused")
    func taskValidation() throws {
        #expect(throws: PeriodicTaskError.invalidName("Sweep")) {
            try PeriodicTask("Sweep", every: .seconds(60), catchUp: .runOnce) { SweepJob(slot: $0) }
        }
        #expect(throws: PeriodicTaskError.invalidInterval(task: "sweep", .milliseconds(1500))) {
            try PeriodicTask("sweep", every: .milliseconds(1500), catchUp: .runOnce) { SweepJob(slot: $0) }
        }
    }

    @Test("a scheduler refuses two tasks with one name")
    func duplicateTaskNames() async throws {
        let task = try PeriodicTask("sweep", every: .seconds(60), catchUp: .runOnce) { SweepJob(slot: $0) }
        _ = try await withTestDatabase { database in
            #expect(throws: PeriodicTaskError.duplicateName("sweep")) {
                try PeriodicScheduler(tasks: [task, task], queue: JobQueue(database: database, logger: quietLogger), logger: quietLogger)
            }
        }
    }

    func slots(of kind: String, on database: Database) async throws -> [PeriodicSlot] {
        try await database.withConnection { connection in
            let rows = try await connection.query(
                "SELECT payload::text FROM jobs WHERE kind = \(kind) ORDER BY id", logger: quietLogger
            )
            var slots: [PeriodicSlot] = []
            for try await text in rows.decode(String.self) {
                slots.append(try JSONDecoder().decode(SweepJob.self, from: Data(text.utf8)).slot)
            }
            return slots
        }
    }

    /// Marks every job completed, as workers would; from then on only the slot table stands between a slot and a
    /// second run of it (the jobs' unique index no longer applies).
    func completeAll(on database: Database) async throws {
        _ = try await database.withConnection { connection in
            try await connection.query(
                "UPDATE jobs SET state = 'completed', finalized_at = now(), attempt = 1 WHERE state = 'available'",
                logger: quietLogger
            )
        }
    }

    @Test("two schedulers on one database enqueue each slot exactly once over many simulated slots")
    func twoSchedulersNoDuplicates() async throws {
        try await withMigratedDatabase(poolSize: 8) { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            let start = Date(timeIntervalSince1970: TimeInterval(Self.origin))
            // The two instances' clocks disagree by a few seconds, as real clocks do.
            let clockA = ManualClock(start)
            let clockB = ManualClock(start.addingTimeInterval(3))
            func tasks() throws -> [PeriodicTask] {
                [
                    try PeriodicTask("expiry", every: .seconds(60), catchUp: .runOnce) { SweepJob(slot: $0) },
                    try PeriodicTask("payouts", every: .seconds(300), catchUp: .runOnce) { SweepJob(slot: $0) },
                    try PeriodicTask("conversion", every: .seconds(900), catchUp: .runOnce) { SweepJob(slot: $0) },
                ]
            }
            let a = try PeriodicScheduler(tasks: try tasks(), queue: queue, clock: clockA, logger: quietLogger)
            let b = try PeriodicScheduler(tasks: try tasks(), queue: queue, clock: clockB, logger: quietLogger)
            var generator = SeededGenerator(state: 7)
            var lastSeen = clockB.now()
            for step in 0..<400 {
                async let fromA = a.enqueueDueSlots()
                async let fromB = b.enqueueDueSlots()
                _ = await (fromA, fromB)
                lastSeen = clockB.now()
                // Ticks up to 20 s apart: every one-minute slot is seen, at a random point within it.
                let advance = TimeInterval(Int.random(in: 5...20, using: &generator))
                clockA.advance(by: advance)
                clockB.advance(by: advance)
                if step % 7 == 0 { try await completeAll(on: database) }
            }
            let end = Int64(lastSeen.timeIntervalSince1970)
            let enqueued = try await slots(of: SweepJob.kind, on: database)
            for (task, interval) in [("expiry", Int64(60)), ("payouts", 300), ("conversion", 900)] {
                let starts = enqueued.filter { $0.task == task }.map { Int64($0.start.timeIntervalSince1970) }
                let expected = Array(stride(from: Self.origin, through: end, by: Int(interval)))
                #expect(starts.sorted() == expected, "\(task): every slot once, none missing")
                #expect(Set(starts).count == starts.count, "\(task): no slot twice")
            }
            #expect(enqueued.allSatisfy { $0.coversFrom == $0.start }, "no slot was missed, so none covers more than itself")
            #expect(try await count("SELECT count(*) FROM periodic_slots", on: database) == enqueued.count)
        }
    }

    @Test("after downtime, run-once enqueues one job covering the gap and skip drops the late slot")
    func catchUpAfterGap() async throws {
        try await withMigratedDatabase { database in
            let queue = JobQueue(database: database, logger: quietLogger)
            let clock = ManualClock(Date(timeIntervalSince1970: TimeInterval(Self.origin + 1)))
            let tasks = [
                try PeriodicTask("sweep", every: .seconds(60), catchUp: .runOnce) { SweepJob(slot: $0) },
                try PeriodicTask("digest", every: .seconds(60), catchUp: .skip(tolerance: .seconds(10))) { DigestJob(slot: $0) },
            ]
            let before = try PeriodicScheduler(tasks: tasks, queue: queue, clock: clock, logger: quietLogger)
            #expect(Set(await before.enqueueDueSlots().map(\.task)) == ["sweep", "digest"])

            // The process is down for ten minutes and comes back 30 s into a slot.
            clock.advance(by: 630)
            let after = try PeriodicScheduler(tasks: tasks, queue: queue, clock: clock, logger: quietLogger)
            let caughtUp = await after.enqueueDueSlots()
            #expect(caughtUp.count == 1)
            let sweep = try #require(caughtUp.first)
            #expect(sweep.task == "sweep")
            #expect(sweep.start == Date(timeIntervalSince1970: TimeInterval(Self.origin + 600)))
            #expect(sweep.coversFrom == Date(timeIntervalSince1970: TimeInterval(Self.origin + 60)))
            #expect(await after.enqueueDueSlots().isEmpty, "the late digest slot stays skipped")

            // The next boundary is on time for both.
            clock.advance(by: 35)
            let next = await after.enqueueDueSlots()
            #expect(Set(next.map(\.task)) == ["sweep", "digest"])
            #expect(next.allSatisfy { $0.start == Date(timeIntervalSince1970: TimeInterval(Self.origin + 660)) && $0.coversFrom == $0.start })
            #expect(try await count("SELECT count(*) FROM jobs WHERE kind = 'test.digest'", on: database) == 2)
            #expect(try await count("SELECT count(*) FROM jobs WHERE kind = 'test.sweep'", on: database) == 3)
            #expect(try await count("SELECT count(*) FROM jobs WHERE unique_key = 'periodic:sweep:2026-01-01T00:10:00Z'", on: database) == 1)
        }
    }
}
