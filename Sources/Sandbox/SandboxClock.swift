import Foundation
import Jobs
import Synchronization

/// The sandbox's clock: the real time plus an offset the clock control moves forward, so reminders and expiry
/// can be seen without waiting. Only the sandbox builds TelePay with it.
public final class SandboxClock: WallClock {
    private let offset = Mutex<TimeInterval>(0)

    public init() {}

    public func now() -> Date {
        Date().addingTimeInterval(offset.withLock { $0 })
    }

    /// How far ahead of the real time the sandbox runs.
    public var advancedBy: TimeInterval { offset.withLock { $0 } }

    /// Moves the clock forward by `seconds`; a negative or non-finite amount is ignored (what happened cannot
    /// un-happen). The clock control checks what it passes.
    public func advance(by seconds: TimeInterval) {
        guard seconds.isFinite, seconds > 0 else { return }
        offset.withLock { $0 += seconds }
    }
}
