import Dispatch
import Foundation
import Logging
import Storage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The last resort of a shutdown: once armed, it ends the process with exit code 1 if it is still running
/// when the time is up, after asking the embedded server (if this process owns one) for a fast shutdown.
/// It runs on a Dispatch timer, not in Swift concurrency, so a stuck task or a saturated cooperative pool
/// cannot hold it up. The service group's own shutdown timeout cancels services; this catches whatever
/// ignores cancellation (a query waiting on a dead database, for one).
public final class ShutdownWatchdog: Sendable {
    private let armed = Mutex(false)
    private let embedded = Mutex<RunningEmbeddedPostgres?>(nil)
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// The embedded server to stop before a forced exit.
    public func guardServer(_ server: RunningEmbeddedPostgres?) {
        embedded.withLock { $0 = server }
    }

    /// Starts the countdown; later calls do nothing.
    public func arm(after limit: Duration, reason: String) {
        let first = armed.withLock { wasArmed -> Bool in
            defer { wasArmed = true }
            return !wasArmed
        }
        guard first else { return }
        let milliseconds = Int(limit.components.seconds * 1000 + limit.components.attoseconds / 1_000_000_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(milliseconds)) { [self] in
            logger.critical(
                "shutdown did not finish in time; exiting now", metadata: ["reason": "\(reason)", "limit_s": "\(limit.components.seconds)"])
            if let server = embedded.withLock({ $0 }), server.ownsServer {
                let stopped = DispatchSemaphore(value: 0)
                Task.detached {
                    try? await server.stop()
                    stopped.signal()
                }
                _ = stopped.wait(timeout: .now() + .seconds(10))
            }
            exit(1)
        }
    }
}
