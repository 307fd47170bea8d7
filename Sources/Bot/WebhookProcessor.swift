import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Storage
import Synchronization
import TelegramBotAPI

/// Handles webhook updates from the inbox. One instance at a time holds the processing lock (a session
/// advisory lock, released by the server if that instance dies), so one user's updates stay in order even
/// when several instances receive webhooks behind a load balancer.
public struct WebhookProcessor: Service {
    public let dispatcher: Dispatcher
    public let database: Database
    public let wakeUps: WakeUpSignal
    public let pollInterval: Duration
    public let logger: Logger

    public init(dispatcher: Dispatcher, database: Database, wakeUps: WakeUpSignal, pollInterval: Duration = .seconds(1), logger: Logger) {
        self.dispatcher = dispatcher
        self.database = database
        self.wakeUps = wakeUps
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func run() async throws {
        try await database.withConnection { lockConnection in
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                if try await WebhookUpdateStore.tryLockProcessing(on: lockConnection, logger: logger) { break }
                try await pause()
            }
            guard !Task.isShuttingDownGracefully && !Task.isCancelled else { return }
            logger.info("processing webhook updates")
            var pruned = ContinuousClock.now
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let batch = try await WebhookUpdateStore.pending(limit: 100, on: database)
                if batch.isEmpty {
                    try await pause()
                    continue
                }
                var updates: [Update] = []
                for (id, payload) in batch {
                    do {
                        updates.append(try JSONDecoder().decode(Update.self, from: Data(payload.utf8)))
                    } catch {
                        logger.error("stored webhook update does not decode; skipping it", metadata: ["update_id": "\(id)", "error": "\(error)"])
                    }
                }
                await dispatcher.dispatch(updates)
                try await WebhookUpdateStore.markHandled(batch.map(\.0), on: database)
                if ContinuousClock.now - pruned > .seconds(3600) {
                    try await WebhookUpdateStore.prune(olderThan: .seconds(86_400), on: database)
                    pruned = .now
                }
            }
            try await WebhookUpdateStore.unlockProcessing(on: lockConnection, logger: logger)
        }
    }

    /// Waits for a wake-up from the webhook route, the poll interval (another instance may have stored
    /// updates), or shutdown.
    private func pause() async throws {
        let deadline = ContinuousClock.now + pollInterval
        while ContinuousClock.now < deadline && !wakeUps.consume() && !Task.isShuttingDownGracefully {
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// "New updates are stored": set by the webhook route, consumed by the processor. A flag checked every few
/// milliseconds rather than a stream, so a missed or doubled wake-up costs nothing.
public final class WakeUpSignal: Sendable {
    private let pending = Mutex(false)

    public init() {}

    public func signal() {
        pending.withLock { $0 = true }
    }

    /// Returns whether a wake-up was pending, clearing it.
    public func consume() -> Bool {
        pending.withLock { value in
            defer { value = false }
            return value
        }
    }
}
