/// Capped exponential backoff, the one formula behind every retry in TelePay (jobs, the Telegram and
/// NOWPayments clients, long polling, member removal, offer posts): attempt n waits `initial × factor^(n-1)`,
/// never more than `maximum`, spread by `jitter`.
///
/// Jitter spreads retries that failed together (one outage) so they do not all come back at once.
public struct Backoff: Sendable, Hashable {
    public enum Jitter: Sendable, Hashable {
        /// The exact delay: for waits a person reads (a cooldown they are told) or a test pins down.
        case none
        /// Give or take this percentage (0–33, so before the cap each delay is still longer than the last).
        case percent(Int)
        /// Anywhere from zero to the delay ("full jitter").
        case full
        /// Anywhere from half the delay to all of it.
        case upperHalf
    }

    public var initial: Duration
    public var maximum: Duration
    public var factor: Int64
    public var jitter: Jitter

    public init(initial: Duration, maximum: Duration, factor: Int64 = 2, jitter: Jitter) {
        precondition(initial >= .zero && maximum >= initial, "backoff delays must not be negative and the cap at least the first delay")
        precondition(factor >= 1, "a backoff's factor is at least 1")
        if case .percent(let percent) = jitter { precondition((0...33).contains(percent), "jitter must be 0–33 % so delays keep growing") }
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
    }

    /// The delay before the retry that follows failed attempt `attempt` (1-based; 0 or less waits nothing).
    public func delay(afterAttempt attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        guard attempt >= 1 else { return .zero }
        let cap = maximum.nanoseconds
        // Growth stops once it passes the cap, so large attempt numbers cannot overflow.
        var base = initial.nanoseconds
        var step = 1
        while step < attempt && base < cap && base > 0 {
            base = base > cap / factor ? cap : base * factor
            step += 1
        }
        base = min(base, cap)
        let spread: Int64
        switch jitter {
        case .none: return .nanoseconds(base)
        case .percent(let percent):
            spread = base / 100 * Int64(percent)
            return .nanoseconds(spread == 0 ? base : min(max(base + Int64.random(in: -spread...spread, using: &generator), 1), cap))
        case .full:
            return .nanoseconds(base > 0 ? Int64.random(in: 0...base, using: &generator) : 0)
        case .upperHalf:
            return .nanoseconds(base > 1 ? Int64.random(in: base / 2...base, using: &generator) : base)
        }
    }

    /// The same, with the system's random numbers.
    public func delay(afterAttempt attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(afterAttempt: attempt, using: &generator)
    }
}

extension Duration {
    /// Whole nanoseconds, saturating at `Int64.max` (about 292 years).
    var nanoseconds: Int64 {
        let parts = components
        let (seconds, overflow) = parts.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        return seconds + parts.attoseconds / 1_000_000_000
    }
}
