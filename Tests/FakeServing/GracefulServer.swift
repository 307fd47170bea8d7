import Hummingbird
import Logging
import ServiceLifecycle

/// Runs a test server in a task whose cancellation shuts the server down gracefully: it stops accepting and
/// finishes or closes the connections it has. Cancelling the serving task itself instead can leave a
/// connection accepted but never served, and NIO then traps ("Deinited NIOAsyncWriter without calling
/// finish()", swift-nio issue 3481) — which once took a whole test run down.
public func serveUntilCancelled(_ app: some ApplicationProtocol, logger: Logger) -> Task<Void, any Error> {
    let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
    // The group runs in a task of its own that is never cancelled, so stopping is always graceful.
    let running = Task { try await group.run() }
    return Task {
        try await withTaskCancellationHandler {
            try await running.value
        } onCancel: {
            Task { await group.triggerGracefulShutdown() }
        }
    }
}
