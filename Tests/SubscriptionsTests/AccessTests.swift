import Bot
import Foundation
import Jobs
import NOWPaymentsFake
import Payments
import PostgresNIO
import Storage
import Subscriptions
import TelegramBotAPI
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
            #expect(try await world.strings("SELECT sum(amount)::numeric(14, 2)::text FROM ledger_entries WHERE asset = 'USD'") == ["0.00"])
            #expect(try await world.count("SELECT count(*) FROM ledger_entries WHERE asset = 'USD'") == 15)
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

    @Test("a removal that fails for a passing reason is audited once, keeps the subscription active, and is retried after a back-off until it works")
    func failedRemoval() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            try await world.buyAndPay(anna, position: 1)
            try await world.join(anna)
            await world.bot.failCalls("banChatMember", chat: SubscriptionWorld.closedChat, times: 2, code: 502, description: "Bad Gateway")
            world.clock.advance(days: 31)
            #expect(try await world.access.sweepExpired().values.map { $0 } == [.removeFailed])
            world.clock.advance(seconds: 30)
            #expect(try await world.access.sweepExpired().isEmpty, "the next attempt waits a minute")
            world.clock.advance(seconds: 30)
            #expect(try await world.access.sweepExpired().values.map { $0 } == [.removeFailed])
            let failures = try await world.strings("SELECT detail FROM access_events WHERE action = 'remove_failed'")
            #expect(failures.count == 1)
            #expect(failures.first?.contains("Bad Gateway") == true, "\(failures)")
            #expect(try await world.subscription(of: anna)?.status == "active")
            #expect(await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: anna) == "member")

            world.clock.advance(seconds: 90)
            #expect(try await world.access.sweepExpired().isEmpty, "the second failure doubled the wait to two minutes")
            world.clock.advance(seconds: 30)
            #expect(try await world.access.sweepExpired().values.map { $0 } == [.removed])
            #expect(try await world.subscription(of: anna)?.status == "expired")
            #expect(await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: anna) == "left")
        }
    }

    @Test("removal back-off: a minute, doubling, at most six hours")
    func removalBackoff() {
        #expect(RemovalBackoff.delay(afterFailures: 1) == 60)
        #expect(RemovalBackoff.delay(afterFailures: 2) == 120)
        #expect(RemovalBackoff.delay(afterFailures: 5) == 960)
        #expect(RemovalBackoff.delay(afterFailures: 9) == 15_360)
        #expect(RemovalBackoff.delay(afterFailures: 10) == 6 * 3600)
        #expect(RemovalBackoff.delay(afterFailures: 10_000) == 6 * 3600)
    }

    @Test("a channel with 600 failing removals does not delay another channel's expiry, and costs at most three calls a sweep")
    func failingChannelDoesNotStallOthers() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            try await world.buyAndPay(anna, position: 1)
            try await world.join(anna)
            let busy = try await world.seedChannelWithDueSubscriptions(count: 600, endingBefore: world.clock.now().addingTimeInterval(29 * 86_400))
            await world.bot.failCalls("getChatMember", chat: SubscriptionWorld.busyChat, times: nil, code: 502, description: "Bad Gateway")
            world.clock.advance(days: 31)

            let annaSubscription = try #require(try await world.subscriptionID(of: anna, channel: world.channelID))
            let first = try await world.access.sweepExpired()
            #expect(first[annaSubscription] == .removed)
            #expect(try await world.subscription(of: anna)?.status == "expired")
            #expect(await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: anna) == "left")
            #expect(first.values.filter { $0 == .removeFailed }.count == 3, "the busy channel is left alone after three failures in a row")
            #expect(try await world.count("SELECT count(*) FROM subscriptions WHERE channel_id = \(busy) AND removal_attempts > 0") == 3)

            world.clock.advance(seconds: 30)
            let second = try await world.access.sweepExpired()
            #expect(second.count == 3 && second.values.allSatisfy { $0 == .removeFailed })
            #expect(
                try await world.count("SELECT count(*) FROM subscriptions WHERE channel_id = \(busy) AND removal_attempts > 0") == 6,
                "the failed ones wait their back-off; the line moves on")
            #expect(try await world.count("SELECT max(removal_attempts) FROM subscriptions WHERE channel_id = \(busy)") == 1)
        }
    }

    @Test("a channel where the bot lost its rights: ended subscriptions expire, the channel is paused, the owner is told and admins alerted, once")
    func channelLevelFailurePauses() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            try await world.buyAndPay(anna, position: 1)
            try await world.join(anna)
            try await world.buyAndPay(SubscriptionWorld.boris, position: 2)
            try await world.join(SubscriptionWorld.boris)
            await world.bot.setBotAdministrator(false, chat: SubscriptionWorld.closedChat)
            world.clock.advance(days: 31)

            #expect(try await world.access.sweepExpired().values.map { $0 } == [.channelUnavailable])
            #expect(try await world.subscription(of: anna)?.status == "expired")
            #expect(try await world.subscription(of: SubscriptionWorld.boris)?.status == "active", "a subscription not yet ended is untouched")
            #expect(
                try await world.strings("SELECT status || ':' || paused_reason FROM channels WHERE id = \(world.channelID)") == ["paused:bot_rights"])
            #expect(
                try await world.strings("SELECT detail FROM access_events WHERE action = 'channel_unavailable'").first?.contains("not enough rights")
                    == true)

            let notice = world.text("access.channel_paused.bot_rights", ["title": "Secret Club", "count": "1"])
            try await world.eventually("the owner is told") {
                await world.bot.sentMessages(to: SubscriptionWorld.owner).contains { $0.text == notice }
            }
            try await world.eventually("the admins are alerted") { !world.alerts.all.isEmpty }
            guard case .channelPaused(let channel, _, let problem, let expired, _) = try #require(world.alerts.all.first) else { return }
            #expect(channel == world.channelID && problem == .botRights && expired == 1)
            let expiredText = world.text("subscription.expired", ["title": "Secret Club"])
            try await world.eventually("Anna is told") { await !world.messages(to: anna, containing: expiredText).isEmpty }

            world.clock.advance(seconds: 60)
            #expect(try await world.access.sweepExpired().isEmpty)
            world.clock.advance(days: 60)
            #expect(try await world.access.sweepExpired().values.map { $0 } == [.channelUnavailable], "Boris's end finds the same channel")
            try await world.eventually("the messages went out") {
                try await world.count(
                    "SELECT count(*) FROM jobs WHERE kind IN (\(NotifyUserJob.kind), \(SubscriptionAlertJob.kind)) AND state <> 'completed'") == 0
            }
            #expect(await world.bot.sentMessages(to: SubscriptionWorld.owner).filter { $0.text.hasPrefix("⚠️") }.count == 1, "the owner is told once")
            #expect(world.alerts.all.count == 1)
        }
    }

    @Test("a ban that worked while its unban failed is unbanned at the next attempt, so a renewing buyer can come back")
    func pendingUnbanIsRetried() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            try await world.buyAndPay(anna, position: 1)
            try await world.join(anna)
            await world.bot.failCalls("unbanChatMember", chat: SubscriptionWorld.closedChat, times: 1)
            world.clock.advance(days: 31)

            #expect(try await world.access.sweepExpired().values.map { $0 } == [.removed])
            #expect(try await world.subscription(of: anna)?.status == "expired", "she is out, so the subscription ends now")
            #expect(await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: anna) == "kicked")
            #expect(try await world.count("SELECT count(*) FROM subscriptions WHERE banned_at IS NOT NULL") == 1)
            #expect(try await world.access.sweepExpired().isEmpty, "the unban waits its back-off")

            world.clock.advance(seconds: 61)
            #expect(try await world.access.sweepExpired().values.map { $0 } == [.unbanned])
            #expect(await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: anna) == "left")
            #expect(try await world.count("SELECT count(*) FROM subscriptions WHERE banned_at IS NOT NULL") == 0)
            #expect(try await world.actions(of: anna).contains("unbanned"))

            try await world.buyAndPay(anna, position: 1)
            try await world.join(anna, invites: 2)
        }
    }

    @Test("a ban still to be lifted is lifted when the buyer renews before the next attempt is due")
    func pendingUnbanAfterRenewal() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            try await world.buyAndPay(anna, position: 1)
            try await world.join(anna)
            await world.bot.failCalls("unbanChatMember", chat: SubscriptionWorld.closedChat, times: 1)
            world.clock.advance(days: 31)
            #expect(try await world.access.sweepExpired().values.map { $0 } == [.removed])
            try await world.buyAndPay(anna, position: 1)
            #expect(try await world.subscription(of: anna)?.status == "active")
            world.clock.advance(seconds: 61)
            #expect(try await world.access.sweepExpired().values.map { $0 } == [.unbanned])
            #expect(try await world.subscription(of: anna)?.status == "active")
            try await world.join(anna, invites: 2)
        }
    }

    @Test("a join request whose approval fails once is approved when its job runs again")
    func joinRequestSurvivesAFailure() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            await world.bot.failCalls("approveChatJoinRequest", chat: SubscriptionWorld.closedChat, times: 1)
            try await world.buyAndPay(anna, position: 1)
            try await world.join(anna)
            try await world.eventually("the approval is audited") { try await world.actions(of: anna) == ["join_approved"] }
            #expect(await world.bot.calls.filter { $0 == "approveChatJoinRequest" }.count == 2)
        }
    }

    @Test("a restricted subscriber who left is not a member: asking again makes a new invite")
    func restrictedWhoLeftGetsAnInvite() async throws {
        try await withSubscriptionWorld { world in
            let anna = SubscriptionWorld.anna
            try await world.buyAndPay(anna, position: 1)
            try await world.join(anna)
            await world.bot.restrict(chat: SubscriptionWorld.closedChat, user: anna)
            await world.bot.userLeaves(anna, chat: SubscriptionWorld.closedChat)
            #expect(await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: anna) == "restricted, not a member")

            await world.bot.userSendsText(anna, "/subscriptions")
            let again = world.text("subscriptions.invite_button")
            try await world.eventually("the list shows the invite button") { await world.buttons(of: anna).contains(again) }
            try await world.bot.userTapsButton(anna, label: again)
            try await world.eventually("a second link is made") {
                try await world.count("SELECT count(*) FROM invite_links WHERE user_id = \(anna)") == 2
            }
            #expect(await world.messages(to: anna, containing: world.text("invite.already_member", ["title": "Secret Club"])).isEmpty)

            // Restricted but in the channel still counts as a member.
            let label = world.text("invite.button")
            try await world.eventually("the second invite arrives") {
                await world.bot.sentMessages(to: anna).filter { $0.keyboard?.inlineKeyboard.joined().contains { $0.text == label } == true }.count
                    == 2
            }
            try await world.bot.userOpensInviteLink(anna, try #require(await world.url(of: label, for: anna)))
            try await world.eventually("she is back, still restricted") {
                await world.bot.memberStatus(chat: SubscriptionWorld.closedChat, user: anna) == "restricted"
            }
            let subscription = try #require(try await world.subscriptionID(of: anna, channel: world.channelID))
            #expect(try await world.access.requestInviteAgain(subscriptionID: subscription, userID: anna))
            try await world.eventually("she is told she is already in") {
                await !world.messages(to: anna, containing: world.text("invite.already_member", ["title": "Secret Club"])).isEmpty
            }
        }
    }

    @Test("buy buttons carry the channel's offer token: a guessed token, an old id-only button or someone else's Renew sells nothing")
    func offerCallbacksNeedTheToken() async throws {
        try await withSubscriptionWorld { world in
            let boris = SubscriptionWorld.boris
            await world.bot.userSendsText(boris, "/start")
            try await world.eventually("Boris talks to the bot") { await !world.bot.sentMessages(to: boris).isEmpty }
            let unavailable = world.text("purchase.unavailable")

            await world.bot.userSendsCallback(
                boris, data: CallbackData.buyTier(offerToken: "AAAAAAAAAAAAAAAAAAAAAA", position: 1).encoded, onMessage: 1)
            try await world.eventually("a guessed token is unavailable") { await world.messages(to: boris, containing: unavailable).count == 1 }
            await world.bot.userSendsCallback(boris, data: "v1:buy:\(world.channelID):1", onMessage: 1)
            await world.bot.userSendsCallback(boris, data: CallbackData.renew(channelID: world.channelID).encoded, onMessage: 1)
            try await world.eventually("someone else's Renew is unavailable") { await world.messages(to: boris, containing: unavailable).count == 2 }
            try await world.eventually("the old button is answered as outdated") {
                await world.bot.answeredCallbacks.values.contains(world.text("menu.outdated"))
            }
            #expect(try await world.count("SELECT count(*) FROM orders WHERE user_id = \(boris)") == 0)
            #expect(await world.bot.sentMessages(to: boris).allSatisfy { !$0.text.contains("Secret Club") }, "no offer was shown")

            // The rightful buttons still work: the offer's own tier button and a buyer's Renew.
            _ = try await world.buyThroughBot(boris, tierLabel: world.text("offer.tier_button", ["price": "10.00", "duration": world.days(30)]))
            await world.bot.userSendsCallback(boris, data: CallbackData.renew(channelID: world.channelID).encoded, onMessage: 1)
            let tier = world.text("offer.tier_button", ["price": "25.50", "duration": world.days(90)])
            try await world.eventually("the offer is shown to the buyer") { await world.buttons(of: boris).contains(tier) }
        }
    }

    @Test("errors about the channel are told apart from passing ones and from ones about the user")
    func errorScopes() {
        #expect(TelegramChannelAccess.classify(.server(status: 502, description: "Bad Gateway")) == .transient)
        #expect(TelegramChannelAccess.classify(.retryAfter(seconds: 3)) == .transient)
        #expect(TelegramChannelAccess.classify(.network(description: "timed out")) == .transient)
        #expect(TelegramChannelAccess.classify(.unauthorized) == .transient)
        #expect(TelegramChannelAccess.classify(.chatNotFound) == .channel(.botRemoved))
        #expect(
            TelegramChannelAccess.classify(.forbidden(description: "Forbidden: bot is not a member of the channel chat")) == .channel(.botRemoved))
        #expect(TelegramChannelAccess.classify(.forbidden(description: "Forbidden: bot was kicked from the channel chat")) == .channel(.botRemoved))
        #expect(
            TelegramChannelAccess.classify(.badRequest(description: "Bad Request: not enough rights to restrict/unrestrict chat member"))
                == .channel(.botRights))
        #expect(TelegramChannelAccess.classify(.badRequest(description: "Bad Request: CHAT_ADMIN_REQUIRED")) == .channel(.botRights))
        #expect(TelegramChannelAccess.classify(.badRequest(description: "Bad Request: user not found")) == .user)
        #expect(TelegramChannelAccess.classify(.badRequest(description: "Bad Request: HIDE_REQUESTER_MISSING")) == .user)
        #expect(TelegramChannelAccess.classify(.badRequest(description: "Bad Request: user is an administrator of the chat")) == .user)
    }
}

extension SubscriptionWorld {
    static let busyChat: Int64 = -1_001_000_000_003
    static let busyOpenChat: Int64 = -1_001_000_000_004

    /// Another channel pair of the owner, with `count` subscribers whose subscriptions ended one second apart
    /// before `end`; returns its id. The subscribers exist only in the database.
    func seedChannelWithDueSubscriptions(count: Int, endingBefore end: Date) async throws -> Int64 {
        await bot.addChannel(id: Self.busyChat, title: "Busy Club", owner: Self.owner)
        return try await database.withTransaction { connection in
            let rows = try await connection.query(
                """
                INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, status)
                VALUES (\(Self.owner), \(Self.busyChat), 'Busy Club', \(Self.busyOpenChat), 'Busy Open', 'active') RETURNING id
                """,
                logger: quietLogger
            )
            var channel: Int64 = 0
            for try await (id) in rows.decode(Int64.self) { channel = id }
            try await connection.query(
                "INSERT INTO telegram_users (id, first_name) SELECT 500000 + g, 'Subscriber' FROM generate_series(1, \(count)) g",
                logger: quietLogger
            )
            try await connection.query(
                """
                INSERT INTO orders (user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title)
                SELECT 500000 + g, \(channel), \(Self.owner), 1, 10.00, 30, \(Self.busyChat), 'Busy Club' FROM generate_series(1, \(count)) g
                """,
                logger: quietLogger
            )
            try await connection.query(
                """
                INSERT INTO subscriptions (user_id, channel_id, status, started_at, expires_at, last_order_id)
                SELECT o.user_id, o.channel_id, 'active', \(end) - interval '30 days', \(end) - (o.user_id - 500000) * interval '1 second', o.id
                FROM orders o WHERE o.channel_id = \(channel)
                """,
                logger: quietLogger
            )
            return channel
        }
    }

    func subscriptionID(of user: Int64, channel: Int64) async throws -> Int64? {
        try await database.withConnection { connection in
            let rows = try await connection.query(
                "SELECT id FROM subscriptions WHERE user_id = \(user) AND channel_id = \(channel)", logger: quietLogger
            )
            for try await (id) in rows.decode(Int64.self) { return id }
            return nil
        }
    }
}
