import Foundation

/// "At most `count` calls in any window of `window`": the shape of every documented Telegram limit.
public struct RateLimit: Sendable, Hashable {
    public var count: Int
    public var window: Duration

    public init(count: Int, window: Duration) {
        self.count = count
        self.window = window
    }
}

/// The limits the outbound limiter keeps (and the fake Bot API enforces).
public struct TelegramRateLimits: Sendable, Hashable {
    /// All calls together ("not more than 30 messages per second or so").
    public var overall: RateLimit
    /// Messages to one private chat ("avoid more than one message per second", short bursts allowed).
    public var privateChat: RateLimit
    /// Messages to one group or channel ("no more than 20 messages per minute").
    public var groupChat: RateLimit
    /// Added to every window so transit jitter cannot make calls look closer at the server than they were sent.
    public var margin: Duration

    public static let telegram = TelegramRateLimits(
        overall: RateLimit(count: 30, window: .seconds(1)),
        privateChat: RateLimit(count: 3, window: .seconds(3)),
        groupChat: RateLimit(count: 20, window: .seconds(60)),
        margin: .milliseconds(25)
    )

    /// No spacing at all; for tests that need the server's 429 to be the only brake.
    public static let unlimited = TelegramRateLimits(
        overall: RateLimit(count: .max, window: .zero),
        privateChat: RateLimit(count: .max, window: .zero),
        groupChat: RateLimit(count: .max, window: .zero),
        margin: .zero
    )

    public init(overall: RateLimit, privateChat: RateLimit, groupChat: RateLimit, margin: Duration) {
        self.overall = overall
        self.privateChat = privateChat
        self.groupChat = groupChat
        self.margin = margin
    }

    public func limit(for chat: ChatID) -> RateLimit {
        if case .id(let id) = chat, id > 0 { return privateChat }
        return groupChat
    }
}

/// Spaces outbound calls so no documented limit is ever exceeded, even with many concurrent senders.
///
/// Windows are measured from when calls *finished*, not from when they were sent: a call reaches the server
/// somewhere between the two, so counting finished calls (and in-flight ones as "now") keeps every window
/// at the server within its limit however much the network or a busy machine delays individual requests.
/// Calls to one chat go one at a time, in order, each waiting for that chat's window; then every call waits
/// for the overall window, and overall slots are at least `window / count` apart. A busy chat therefore never holds up other chats. When Telegram answers 429
/// anyway, `pause(for:)` stops all sending until `retry_after` has passed.
///
/// Bulk calls (broadcasts) take every overall slot nobody else wants but never make an interactive call
/// wait behind more than one of them: bulk callers line up among themselves first and only the head of
/// that line joins the overall queue, where interactive callers queue too.
public actor OutboundLimiter {
    /// Who is waiting for a slot: someone interacting with the bot now, or a long batch of sends.
    public enum Priority: Sendable, Hashable {
        case interactive
        case bulk
    }

    /// Permission to make one call; hand it back with `release(_:)` when the call has finished.
    public struct Permit: Sendable {
        public let chat: ChatID?
        /// The instant the call was allowed to start.
        public let slot: ContinuousClock.Instant
        fileprivate let gate: Gate?
    }

    public let limits: TelegramRateLimits
    private var overallFinished: [ContinuousClock.Instant] = []
    private var overallInFlight = 0
    /// When the last overall slot was given. Slots are at least `window / count` apart, so they never bunch:
    /// windows timed from each call's end would otherwise keep a burst of `count` calls together forever (a
    /// burst, then nothing for a window), and a reply arriving after a burst would wait most of a window.
    private var lastOverallSlot: ContinuousClock.Instant?
    private var overallTail: Gate?
    private var bulkTail: Gate?
    private var chatLogs: [ChatID: SlidingLog] = [:]
    private var chatTails: [ChatID: Gate] = [:]
    private var pausedUntil: ContinuousClock.Instant?

    public init(limits: TelegramRateLimits = .telegram) {
        self.limits = limits
    }

    /// Waits until a call (to `chat`, when it posts into one) may be sent, and books its slot.
    public func acquire(chat: ChatID?, priority: Priority = .interactive) async throws -> Permit {
        guard let chat else {
            return Permit(chat: nil, slot: try await acquireOverall(priority), gate: nil)
        }
        let previous = chatTails[chat]
        let gate = Gate()
        chatTails[chat] = gate
        do {
            await previous?.wait()
            let chatSlot = (chatLogs[chat] ?? SlidingLog()).earliest(after: .now, limit: limits.limit(for: chat), margin: limits.margin)
            try await ContinuousClock().sleep(until: chatSlot)
            return Permit(chat: chat, slot: try await acquireOverall(priority), gate: gate)
        } catch {
            finish(chat: chat, gate: gate, at: .now)
            throw error
        }
    }

    /// Records that the permitted call finished; the windows it counts in are timed from now.
    public func release(_ permit: Permit) {
        let now = ContinuousClock.now
        overallInFlight -= 1
        if limits.overall.count < Int.max { overallFinished.append(now) }
        if let chat = permit.chat, let gate = permit.gate {
            finish(chat: chat, gate: gate, at: now)
        }
    }

    /// Stops all sending for `duration` (a 429's `retry_after`).
    public func pause(for duration: Duration) {
        let until = ContinuousClock.now + duration
        if pausedUntil.map({ $0 < until }) ?? true { pausedUntil = until }
    }

    private func finish(chat: ChatID, gate: Gate, at instant: ContinuousClock.Instant) {
        var log = chatLogs[chat] ?? SlidingLog()
        log.record(instant, keeping: limits.limit(for: chat).count)
        chatLogs[chat] = log
        gate.open()
        if chatTails[chat] === gate {
            chatTails[chat] = nil
        }
    }

    /// Bulk callers wait for the bulk caller ahead of them to get its slot before they join the overall queue.
    private func acquireOverall(_ priority: Priority) async throws -> ContinuousClock.Instant {
        guard priority == .bulk else { return try await acquireOverallInOrder() }
        let previous = bulkTail
        let gate = Gate()
        bulkTail = gate
        defer {
            gate.open()
            if bulkTail === gate { bulkTail = nil }
        }
        await previous?.wait()
        return try await acquireOverallInOrder()
    }

    /// Callers queue in order; only the head of the queue watches the clock.
    private func acquireOverallInOrder() async throws -> ContinuousClock.Instant {
        let previous = overallTail
        let gate = Gate()
        overallTail = gate
        defer {
            gate.open()
            if overallTail === gate { overallTail = nil }
        }
        await previous?.wait()
        let window = limits.overall.window + limits.margin
        let spacing = limits.overall.count < Int.max ? limits.overall.window / limits.overall.count : .zero
        while true {
            let now = ContinuousClock.now
            if let pausedUntil, pausedUntil > now {
                try await ContinuousClock().sleep(until: pausedUntil)
                continue
            }
            if let last = lastOverallSlot, last + spacing > now {
                try await ContinuousClock().sleep(until: last + spacing)
                continue
            }
            overallFinished.removeAll { $0 <= now - window }
            if overallInFlight + overallFinished.count < limits.overall.count {
                overallInFlight += 1
                lastOverallSlot = now
                return now
            }
            // Wait for the oldest finished call to leave the window, or (when all are in flight) briefly
            // for one to finish.
            let wake = overallFinished.first.map { $0 + window } ?? now + .milliseconds(2)
            try await ContinuousClock().sleep(until: max(wake, now + .milliseconds(1)))
        }
    }
}

/// Send times of one key, oldest first; only the last `limit.count` matter for the next slot.
struct SlidingLog {
    private var times: [ContinuousClock.Instant] = []

    /// The first instant not before `after` (nor before the last booked slot) at which one more call keeps
    /// every window of `limit.window + margin` at or under `limit.count` calls.
    func earliest(after: ContinuousClock.Instant, limit: RateLimit, margin: Duration) -> ContinuousClock.Instant {
        var slot = max(after, times.last ?? after)
        if times.count >= limit.count {
            slot = max(slot, times[times.count - limit.count] + limit.window + margin)
        }
        return slot
    }

    mutating func record(_ instant: ContinuousClock.Instant, keeping count: Int) {
        guard count < Int.max else { return }
        times.append(instant)
        if times.count > count { times.removeFirst(times.count - count) }
    }
}

/// A one-shot barrier: `wait()` returns once `open()` has been called.
final class Gate: @unchecked Sendable {
    private let lock = NSLock()
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = lock.withLock { () -> Bool in
                if isOpen { return true }
                waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func open() {
        let pending = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            isOpen = true
            defer { waiters = [] }
            return waiters
        }
        pending.forEach { $0.resume() }
    }
}
