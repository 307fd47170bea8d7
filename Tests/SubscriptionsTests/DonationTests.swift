import Bot
import Foundation
import Jobs
import NOWPaymentsFake
import PostgresNIO
import Subscriptions
import TestSupport
import Testing

extension SubscriptionWorld {
    /// The text of the newest message in the user's chat that shows the donation keypad.
    func keypadText(of user: Int64) async -> String? {
        await bot.sentMessages(to: user).last { message in
            !message.deleted && message.keyboard?.inlineKeyboard.joined().contains { $0.text == "⌫" } == true
        }?.text
    }

    /// Taps a keypad key and waits until the keypad shows `expected` (its amount line or a refusal).
    func press(_ label: String, _ user: Int64, shows expected: String) async throws {
        try await bot.userTapsButton(user, label: label)
        try await eventually("the keypad shows “\(expected)” after \(label)") { await keypadText(of: user)?.contains(expected) == true }
    }

    func amountLine(_ amount: String) -> String { "Amount: <b>\(amount)</b>" }

    func refusal(_ rejection: DonationRejection, min: String = "4.99", max: String = "9999.99") -> String {
        "⚠️ " + text("donation.rejected.\(rejection.rawValue)", ["min": min, "max": max, "digits": "4", "decimals": "2"])
    }
}

@Suite("Donations, end to end (fake Bot API, fake NOWPayments, real PostgreSQL)")
struct DonationTests {
    @Test(
        "the donation link opens a keypad in the donor's private chat that refuses every bad input with its reason, then an invoice; paid, it is a donation: no subscription, no invite, ledger balanced, owner told, donor thanked"
    )
    func donationFromTheChannelButton() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            try await world.database.withConnection { connection in
                try await connection.run("UPDATE channels SET donation_max_usd = 100 WHERE id = \(world.channelID)", logger: quietLogger)
            }
            // The donation post's button is a URL that opens the bot with `d<offer token>`.
            let link = OfferPostBuilder.donationLink(botUsername: "telepay_bot", offerToken: world.offerToken)
            let payload = try #require(link.split(separator: "=").last.map(String.init))
            await world.bot.userSendsText(anna, "/start \(payload)")
            try await world.eventually("the keypad appears") { await world.keypadText(of: anna)?.contains(world.amountLine("$0.00")) == true }
            let keypad = try #require(await world.keypadText(of: anna))
            #expect(keypad.contains("Secret Club") && keypad.contains("$4.99") && keypad.contains("$100.00"), "\(keypad)")
            let keypadMessage = try #require(await world.bot.sentMessages(to: anna).last { $0.text == keypad }).messageID

            try await world.press(world.text("donation.button.confirm"), anna, shows: world.refusal(.empty))
            try await world.press("⌫", anna, shows: world.refusal(.nothingToDelete))
            try await world.press("0", anna, shows: world.amountLine("$0"))
            try await world.press("5", anna, shows: world.refusal(.leadingZero))
            try await world.press(".", anna, shows: world.amountLine("$0."))
            try await world.press(".", anna, shows: world.refusal(.secondDot))
            try await world.press(world.text("donation.button.clear"), anna, shows: world.amountLine("$0.00"))
            try await world.press(world.text("donation.button.clear"), anna, shows: world.refusal(.nothingToDelete))
            for digit in ["1", "2", "3"] { try await world.bot.userTapsButton(anna, label: digit) }
            try await world.press("4", anna, shows: world.amountLine("$1234"))
            try await world.press("5", anna, shows: world.refusal(.tooManyIntegerDigits))
            #expect(await world.keypadText(of: anna)?.contains(world.amountLine("$1234")) == true, "a refused key changes nothing")
            try await world.press(world.text("donation.button.confirm"), anna, shows: world.refusal(.aboveMaximum, max: "100.00"))
            try await world.press(world.text("donation.button.clear"), anna, shows: world.amountLine("$0.00"))
            for key in ["1", ".", "2"] { try await world.bot.userTapsButton(anna, label: key) }
            try await world.press("3", anna, shows: world.amountLine("$1.23"))
            try await world.press("4", anna, shows: world.refusal(.tooManyDecimals))
            try await world.press(world.text("donation.button.confirm"), anna, shows: world.refusal(.belowMinimum))
            try await world.press(world.text("donation.button.clear"), anna, shows: world.amountLine("$0.00"))
            for key in ["1", "2", "."] { try await world.bot.userTapsButton(anna, label: key) }
            try await world.press("5", anna, shows: world.amountLine("$12.5"))
            #expect(try await world.count("SELECT count(*)::int FROM orders") == 0, "no order before Confirm")

            // A press on another message than the donor's keypad is outdated and changes nothing.
            await world.bot.userSendsCallback(anna, data: CallbackData.donationKey(.d9).encoded, onMessage: keypadMessage + 1000)
            try await world.bot.userTapsButton(anna, label: world.text("donation.button.confirm"))
            try await world.eventually("the invoice replaces the keypad") {
                await world.bot.sentMessages(to: anna).contains {
                    $0.text == world.text("donation.invoice", ["title": "Secret Club", "amount": "12.50"])
                }
            }
            let invoice = try #require(try await world.newestInvoice(of: anna))
            #expect(invoice.priceAmount == "12.5")
            #expect(invoice.priceCurrency == "usd")
            #expect(await world.url(of: world.text("purchase.pay_button"), for: anna) == "https://nowpayments.io/payment/?iid=\(invoice.id)")
            let orderID = try #require(invoice.orderID)
            #expect(
                try await world.strings("SELECT kind || ' ' || price_usd::text || ' ' || coalesce(tier_position::text, '-') FROM orders") == [
                    "donation 12.50 -"
                ])

            try await world.pay(invoice)
            try await world.waitForOrder(orderID, "paid")
            try await world.settled()
            #expect(try await world.subscription(of: anna) == nil, "a donation grants no subscription")
            #expect(try await world.purchases.order(publicID: orderID)?.kind == .donation, "the return page thanks instead of promising an invite")
            #expect(try await world.count("SELECT count(*)::int FROM jobs WHERE kind = \(DeliverInviteJob.kind)") == 0, "no invite")
            #expect(await world.url(of: world.text("invite.button"), for: anna) == nil)
            #expect(
                try await world.ledger(ofOrder: orderID) == [
                    "receipt provider_clearing:12.50", "receipt buyer_credit:-12.50",
                    "sale buyer_credit:12.50", "sale platform_fee:-0.38", "sale owner_payable:-12.12",
                ])
            #expect(
                try await world.strings("SELECT sum(amount)::text FROM ledger_entries WHERE order_id IS NOT NULL GROUP BY asset").allSatisfy {
                    Decimal(string: $0) == 0
                })
            #expect(await world.ownerHeard("💝 Donation to <b>Secret Club</b>: $12.50"))
            #expect(await world.ownerHeard("Your share: $12.12"))
            #expect(await world.ownerHeard("<a href=\"tg://user?id=\(anna)\">Anna</a>"), "the donor as a mention")
            #expect(await !world.messages(to: anna, containing: world.text("donation.thanks", ["title": "Secret Club", "amount": "12.50"])).isEmpty)
            #expect(await world.messages(to: anna, containing: "invite").isEmpty, "nothing promises an invite")
        }
    }

    @Test("a refunded donation is reversed in the ledger, the donor and the owner are told, and no access is touched")
    func refundedDonation() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            let donations = world.purchases.donations
            _ = try #require(try await donations.open(token: world.offerToken, userID: anna, chatID: anna))
            try await donations.attach(userID: anna, messageID: 77)
            for key in [DonationKey.d2, .d0] {
                guard case .updated(_, nil) = try await donations.press(key, userID: anna, messageID: 77) else {
                    Issue.record("\(key) refused"); return
                }
            }
            guard case .confirmed(.invoice, let amount) = try await donations.press(.confirm, userID: anna, messageID: 77) else {
                Issue.record("no invoice")
                return
            }
            #expect(amount == 20)
            #expect(try await donations.press(.d1, userID: anna, messageID: 77) == .outdated, "the keypad is closed after Confirm")
            let invoice = try #require(try await world.newestInvoice(of: anna))
            let payment = try await world.pay(invoice, through: ["finished"])
            try await world.waitForOrder(invoice.orderID!, "paid")
            try await world.deliver(try await world.provider.setStatus(payment, "refunded"))
            try await world.waitForOrder(invoice.orderID!, "refunded")
            try await world.settled()
            #expect(
                try await world.ledger(ofOrder: invoice.orderID!) == [
                    "receipt provider_clearing:20.00", "receipt buyer_credit:-20.00",
                    "sale buyer_credit:20.00", "sale platform_fee:-0.60", "sale owner_payable:-19.40",
                    "reversal provider_clearing:-20.00", "reversal buyer_credit:20.00",
                    "reversal buyer_credit:-20.00", "reversal platform_fee:0.60", "reversal owner_payable:19.40",
                ])
            #expect(try await world.subscription(of: anna) == nil)
            #expect(
                await !world.messages(to: anna, containing: world.text("donation.refunded_after_sale", ["title": "Secret Club", "amount": "20.00"]))
                    .isEmpty)
            #expect(await world.ownerHeard("↩️ A donation of $20.00 to <b>Secret Club</b>"))
        }
    }

    @Test("two donors type on keypads of their own: neither sees the other's amount")
    func keypadsArePerDonor() async throws {
        try await withSubscriptionWorld { world in
            let (anna, boris) = (SubscriptionWorld.anna, SubscriptionWorld.boris)
            for user in [anna, boris] {
                await world.bot.userSendsText(user, "/start d\(world.offerToken)")
                try await world.eventually("a keypad for \(user)") { await world.keypadText(of: user) != nil }
            }
            try await world.press("7", anna, shows: world.amountLine("$7"))
            try await world.press("3", boris, shows: world.amountLine("$3"))
            try await world.press("0", anna, shows: world.amountLine("$70"))
            #expect(await world.keypadText(of: boris)?.contains(world.amountLine("$3")) == true)
            try await world.bot.userTapsButton(boris, label: world.text("donation.button.cancel"))
            try await world.eventually("Boris's keypad is closed") {
                await world.bot.sentMessages(to: boris).contains { $0.text == world.text("donation.cancelled", ["title": "Secret Club"]) }
            }
            #expect(await world.keypadText(of: anna)?.contains(world.amountLine("$70")) == true)
        }
    }
}

@Suite("Donation keypad rules (pure)")
struct DonationKeypadRulesTests {
    func typed(_ keys: [DonationKey]) -> Result<String, DonationRejection> {
        var amount = ""
        for key in keys {
            switch DonationKeypad.press(key, on: amount) {
            case .success(let next): amount = next
            case .failure(let rejection): return .failure(rejection)
            }
        }
        return .success(amount)
    }

    @Test("digits, point, ⌫ and Clear: at most 4 integer digits and 2 decimals, no leading zeros, one point, nothing to delete when empty")
    func keys() {
        #expect(typed([.d1, .d2, .d3, .d4]) == .success("1234"))
        #expect(typed([.d1, .d2, .d3, .d4, .d5]) == .failure(.tooManyIntegerDigits))
        #expect(typed([.d9, .dot, .d9, .d9]) == .success("9.99"))
        #expect(typed([.d9, .dot, .d9, .d9, .d9]) == .failure(.tooManyDecimals))
        #expect(typed([.d0, .d5]) == .failure(.leadingZero))
        #expect(typed([.d0, .d0]) == .failure(.leadingZero))
        #expect(typed([.dot, .d5]) == .success("0.5"))
        #expect(typed([.d0, .dot, .d5]) == .success("0.5"))
        #expect(typed([.d1, .dot, .dot]) == .failure(.secondDot))
        #expect(typed([.backspace]) == .failure(.nothingToDelete))
        #expect(typed([.clear]) == .failure(.nothingToDelete))
        #expect(typed([.d1, .d2, .backspace]) == .success("1"))
        #expect(typed([.d1, .dot, .backspace, .d2]) == .success("12"))
        #expect(typed([.d1, .d2, .clear, .d3]) == .success("3"))
        #expect(typed([.d1, .d2, .confirm, .cancel]) == .success("12"), "Confirm and Cancel do not edit")
    }

    @Test("confirming: empty and zero refused, the range inclusive at both ends, a trailing point ignored")
    func confirming() {
        let range = DonationRange.default
        #expect(DonationKeypad.confirm("", range: range) == .failure(.empty))
        #expect(DonationKeypad.confirm("0.", range: range) == .failure(.empty))
        #expect(DonationKeypad.confirm("0.00", range: range) == .failure(.empty))
        #expect(DonationKeypad.confirm("4.98", range: range) == .failure(.belowMinimum))
        #expect(DonationKeypad.confirm("4.99", range: range) == .success(Decimal(string: "4.99")!))
        #expect(DonationKeypad.confirm("12.", range: range) == .success(12))
        #expect(DonationKeypad.confirm("9999.99", range: range) == .success(Decimal(string: "9999.99")!))
        #expect(DonationKeypad.confirm("50.01", range: DonationRange(minimum: 5, maximum: 50)) == .failure(.aboveMaximum))
        #expect(DonationKeypad.display("") == "$0.00")
        #expect(DonationKeypad.display("12.5") == "$12.5")
    }

    @Test("every key survives callback data and fits 64 bytes")
    func callbackData() {
        for key in DonationKey.allCases {
            let data = CallbackData.donationKey(key)
            #expect(CallbackData(data.encoded) == data)
            #expect(data.encoded.utf8.count <= CallbackData.maximumBytes)
        }
    }
}
