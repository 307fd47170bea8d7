import Bot
import Foundation
import Payments
import Subscriptions
import Testing

@Suite("Purchase rules")
struct PurchaseRulesTests {
    static func permutations<T>(_ items: [T]) -> [[T]] {
        guard items.count > 1 else { return [items] }
        return items.indices.flatMap { index in
            var rest = items
            let head = rest.remove(at: index)
            return permutations(rest).map { [head] + $0 }
        }
    }

    @Test(
        "every permutation of a payment's statuses ends in the same state",
        arguments: [
            ["waiting", "confirming", "confirmed", "sending", "finished"],
            ["waiting", "confirming", "partially_paid"],
            ["waiting", "confirming", "failed"],
            ["waiting", "expired"],
            ["waiting", "confirming", "finished", "refunded"],
            ["waiting", "expired", "finished"],
            ["waiting", "partially_paid", "expired"],
        ])
    func permutationsAgree(statuses: [String]) {
        var outcomes = Set<PaymentProgress>()
        for order in Self.permutations(statuses) {
            let final = order.reduce(PaymentProgress?.none) { state, raw in
                PaymentProgress.next(state, observing: PaymentProgress(PaymentStatus(rawValue: raw))!)
            }
            outcomes.insert(final!)
        }
        #expect(outcomes.count == 1, "\(statuses): \(outcomes)")
    }

    @Test("money that arrived never goes back to expired or failed; only a refund undoes it")
    func forwardOnly() {
        for current in PaymentProgress.allCases {
            for observed in PaymentProgress.allCases {
                let next = PaymentProgress.next(current, observing: observed)
                #expect(next == current || next == observed)
                if current.moneyArrived && observed != .refunded && observed != .finished { #expect(next == current) }
                if current == .refunded { #expect(next == .refunded) }
            }
        }
        #expect(PaymentProgress.next(.finished, observing: .confirming) == .finished)
        #expect(PaymentProgress.next(.expired, observing: .finished) == .finished, "money that arrived after the window still counts")
        #expect(PaymentProgress.next(.finished, observing: .refunded) == .refunded)
        #expect(PaymentProgress(.unrecognised("mystery")) == nil)
        #expect(PaymentProgress(.cancelled) == .expired)
    }

    @Test("what arrived is valued at the payment's own rate, rounded down to the cent")
    func valuation() {
        #expect(OrderRules.valueUSD(actuallyPaid: Decimal(string: "0.0041")!, priceAmount: 10, payAmount: Decimal(string: "0.0041")!) == 10)
        #expect(OrderRules.valueUSD(actuallyPaid: Decimal(string: "0.00205")!, priceAmount: 10, payAmount: Decimal(string: "0.0041")!) == 5)
        // 98.77% of $9.99 is $9.867…: never a cent nobody paid.
        #expect(
            OrderRules.valueUSD(actuallyPaid: Decimal(string: "98.77")!, priceAmount: Decimal(string: "9.99")!, payAmount: 100)
                == Decimal(string: "9.86"))
        #expect(OrderRules.valueUSD(actuallyPaid: 0, priceAmount: nil, payAmount: nil) == 0)
        #expect(OrderRules.valueUSD(actuallyPaid: 1, priceAmount: nil, payAmount: 2) == nil, "no rate, no value")
        #expect(OrderRules.valueUSD(actuallyPaid: 1, priceAmount: 10, payAmount: 0) == nil)
    }

    @Test("an order is covered only within the tolerance, and nothing covers nothing")
    func tolerance() {
        #expect(OrderRules.covers(received: 10, price: 10, tolerancePercent: 0))
        #expect(!OrderRules.covers(received: Decimal(string: "9.99")!, price: 10, tolerancePercent: 0))
        #expect(!OrderRules.covers(received: Decimal(string: "9.79")!, price: 10, tolerancePercent: 2))
        #expect(OrderRules.covers(received: Decimal(string: "9.80")!, price: 10, tolerancePercent: 2))
        #expect(OrderRules.covers(received: 11, price: 10, tolerancePercent: 0))
        #expect(!OrderRules.covers(received: 0, price: 10, tolerancePercent: 100))
    }

    @Test("an order closes only when no payment can still complete it")
    func orderStatus() {
        #expect(OrderRules.status(current: .awaitingPayment, sold: false, received: 0, payments: []) == .awaitingPayment)
        #expect(
            OrderRules.status(current: .waiting, sold: false, received: 0, payments: [.expired, .confirming]) == .confirming,
            "a coin switch: the abandoned payment expiring does not close the order")
        #expect(OrderRules.status(current: .waiting, sold: false, received: 0, payments: [.expired, .waiting]) == .waiting)
        #expect(OrderRules.status(current: .waiting, sold: false, received: 0, payments: [.expired, .expired]) == .expired)
        #expect(OrderRules.status(current: .waiting, sold: false, received: 0, payments: [.expired, .failed]) == .failed)
        #expect(OrderRules.status(current: .waiting, sold: false, received: 5, payments: [.partiallyPaid, .waiting]) == .partiallyPaid)
        #expect(OrderRules.status(current: .partiallyPaid, sold: true, received: 10, payments: [.partiallyPaid, .finished]) == .paid)
        #expect(OrderRules.status(current: .cancelled, sold: false, received: 0, payments: [.waiting]) == .cancelled)
        #expect(
            OrderRules.status(current: .expired, sold: false, received: 0, payments: [.confirming]) == .confirming,
            "money on its way reopens an order that expired without a payment")
    }

    @Test("a sale's entries sum to zero, consume at most the price, and book a shortfall as variance", arguments: ["9.80", "10.00", "12.34"])
    func saleBooking(received text: String) {
        let received = Decimal(string: text)!
        let entries = LedgerBookings.sale(received: received, price: 10, feePercent: 3, ownerUserID: 7)
        #expect(entries.reduce(Decimal(0)) { $0 + $1.amount } == 0)
        #expect(entries.first { $0.account == .buyerCredit }?.amount == min(received, 10))
        #expect(entries.first { $0.account == .paymentVariance }?.amount == (received < 10 ? 10 - received : nil))
        #expect(entries.first { $0.account == .platformFee }?.amount == Decimal(string: "-0.3"))
        #expect(entries.first { $0.account == .ownerPayable }?.amount == Decimal(string: "-9.7"))
        #expect(entries.first { $0.account == .ownerPayable }?.ownerUserID == 7)
        let receipt = LedgerBookings.receipt(received, inReview: false)
        #expect(receipt.reduce(Decimal(0)) { $0 + $1.amount } == 0)
        #expect(LedgerBookings.receipt(received, inReview: true).contains { $0.account == .paymentReview })
    }

    @Test("re-checks back off with age: within a minute at first, at most six hours")
    func recheckDelay() {
        #expect(OrderRules.recheckDelay(age: 0, minimum: 60) == 60)
        #expect(OrderRules.recheckDelay(age: 3600, minimum: 60) == 900)
        #expect(OrderRules.recheckDelay(age: 30 * 86_400, minimum: 60) == 6 * 3600)
    }

    @Test("the fee split always sums to the gross, in cents", arguments: ["0.01", "0.99", "1.00", "9.99", "10.00", "33.33", "9999.99"])
    func feeSplit(gross text: String) {
        let gross = Decimal(string: text)!
        for percent in ["0", "2.5", "3", "7.77", "50"] {
            let split = FeeSplit(gross: gross, feePercent: Decimal(string: percent)!)
            #expect(split.platformFee + split.ownerShare == gross)
            #expect(split.platformFee >= 0 && split.ownerShare >= 0)
            var fee = split.platformFee
            var rounded = Decimal()
            NSDecimalRound(&rounded, &fee, 2, .plain)
            #expect(rounded == split.platformFee, "whole cents")
        }
        #expect(FeeSplit(gross: 10, feePercent: 3).platformFee == Decimal(string: "0.3"))
        #expect(FeeSplit(gross: Decimal(string: "33.33")!, feePercent: 3).platformFee == 1)
    }

    @Test("reminders: the lead times reached and not yet sent, nothing after the end")
    func dueReminders() {
        let end = Date(timeIntervalSince1970: 1_800_000_000)
        func at(_ days: Double) -> Date { end.addingTimeInterval(-days * 86_400) }
        #expect(SubscriptionTerm.dueReminders(expiry: end, now: at(4), leadDays: [3, 1], alreadySent: []) == [])
        #expect(SubscriptionTerm.dueReminders(expiry: end, now: at(2.5), leadDays: [3, 1], alreadySent: []) == [3])
        #expect(SubscriptionTerm.dueReminders(expiry: end, now: at(2.5), leadDays: [3, 1], alreadySent: [3]) == [])
        #expect(SubscriptionTerm.dueReminders(expiry: end, now: at(0.5), leadDays: [3, 1], alreadySent: []) == [1, 3])
        #expect(SubscriptionTerm.dueReminders(expiry: end, now: at(-0.1), leadDays: [3, 1], alreadySent: []) == [])
    }

    @Test("purchase callback data round-trips and always fits in 64 bytes")
    func callbackData() {
        let cases: [CallbackData] = [
            .buyTier(offerToken: String(repeating: "a", count: 32), position: 3), .buyTier(offerToken: "AbCdEfGh_-012345", position: 1),
            .retryInvoice(orderID: Int64.max), .renew(channelID: 1), .inviteAgain(subscriptionID: Int64.max),
        ]
        for data in cases {
            #expect(data.encoded.utf8.count <= CallbackData.maximumBytes)
            #expect(CallbackData(data.encoded) == data)
        }
        #expect(CallbackData("v1:buy:12:1") == nil, "the old form named the channel by id; it reads as outdated")
        #expect(CallbackData("v1:tier:4:AbCdEfGh_-012345") == nil)
        #expect(CallbackData("v1:tier:1:short") == nil)
        #expect(CallbackData("v1:tier:1:AbCdEfGh_-01234!") == nil)
        #expect(CallbackData("v1:tier:1:" + String(repeating: "a", count: 33)) == nil)
        #expect(CallbackData("v1:renew:012") == nil)
        #expect(CallbackData("v1:invite:") == nil)
    }
}
