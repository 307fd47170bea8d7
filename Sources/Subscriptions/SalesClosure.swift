import Foundation
import Jobs
import Logging
import Money
import PostgresNIO
import Storage

/// What happens to open orders when a channel stops selling (paused by its owner or because the bot lost
/// its rights, or deleted): they are cancelled, their buyers told, and a payment that still arrives for one
/// is held for review instead of granting access to a chat that may belong to a new pair.
public enum SalesClosure {
    /// Locks the channel row until the transaction ends. Closing a channel takes this lock before it touches
    /// anything else, so it orders after any grant in progress (payment processing holds the row shared).
    public static func lockChannel(_ channelID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("SELECT 1 FROM channels WHERE id = \(channelID) FOR UPDATE", logger: logger)
    }

    /// Cancels the channel's open orders. Call it in the transaction that pauses or deletes the channel,
    /// after the channel row is locked (the `UPDATE` of its status does): payment processing holds that row
    /// shared while it grants, so no grant for this channel runs at the same time.
    @discardableResult
    public static func cancelOpenOrders(
        channelID: Int64, reason: String, queue: JobQueue?, on connection: PostgresConnection, logger: Logger
    ) async throws -> [CancelledOrder] {
        let cancelled = try await OrderStore.cancelOpen(channelID: channelID, reason: reason, on: connection, logger: logger)
        for order in cancelled {
            logger.info("open order cancelled: the channel stopped selling", metadata: ["order_id": "\(order.id)", "channel_id": "\(channelID)"])
            guard let queue else { continue }
            try await queue.enqueue(NotifyUserJob(userID: order.userID, key: "order.cancelled", arguments: ["title": order.title]), on: connection)
            if order.receivedUSD > 0 {
                try await queue.enqueue(
                    SubscriptionAlertJob(alert: .cancelledWithMoney(orderID: order.publicID, receivedUSD: DecimalText.usd(order.receivedUSD))),
                    on: connection
                )
            }
        }
        return cancelled
    }
}
