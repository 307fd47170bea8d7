import Foundation
import Jobs
import Logging
import Payments
import Storage

/// One pass of the payment re-check.
public struct PaymentRecheckJob: JobPayload {
    public static let kind = "payments.recheck"
    public static let maxAttempts = 3

    public var slot: PeriodicSlot
}

/// Asks the provider about payments that are not final and orders still waiting for their first payment,
/// so a buyer whose callbacks never arrived is still served within minutes. Each is asked again after a
/// quarter of its age (at least the interval, at most six hours); an order with no payment by the end of
/// its invoice's lifetime expires. A failed look-up is logged and tried at a later pass.
public struct PaymentRechecker: JobHandler {
    public let processor: PaymentProcessor
    /// Most payments and most orders asked about per pass.
    public var batch: Int

    public init(processor: PaymentProcessor, batch: Int = 50) {
        self.processor = processor
        self.batch = batch
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 1) }

    public func run(_ payload: PaymentRecheckJob, context: JobContext) async throws {
        try await recheck()
    }

    /// What one pass looked at.
    public struct Pass: Sendable, Hashable {
        public var payments = 0
        public var orders = 0
        public var expired = 0
        public var failures = 0
    }

    /// Runs one pass now.
    @discardableResult
    public func recheck() async throws -> Pass {
        let database = processor.database
        let logger = processor.logger
        let now = processor.clock.now()
        let minimum = max(30, TimeInterval(processor.settings.paymentRecheckInterval.components.seconds))
        var pass = Pass()
        let payments = try await database.withConnection { try await PaymentStore.dueForCheck(now: now, limit: batch, on: $0, logger: logger) }
        for due in payments {
            pass.payments += 1
            do {
                let payment = try await processor.provider.payment(id: due.paymentID)
                try await processor.apply(payment, orderRef: due.orderRef, inboxID: nil)
            } catch {
                pass.failures += 1
                logger.warning("re-checking a payment failed; trying again later", metadata: ["payment_id": "\(due.paymentID)", "error": "\(error)"])
                try await database.withConnection {
                    try await PaymentStore.postponeCheck(
                        provider: due.provider, paymentID: due.paymentID, until: now.addingTimeInterval(minimum), on: $0, logger: logger
                    )
                }
            }
        }
        let orders = try await database.withConnection { try await OrderStore.dueForCheck(now: now, limit: batch, on: $0, logger: logger) }
        for order in orders {
            pass.orders += 1
            do {
                if let found = try await processor.provider.payments(invoiceID: order.invoiceID) {
                    for payment in found {
                        try await processor.apply(payment, orderRef: nil, inboxID: nil)
                    }
                }
                let expired = order.expiresAt.map { $0 <= now } ?? false
                let next =
                    expired ? nil : now.addingTimeInterval(OrderRules.recheckDelay(age: now.timeIntervalSince(order.createdAt), minimum: minimum))
                let closed = try await database.withConnection { connection in
                    try await OrderStore.scheduleCheck(order.id, at: next, on: connection, logger: logger)
                    return expired ? try await OrderStore.expireUnpaid(order.id, on: connection, logger: logger) : false
                }
                if closed {
                    pass.expired += 1
                    logger.info("order expired without a payment", metadata: ["order_id": "\(order.id)"])
                }
            } catch {
                pass.failures += 1
                logger.warning(
                    "re-checking an order's invoice failed; trying again later", metadata: ["order_id": "\(order.id)", "error": "\(error)"])
                try await database.withConnection {
                    try await OrderStore.scheduleCheck(order.id, at: now.addingTimeInterval(minimum), on: $0, logger: logger)
                }
            }
        }
        return pass
    }

    /// Every `interval`; a pass looks at state, so one run covers any missed slots.
    public static func periodicTask(every interval: Duration) throws -> PeriodicTask {
        try PeriodicTask("payments.recheck", every: interval, catchUp: .runOnce) { PaymentRecheckJob(slot: $0) }
    }
}
