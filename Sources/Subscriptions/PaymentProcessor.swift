import Foundation
import Jobs
import Logging
import Payments
import PostgresNIO
import Storage

/// Processes one stored payment callback (`payment_inbox` row). Enqueued in the same transaction as the
/// inbox insert, so a crash between the HTTP answer and processing loses nothing.
public struct ProcessPaymentJob: JobPayload {
    public static let kind = "payments.process_inbox"
    public static let maxAttempts = 30

    public var inboxID: Int64

    public init(inboxID: Int64) {
        self.inboxID = inboxID
    }

    /// One job per inbox row, even if the row is re-announced.
    public var uniqueKey: String { "payment-inbox:\(inboxID)" }
}

/// Why a callback could not be processed yet.
public enum PaymentProcessingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The callback names an order we do not have (yet): retried, never dropped.
    case unknownOrder(String)

    public var description: String {
        switch self {
        case .unknownOrder(let id): return "no order '\(id)' yet; the callback is retried"
        }
    }
}

/// The payment state machine with its effects: re-fetches the payment from the provider (the callback body
/// alone never grants anything), moves the order forward only, and on `finished` grants or extends the
/// subscription, writes the ledger, and enqueues the invite and the notifications — all in one transaction
/// with marking the callback processed.
public struct PaymentProcessor: JobHandler {
    let database: Database
    let queue: JobQueue
    let provider: any PaymentProvider
    let clock: any WallClock
    let settings: SubscriptionSettings
    let logger: Logger

    public init(database: Database, queue: JobQueue, provider: any PaymentProvider, clock: any WallClock, settings: SubscriptionSettings, logger: Logger) {
        self.database = database
        self.queue = queue
        self.provider = provider
        self.clock = clock
        self.settings = settings
        self.logger = logger
    }

    // Unknown orders wait for their order row; retries back off from 2 s up to 10 min.
    public var options: JobKindOptions {
        JobKindOptions(concurrency: 16, retry: RetryPolicy(initialDelay: .seconds(2), maximumDelay: .seconds(600)))
    }

    public func run(_ payload: ProcessPaymentJob, context: JobContext) async throws {
        try await process(inboxID: payload.inboxID)
    }

    public func classify(_ error: any Error) -> JobErrorClass {
        if let provider = error as? PaymentProviderError {
            // A payment the provider does not show yet, or a transient failure, is worth another look.
            switch provider {
            case .unauthorized, .invalidRequest: return .permanent
            default: return .retryable
            }
        }
        return .retryable
    }

    struct InboxRow: Sendable {
        var paymentID: String
        var orderID: String?
        var processed: Bool
    }

    /// What processing a callback did to its order.
    public enum Result: Sendable, Hashable {
        case alreadyProcessed
        case ignored(reason: String)
        case moved(orderID: Int64, from: OrderStatus, to: OrderStatus)
        case unchanged(orderID: Int64, OrderStatus)
    }

    @discardableResult
    public func process(inboxID: Int64) async throws -> Result {
        let logger = self.logger
        let inbox = try await database.withConnection { connection -> InboxRow? in
            let rows = try await connection.query(
                "SELECT payment_id, order_id, processed_at IS NOT NULL FROM payment_inbox WHERE id = \(inboxID)", logger: logger
            )
            for try await (payment, order, processed) in rows.decode((String, String?, Bool).self) {
                return InboxRow(paymentID: payment, orderID: order, processed: processed)
            }
            return nil
        }
        guard let inbox else { return .ignored(reason: "inbox row \(inboxID) does not exist") }
        if inbox.processed { return .alreadyProcessed }
        let payment = try await provider.payment(id: inbox.paymentID)
        guard let orderRef = payment.orderID ?? inbox.orderID else {
            try await markProcessed(inboxID)
            logger.warning("payment without an order id ignored", metadata: ["payment_id": "\(payment.id)"])
            return .ignored(reason: "payment \(payment.id) has no order id")
        }
        guard let observed = PaymentStateMachine.observed(payment, tolerancePercent: settings.partialPaymentTolerancePercent) else {
            try await markProcessed(inboxID)
            logger.warning("payment status not acted on", metadata: ["payment_id": "\(payment.id)", "status": "\(payment.status)"])
            return .ignored(reason: "status \(payment.status) is not acted on")
        }
        let now = clock.now()
        let settings = self.settings
        let result = try await queue.transaction { transaction -> Result in
            let connection = transaction.connection
            let rows = try await connection.query(
                """
                SELECT id, status, user_id, channel_id, owner_user_id, price_usd::text, duration_days, closed_title, payment_id
                FROM orders WHERE public_id = \(orderRef) FOR UPDATE
                """,
                logger: logger
            )
            var found: LockedOrder?
            for try await (id, status, user, channel, owner, price, days, title, paymentID)
                in rows.decode((Int64, String, Int64, Int64, Int64, String, Int32, String, String?).self) {
                found = LockedOrder(
                    id: id, status: OrderStatus(rawValue: status) ?? .created, userID: user, channelID: channel, ownerUserID: owner,
                    priceUSD: DecimalText.parse(price) ?? 0, durationDays: Int(days), title: title, paymentID: paymentID
                )
            }
            guard var order = found else { throw PaymentProcessingError.unknownOrder(orderRef) }
            if order.status == .paid, let first = order.paymentID, first != payment.id {
                // A second payment for a paid order (the invoice paid twice, or a retried invoice paid as well):
                // money arrived, so it becomes a purchase of its own, granted and booked like any other.
                order = try await Self.secondPaymentOrder(of: order, paymentID: payment.id, on: connection, logger: logger)
            }
            let next = PaymentStateMachine.next(order.status, observing: observed)
            if let first = order.paymentID, first != payment.id {
                logger.warning("another payment for an order", metadata: [
                    "order_id": "\(order.id)", "first_payment_id": "\(first)", "payment_id": "\(payment.id)", "status": "\(payment.status)",
                ])
            }
            let tracksThisPayment = order.paymentID == nil || order.paymentID == payment.id || next != order.status
            if tracksThisPayment {
                try await connection.query(
                    """
                    UPDATE orders SET status = \(next.rawValue), payment_id = \(payment.id), payment_status = \(payment.status.rawValue),
                        pay_currency = \(payment.payCurrency), pay_amount = NULLIF(\(payment.payAmount.map(DecimalText.plain) ?? ""), '')::numeric,
                        actually_paid = NULLIF(\(payment.actuallyPaid.map(DecimalText.plain) ?? ""), '')::numeric,
                        paid_at = CASE WHEN \(next.rawValue) = 'paid' THEN coalesce(paid_at, \(now)) END
                    WHERE id = \(order.id)
                    """,
                    logger: logger
                )
            }
            if next != order.status {
                try await applyEffects(of: order, movingTo: next, payment: payment, now: now, settings: settings, transaction: transaction)
            }
            try await connection.query("UPDATE payment_inbox SET processed_at = now() WHERE id = \(inboxID)", logger: logger)
            return next == order.status ? .unchanged(orderID: order.id, next) : .moved(orderID: order.id, from: order.status, to: next)
        }
        if case .moved(let order, let from, let to) = result {
            logger.info("order moved", metadata: ["order_id": "\(order)", "from": "\(from.rawValue)", "to": "\(to.rawValue)", "payment_id": "\(payment.id)"])
        }
        return result
    }

    /// The order row of a second payment for `original`: found by the payment id, or made as a copy of the
    /// original's snapshot (same user, channel, tier, price and duration) awaiting that payment. Locked.
    static func secondPaymentOrder(of original: LockedOrder, paymentID: String, on connection: PostgresConnection, logger: Logger) async throws -> LockedOrder {
        let existing = try await connection.query(
            """
            SELECT id, status FROM orders WHERE payment_id = \(paymentID) AND id <> \(original.id) FOR UPDATE
            """,
            logger: logger
        )
        for try await (id, status) in existing.decode((Int64, String).self) {
            var order = original
            order.id = id
            order.status = OrderStatus(rawValue: status) ?? .awaitingPayment
            order.paymentID = paymentID
            return order
        }
        let inserted = try await connection.query(
            """
            INSERT INTO orders (user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title,
                                status, invoice_id, invoice_url, payment_id)
            SELECT user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title,
                   'awaiting_payment', invoice_id, invoice_url, \(paymentID)
            FROM orders WHERE id = \(original.id)
            RETURNING id
            """,
            logger: logger
        )
        var order = original
        for try await id in inserted.decode(Int64.self) { order.id = id }
        order.status = .awaitingPayment
        order.paymentID = paymentID
        logger.warning("a second payment for a paid order is booked as a purchase of its own", metadata: [
            "order_id": "\(original.id)", "new_order_id": "\(order.id)", "payment_id": "\(paymentID)",
        ])
        return order
    }

    struct LockedOrder: Sendable {
        var id: Int64
        var status: OrderStatus
        var userID: Int64
        var channelID: Int64
        var ownerUserID: Int64
        var priceUSD: Decimal
        var durationDays: Int
        var title: String
        var paymentID: String?
    }

    private func applyEffects(
        of order: LockedOrder, movingTo next: OrderStatus, payment: Payment, now: Date, settings: SubscriptionSettings, transaction: JobTransaction
    ) async throws {
        let connection = transaction.connection
        switch next {
        case .paid:
            let grant = try await SubscriptionGrants.grant(
                userID: order.userID, channelID: order.channelID, orderID: order.id, days: order.durationDays, now: now,
                on: connection, logger: logger
            )
            let split = FeeSplit(gross: order.priceUSD, feePercent: settings.platformFeePercent)
            try await Ledger.recordPayment(orderID: order.id, ownerUserID: order.ownerUserID, split: split, on: connection, logger: logger)
            try await transaction.enqueue(
                DeliverInviteJob(subscriptionID: grant.subscriptionID, orderID: order.id),
                options: JobOptions(uniqueKey: "invite:order:\(order.id)")
            )
            try await transaction.enqueue(NotifyUserJob(
                userID: order.userID, key: grant.renewed ? "payment.renewed" : "payment.paid",
                arguments: ["title": order.title, "expires": AccessService.format(grant.expiresAt)],
                dayArguments: ["days": order.durationDays]
            ))
            let rows = try await connection.query(
                """
                SELECT coalesce(CASE WHEN p.notifications_enabled THEN p.notification_user_id END, c.owner_user_id)
                FROM channels c LEFT JOIN channel_payout_settings p ON p.channel_id = c.id WHERE c.id = \(order.channelID)
                """,
                logger: logger
            )
            for try await (recipient) in rows.decode(Int64.self) {
                try await transaction.enqueue(NotifyUserJob(
                    userID: recipient, key: "owner.payment_received",
                    arguments: ["title": order.title, "price": DecimalText.usd(split.gross), "share": DecimalText.usd(split.ownerShare)],
                    dayArguments: ["days": order.durationDays]
                ))
            }
        case .confirming, .confirmed, .sending:
            // Said once, when the payment is first seen on chain.
            if order.status.rank < OrderStatus.confirming.rank {
                try await transaction.enqueue(NotifyUserJob(userID: order.userID, key: "payment.confirming", arguments: ["title": order.title]))
            }
        case .partiallyPaid:
            try await transaction.enqueue(NotifyUserJob(
                userID: order.userID, key: "payment.partially_paid",
                arguments: [
                    "title": order.title,
                    "paid": payment.actuallyPaid.map(DecimalText.plain) ?? "0",
                    "asked": payment.payAmount.map(DecimalText.plain) ?? "?",
                    "currency": (payment.payCurrency ?? "").uppercased(),
                ]
            ))
        case .expired, .failed, .refunded:
            try await transaction.enqueue(NotifyUserJob(
                userID: order.userID, key: "payment.\(next.rawValue)", arguments: ["title": order.title],
                buttons: [.renew(channelID: order.channelID)]
            ))
        case .created, .invoiceFailed, .awaitingPayment, .waiting:
            break
        }
    }

    private func markProcessed(_ inboxID: Int64) async throws {
        let logger = self.logger
        _ = try await database.withConnection { connection in
            try await connection.query("UPDATE payment_inbox SET processed_at = now() WHERE id = \(inboxID)", logger: logger)
        }
    }
}

/// Grants and renewals of subscriptions.
enum SubscriptionGrants {
    struct Grant: Sendable {
        var subscriptionID: Int64
        var expiresAt: Date
        /// The user already had this subscription (active or expired).
        var renewed: Bool
    }

    /// Creates the subscription or extends it by `days` from the later of now and its expiry, reactivating an
    /// expired one. One statement, so concurrent grants for the same user and channel serialise on the row.
    static func grant(userID: Int64, channelID: Int64, orderID: Int64, days: Int, now: Date, on connection: PostgresConnection, logger: Logger) async throws -> Grant {
        let rows = try await connection.query(
            """
            INSERT INTO subscriptions AS s (user_id, channel_id, status, started_at, expires_at, last_order_id)
            VALUES (\(userID), \(channelID), 'active', \(now), \(now)::timestamptz + make_interval(days => \(Int32(days))), \(orderID))
            ON CONFLICT (user_id, channel_id) DO UPDATE SET
                status = 'active',
                started_at = CASE WHEN s.status = 'active' AND s.expires_at > \(now) THEN s.started_at ELSE \(now) END,
                expires_at = greatest(s.expires_at, \(now)::timestamptz) + make_interval(days => \(Int32(days))),
                last_order_id = \(orderID),
                expired_at = NULL
            RETURNING id, expires_at, (xmax <> 0)
            """,
            logger: logger
        )
        for try await (id, expires, renewed) in rows.decode((Int64, Date, Bool).self) {
            return Grant(subscriptionID: id, expiresAt: expires, renewed: renewed)
        }
        preconditionFailure("an upsert returns its row")
    }
}

/// The double-entry ledger.
enum Ledger {
    /// Gross owed by the provider, the platform's fee and the owner's share (their pending payout balance);
    /// the three sum to zero, which the database checks at commit.
    static func recordPayment(orderID: Int64, ownerUserID: Int64, split: FeeSplit, on connection: PostgresConnection, logger: Logger) async throws {
        let gross = DecimalText.plain(split.gross)
        let fee = DecimalText.plain(-split.platformFee)
        let share = DecimalText.plain(-split.ownerShare)
        try await connection.query(
            """
            INSERT INTO ledger_entries (order_id, entry, account, owner_user_id, amount_usd)
            SELECT \(orderID), e.entry, e.account, NULLIF(e.owner, 0), e.amount::numeric
            FROM (VALUES ('gross', 'provider_clearing', 0::bigint, \(gross)),
                         ('platform_fee', 'platform_fee', 0::bigint, \(fee)),
                         ('owner_share', 'owner_payable', \(ownerUserID), \(share))) AS e(entry, account, owner, amount)
            WHERE e.amount::numeric <> 0
            ON CONFLICT (order_id, entry) DO NOTHING
            """,
            logger: logger
        )
    }
}

extension NOWPaymentsIPNReceiver {
    /// The receiver as TelePay wires it: the inbox insert enqueues the callback's `ProcessPaymentJob` in the
    /// same statement (trigger of migration 0011), and the workers are woken after the commit.
    public static func processing(secret: String, database: Database, queue: JobQueue, logger: Logger) -> NOWPaymentsIPNReceiver {
        NOWPaymentsIPNReceiver(
            secret: secret, database: database,
            onCommitted: { _ in await queue.announce([ProcessPaymentJob.kind]) },
            logger: logger
        )
    }
}
