import Resilience
import Testing

@Suite("Backoff")
struct BackoffTests {
    /// SplitMix64: reproducible draws for the jittered cases. (A generator that returns one constant can make
    /// `random(in:)` reject its draw forever.)
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("without jitter: initial, then ×factor per attempt, never past the cap; no attempt waits nothing")
    func exact() {
        let doubling = Backoff(initial: .milliseconds(500), maximum: .seconds(30), jitter: .none)
        #expect(
            (0...8).map { doubling.delay(afterAttempt: $0) } == [
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

    @Test("percent jitter stays within the percentage and the cap")
    func percentJitter() {
        let backoff = Backoff(initial: .seconds(10), maximum: .seconds(60), jitter: .percent(20))
        for seed: UInt64 in 0..<200 {
            var generator = Seeded(state: seed)
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
        var generator = Seeded(state: 7)
        let fulls = (0..<500).map { _ in full.delay(afterAttempt: 2, using: &generator) }
        let halves = (0..<500).map { _ in half.delay(afterAttempt: 2, using: &generator) }
        #expect(fulls.allSatisfy { $0 >= .zero && $0 <= .seconds(8) } && fulls.contains { $0 < .seconds(4) })
        #expect(halves.allSatisfy { $0 >= .seconds(4) && $0 <= .seconds(8) } && Set(halves).count > 1)
    }
}
