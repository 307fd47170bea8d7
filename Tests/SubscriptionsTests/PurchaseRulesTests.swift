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

    @Test("every permutation of a status sequence ends in the same state", arguments: [
        ["waiting", "confirming", "confirmed", "sending", "finished"],
        ["waiting", "confirming", "partially_paid"],
        ["waiting", "confirming", "failed"],
        ["waiting", "expired"],
        ["waiting", "confirming", "finished", "refunded"],
        ["waiting", "expired", "finished"],
    ])
    func permutationsAgree(statuses: [String]) {
        var outcomes = Set<OrderStatus>()
        for order in Self.permutations(statuses) {
            let final = order.reduce(OrderStatus.awaitingPayment) { state, raw in
                PaymentStateMachine.next(state, observing: OrderStatus(payment: PaymentStatus(rawValue: raw))!)
            }
            outcomes.insert(final)
        }
        #expect(outcomes.count == 1, "\(statuses): \(outcomes)")
    }

    @Test("a late confirming never undoes paid, and no status moves an order backwards")
    func forwardOnly() {
        for current in OrderStatus.allCases {
            for observed in OrderStatus.allCases {
                let next = PaymentStateMachine.next(current, observing: observed)
                #expect(next == current || next == observed)
                if current == .paid { #expect(next == .paid) }
            }
        }
        #expect(PaymentStateMachine.next(.paid, observing: .confirming) == .paid)
        #expect(PaymentStateMachine.next(.expired, observing: .paid) == .paid, "money that arrived after the window still counts")
        #expect(OrderStatus(payment: .unrecognised("mystery")) == nil)
    }

    @Test("partially_paid is paid only within the tolerance")
    func tolerance() {
        let payment = Payment(id: "1", status: .partiallyPaid, payAmount: 100, actuallyPaid: 98)
        #expect(PaymentStateMachine.observed(payment, tolerancePercent: 0) == .partiallyPaid)
        #expect(PaymentStateMachine.observed(payment, tolerancePercent: 1) == .partiallyPaid)
        #expect(PaymentStateMachine.observed(payment, tolerancePercent: 2) == .paid)
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
