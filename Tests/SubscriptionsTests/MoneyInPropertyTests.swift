import Foundation
import Payments
import PostgresNIO
import Storage
import Subscriptions
import Synchronization
import TestSupport
import Testing

/// Random interleavings of payments, re-deposits, duplicates, refunds and statuses on random orders, applied
/// concurrently, must keep every invariant of the money: balanced transactions, no sale without covering
/// money, and exactly the days paid for.
@Suite("Money in: random interleavings")
struct MoneyInPropertyTests {
    /// One provider answer about one payment.
    struct Event: Sendable {
        var payment: Payment
    }

    /// A shared queue of events that several appliers drain at once.
    final class Events: Sendable {
        let remaining: Mutex<[Event]>
        init(_ events: [Event]) { remaining = Mutex(events) }
        func next() -> Event? { remaining.withLock { $0.isEmpty ? nil : $0.removeFirst() } }
    }

    struct OrderRow: Sendable {
        var id: Int64
        var publicID: String
        var invoiceID: String
        var price: Decimal
        var days: Int
    }

    /// The snapshots a payment goes through, oldest first, each the provider's full answer at that moment.
    static func script(
        id: String, parent: String?, order: OrderRow, updatedAt: String, using random: inout SeededGenerator
    ) -> [Payment] {
        func snapshot(_ status: PaymentStatus, _ paid: Decimal) -> Payment {
            Payment(
                id: id, invoiceID: order.invoiceID, parentPaymentID: parent, status: status, orderID: order.publicID,
                priceAmount: order.price, priceCurrency: "usd", payAmount: 1, actuallyPaid: paid, payCurrency: "eth",
                outcomeAmount: paid, outcomeCurrency: "eth", updatedAt: updatedAt
            )
        }
        if parent != nil {
            let paid = [Decimal(string: "0.1")!, Decimal(string: "0.5")!, 1].randomElement(using: &random)!
            var steps = [snapshot([.finished, .partiallyPaid].randomElement(using: &random)!, paid)]
            if Int.random(in: 0..<5, using: &random) == 0 { steps.append(snapshot(.refunded, paid)) }
            return steps
        }
        var steps = [snapshot(.waiting, 0)]
        if Bool.random(using: &random) { steps.append(snapshot(.confirming, 0)) }
        switch Int.random(in: 0..<7, using: &random) {
        case 0: steps.append(snapshot(.expired, 0))
        case 1: steps.append(snapshot(.failed, 0))
        case 2:
            steps.append(snapshot(.partiallyPaid, Decimal(string: "0.5")!))
            steps.append(snapshot(.partiallyPaid, Decimal(string: "0.99")!))
        case 3: steps.append(snapshot(.finished, Decimal(string: "0.9")!))
        case 4: steps.append(snapshot(.finished, Decimal(string: "0.985")!))
        case 5: steps.append(snapshot(.finished, Decimal(string: "1.2")!))
        default: steps.append(snapshot(.finished, 1))
        }
        if steps.last!.actuallyPaid! > 0, Int.random(in: 0..<4, using: &random) == 0 {
            steps.append(snapshot(.refunded, steps.last!.actuallyPaid!))
        }
        return steps
    }

    @Test(
        "ledger sums to zero per transaction, order and overall; no sale without covering money; granted days equal days paid for",
        arguments: [UInt64(0x5EED_0001), 0x5EED_0002, 0x5EED_0003])
    func invariants(seed: UInt64) async throws {
        var settings = SubscriptionSettings(publicURL: URL(string: "https://telepay.example")!)
        settings.partialPaymentTolerancePercent = 2
        try await withSubscriptionWorld(settings: settings, workers: false) { world in
            var random = SeededGenerator(state: seed)
            let users = [SubscriptionWorld.anna, SubscriptionWorld.boris]
            var orders: [OrderRow] = []
            for index in 0..<10 {
                let position = Int.random(in: 1...2, using: &random)
                _ = try await world.purchases.buy(userID: users[index % 2], channelID: world.channelID, position: position)
                let row = try #require(
                    try await world.database.withConnection { connection in
                        try await connection.first(
                            "SELECT id, public_id, invoice_id, price_usd::text, duration_days FROM orders ORDER BY id DESC LIMIT 1",
                            as: (Int64, String, String, String, Int32).self, logger: quietLogger
                        )
                    })
                orders.append(OrderRow(id: row.0, publicID: row.1, invoiceID: row.2, price: Decimal(string: row.3)!, days: Int(row.4)))
            }
            let stamp = ISO8601DateFormatter().string(from: world.clock.now())
            var events: [Event] = []
            var nextID = 7_000_000
            for order in orders {
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    nextID += 1
                    let parent = String(nextID)
                    events += Self.script(id: parent, parent: nil, order: order, updatedAt: stamp, using: &random).map(Event.init)
                    if Int.random(in: 0..<4, using: &random) == 0 {
                        nextID += 1
                        events += Self.script(id: String(nextID), parent: parent, order: order, updatedAt: stamp, using: &random).map(Event.init)
                    }
                }
            }
            // Duplicates, then any order at all: the provider re-sends and callbacks race.
            events += (0..<events.count / 3).map { _ in events.randomElement(using: &random)! }
            events.shuffle(using: &random)
            let queue = Events(events)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        while let event = queue.next() {
                            try await world.processor.apply(event.payment, orderRef: nil, inboxID: nil)
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await Self.checkInvariants(world, tolerance: 2, startedAt: world.clock.now())
        }
    }

    static func checkInvariants(_ world: SubscriptionWorld, tolerance: Decimal, startedAt: Date) async throws {
        try await world.database.withConnection { connection in
            let unbalanced = try await connection.all(
                "SELECT transaction_id FROM ledger_entries GROUP BY transaction_id, asset HAVING sum(amount) <> 0", as: Int64.self,
                logger: quietLogger
            )
            #expect(unbalanced.isEmpty, "unbalanced transactions: \(unbalanced)")
            let perOrder = try await connection.all(
                "SELECT order_id FROM ledger_entries WHERE order_id IS NOT NULL GROUP BY order_id HAVING sum(amount) <> 0", as: Int64.self,
                logger: quietLogger
            )
            #expect(perOrder.isEmpty, "orders whose entries do not sum to zero: \(perOrder)")
            #expect(
                try await connection.first("SELECT coalesce(sum(amount), 0)::text FROM ledger_entries", as: String.self, logger: quietLogger)
                    .flatMap { Decimal(string: $0) } == 0)

            // Each payment's money in the ledger is exactly what it credited, in the account its review state says.
            let payments = try await connection.all(
                """
                SELECT p.id, p.credited_usd::text, p.review_reason IS NOT NULL,
                       coalesce((SELECT sum(e.amount) FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
                                 WHERE t.payment_id = p.id AND e.account = 'provider_clearing'), 0)::text
                FROM payments p
                """,
                as: (Int64, String, Bool, String).self, logger: quietLogger
            )
            for (id, credited, _, clearing) in payments {
                #expect(Decimal(string: credited) == Decimal(string: clearing), "payment \(id): credited \(credited), provider clearing \(clearing)")
            }
            // What the hot wallet received in the ledger is what the payments say was settled.
            let wallet = try await connection.first(
                """
                SELECT (SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE account = 'hot_wallet' AND asset = 'ETH')::text,
                       (SELECT coalesce(sum(settled_units), 0) FROM payments)::text
                """,
                as: (String, String).self, logger: quietLogger
            )
            #expect(wallet.map { Decimal(string: $0.0) == Decimal(string: $0.1) } == true, "hot wallet \(String(describing: wallet))")

            let rows = try await connection.all(
                """
                SELECT o.id, o.status, o.sold, o.received_usd::text, o.price_usd::text, o.user_id, o.duration_days,
                       coalesce((SELECT sum(p.credited_usd) FROM payments p WHERE p.order_id = o.id AND p.review_reason IS NULL), 0)::text,
                       (SELECT count(*) FROM ledger_transactions t WHERE t.order_id = o.id AND t.kind = 'sale'
                          AND NOT EXISTS (SELECT 1 FROM ledger_transactions r WHERE r.reverses = t.id))::int,
                       coalesce((SELECT -sum(e.amount) FROM ledger_entries e WHERE e.order_id = o.id AND e.account = 'buyer_credit' AND e.asset = 'USD'), 0)::text,
                       coalesce((SELECT -sum(e.amount) FROM ledger_entries e WHERE e.order_id = o.id AND e.account = 'buyer_credit' AND e.asset = 'ETH'), 0)::text,
                       coalesce((SELECT sum(p.settled_units) FROM payments p WHERE p.order_id = o.id AND p.review_reason IS NULL), 0)::text
                FROM orders o
                """,
                as: (Int64, String, Bool, String, String, Int64, Int32, String, Int32, String, String, String).self, logger: quietLogger
            )
            var daysPaid: [Int64: Int] = [:]
            for (id, status, sold, receivedText, priceText, user, days, creditedText, openSales, owedText, heldUnits, settledUnits) in rows {
                // Settled wei of a sold order is all split into fee and owner share; an unsold order holds all of it.
                #expect(
                    Decimal(string: heldUnits) == (sold ? 0 : Decimal(string: settledUnits)),
                    "order \(id): holds \(heldUnits) wei of \(settledUnits) settled")
                let received = Decimal(string: receivedText)!
                let price = Decimal(string: priceText)!
                let owed = Decimal(string: owedText)!
                #expect(
                    received == Decimal(string: creditedText)!, "order \(id): received \(received) is not what its payments credited \(creditedText)")
                #expect(
                    sold == OrderRules.covers(received: received, price: price, tolerancePercent: tolerance),
                    "order \(id): sold \(sold) with \(received) of \(price)")
                #expect(sold == (status == OrderStatus.paid.rawValue), "order \(id): sold \(sold) but \(status)")
                #expect(Int(openSales) == (sold ? 1 : 0), "order \(id): \(openSales) open sales")
                if sold {
                    let consumed = received - owed
                    #expect(
                        consumed <= price && OrderRules.covers(received: consumed, price: price, tolerancePercent: tolerance),
                        "order \(id): consumed \(consumed)")
                } else {
                    #expect(owed == received, "order \(id): owes \(owed) of \(received) received and undelivered")
                }
                daysPaid[user, default: 0] += sold ? Int(days) : 0
            }
            let subscriptions = try await connection.all(
                "SELECT user_id, expires_at FROM subscriptions", as: (Int64, Date).self, logger: quietLogger
            )
            for user in [SubscriptionWorld.anna, SubscriptionWorld.boris] {
                let expires = subscriptions.first { $0.0 == user }?.1
                let granted = expires.map { Int(($0.timeIntervalSince(startedAt) / 86_400).rounded()) } ?? 0
                #expect(granted == daysPaid[user, default: 0], "user \(user): \(granted) days granted, \(daysPaid[user, default: 0]) paid for")
            }
        }
    }
}
