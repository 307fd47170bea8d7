import Synchronization
import TelegramBotAPI
import Testing

@Suite("Outbound limiter priorities")
struct LimiterPriorityTests {
    /// Records the order in which permits were granted.
    final class Order: Sendable {
        let granted = Mutex<[String]>([])
        func add(_ name: String) { granted.withLock { $0.append(name) } }
        var all: [String] { granted.withLock { $0 } }
    }

    @Test("an interactive call waits behind at most one bulk call, however many are queued")
    func interactiveJumpsTheBulkLine() async throws {
        // 5 calls a second overall: 40 bulk calls take 8 s, so they are all queued when the reply arrives.
        let limits = TelegramRateLimits(
            overall: RateLimit(count: 5, window: .seconds(1)), privateChat: RateLimit(count: 3, window: .seconds(3)),
            groupChat: RateLimit(count: 20, window: .seconds(60)), margin: .zero
        )
        let limiter = OutboundLimiter(limits: limits)
        let order = Order()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask {
                    let permit = try await limiter.acquire(chat: .id(10_000 + Int64(index)), priority: .bulk)
                    order.add("bulk")
                    await limiter.release(permit)
                }
            }
            // Wait until the first window is used up and the rest queue.
            while order.all.count < 5 { try await Task.sleep(for: .milliseconds(10)) }
            let permit = try await limiter.acquire(chat: .id(1001), priority: .interactive)
            order.add("reply")
            await limiter.release(permit)
            group.cancelAll()
        }
        let position = try #require(order.all.firstIndex(of: "reply"))
        let bulkBefore = order.all[..<position].count
        // The five of the first window, at most one bulk call already at the head of the line, and at most
        // one more window's worth if the machine stalled between the two steps above.
        #expect(bulkBefore <= 11, "the reply waited behind \(bulkBefore) bulk calls")
        #expect(bulkBefore < 40)
    }

    @Test("with nobody else waiting, bulk calls use every slot: 20 calls at 10 a second take about 2 windows")
    func bulkUsesTheFreeRate() async throws {
        let limits = TelegramRateLimits(
            overall: RateLimit(count: 10, window: .seconds(1)), privateChat: RateLimit(count: 3, window: .seconds(3)),
            groupChat: RateLimit(count: 20, window: .seconds(60)), margin: .zero
        )
        let limiter = OutboundLimiter(limits: limits)
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<20 {
                group.addTask {
                    let permit = try await limiter.acquire(chat: .id(20_000 + Int64(index)), priority: .bulk)
                    await limiter.release(permit)
                }
            }
            try await group.waitForAll()
        }
        // Two full windows: the 11th call waits for the first window to pass, so at least 1 s; generous above.
        #expect(ContinuousClock.now - started >= .seconds(1))
        #expect(ContinuousClock.now - started < .seconds(15))
    }
}
