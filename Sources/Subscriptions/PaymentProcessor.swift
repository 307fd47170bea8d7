import Foundation
import Jobs
import Localization
import Logging
import Money
import Payments
import PostgresNIO
import Storage

/// Processes one stored payment callback (`payment_inbox` row). Enqueued in the same statement as the
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

/// The payment state machine with its effects. The callback body alone never grants anything: the payment
/// is re-fetched from the provider, checked against its order, and recorded as its own row with a
/// forward-only status and what actually arrived. The order's state is derived from all its payments; when
/// the money that arrived covers the price (within the tolerance) the order is sold exactly once — the
/// subscription granted or extended from the payment's time, the ledger booked, the invite and the messages
/// enqueued — and a refund undoes exactly that. Everything for one payment happens in one transaction.
public struct PaymentProcessor: JobHandler {
    let database: Database
    let queue: JobQueue
    let provider: any PaymentProvider
    let clock: any WallClock
    public let settings: SubscriptionSettings
    let logger: Logger

    /// The provider's name in `payments.provider`.
    public static let providerName = "nowpayments"

    public init(
        database: Database, queue: JobQueue, provider: any PaymentProvider, clock: any WallClock, settings: SubscriptionSettings, logger: Logger
    ) {
        self.database = database
        self.queue = queue
        self.provider = provider
        self.clock = clock
        self.settings = settings
        self.logger = logger
    }

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

    /// What processing a payment did to its order.
    public enum Result: Sendable, Hashable {
        case alreadyProcessed
        case ignored(reason: String)
        /// The payment is held for review and granted nothing.
        case held(paymentID: String, reason: String)
        case moved(orderID: Int64, from: OrderStatus, to: OrderStatus)
        case unchanged(orderID: Int64, OrderStatus)
    }

    /// Processes the stored callback `inboxID`: re-fetches its payment and applies it.
    @discardableResult
    public func process(inboxID: Int64) async throws -> Result {
        let logger = self.logger
        guard let inbox = try await database.withConnection({ try await PaymentStore.inbox(inboxID, on: $0, logger: logger) }) else {
            return .ignored(reason: "inbox row \(inboxID) does not exist")
        }
        if inbox.processed { return .alreadyProcessed }
        let payment = try await provider.payment(id: inbox.paymentID)
        return try await apply(payment, orderRef: inbox.orderRef, inboxID: inboxID)
    }

    /// Records what the provider now says about `payment` and moves its order; the one path for callbacks
    /// and re-checks. `orderRef` is the order id the callback carried, used when the payment has none.
    @discardableResult
    public func apply(_ payment: Payment, orderRef: String?, inboxID: Int64?) async throws -> Result {
        let logger = self.logger
        guard let observed = PaymentProgress(payment.status) else {
            if let inboxID { try await database.withConnection { try await PaymentStore.markProcessed(inboxID, on: $0, logger: logger) } }
            logger.warning("payment status not acted on", metadata: ["payment_id": "\(payment.id)", "status": "\(payment.status)"])
            return .ignored(reason: "status \(payment.status) is not acted on")
        }
        let now = clock.now()
        let result = try await queue.transaction { transaction -> Result in
            let step = try await PaymentStep(
                processor: self, payment: payment, observed: observed, orderRef: orderRef, now: now, transaction: transaction
            )
            let result = try await step.run()
            if let inboxID { try await PaymentStore.markProcessed(inboxID, on: transaction.connection, logger: logger) }
            return result
        }
        switch result {
        case .moved(let order, let from, let to):
            logger.info(
                "order moved", metadata: ["order_id": "\(order)", "from": "\(from.rawValue)", "to": "\(to.rawValue)", "payment_id": "\(payment.id)"])
        case .held(let id, let reason):
            logger.warning("payment held for review", metadata: ["payment_id": "\(id)", "reason": "\(reason)"])
        default:
            break
        }
        return result
    }
}

/// One payment's processing inside its transaction: locks, then the payment row, the ledger, the order.
private struct PaymentStep {
    let processor: PaymentProcessor
    let payment: Payment
    let observed: PaymentProgress
    let now: Date
    let transaction: JobTransaction
    var order: LockedOrder?
    let stored: StoredPayment
    let isNewPayment: Bool
    let parent: StoredPayment?

    var connection: PostgresConnection { transaction.connection }
    var logger: Logger { processor.logger }
    var settings: SubscriptionSettings { processor.settings }

    /// Takes the locks: the payment's row first (so every callback about one payment runs one after
    /// another and sees the order the first one chose), then the channel (shared) and the order, in the
    /// order closing a channel takes them.
    init(processor: PaymentProcessor, payment: Payment, observed: PaymentProgress, orderRef: String?, now: Date, transaction: JobTransaction)
        async throws
    {
        self.processor = processor
        self.payment = payment
        self.observed = observed
        self.now = now
        self.transaction = transaction
        let connection = transaction.connection
        let logger = processor.logger
        let provider = PaymentProcessor.providerName
        (stored, isNewPayment) = try await PaymentStore.lock(provider: provider, paymentID: payment.id, on: connection, logger: logger)
        let parent =
            try await payment.parentPaymentID.asyncMap {
                try await PaymentStore.find(provider: provider, paymentID: $0, on: connection, logger: logger)
            } ?? nil
        self.parent = parent
        // The payment's own order wins; then its parent's (a re-deposit credits the order it tops up); then
        // the order id it carries.
        var target: (id: Int64, channelID: Int64)?
        if let known = stored.orderID ?? parent?.orderID {
            target = try await OrderStore.channel(ofOrder: known, on: connection, logger: logger).map { (id: known, channelID: $0) }
        } else if let reference = payment.orderID ?? orderRef {
            target = try await OrderStore.locate(publicID: reference, on: connection, logger: logger)
        }
        if let target {
            try await OrderStore.holdChannel(target.channelID, on: connection, logger: logger)
            order = try await OrderStore.lock(id: target.id, on: connection, logger: logger)
        }
        // A new, independent payment for an order already delivered (the invoice paid twice, or a retried
        // invoice paid as well): money arrived, so it is a purchase of its own. A re-deposit is not.
        if let current = order, current.sold, stored.orderID == nil, payment.parentPaymentID == nil {
            order = try await OrderStore.copy(current, on: connection, logger: logger)
            logger.warning(
                "a second payment for a delivered order is booked as a purchase of its own",
                metadata: [
                    "order_id": "\(current.id)", "new_order_id": "\(order!.id)", "payment_id": "\(payment.id)",
                ])
        }
    }

    /// Why this payment cannot be delivered, if it cannot: checked against the order it claims.
    func reviewReason() -> String? {
        guard let order else {
            return "it matches no order (order id \(payment.orderID ?? "none"))"
        }
        if order.status == .cancelled { return "its order was cancelled: the channel stopped selling" }
        if let invoice = payment.invoiceID, let expected = order.invoiceID, invoice != expected {
            return "its invoice \(invoice) is not the order's invoice \(expected)"
        }
        // A re-deposit's price fields describe its parent; only a payment of its own must name our price.
        guard payment.parentPaymentID == nil else { return nil }
        if let currency = payment.priceCurrency, currency.lowercased() != "usd" {
            return "its price is in \(currency), not USD"
        }
        if let price = payment.priceAmount, price != order.priceUSD {
            return "its price \(DecimalText.plain(price)) is not the order's \(DecimalText.plain(order.priceUSD))"
        }
        return nil
    }

    func run() async throws -> PaymentProcessor.Result {
        let status = PaymentProgress.next(isNewPayment ? nil : stored.status, observing: observed)
        // An observation older than what we stored changes no amount; amounts that arrived never shrink.
        let fresh = isNewPayment || observed.rank >= stored.status.rank
        let actuallyPaid = fresh ? max(payment.actuallyPaid ?? 0, stored.actuallyPaid ?? 0) : stored.actuallyPaid
        var review = stored.reviewReason ?? reviewReason()
        var value = stored.valueUSD
        if status.moneyArrived, let paid = actuallyPaid {
            let ownRate = payment.priceAmount != nil && payment.payAmount != nil
            let rated = OrderRules.valueUSD(
                actuallyPaid: paid,
                priceAmount: ownRate ? payment.priceAmount : parent?.priceAmount,
                payAmount: ownRate ? payment.payAmount : parent?.payAmount
            )
            if let rated {
                value = max(value, rated)
            } else if review == nil {
                review = "there is no rate to value what arrived"
            }
        }
        var credited = stored.creditedUSD
        var settled = stored.settledUnits
        // The ledger follows the money: a refund reverses every receipt; new money is a receipt for the difference.
        if status == .refunded {
            for receipt in try await LedgerStore.unreversed(.receipt, paymentID: stored.id, on: connection, logger: logger) {
                try await LedgerStore.reverse(receipt, on: connection, logger: logger)
            }
            credited = 0
            settled = 0
        } else {
            if status.moneyArrived, value > credited {
                try await LedgerStore.book(
                    .receipt, key: "receipt:payment:\(stored.id):\(DecimalText.plain(value))", orderID: order?.id, paymentID: stored.id,
                    entries: LedgerBookings.receipt(value - credited, inReview: review != nil), on: connection, logger: logger
                )
                credited = value
            }
            settled = try await bookSettlement(status: status, settled: settled, inReview: review != nil)
        }
        let age = now.timeIntervalSince(stored.createdAt)
        let nextCheck = status.isFinal ? nil : now.addingTimeInterval(OrderRules.recheckDelay(age: isNewPayment ? 0 : age, minimum: 30))
        try await PaymentStore.update(
            stored.id,
            PaymentUpdate(
                status: status, orderID: order?.id, payment: payment, actuallyPaid: actuallyPaid, valueUSD: value, creditedUSD: credited,
                settledUnits: settled, reviewReason: review, providerUpdatedAt: payment.updatedAt.flatMap(Self.providerTime), nextCheckAt: nextCheck
            ), on: connection, logger: logger)

        if let review {
            if stored.reviewReason == nil {
                try await transaction.raise(.heldForReview(paymentID: payment.id, orderID: order?.publicID ?? payment.orderID, reason: review))
            }
            if let order, order.status == .cancelled, status.moneyArrived, stored.creditedUSD == 0 {
                try await transaction.enqueue(NotifyUserJob(userID: order.userID, key: L10n.paymentHeldForRefund, arguments: ["title": order.title]))
            }
            return .held(paymentID: payment.id, reason: review)
        }
        guard var order else { return .ignored(reason: "no order") }
        if (isNewPayment || stored.status == .waiting), status != .waiting, status.isLive, !order.sold {
            let key = order.kind == .donation ? L10n.donationConfirming : L10n.paymentConfirming
            try await transaction.enqueue(NotifyUserJob(userID: order.userID, key: key, arguments: ["title": order.title]))
        }
        return try await settle(&order, status: status)
    }

    /// Books what a finished payment sent to the hot wallet (its `outcome_amount` in the settlement asset);
    /// returns the units now booked. An outcome in another currency is not ours to book: it is logged.
    func bookSettlement(status: PaymentProgress, settled: Decimal, inReview: Bool) async throws -> Decimal {
        guard status == .finished, let outcome = payment.outcomeAmount else { return settled }
        let settlement = settings.settlement
        guard payment.outcomeCurrency?.lowercased() == settlement.currency else {
            logger.error(
                "a payment settled in another currency than the configured settlement asset; not booked",
                metadata: [
                    "payment_id": "\(payment.id)", "outcome_currency": "\(payment.outcomeCurrency ?? "none")", "expected": "\(settlement.currency)",
                ])
            return settled
        }
        let units = settlement.units(outcome)
        guard units > settled else { return settled }
        try await LedgerStore.book(
            .receipt, key: "settlement:payment:\(stored.id):\(DecimalText.plain(units))", orderID: order?.id, paymentID: stored.id,
            entries: LedgerBookings.settlement(units - settled, asset: settlement.asset, inReview: inReview), on: connection, logger: logger
        )
        return units
    }

    /// Splits whatever settled money a sold order holds into the platform's fee and the owner's share — or,
    /// when one of several payments was refunded while the rest still covers the order, takes its part back.
    func splitSettlement(_ order: LockedOrder) async throws {
        let asset = settings.settlement.asset
        let held = -(try await LedgerStore.balance(.buyerCredit, orderID: order.id, asset: asset, on: connection, logger: logger))
        guard held != 0 else { return }
        let splits = try await LedgerStore.transactions(.split, orderID: order.id, on: connection, logger: logger)
        // The owner's part is worth the order's USD owner share, in proportion when the order's settled money
        // is split in several pieces (a later payment, a refund after the split).
        let splitBefore = try await LedgerStore.splitUnits(orderID: order.id, asset: asset, on: connection, logger: logger)
        let ownerShareUSD = FeeSplit(gross: order.priceUSD, feePercent: settings.platformFeePercent).ownerShare
        let whole = splitBefore + held
        let value = whole > 0 ? DecimalText.rounded(ownerShareUSD * abs(held) / whole, scale: 2, .plain) : ownerShareUSD
        try await LedgerStore.book(
            .split, key: "split:order:\(order.id):\(splits.total + 1)", orderID: order.id, paymentID: nil,
            entries: LedgerBookings.split(
                held, asset: asset, feePercent: settings.platformFeePercent, ownerUserID: order.ownerUserID, ownerValueUSD: value
            ),
            on: connection, logger: logger
        )
    }

    /// Derives the order's state from its payments and delivers or undoes the sale when coverage changed.
    func settle(_ order: inout LockedOrder, status: PaymentProgress) async throws -> PaymentProcessor.Result {
        let before = order
        let payments = try await PaymentStore.ofOrder(order.id, on: connection, logger: logger).filter { $0.reviewReason == nil }
        order.receivedUSD = payments.reduce(0) { $0 + $1.creditedUSD }
        let covered = OrderRules.covers(received: order.receivedUSD, price: order.priceUSD, tolerancePercent: settings.partialPaymentTolerancePercent)
        var paidAt: Date?
        if !order.sold, covered {
            paidAt = min(payment.updatedAt.flatMap(Self.providerTime) ?? now, now)
            try await sell(order, paidAt: paidAt!)
            order.sold = true
        } else if order.sold, !covered {
            try await unsell(order)
            order.sold = false
        }
        if order.sold { try await splitSettlement(order) }
        order.status = OrderRules.status(current: order.status, sold: order.sold, received: order.receivedUSD, payments: payments.map(\.status))
        if order.sold, before.sold, order.receivedUSD > before.receivedUSD {
            try await transaction.raise(
                .overpaid(
                    orderID: order.publicID, paymentID: payment.id, excessUSD: DecimalText.usd(order.receivedUSD - before.receivedUSD)
                ))
        }
        if !order.sold, order.receivedUSD > before.receivedUSD, status.moneyArrived {
            try await transaction.enqueue(
                NotifyUserJob(
                    userID: order.userID, key: order.kind == .donation ? L10n.donationPartiallyPaid : L10n.paymentPartiallyPaid,
                    arguments: [
                        "title": order.title,
                        "paid": payment.actuallyPaid.map(DecimalText.plain) ?? "0",
                        "asked": payment.payAmount.map(DecimalText.plain) ?? "?",
                        "currency": (payment.payCurrency ?? "").uppercased(),
                    ]
                ))
        }
        if before.sold == false, order.status.isClosedUnsold, order.status != before.status {
            // A donation has no offer to renew: its donor only hears that it closed.
            let donation = order.kind == .donation
            try await transaction.enqueue(
                NotifyUserJob(
                    userID: order.userID, key: (donation ? "donation." : "payment.") + order.status.rawValue, arguments: ["title": order.title],
                    buttons: donation ? [] : [.renew(channelID: order.channelID)]
                ))
        }
        if before.sold, !order.sold { order.status = .refunded }
        try await OrderStore.update(order, paidAt: paidAt, on: connection, logger: logger)
        return order.status == before.status
            ? .unchanged(orderID: order.id, order.status) : .moved(orderID: order.id, from: before.status, to: order.status)
    }

    /// The sale: book, grant, invite, tell the buyer and the owner — or, for a donation, book and thank.
    func sell(_ order: LockedOrder, paidAt: Date) async throws {
        let sales = try await LedgerStore.transactions(.sale, orderID: order.id, on: connection, logger: logger)
        try await LedgerStore.book(
            .sale, key: "sale:order:\(order.id):\(sales.total + 1)", orderID: order.id, paymentID: nil,
            entries: LedgerBookings.sale(
                received: order.receivedUSD, price: order.priceUSD, feePercent: settings.platformFeePercent, ownerUserID: order.ownerUserID),
            on: connection, logger: logger
        )
        // A donation buys nothing: no subscription, no invite; the donor is thanked.
        guard order.kind == .subscription else {
            try await transaction.enqueue(
                NotifyUserJob(
                    userID: order.userID, key: L10n.donationThanks, arguments: ["title": order.title, "amount": DecimalText.usd(order.priceUSD)]
                ))
            try await OwnerNotifications.enqueue(.donation(orderID: order.id), channelID: order.channelID, in: transaction)
            return
        }
        let grant = try await SubscriptionStore.grant(
            userID: order.userID, channelID: order.channelID, orderID: order.id, days: order.durationDays, paidAt: paidAt, on: connection,
            logger: logger
        )
        try await transaction.enqueue(
            DeliverInviteJob(subscriptionID: grant.subscriptionID, orderID: order.id),
            options: JobOptions(uniqueKey: "invite:order:\(order.id):\(sales.total + 1)")
        )
        try await transaction.enqueue(
            NotifyUserJob(
                userID: order.userID, key: grant.renewed ? L10n.paymentRenewed : L10n.paymentPaid,
                arguments: ["title": order.title, "expires": AccessService.format(grant.expiresAt)],
                dayArguments: ["days": order.durationDays]
            ))
        try await OwnerNotifications.enqueue(.sale(orderID: order.id, renewal: grant.renewed), channelID: order.channelID, in: transaction)
    }

    /// A refund took away the money a sale consumed: the sale and its settlement splits are reversed, the access it paid for taken
    /// back, buyer and owner told, and the admins alerted when the owner's share was already paid out.
    func unsell(_ order: LockedOrder) async throws {
        for kind in [LedgerTransactionKind.sale, .split] {
            for transaction in try await LedgerStore.transactions(kind, orderID: order.id, on: connection, logger: logger).open {
                try await LedgerStore.reverse(transaction, on: connection, logger: logger)
            }
        }
        if order.kind == .subscription {
            // When nothing else covers the time, the expiry is now and the next sweep (within a minute) removes them.
            try await SubscriptionStore.revoke(
                userID: order.userID, channelID: order.channelID, days: order.durationDays, now: now, on: connection, logger: logger
            )
            try await transaction.enqueue(
                NotifyUserJob(
                    userID: order.userID, key: L10n.paymentRefundedAfterAccess, arguments: ["title": order.title],
                    buttons: [.renew(channelID: order.channelID)]
                ))
        } else {
            try await transaction.enqueue(
                NotifyUserJob(
                    userID: order.userID, key: L10n.donationRefundedAfterSale,
                    arguments: ["title": order.title, "amount": DecimalText.usd(order.priceUSD)]
                ))
        }
        try await OwnerNotifications.enqueue(.refund(orderID: order.id), channelID: order.channelID, in: transaction)
        let balance = try await LedgerStore.ownerBalance(order.ownerUserID, on: connection, logger: logger)
        if balance < 0 {
            try await transaction.raise(
                .ownerBalanceNegative(ownerUserID: order.ownerUserID, balanceUSD: DecimalText.usd(-balance), orderID: order.publicID))
        }
    }

    /// The provider's `updated_at` (ISO 8601 with or without fractions).
    static func providerTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
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
