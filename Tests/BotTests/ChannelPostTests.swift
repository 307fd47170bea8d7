import Bot
import Foundation
import Jobs
import Localization
import PostgresNIO
import Storage
import TelegramBotAPI
import TelegramFake
import TestSupport
import Testing

/// Anna's pair with a donation message: an offer post in the public channel and a donation post in the private one.
let annaWithDonations: [String: String] = annaTwoTiers.merging(["donation_message": "Support our research ❤️ & <more>"]) { $1 }

extension PostsWorld {
    func donationState(_ channelID: Int64) async throws -> OfferPostState? {
        try await bot.database.withConnection { connection in
            try await OfferPostStore.state(channelID: channelID, kind: .donation, on: connection, logger: quietLogger)
        }
    }

    /// Waits until the stored donation post is a new one (not `previous`).
    @discardableResult
    func waitForDonationPost(_ channelID: Int64, after previous: Int64?, seconds: Double = 45) async -> Int64? {
        await bot.eventually("a new donation post of channel \(channelID)", seconds: seconds) {
            guard let id = try? await donationState(channelID)?.messageID else { return false }
            return id != previous
        }
        return try? await donationState(channelID)?.messageID
    }

    func urls(_ message: FakeBotAPI.SentMessage?) -> [String] {
        (message?.keyboard?.inlineKeyboard ?? []).joined().compactMap { button -> String? in
            if case .url(let url) = button.action { return url }
            return nil
        }
    }
}

@Suite("Donation posts and posts that follow the owner's settings (fake Bot API, real PostgreSQL)")
struct ChannelPostTests {
    @Test(
        "a donation message puts a post with one Donate URL button (d<token>, never a keypad) in the private channel; editing it refreshes the post, removing it withdraws the post"
    )
    func donationPost() async throws {
        try await withPostsBot { world in
            let id = try await world.saveChannel(annaWithDonations)
            let first = try #require(await world.waitForDonationPost(id, after: nil))
            await world.waitForPost(id, after: nil)
            let token = try #require(try await world.bot.scalar(String.self, "SELECT offer_token FROM channels"))
            let post = try #require(await world.livePosts(World.annaClosed).last)
            #expect(post.messageID == first)
            #expect(post.text == "💝 <b>VIP Club</b>\n\nSupport our research ❤️ &amp; &lt;more&gt;")
            #expect(post.keyboard?.inlineKeyboard.map { $0.map(\.text) } == [["💝 Donate"]])
            #expect(world.urls(post) == ["https://t.me/telepay_test_bot?start=d\(token)"])
            #expect(await world.livePosts(World.annaOpen).count == 1, "the offer post is in the public channel")
            #expect(
                try await world.bot.scalar(
                    Int.self, "SELECT count(*)::int FROM channel_offer_post_attempts WHERE kind = 'donation' AND outcome = 'posted'") == 1)

            await world.idle()
            let offer = try await world.state(id)?.messageID
            var edited = annaWithDonations
            edited["donation_message"] = "Every coin keeps us independent"
            _ = try await world.saveChannel(edited, id: id)
            let second = try #require(await world.waitForDonationPost(id, after: first))
            let live = await world.livePosts(World.annaClosed)
            #expect(live.map(\.messageID) == [second], "the old donation post is deleted")
            #expect(live.first?.text.contains("Every coin keeps us independent") == true)
            await world.idle()
            #expect(try await world.state(id)?.messageID == offer, "the unchanged offer post stays")

            var removed = edited
            removed["donation_message"] = nil
            _ = try await world.saveChannel(removed, id: id)
            await world.bot.eventually("the donation post is withdrawn") { await world.livePosts(World.annaClosed).isEmpty }
            await world.idle()
            #expect(try await world.donationState(id)?.messageID == nil)
            world.clock.advance(by: 2 * 24 * 3600)
            #expect(try await world.scanner.enqueueDue(logger: quietLogger) == [id], "only the offer is refreshed")
        }
    }

    @Test("both posts refresh after the interval; pausing marks both paused without buttons, resuming restores them, deleting removes both")
    func bothPostsFollowTheSettings() async throws {
        try await withPostsBot { world in
            let bot = world.bot
            let anna = World.anna
            let id = try await world.saveChannel(annaWithDonations)
            let offer = try #require(await world.waitForPost(id, after: nil))
            let donation = try #require(await world.waitForDonationPost(id, after: nil))
            await world.idle()
            world.clock.advance(by: 24 * 3600)
            #expect(try await world.scanner.enqueueDue(logger: quietLogger) == [id, id])
            let refreshedOffer = try #require(await world.waitForPost(id, after: offer))
            let refreshedDonation = try #require(await world.waitForDonationPost(id, after: donation))
            await world.idle()

            await bot.say(anna, "/channels")
            try await bot.tap(anna, "🟢 Public News")
            await bot.see(anna, "💝 Donation post in VIP Club: posted")
            try await bot.tap(anna, "⏸ Pause sales")
            for chat in [World.annaOpen, World.annaClosed] {
                await bot.eventually("the post in \(chat) says sales are paused") {
                    await world.livePosts(chat).last?.text.hasSuffix(bot.en("posts.paused_line")) == true
                }
            }
            await world.idle()
            #expect(await world.livePosts(World.annaOpen).map(\.messageID) == [refreshedOffer])
            #expect(await world.livePosts(World.annaClosed).map(\.messageID) == [refreshedDonation])
            #expect(await world.livePosts(World.annaOpen).allSatisfy { $0.keyboard == nil })
            #expect(await world.livePosts(World.annaClosed).allSatisfy { $0.keyboard == nil })
            #expect(try await bot.scalar(Int.self, "SELECT count(*)::int FROM channel_offer_post_attempts WHERE outcome = 'paused'") == 2)

            try await bot.tap(anna, "▶️ Resume sales")
            let resumedOffer = try #require(await world.waitForPost(id, after: refreshedOffer))
            let resumedDonation = try #require(await world.waitForDonationPost(id, after: refreshedDonation))
            #expect(await world.livePosts(World.annaClosed).map(\.messageID) == [resumedDonation])
            #expect(await world.livePosts(World.annaClosed).first?.keyboard?.inlineKeyboard.joined().first?.text == "💝 Donate")
            #expect(await world.livePosts(World.annaOpen).map(\.messageID) == [resumedOffer])
            await world.idle()

            try await bot.tap(anna, "🗑 Delete")
            try await bot.tap(anna, "🗑 Yes, delete it")
            await bot.see(anna, "was deleted")
            await bot.eventually("both posts are deleted") {
                let open = await world.livePosts(World.annaOpen)
                let closed = await world.livePosts(World.annaClosed)
                return open.isEmpty && closed.isEmpty
            }
        }
    }

    @Test(
        "without “Post messages” in the private channel the donation post's failures are counted and shown on the card; after five, automatic posting stops and the owner is told, while the offer post is unaffected"
    )
    func donationPostFailures() async throws {
        try await withPostsBot { world in
            let bot = world.bot
            let anna = World.anna
            await world.fake.setBotAdministrator(false, chat: World.annaClosed)
            let id = try await world.saveChannel(annaWithDonations)
            await world.waitForPost(id, after: nil)
            await bot.eventually("the first failure is counted") { (try? await world.donationState(id)?.consecutiveFailures) == 1 }
            await world.idle()
            for attempt in 2...5 {
                let due = try #require(try await world.donationState(id)?.nextPostAt)
                world.clock.advance(by: due.timeIntervalSince(world.clock.now()) + 1)
                #expect(try await world.scanner.enqueueDue(logger: quietLogger) == [id], "only the donation post is due")
                await bot.eventually("failure \(attempt) counted") { (try? await world.donationState(id)?.consecutiveFailures) == attempt }
                await world.idle()
            }
            let state = try #require(try await world.donationState(id))
            #expect(state.lastFailure == .noPostRight && state.stoppedAt != nil)
            #expect(try await world.state(id)?.consecutiveFailures == 0, "the offer post is fine")
            let (reason, fix) = OfferPostFailure.noPostRight.explained(channel: "VIP Club", detail: "", language: "en", localizer: bot.localizer)
            let notice = bot.en(
                "posts.stopped_notice_donation",
                [
                    "channel": "VIP Club", "count": "5", "reason": reason, "fix": fix, "button": bot.en("channels.button.post_now"),
                ])
            await bot.eventually("the owner is told") { await bot.texts(to: anna).contains(notice) }
            await bot.say(anna, "/channels")
            try await bot.tap(anna, "🟢 Public News")
            await bot.see(anna, bot.en("posts.card.donation_stopped", ["count": "5", "reason": reason, "fix": fix]))

            await world.fake.setBotAdministrator(true, chat: World.annaClosed)
            try await bot.tap(anna, "📬 Post the offer now")
            await world.waitForDonationPost(id, after: nil)
            #expect(await world.livePosts(World.annaClosed).count == 1)
            #expect(try await world.donationState(id)?.stoppedAt == nil)
        }
    }

    @Test("the owner sets the donation amounts in the form; the largest below the smallest is refused at input with the smallest named")
    func donationRange() async throws {
        try await withPostsBot { world in
            let bot = world.bot
            let anna = World.anna
            _ = try await bot.storeChannel(annaWithDonations, owner: anna)
            try await bot.openEditForm(anna, channelTitle: "Public News")
            try await bot.tap(anna, "📢 Public channel")
            await bot.see(anna, "Donations from $4.99 to $9999.99")
            try await bot.tap(anna, bot.en("form.channel.button.donation_range"))
            await bot.see(anna, "Send the smallest donation")
            await bot.say(anna, "50")
            await bot.see(anna, "Send the largest donation")
            await bot.say(anna, "10")
            await bot.see(anna, "⚠️ " + bot.en("channels.error.donation_max_below_min", ["min": "50.00"]))
            await bot.say(anna, "250")
            await bot.see(anna, "Donations from $50.00 to $250.00")
            try await bot.tap(anna, "⬅️ Back")
            try await bot.tap(anna, "✅ Save all changes")
            await bot.see(anna, "All changes saved")
            await bot.expectRow("SELECT donation_min_usd::text || '-' || donation_max_usd::text FROM channels", "50.00-250.00", "the range is saved")
        }
    }

    @Test(
        "“Send a test notification” reaches the recipient in their language with the payout section; with notifications off the owner is told how to turn them on"
    )
    func testNotification() async throws {
        try await withPostsBot { world in
            let bot = world.bot
            let anna = World.anna
            _ = try await world.saveChannel(annaTwoTiers)
            await bot.say(anna, "/channels")
            try await bot.tap(anna, "🟢 Public News")
            try await bot.tap(anna, bot.en("channels.button.test_notification"))
            await bot.eventually("the owner is told notifications are off") {
                await world.fake.answeredCallbacks.values.contains { $0 == bot.en("channels.test_notification_off") }
            }
            #expect(await bot.texts(to: anna).allSatisfy { !$0.contains("🔔") })

            // Notifications on, sent to Boris (who reads Russian).
            var values = annaTwoTiers
            values["notifications_enabled"] = "true"
            values["notification_recipient"] = String(World.boris)
            let id = try #require(try await bot.scalar(Int64.self, "SELECT id FROM channels"))
            try await bot.database.withConnection { connection in
                _ = try await connection.query(
                    "INSERT INTO telegram_users (id, first_name, telegram_language) VALUES (\(World.boris), 'Boris', 'ru') ON CONFLICT DO NOTHING",
                    logger: quietLogger)
            }
            _ = try await world.saveChannel(values, id: id)
            try await bot.tap(anna, bot.en("channels.button.test_notification"))
            await bot.eventually("Boris gets the test notification") {
                await bot.texts(to: World.boris).contains { $0.hasPrefix("🔔 Тестовое уведомление для <b>VIP Club</b>") }
            }
            let text = try #require(await bot.texts(to: World.boris).last)
            #expect(text.contains("Выплата: сразу, в USDT в сети ETH на 0x5aAe…eAed."), "\(text)")
            #expect(await world.fake.answeredCallbacks.values.contains { $0 == bot.en("channels.test_notification_sent") })
            #expect(await bot.texts(to: anna).allSatisfy { !$0.contains("🔔 Test notification") }, "only the recipient hears it")
        }
    }
}
