import Foundation
import Jobs
import Localization
import Logging
import Money
import PostgresNIO
import Storage

/// What happens to open orders when a channel stops selling (paused by its owner or because the bot lost
/// its rights, or deleted): they are cancelled, their buyers told, and a payment that still arrives for one
/// is held for review instead of granting access to a chat that may belong to a new pair.
public enum SalesClosure {
    /// The advisory lock class of a channel's sales lock ("TPCH"); its key is the channel id.
    static let lockClass: Int32 = 0x5450_4348

    static func lockKey(_ channelID: Int64) -> Int32 {
        Int32(truncatingIfNeeded: channelID)
    }

    /// Takes the channel's sales lock exclusively, and its row, until the transaction ends. Closing a channel
    /// takes them before it touches anything else, so it waits for any grant in progress (payment processing
    /// holds the sales lock shared) and no grant starts until it commits.
    public static func lockChannel(_ channelID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await OrderStore.closeChannel(channelID, on: connection, logger: logger)
    }

    /// Cancels the channel's open orders. Call it in the transaction that pauses or deletes the channel, after
    /// `lockChannel`: payment processing holds the channel's sales lock shared while it grants, so no grant for
    /// this channel runs at the same time.
    @discardableResult
    public static func cancelOpenOrders(
        channelID: Int64, reason: String, queue: JobQueue?, on connection: PostgresConnection, logger: Logger
    ) async throws -> [CancelledOrder] {
        let cancelled = try await OrderStore.cancelOpen(channelID: channelID, reason: reason, on: connection, logger: logger)
        for order in cancelled {
            logger.info("open order cancelled: the channel stopped selling", metadata: ["order_id": "\(order.id)", "channel_id": "\(channelID)"])
            guard let queue else { continue }
            try await queue.enqueue(NotifyUserJob(userID: order.userID, key: L10n.orderCancelled, arguments: ["title": order.title]), on: connection)
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
