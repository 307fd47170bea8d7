import Resilience
import Testing

@Suite("Backoff")
struct BackoffTests {
    /// A generator that always returns the same number, so jittered delays are reproducible.
    struct Fixed: RandomNumberGenerator {
        var value: UInt64
        mutating func next() -> UInt64 { value }
    }

    @Test("without jitter: initial, then ×factor per attempt, never past the cap; no attempt waits nothing")
    func exact() {
        let doubling = Backoff(initial: .milliseconds(500), maximum: .seconds(30), jitter: .none)
        #expect((0...8).map { doubling.delay(afterAttempt: $0) } == [
            .zero, .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(30), .seconds(30),
        ])
        let quadrupling = Backoff(initial: .seconds(60), maximum: .seconds(3600), factor: 4, jitter: .none)
        #expect((1...5).map { quadrupling.delay(afterAttempt: $0) } == [.seconds(60), .seconds(240), .seconds(960), .seconds(3600), .seconds(3600)])
    }

    @Test("a huge attempt number or a huge cap cannot overflow")
    func noOverflow() {
        let backoff = Backoff(initial: .seconds(1), maximum: .seconds(Int64.max / 2), jitter: .none)
        #expect(backoff.delay(afterAttempt: 10_000) > .seconds(1_000_000))
        #expect(Backoff(initial: .seconds(1), maximum: .seconds(3600), jitter: .none).delay(afterAttempt: Int.max) == .seconds(3600))
    }

    @Test("percent jitter stays within the percentage and the cap, for the lowest and the highest draw")
    func percentJitter() {
        let backoff = Backoff(initial: .seconds(10), maximum: .seconds(60), jitter: .percent(20))
        for value: UInt64 in [0, .max] {
            var generator = Fixed(value: value)
            let delays = (1...5).map { backoff.delay(afterAttempt: $0, using: &generator) }
            for (attempt, delay) in delays.enumerated() {
                let base = min(Duration.seconds(10 * (1 << attempt)), .seconds(60))
                #expect(delay >= base * 0.8 && delay <= min(base * 1.2, .seconds(60)), "attempt \(attempt + 1): \(delay)")
            }
        }
    }

    @Test("full jitter draws from zero to the delay; upper-half jitter from half of it to all of it")
    func fullAndUpperHalf() {
        let full = Backoff(initial: .seconds(4), maximum: .seconds(60), jitter: .full)
        let half = Backoff(initial: .seconds(4), maximum: .seconds(60), jitter: .upperHalf)
        var low = Fixed(value: 0)
        var high = Fixed(value: .max)
        #expect(full.delay(afterAttempt: 2, using: &low) == .zero)
        #expect(full.delay(afterAttempt: 2, using: &high) <= .seconds(8))
        #expect(half.delay(afterAttempt: 2, using: &low) == .seconds(4))
        #expect(half.delay(afterAttempt: 2, using: &high) <= .seconds(8))
    }
}
