import Bot
import Foundation
import Jobs
import NOWPaymentsFake
import Payments
import PostgresNIO
import Subscriptions
import TestSupport
import Testing

extension SubscriptionWorld {
    /// Buys tier `position` for `user` straight through the service and pays it; returns the order's public id.
    @discardableResult
    func buyAndPay(_ user: Int64, position: Int) async throws -> String {
        let outcome = try await purchases.buy(userID: user, channelID: channelID, position: position)
        guard case .invoice = outcome else { throw WorldError.timedOut("an invoice, got \(outcome)") }
        let invoice = try #require(try await newestInvoice(of: user))
        try await pay(invoice, through: ["finished"])
        try await waitForOrder(invoice.orderID!, "paid")
        return invoice.orderID!
    }

    /// Waits for the user's `invites`-th invite message and uses its link; returns once they are in the closed channel.
    func join(_ user: Int64, invites: Int = 1) async throws {
        let label = text("invite.button")
        try await eventually("invite \(invites) for \(user)") {
            await bot.sentMessages(to: user).filter { $0.keyboard?.inlineKeyboard.joined().contains { $0.text == label } == true }.count >= invites
        }
        let link = try #require(await url(of: label, for: user))
        try await bot.userOpensInviteLink(user, link)
        try await eventually("\(user) is in") { await bot.memberStatus(chat: SubscriptionWorld.closedChat, user: user) == "member" }
    }

    func actions(of user: Int64) async throws -> [String] {
        try await strings("SELECT action FROM access_events WHERE user_id = \(user) ORDER BY id")
    }
}

@Suite("Renewals, expiry, reminders and invites")
struct AccessTests {
    @Test("renewal while active extends from the current expiry; after expiry it starts from now and reactivates")
    func renewals() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            let start = world.clock.now()
            try await world.buyAndPay(anna, position: 1)
            #expect(abs(try #require(try await world.subscription(of: anna)).expiresAt.timeIntervalSince(start) - 30 * 86_400) < 1)

            world.clock.advance(days: 10)
            try await world.buyAndPay(anna, position: 2)
            let renewed = try #require(try await world.subscription(of: anna))
            #expect(renewed.status == "active")
            #expect(abs(renewed.expiresAt.timeIntervalSince(start) - 120 * 86_400) < 1, "30 + 90 days from the first purchase")

            world.clock.advance(days: 200)
            try await world.access.sweepExpired()
            #expect(try await world.subscription(of: anna)?.status == "expired")
            let again = world.clock.now()
            try await world.buyAndPay(anna, position: 1)
            let reactivated = try #require(try await world.subscription(of: anna))
            #expect(reactivated.status == "active")
            #expect(abs(reactivated.expiresAt.timeIntervalSince(again) - 30 * 86_400) < 1)
            #expect(try await world.count("SELECT count(*) FROM subscriptions") == 1)
            #expect(try await world.strings("SELECT sum(amount)::numeric(14, 2)::text FROM ledger_entries WHERE asset = 'USD' AND asset = 'USD'") == ["0.00"])
            #expect(try await world.count("SELECT count(*) FROM ledger_entries WHERE asset = 'USD' AND asset = 'USD'") == 15)
        }
    }

    @Test("expiry removes at the right minute, never an admin, tells the user with a Renew button, and runs once")
    func expiry() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            let admin = SubscriptionWorld.admin
            try await world.buyAndPay(anna, position: 1)
            try await world.join(anna)
            try await world.buyAndPay(admin, position: 1)
            let end = try #require(try await world.subscription(of: anna)).expiresAt

            world.clock.set(end.addingTimeInterval(-60))
            #expect(try await world.access.sweepExpired().isEmpty)
            #expect(await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: anna) == "member")

            world.clock.set(end.addingTimeInterval(1))
            let outcomes = try await world.access.sweepExpired()
            #expect(Set(outcomes.values) == [.removed, .keptAdmin])
            #expect(await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: anna) == "left")
            #expect(await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: admin) == "administrator")
            #expect(try await world.subscription(of: anna)?.status == "expired")
            #expect(try await world.actions(of: anna).contains("removed"))
            #expect(try await world.actions(of: anna).contains("link_revoked"))
            #expect(try await world.actions(of: admin).contains("kept_admin"))
            #expect(await world.bot.inviteLinks.values.filter { $0.chatID == SubscriptionWorld.closedChat }.allSatisfy { $0.link.isRevoked })

            let expired = world.text("subscription.expired", ["title": "Secret Club"])
            try await world.eventually("Anna is told") { await !world.messages(to: anna, containing: expired).isEmpty }
            let message = try #require(await world.bot.sentMessages(to: anna).last { $0.text == expired })
            #expect(message.keyboard?.inlineKeyboard.joined().map(\.text) == [world.text("button.renew")])

            world.clock.advance(seconds: 60)
            #expect(try await world.access.sweepExpired().isEmpty, "a second sweep finds nothing to do")

            // Renew from the expiry message: the offer comes back.
            try await world.bot.userTapsButton(anna, label: world.text("button.renew"))
            let tier = world.text("offer.tier_button", ["price": "10.00", "duration": world.days(30)])
            try await world.eventually("the offer is shown again") { await world.buttons(of: anna).contains(tier) }
        }
    }

    @Test("a member who is no longer in the channel is recorded as not a member and still expired")
    func expiryOfAbsentMember() async throws {
        try await withSubscriptionWorld { world in
            try await world.buyAndPay(SubscriptionWorld.boris, position: 1)
            world.clock.advance(days: 31)
            #expect(try await world.access.sweepExpired().values.map { $0 } == [.notAMember])
            #expect(try await world.subscription(of: SubscriptionWorld.boris)?.status == "expired")
        }
    }

    @Test("dry run logs whom it would remove and removes nobody")
    func dryRun() async throws {
        var settings = SubscriptionSettings(publicURL: URL(string: "https://telepay.example")!)
        settings.expiryDryRun = true
        try await withSubscriptionWorld(settings: settings) { world in
            try await world.buyAndPay(SubscriptionWorld.anna, position: 1)
            try await world.join(SubscriptionWorld.anna)
            world.clock.advance(days: 31)
            #expect(try await world.access.sweepExpired().values.map { $0 } == [.wouldRemove])
            #expect(await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: SubscriptionWorld.anna) == "member")
            #expect(try await world.subscription(of: SubscriptionWorld.anna)?.status == "active")
        }
    }

    @Test("reminders go out 3 days and 1 day before the end, each exactly once")
    func reminders() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            try await world.buyAndPay(anna, position: 1)
            let end = try #require(try await world.subscription(of: anna)).expiresAt
            world.clock.set(end.addingTimeInterval(-4 * 86_400))
            #expect(try await world.access.sendReminders() == 0)
            world.clock.set(end.addingTimeInterval(-3 * 86_400 + 60))
            #expect(try await world.access.sendReminders() == 1)
            #expect(try await world.access.sendReminders() == 0)
            world.clock.set(end.addingTimeInterval(-86_400 + 60))
            #expect(try await world.access.sendReminders() == 1)
            world.clock.advance(seconds: 600)
            #expect(try await world.access.sendReminders() == 0)
            let three = world.text("subscription.reminder", ["title": "Secret Club", "days": world.days(3), "expires": AccessService.format(end)])
            let one = world.text("subscription.reminder", ["title": "Secret Club", "days": world.days(1), "expires": AccessService.format(end)])
            try await world.eventually("both reminders arrive") {
                let threes = await world.messages(to: anna, containing: three).count
                let ones = await world.messages(to: anna, containing: one).count
                return threes == 1 && ones == 1
            }
        }
    }

    @Test("a subscriber who left gets a new invite from /subscriptions while active, and is let back in")
    func inviteAgain() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            try await world.buyAndPay(anna, position: 1)
            try await world.join(anna)
            await world.bot.userLeaves(anna, chat: SubscriptionWorld.closedChat)
            await world.bot.userSendsText(anna, "/subscriptions")
            let again = world.text("subscriptions.invite_button")
            try await world.eventually("the list shows the invite button") { await world.buttons(of: anna).contains(again) }
            #expect(await world.bot.lastMessage(to: anna)?.text.contains("Secret Club: active until") == true)
            try await world.bot.userTapsButton(anna, label: again)
            try await world.join(anna, invites: 2)
            #expect(try await world.count("SELECT count(*) FROM invite_links WHERE user_id = \(anna)") == 2)
        }
    }

    @Test("a renewal while in the channel makes no new invite link; asking for one while in says so")
    func noInviteForMembers() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            try await world.buyAndPay(anna, position: 1)
            try await world.join(anna)
            try await world.buyAndPay(anna, position: 2)
            try await world.eventually("the renewal is confirmed") { await !world.messages(to: anna, containing: "is extended by").isEmpty }
            await world.bot.userSendsText(anna, "/subscriptions")
            let again = world.text("subscriptions.invite_button")
            try await world.eventually("the list shows the invite button") { await world.buttons(of: anna).contains(again) }
            try await world.bot.userTapsButton(anna, label: again)
            try await world.eventually("she is told she is already in") {
                await !world.messages(to: anna, containing: world.text("invite.already_member", ["title": "Secret Club"])).isEmpty
            }
            #expect(try await world.count("SELECT count(*) FROM invite_links WHERE user_id = \(anna)") == 1)
        }
    }

    @Test("single-use mode: a non-buyer who gets in through a subscriber's link is removed at once")
    func singleUseIntruder() async throws {
        var settings = SubscriptionSettings(publicURL: URL(string: "https://telepay.example")!)
        settings.inviteMode = .singleUse
        try await withSubscriptionWorld(settings: settings) { world in
            try await world.buyAndPay(SubscriptionWorld.anna, position: 1)
            try await world.eventually("the invite arrives") { await world.url(of: world.text("invite.button"), for: SubscriptionWorld.anna) != nil }
            let link = try #require(await world.url(of: world.text("invite.button"), for: SubscriptionWorld.anna))
            let state = try #require(await world.bot.inviteLinks[link])
            #expect(state.link.memberLimit == 1 && state.link.expireDate != nil && !state.link.createsJoinRequest)
            try await world.bot.userOpensInviteLink(SubscriptionWorld.boris, link)
            try await world.eventually("Boris is removed") {
                try await world.actions(of: SubscriptionWorld.boris) == ["intruder_removed"]
            }
            #expect(await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: SubscriptionWorld.boris) == "left")
        }
    }

    @Test("a removal that fails is audited with its reason once, keeps the subscription active, and is retried until it works")
    func failedRemoval() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            try await world.buyAndPay(anna, position: 1)
            try await world.join(anna)
            await world.bot.setBotAdministrator(false, chat: SubscriptionWorld.closedChat)
            world.clock.advance(days: 31)
            #expect(try await world.access.sweepExpired().values.map { $0 } == [.removeFailed])
            world.clock.advance(seconds: 60)
            #expect(try await world.access.sweepExpired().values.map { $0 } == [.removeFailed])
            let failures = try await world.strings("SELECT detail FROM access_events WHERE action = 'remove_failed'")
            #expect(failures.count == 1)
            #expect(failures.first?.contains("not enough rights") == true, "\(failures)")
            #expect(try await world.subscription(of: anna)?.status == "active")
            #expect(await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: anna) == "member")

            await world.bot.setBotAdministrator(true, chat: SubscriptionWorld.closedChat)
            world.clock.advance(seconds: 60)
            #expect(try await world.access.sweepExpired().values.map { $0 } == [.removed])
            #expect(try await world.subscription(of: anna)?.status == "expired")
        }
    }
}
