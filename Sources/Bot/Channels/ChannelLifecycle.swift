import Channels
import Jobs
import Logging
import PostgresNIO
import Subscriptions

/// A channel that stops or resumes selling, with everything that goes with it: the sales lock, open orders
/// cancelled (their buyers told through `jobs`), and the offer posts taken down. Runs inside the caller's
/// transaction.
public enum ChannelLifecycle {
    /// Pauses sales for `reason`; returns whether anything changed.
    @discardableResult
    public static func pause(
        id: Int64, reason: ChannelPauseReason, jobs: JobQueue?, on connection: PostgresConnection, logger: Logger
    ) async throws -> Bool {
        try await SalesClosure.lockChannel(id, on: connection, logger: logger)
        guard try await ChannelStore.pause(id: id, reason: reason, on: connection, logger: logger) else { return false }
        try await SalesClosure.cancelOpenOrders(channelID: id, reason: "paused: \(reason.rawValue)", queue: jobs, on: connection, logger: logger)
        try await OfferPostRequests.afterClosing(channelID: id, jobs: jobs, on: connection, logger: logger)
        return true
    }

    /// Takes the channel's sales lock and its row until the transaction ends, so no payment is granted for it
    /// meanwhile (payment processing holds the sales lock shared while it grants).
    public static func lockForClosing(id: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await SalesClosure.lockChannel(id, on: connection, logger: logger)
    }

    /// Deletes a pair the owner has, after cancelling its open orders and taking its posts down. The caller
    /// holds the row's lock (`lockForClosing`).
    public static func delete(id: Int64, ownerUserID: Int64, jobs: JobQueue?, on connection: PostgresConnection, logger: Logger) async throws {
        try await SalesClosure.cancelOpenOrders(channelID: id, reason: "deleted", queue: jobs, on: connection, logger: logger)
        try await OfferPostRequests.afterClosing(channelID: id, jobs: jobs, on: connection, logger: logger)
        try await ChannelStore.delete(id: id, ownerUserID: ownerUserID, on: connection, logger: logger)
    }
}
