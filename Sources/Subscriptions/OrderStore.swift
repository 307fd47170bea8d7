import Channels
import Foundation
import Logging
import Money
import PostgresNIO
import Storage

/// An order locked for processing: the snapshot of what was bought and where its money stands.
public struct LockedOrder: Sendable, Hashable {
    public var id: Int64
    public var publicID: String
    public var status: OrderStatus
    public var userID: Int64
    public var channelID: Int64
    public var ownerUserID: Int64
    public var priceUSD: Decimal
    public var durationDays: Int
    public var title: String
    public var invoiceID: String?
    public var receivedUSD: Decimal
    public var sold: Bool
    /// A subscription purchase or a donation (which has no tier and no duration: `durationDays` is 0).
    public var kind: OrderKind = .subscription
}

/// An open order a closing channel cancelled.
public struct CancelledOrder: Sendable, Hashable {
    public var id: Int64
    public var publicID: String
    public var userID: Int64
    public var title: String
    public var receivedUSD: Decimal
}

/// The `orders` table: every query about orders lives here.
public enum OrderStore {
    static let columns = """
        id, public_id, status, user_id, channel_id, owner_user_id, price_usd::text, coalesce(duration_days, 0), closed_title, invoice_id,
        received_usd::text, sold, kind
        """

    typealias Row = (Int64, String, String, Int64, Int64, Int64, String, Int32, String, String?, String, Bool, String)

    static func order(_ row: Row) throws -> LockedOrder {
        let (id, publicID, status, user, channel, owner, price, days, title, invoice, received, sold, kind) = row
        guard let status = OrderStatus(rawValue: status) else { throw OrderStoreError.unknownStatus(status) }
        guard let kind = OrderKind(rawValue: kind) else { throw OrderStoreError.unknownKind(kind) }
        return LockedOrder(
            id: id, publicID: publicID, status: status, userID: user, channelID: channel, ownerUserID: owner,
            priceUSD: try DecimalText.require(price, "order price"), durationDays: Int(days), title: title, invoiceID: invoice,
            receivedUSD: try DecimalText.require(received, "order received"), sold: sold, kind: kind
        )
    }

    /// The order's id and channel by its public id (unlocked: to know what to lock, in order).
    static func locate(publicID: String, on connection: PostgresConnection, logger: Logger) async throws -> (id: Int64, channelID: Int64)? {
        try await connection.first("SELECT id, channel_id FROM orders WHERE public_id = \(publicID)", as: (Int64, Int64).self, logger: logger)
            .map { (id: $0.0, channelID: $0.1) }
    }

    static func channel(ofOrder id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Int64? {
        try await connection.first("SELECT channel_id FROM orders WHERE id = \(id)", as: Int64.self, logger: logger)
    }

    /// Holds the channel against closing (pause, delete) for the rest of the transaction: the channel's sales
    /// lock, shared. Taken before the order's lock, in the same order as closing a channel takes them, so the
    /// two never deadlock. An advisory lock rather than `FOR SHARE` on the channel row: many payments of one
    /// channel hold it at once, and row share locks by many transactions cost a multixact each.
    static func holdChannel(_ channelID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            "SELECT pg_advisory_xact_lock_shared(\(SalesClosure.lockClass), \(SalesClosure.lockKey(channelID)))", logger: logger
        )
    }

    /// Takes the channel's sales lock exclusively, then its row: how every closing of a channel starts.
    static func closeChannel(_ channelID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("SELECT pg_advisory_xact_lock(\(SalesClosure.lockClass), \(SalesClosure.lockKey(channelID)))", logger: logger)
        try await connection.run("SELECT 1 FROM channels WHERE id = \(channelID) FOR UPDATE", logger: logger)
    }

    static func lock(id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> LockedOrder? {
        try await connection.first("SELECT \(unescaped: columns) FROM orders WHERE id = \(id) FOR UPDATE", as: Row.self, logger: logger)
            .map(order)
    }

    /// A copy of `original`'s snapshot (same user, channel, tier, price, duration, invoice) for a second,
    /// independent payment made after the original was delivered: money arrived, so it is a purchase of its own.
    static func copy(_ original: LockedOrder, on connection: PostgresConnection, logger: Logger) async throws -> LockedOrder {
        guard
            let row = try await connection.first(
                """
                INSERT INTO orders (user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title,
                                    status, invoice_id, invoice_url, kind)
                SELECT user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title,
                       \(OrderStatus.awaitingPayment.rawValue), invoice_id, invoice_url, kind
                FROM orders WHERE id = \(original.id)
                RETURNING \(unescaped: columns)
                """,
                as: Row.self, logger: logger
            )
        else { throw OrderStoreError.vanished(original.id) }
        return try order(row)
    }

    /// Writes the derived state after processing a payment.
    static func update(_ order: LockedOrder, paidAt: Date?, on connection: PostgresConnection, logger: Logger) async throws {
        // Only an order with no payment yet is asked about by its invoice; its payments are asked about instead.
        let keepsCheck = order.status == .created || order.status == .awaitingPayment
        try await connection.run(
            """
            UPDATE orders SET status = \(order.status.rawValue), received_usd = \(DecimalText.plain(order.receivedUSD))::numeric,
                sold = \(order.sold), paid_at = coalesce(paid_at, \(paidAt)),
                next_check_at = CASE WHEN \(keepsCheck) THEN next_check_at END
            WHERE id = \(order.id)
            """,
            logger: logger
        )
    }

    // MARK: - Purchases

    /// Creates an order for `userID` buying tier `position` of an active `channelID`; `nil` when the channel
    /// is not on sale or the tier is off.
    static func create(
        userID: Int64, channelID: Int64, position: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> PendingOrder? {
        try await connection.first(
            """
            INSERT INTO orders (user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title)
            SELECT \(userID), c.id, c.owner_user_id, t.position, t.price_usd, t.duration_days, c.closed_chat_id, c.closed_title
            FROM channels c JOIN channel_tiers t ON t.channel_id = c.id
            WHERE c.id = \(channelID) AND c.status = \(ChannelStatus.active.rawValue) AND c.deleted_at IS NULL AND t.position = \(Int16(clamping: position)) AND t.enabled
            RETURNING id, public_id, price_usd::text, duration_days, closed_title, status
            """,
            as: (Int64, String, String, Int32, String, String).self, logger: logger
        ).map(pending)
    }

    /// Creates a donation of `amountUSD` from `userID` to an active `channelID`; `nil` when the channel is not
    /// on sale. A donation has no tier and no duration.
    static func createDonation(
        userID: Int64, channelID: Int64, amountUSD: Decimal, on connection: PostgresConnection, logger: Logger
    ) async throws -> PendingOrder? {
        try await connection.first(
            """
            INSERT INTO orders (user_id, channel_id, owner_user_id, price_usd, closed_chat_id, closed_title, kind)
            SELECT \(userID), c.id, c.owner_user_id, \(DecimalText.plain(amountUSD))::numeric, c.closed_chat_id, c.closed_title,
                   \(OrderKind.donation.rawValue)
            FROM channels c
            WHERE c.id = \(channelID) AND c.status = \(ChannelStatus.active.rawValue) AND c.deleted_at IS NULL
            RETURNING id, public_id, price_usd::text, 0, closed_title, status
            """,
            as: (Int64, String, String, Int32, String, String).self, logger: logger
        ).map(pending)
    }

    static func pending(_ row: (Int64, String, String, Int32, String, String)) throws -> PendingOrder {
        let (id, publicID, price, days, title, status) = row
        guard let status = OrderStatus(rawValue: status) else { throw OrderStoreError.unknownStatus(status) }
        return PendingOrder(
            id: id, publicID: publicID, priceUSD: try DecimalText.require(price, "order price"), durationDays: Int(days), title: title, status: status
        )
    }

    static func pending(id: Int64, userID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> (
        PendingOrder, invoiceURL: String?
    )? {
        guard
            let row = try await connection.first(
                """
                SELECT id, public_id, price_usd::text, coalesce(duration_days, 0), closed_title, status, invoice_url FROM orders
                WHERE id = \(id) AND user_id = \(userID)
                """,
                as: (Int64, String, String, Int32, String, String, String?).self, logger: logger
            )
        else { return nil }
        return (try pending((row.0, row.1, row.2, row.3, row.4, row.5)), row.6)
    }

    /// The invoice exists: the order awaits its payment until `expiresAt`, and is first asked about at `checkAt`.
    static func invoiceCreated(
        _ id: Int64, invoiceID: String, url: String, expiresAt: Date, checkAt: Date, on connection: PostgresConnection, logger: Logger
    ) async throws {
        try await connection.run(
            """
            UPDATE orders SET status = \(OrderStatus.awaitingPayment.rawValue), invoice_id = \(invoiceID), invoice_url = \(url),
                invoice_error = NULL, invoice_expires_at = \(expiresAt), next_check_at = \(checkAt)
            WHERE id = \(id) AND status IN (\(OrderStatus.created.rawValue), \(OrderStatus.invoiceFailed.rawValue))
            """,
            logger: logger
        )
    }

    static func invoiceFailed(_ id: Int64, reason: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE orders SET status = \(OrderStatus.invoiceFailed.rawValue), invoice_error = \(String(reason.prefix(2000)))
            WHERE id = \(id) AND status IN (\(OrderStatus.created.rawValue), \(OrderStatus.invoiceFailed.rawValue))
            """,
            logger: logger
        )
    }

    static func view(publicID: String, on connection: PostgresConnection, logger: Logger) async throws -> OrderView? {
        guard
            let (status, title, user, kind) = try await connection.first(
                "SELECT status, closed_title, user_id, kind FROM orders WHERE public_id = \(publicID)", as: (String, String, Int64, String).self,
                logger: logger
            ), let status = OrderStatus(rawValue: status), let kind = OrderKind(rawValue: kind)
        else { return nil }
        return OrderView(status: status, title: title, userID: user, kind: kind)
    }

    // MARK: - Closing a channel

    /// Cancels the channel's open orders (the caller holds the channel row's lock, so no payment for them is
    /// being granted at the same time); returns them.
    public static func cancelOpen(channelID: Int64, reason: String, on connection: PostgresConnection, logger: Logger) async throws
        -> [CancelledOrder]
    {
        try await connection.all(
            """
            UPDATE orders SET status = \(OrderStatus.cancelled.rawValue), cancelled_reason = \(String(reason.prefix(200))), next_check_at = NULL
            WHERE channel_id = \(channelID) AND status = ANY(\(OrderStatus.open.map(\.rawValue)))
            RETURNING id, public_id, user_id, closed_title, received_usd::text
            """,
            as: (Int64, String, Int64, String, String).self, logger: logger
        ).map { id, publicID, user, title, received in
            CancelledOrder(id: id, publicID: publicID, userID: user, title: title, receivedUSD: try DecimalText.require(received, "order received"))
        }
    }

    // MARK: - Re-checks

    /// Orders with an invoice and no payment yet that are due to be asked about.
    static func dueForCheck(now: Date, limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [(
        id: Int64, invoiceID: String, createdAt: Date, expiresAt: Date?
    )] {
        try await connection.all(
            """
            SELECT id, invoice_id, created_at, invoice_expires_at FROM orders
            WHERE next_check_at <= \(now) AND invoice_id IS NOT NULL ORDER BY next_check_at LIMIT \(Int32(limit))
            """,
            as: (Int64, String, Date, Date?).self, logger: logger
        ).map { (id: $0.0, invoiceID: $0.1, createdAt: $0.2, expiresAt: $0.3) }
    }

    /// Sets when an order still waiting for its first payment is asked about next (a payment found meanwhile
    /// moved it on, and then its payments are asked about instead).
    static func scheduleCheck(_ id: Int64, at date: Date?, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            "UPDATE orders SET next_check_at = \(date) WHERE id = \(id) AND status = \(OrderStatus.awaitingPayment.rawValue)", logger: logger
        )
    }

    /// An order whose invoice lifetime passed without any payment expires; returns whether it did.
    static func expireUnpaid(_ id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.run(
            """
            UPDATE orders o SET status = \(OrderStatus.expired.rawValue), next_check_at = NULL
            WHERE o.id = \(id) AND o.status = \(OrderStatus.awaitingPayment.rawValue)
              AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id)
            RETURNING 1
            """,
            logger: logger
        ) > 0
    }
}

/// The orders table holds something the code does not know, or a row vanished under a lock.
public enum OrderStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    case unknownStatus(String)
    case unknownKind(String)
    case vanished(Int64)

    public var description: String {
        switch self {
        case .unknownStatus(let status): return "unknown order status '\(status)'"
        case .unknownKind(let kind): return "unknown order kind '\(kind)'"
        case .vanished(let id): return "order \(id) vanished"
        }
    }
}
