import Bot
import Channels
import Conversations
import Foundation
import Jobs
import Localization
import PostgresNIO
import Storage
import Synchronization
import TelegramBotAPI
import TelegramFake
import TestSupport
import Testing

/// The clock offer posts are scheduled on; tests move it instead of waiting.
final class PostClock: WallClock {
    private let current = Mutex(Date(timeIntervalSince1970: 1_800_000_000))

    func now() -> Date { current.withLock { $0 } }

    func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }
}

/// The owner bot with durable jobs: the dispatcher enqueues, a worker pool posts, the clock is injected.
struct PostsWorld: Sendable {
    let bot: BotHarness
    let clock: PostClock
    let queue: JobQueue
    let scanner: OfferPostScanner
    let settings: OfferPostSettings

    var fake: FakeBotAPI { bot.fake }

    /// Stores a channel as a save would and asks for its post in the same transaction, as the form does.
    func saveChannel(_ values: [String: String], owner: Int64 = World.anna, id: Int64? = nil) async throws -> Int64 {
        try await queue.transaction { transaction in
            let connection = transaction.connection
            _ = try await connection.query(
                "INSERT INTO telegram_users (id, first_name) VALUES (\(owner), 'x') ON CONFLICT DO NOTHING", logger: quietLogger)
            let saved = try await ChannelStore.save(values, id: id, ownerUserID: owner, maximumChannels: 1000, on: connection, logger: quietLogger)
            try await OfferPostRequests.afterSave(channelID: saved, jobs: queue, on: connection, logger: quietLogger)
            return saved
        }
    }

    /// The live (not deleted) offer posts in `chat`.
    func livePosts(_ chat: Int64) async -> [FakeBotAPI.SentMessage] {
        await fake.sentMessages(to: chat).filter { !$0.deleted }
    }

    /// Waits until every offer-post job has finished.
    func idle() async {
        await bot.eventually("offer-post jobs finished", seconds: 60) {
            (try? await bot.scalar(
                Int.self, "SELECT count(*)::int FROM jobs WHERE kind = 'channels.offer_post' AND state IN ('available', 'running')")) == 0
        }
    }

    func state(_ channelID: Int64) async throws -> OfferPostState? {
        try await bot.database.withConnection { connection in
            try await OfferPostStore.state(channelID: channelID, on: connection, logger: quietLogger)
        }
    }

    /// Waits until the channel's stored post is `messageID`'s successor, i.e. a new post was recorded.
    @discardableResult
    func waitForPost(_ channelID: Int64, after previous: Int64?, seconds: Double = 45) async -> Int64? {
        await bot.eventually("a new offer post of channel \(channelID)", seconds: seconds) {
            guard let id = try? await state(channelID)?.messageID else { return false }
            return id != previous
        }
        return try? await state(channelID)?.messageID
    }
}

func withPostsBot<Result: Sendable>(
    limited: Bool = false,
    _ body: @Sendable (PostsWorld) async throws -> Result
) async throws -> Result {
    try await withMigratedDatabase(poolSize: 12) { database in
        let fake = FakeBotAPI(limits: limited ? .telegram : nil)
        await fake.addUser(id: World.anna, firstName: "Anna", languageCode: "en")
        await fake.addUser(id: World.boris, firstName: "Boris", languageCode: "ru")
        await World.build(fake)
        let (baseURL, server) = try await fake.start()
        defer { server.cancel() }
        let client = TelegramClient(
            transport: HTTPTelegramTransport(baseURL: baseURL, token: fake.token, logger: quietLogger),
            limiter: limited ? OutboundLimiter(limits: .telegram) : nil, retry: limited ? TelegramBotAPI.RetryPolicy.standard : .none,
            logger: quietLogger
        )
        let harness = BotHarness(fake: fake, client: client, database: database, localizer: BotHarness.localizer, botID: fake.bot.id)
        let clock = PostClock()
        let settings = OfferPostSettings(refreshInterval: 24 * 3600, manualCooldown: 300, clock: clock)
        let queue = JobQueue(database: database, logger: quietLogger)
        let scanner = OfferPostScanner(database: database, queue: queue, clock: clock)
        var registry = JobRegistry()
        registry.register(TelegramMessageSender(client: client))
        registry.register(OwnerNotifier(client: client, database: database, localizer: BotHarness.localizer, feePercent: 3))
        registry.register(OfferPostPublisher(client: client, database: database, localizer: BotHarness.localizer, queue: queue, settings: settings))
        registry.register(scanner)
        let pool = JobWorkerPool(
            registry: registry, database: database, configuration: JobWorkerConfiguration(pollInterval: .milliseconds(100)),
            alertHook: LoggingJobAlertHook(logger: quietLogger), logger: quietLogger
        )
        let router = try BotAssembly.router(conversations: BotHarness.conversations, settings: OwnerSettings(offerPosts: settings))
        let dispatcher = Dispatcher(
            router: router,
            services: BotServices(client: client, database: database, localizer: BotHarness.localizer, logger: quietLogger, jobs: queue),
            maxConcurrency: 8
        )
        let polling = Task { try await harness.poller(dispatcher).run() }
        defer { polling.cancel() }
        let workers = Task { try await pool.run() }
        let world = PostsWorld(bot: harness, clock: clock, queue: queue, scanner: scanner, settings: settings)
        do {
            let result = try await body(world)
            pool.beginShutdown()
            try? await workers.value
            return result
        } catch {
            pool.beginShutdown()
            try? await workers.value
            throw error
        }
    }
}

/// Anna's pair with tiers 1 and 3 on sale and tier 2 stored but off.
let annaTwoTiers: [String: String] = World.annaValues.merging([
    "tier2_enabled": "false", "tier2_price": "5", "tier2_days": "7", "tier3_enabled": "true", "tier3_price": "99", "tier3_days": "365",
]) { $1 }

@Suite("Offer posts in the public channel (fake Bot API, real PostgreSQL, injected clock)")
struct OfferPostTests {
    @Test(
        "saving posts the offer: titles, one URL button per enabled tier opening that tier; an unchanged save posts nothing, a changed language re-posts"
    )
    func saveThenPost() async throws {
        try await withPostsBot { world in
            let bot = world.bot
            let anna = World.anna
            // Stored without a request: the first post comes from the form's save below.
            let id = try await bot.storeChannel(annaTwoTiers, owner: anna)
            try await bot.openEditForm(anna, channelTitle: "Public News")
            try await bot.tap(anna, "✅ Save all changes")
            await bot.see(anna, "All changes saved")
            let first = await world.waitForPost(id, after: nil)
            let token = try #require(try await bot.scalar(String.self, "SELECT offer_token FROM channels"))
            let post = try #require(await world.livePosts(World.annaOpen).last)
            #expect(post.messageID == first)
            #expect(post.parseMode == "HTML")
            #expect(post.text.contains("📢 <b>Public News</b>"))
            #expect(post.text.contains("🔒 Get access to <b>VIP Club</b>"))
            let buttons = post.keyboard?.inlineKeyboard ?? []
            #expect(buttons.map { $0.map(\.text) } == [["🥇 $9.99 · 30 days"], ["🥉 $99.00 · 365 days"]])
            let links = buttons.joined().compactMap { button -> String? in
                if case .url(let url) = button.action { return url }
                return nil
            }
            #expect(links == ["https://t.me/telepay_test_bot?start=t1\(token)", "https://t.me/telepay_test_bot?start=t3\(token)"])
            for link in links {
                let payload = String(link.split(separator: "=", maxSplits: 1)[1])
                #expect(payload.wholeMatch(of: /[A-Za-z0-9_-]{1,64}/) != nil)
            }
            #expect(try await bot.scalar(Int.self, "SELECT count(*)::int FROM channel_offer_post_attempts WHERE outcome = 'posted'") == 1)

            try await bot.openEditForm(anna, channelTitle: "Public News")
            try await bot.tap(anna, "✅ Save all changes")
            await bot.see(anna, "All changes saved")
            await world.idle()
            #expect(await world.livePosts(World.annaOpen).count == 1)
            #expect(try await world.state(id)?.messageID == first)

            try await bot.openEditForm(anna, channelTitle: "Public News")
            try await bot.tap(anna, "📢 Public channel")
            try await bot.tap(anna, "🌐 Language of posts")
            try await bot.tap(anna, "🇷🇺 Русский")
            await bot.see(anna, "Language of posts: 🇷🇺 Русский")
            try await bot.tap(anna, "⬅️ Back")
            try await bot.tap(anna, "✅ Save all changes")
            await bot.see(anna, "All changes saved")
            let second = await world.waitForPost(id, after: first)
            let live = await world.livePosts(World.annaOpen)
            #expect(live.count == 1 && live.first?.messageID == second)
            #expect(live.first?.text.contains("Выберите тариф") == true)
            #expect(live.first?.keyboard?.inlineKeyboard.first?.first?.text == "🥇 $9.99 · 30 дней")
        }
    }

    @Test("after the refresh interval the scan deletes the post and posts anew; before it, nothing is due")
    func refresh() async throws {
        try await withPostsBot { world in
            let id = try await world.saveChannel(annaTwoTiers)
            let first = try #require(await world.waitForPost(id, after: nil))
            let postedAt = try #require(try await world.state(id)?.postedAt)
            #expect(postedAt == world.clock.now())
            #expect(try await world.state(id)?.nextPostAt == world.clock.now().addingTimeInterval(24 * 3600))

            await world.idle()
            world.clock.advance(by: 23 * 3600)
            #expect(try await world.scanner.enqueueDue(logger: quietLogger).isEmpty)
            world.clock.advance(by: 3600)
            #expect(try await world.scanner.enqueueDue(logger: quietLogger) == [id])
            let second = try #require(await world.waitForPost(id, after: first))
            let messages = await world.fake.sentMessages(to: World.annaOpen)
            #expect(messages.first { $0.messageID == first }?.deleted == true)
            #expect(messages.filter { !$0.deleted }.map(\.messageID) == [second])
            #expect(try await world.state(id)?.postedAt == world.clock.now())
            let attempt = try await world.bot.scalar(
                Int64.self, "SELECT deleted_message_id FROM channel_offer_post_attempts ORDER BY id DESC LIMIT 1")
            #expect(attempt == first)

            // An administrator deleted the post by hand: "message to delete not found" does not stop the refresh.
            await world.idle()
            await world.fake.administratorDeletes(chat: World.annaOpen, messageID: second)
            world.clock.advance(by: 24 * 3600)
            #expect(try await world.scanner.enqueueDue(logger: quietLogger) == [id])
            let third = try #require(await world.waitForPost(id, after: second))
            #expect(await world.livePosts(World.annaOpen).map(\.messageID) == [third])
            #expect(try await world.state(id)?.consecutiveFailures == 0)
        }
    }

    @Test("the card's post button posts now, then refuses inside the cooldown with the time left, then posts again")
    func manualCooldown() async throws {
        try await withPostsBot { world in
            let bot = world.bot
            let anna = World.anna
            let id = try await world.saveChannel(annaTwoTiers)
            let first = try #require(await world.waitForPost(id, after: nil))
            await bot.say(anna, "/channels")
            try await bot.tap(anna, "🟢 Public News")
            await bot.see(anna, "📬 Offer post in Public News: posted")
            try await bot.tap(anna, "📬 Post the offer now")
            let second = try #require(await world.waitForPost(id, after: first))
            await bot.eventually("the press is answered") {
                await world.fake.answeredCallbacks.values.contains { $0 == bot.en("posts.requested") }
            }
            await bot.eventually("the card counts down") {
                await world.fake.lastMessage(to: anna)?.keyboard?.inlineKeyboard.joined().contains { $0.text == "📬 Post again in 5:00" } == true
            }

            world.clock.advance(by: 60)
            try await bot.tap(anna, "📬 Post again in 5:00")
            await bot.eventually("the refusal with the time left") {
                await world.fake.answeredCallbacks.values.contains { $0 == bot.en("posts.cooldown", ["time": "4:00"]) }
            }
            await bot.eventually("the card shows the time left") {
                await world.fake.lastMessage(to: anna)?.keyboard?.inlineKeyboard.joined().contains { $0.text == "📬 Post again in 4:00" } == true
            }
            await world.idle()
            #expect(await world.livePosts(World.annaOpen).map(\.messageID) == [second])
            #expect(try await world.state(id)?.manualRequestedAt == world.clock.now().addingTimeInterval(-60))

            world.clock.advance(by: 240)
            try await bot.tap(anna, "📬 Post again in 4:00")
            let third = try #require(await world.waitForPost(id, after: second))
            #expect(await world.livePosts(World.annaOpen).map(\.messageID) == [third])
        }
    }

    @Test("five failures in a row stop automatic posting, tell the owner how to fix it, and show it on the card; posting by hand restarts it")
    func fiveFailures() async throws {
        try await withPostsBot { world in
            let bot = world.bot
            let anna = World.anna
            let id = try await world.saveChannel(annaTwoTiers)
            let first = try #require(await world.waitForPost(id, after: nil))
            // Demoted without the bot hearing of it (no my_chat_member): it may no longer post.
            await world.fake.setBotAdministrator(false, chat: World.annaOpen)
            await world.idle()
            for attempt in 1...5 {
                let due = try #require(try await world.state(id)?.nextPostAt)
                world.clock.advance(by: due.timeIntervalSince(world.clock.now()) + 1)
                #expect(try await world.scanner.enqueueDue(logger: quietLogger) == [id])
                await bot.eventually("failure \(attempt) counted") { (try? await world.state(id)?.consecutiveFailures) == attempt }
                await world.idle()
            }
            let state = try #require(try await world.state(id))
            #expect(state.lastFailure == .noPostRight)
            #expect(state.lastFailureDetail == "Bad Request: need administrator rights in the channel chat")
            #expect(state.stoppedAt != nil && state.nextPostAt == nil)
            #expect(try await bot.scalar(Int.self, "SELECT count(*)::int FROM channel_offer_post_attempts WHERE outcome = 'failed'") == 5)

            let (reason, fix) = OfferPostFailure.noPostRight.explained(channel: "Public News", detail: "", language: "en", localizer: bot.localizer)
            let notice = bot.en(
                "posts.stopped_notice",
                ["channel": "Public News", "count": "5", "reason": reason, "fix": fix, "button": bot.en("channels.button.post_now")])
            await bot.eventually("the owner is told") { await bot.texts(to: anna).contains(notice) }

            world.clock.advance(by: 3 * 24 * 3600)
            #expect(try await world.scanner.enqueueDue(logger: quietLogger).isEmpty)
            await bot.say(anna, "/channels")
            try await bot.tap(anna, "🟢 Public News")
            await bot.see(
                anna, "⛔ Automatic offer posts are stopped (failed attempts in a row: 5).\nReason: the bot may not post messages in Public News.")

            await world.fake.setBotAdministrator(true, chat: World.annaOpen)
            try await bot.tap(anna, "📬 Post the offer now")
            // The first post could not be deleted while the bot lacked the rights; it is deleted now.
            let posted = try #require(await world.waitForPost(id, after: first))
            #expect(await world.livePosts(World.annaOpen).map(\.messageID) == [posted])
            let restarted = try #require(try await world.state(id))
            #expect(restarted.consecutiveFailures == 0 && restarted.stoppedAt == nil && restarted.nextPostAt != nil)
        }
    }

    @Test("pausing edits the post to say so and removes its buttons, resuming posts anew with them, deleting a never-sold pair withdraws its post")
    func pauseResumeDelete() async throws {
        try await withPostsBot { world in
            let bot = world.bot
            let anna = World.anna
            let id = try await world.saveChannel(annaTwoTiers)
            let first = try #require(await world.waitForPost(id, after: nil))
            await world.idle()
            await bot.say(anna, "/channels")
            try await bot.tap(anna, "🟢 Public News")
            try await bot.tap(anna, "⏸ Pause sales")
            await bot.see(anna, bot.en("posts.card.not_selling"))
            await bot.eventually("the post says sales are paused") {
                await world.livePosts(World.annaOpen).last?.text.hasSuffix(bot.en("posts.paused_line")) == true
            }
            await world.idle()
            let paused = await world.livePosts(World.annaOpen)
            #expect(paused.map(\.messageID) == [first], "the same post, edited")
            #expect(paused.first?.keyboard == nil, "no buttons while paused")
            #expect(paused.first?.text.contains("📢 <b>Public News</b>") == true)
            #expect(try await world.state(id)?.messageID == first)
            #expect(try await world.state(id)?.pausedAt != nil)
            world.clock.advance(by: 2 * 24 * 3600)
            #expect(try await world.scanner.enqueueDue(logger: quietLogger).isEmpty)

            try await bot.tap(anna, "▶️ Resume sales")
            let second = try #require(await world.waitForPost(id, after: first))
            #expect(await world.livePosts(World.annaOpen).map(\.messageID) == [second])
            #expect(await world.livePosts(World.annaOpen).first?.keyboard?.inlineKeyboard.count == 2, "the buttons are back")
            #expect(try await world.state(id)?.pausedAt == nil)
            await world.idle()

            try await bot.tap(anna, "🗑 Delete")
            try await bot.tap(anna, "🗑 Yes, delete it")
            await bot.see(anna, "was deleted")
            await bot.eventually("the deleted pair's post is withdrawn") { await world.livePosts(World.annaOpen).isEmpty }
            await bot.expectRow("SELECT count(*)::int FROM channels", 0, "the never-sold pair is removed")
        }
    }

    @Test("50 channels refreshing their offer and donation posts at once stay within Telegram's limits: every post replaced, zero 429 responses")
    func fiftyChannels() async throws {
        try await withPostsBot(limited: true) { world in
            var channels: [(id: Int64, open: Int64)] = []
            for index in 0..<50 {
                let closed = -1002000000000 - Int64(index) * 2
                let open = closed - 1
                await world.fake.addChannel(id: closed, title: "Closed \(index)", owner: World.anna)
                await world.fake.addChannel(id: open, title: "Open \(index)", owner: World.anna)
                var values = annaTwoTiers
                values["closed_chat"] = String(closed)
                values["open_chat"] = String(open)
                values["open_title"] = "Open \(index)"
                values["donation_message"] = "Support channel \(index), please"
                channels.append((try await world.saveChannel(values), open))
            }
            var first: [Int64: Int64] = [:]
            var firstDonation: [Int64: Int64] = [:]
            for channel in channels {
                first[channel.id] = await world.waitForPost(channel.id, after: nil, seconds: 120)
                firstDonation[channel.id] = await world.waitForDonationPost(channel.id, after: nil, seconds: 120)
            }
            await world.idle()
            world.clock.advance(by: 24 * 3600)
            let due = try await world.scanner.enqueueDue(logger: quietLogger)
            #expect(due.count == 100, "each channel's offer and donation post")
            #expect(Set(due) == Set(channels.map(\.id)))
            for channel in channels {
                let second = await world.waitForPost(channel.id, after: first[channel.id], seconds: 120)
                #expect(second != nil)
                let live = await world.livePosts(channel.open)
                #expect(live.map(\.messageID) == [second].compactMap { $0 })
                let donation = await world.waitForDonationPost(channel.id, after: firstDonation[channel.id], seconds: 120)
                #expect(donation != nil)
                #expect(await world.livePosts(channel.open + 1).map(\.messageID) == [donation].compactMap { $0 })
            }
            #expect(await world.fake.rejectedWithTooManyRequests == 0)
        }
    }
}

@Suite("Offer post rules and content (pure)")
struct OfferPostRulesTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test(
        "when an attempt posts: forced always (while selling), stopped never otherwise, changed content, no post yet, or the refresh due; a channel not selling withdraws its post"
    )
    func decisions() {
        let fingerprint = "post"
        let posted = OfferPostState(messageID: 7, postedContent: fingerprint, nextPostAt: now.addingTimeInterval(60))
        func decide(_ state: OfferPostState, selling: Bool = true, tiers: Bool = true, content: String = "post") -> OfferPostRules.Decision {
            OfferPostRules.decide(selling: selling, hasTiers: tiers, state: state, fingerprint: content, now: now)
        }
        #expect(decide(posted) == .skip("the post is up to date"))
        #expect(decide(posted, content: "changed") == .post)
        #expect(decide(OfferPostState()) == .post)
        var due = posted
        due.nextPostAt = now
        #expect(decide(due) == .post)
        var forced = posted
        forced.forcedAt = now
        #expect(decide(forced) == .post)
        #expect(decide(forced, selling: false) == .withdraw)
        #expect(decide(OfferPostState(), selling: false) == .skip("the channel is not selling"))
        #expect(decide(forced, tiers: false) == .skip("no tier is on sale"))
        var stopped = due
        stopped.stoppedAt = now
        stopped.nextPostAt = nil
        #expect(decide(stopped) == .skip("automatic posting is stopped"))
        #expect(decide(stopped, content: "changed") == .skip("automatic posting is stopped"))
        stopped.forcedAt = now
        #expect(decide(stopped) == .post)
        var failing = OfferPostState(nextPostAt: now.addingTimeInterval(1), consecutiveFailures: 2)
        #expect(decide(failing) == .skip("waiting before trying again"))
        failing.nextPostAt = now
        #expect(decide(failing) == .post)
    }

    @Test("retries after failures wait 1, 4, 16, 64 minutes, never longer than the refresh interval; the cooldown counts down")
    func delaysAndCooldown() {
        #expect((1...5).map { OfferPostRules.retryDelay(afterFailures: $0, refreshInterval: 24 * 3600) } == [60, 240, 960, 3840, 15360])
        #expect(OfferPostRules.retryDelay(afterFailures: 5, refreshInterval: 3600) == 3600)
        #expect(OfferPostRules.cooldownLeft(lastManual: nil, cooldown: 300, now: now) == nil)
        #expect(OfferPostRules.cooldownLeft(lastManual: now.addingTimeInterval(-60), cooldown: 300, now: now) == 240)
        #expect(OfferPostRules.cooldownLeft(lastManual: now.addingTimeInterval(-300), cooldown: 300, now: now) == nil)
        #expect(OfferPostRules.minutesAndSeconds(240) == "4:00")
        #expect(OfferPostRules.minutesAndSeconds(65.2) == "1:06")
        #expect(OfferPostRules.minutesAndSeconds(0.1) == "0:01")
    }

    @Test("Telegram's errors map to readable failures; flood control and outages are retried, not counted")
    func failures() {
        func classify(_ status: Int, _ description: String) -> OfferPostFailure? {
            OfferPostFailure.classify(TelegramError.classify(status: status, description: description, parameters: nil))
        }
        #expect(classify(400, "Bad Request: need administrator rights in the channel chat") == .noPostRight)
        #expect(classify(403, "Forbidden: bot is not a member of the channel chat") == .botRemoved)
        #expect(classify(403, "Forbidden: bot was kicked from the channel chat") == .botRemoved)
        #expect(classify(400, "Bad Request: chat not found") == .chatNotFound)
        #expect(classify(400, "Bad Request: message is too long") == .rejected)
        #expect(classify(429, "Too Many Requests: retry after 5") == nil)
        #expect(classify(502, "Bad Gateway") == nil)
        #expect(OfferPostPublisher.isAlreadyGone("Bad Request: message to delete not found"))
        #expect(OfferPostPublisher.isAlreadyGone("Bad Request: message can't be deleted"))
    }

    @Test("the longest titles and descriptions, in four-unit flags, still fit Telegram's 4096 units, and every deep link fits 64 characters")
    func limits() {
        let flag = "🇺🇸"
        let content = OfferPostContent(
            openTitle: String(repeating: flag, count: 7) + "&<", openDescription: String(repeating: flag, count: 35),
            closedTitle: String(repeating: flag, count: 7), closedDescription: String(repeating: flag, count: 35), language: "ru",
            offerToken: String(repeating: "A", count: 32),
            tiers: (1...3).map { OfferPostContent.Tier(position: $0, priceUSD: Decimal(string: "9999.99")!, durationDays: 3650) }
        )
        let message = OfferPostBuilder.message(content, botUsername: "telepay_test_bot", localizer: BotHarness.localizer)
        #expect(TextLength.of(message.text) <= TextLength.telegramMessageMaximum)
        #expect(message.text.contains("&amp;&lt;"))
        #expect(message.buttons.count == 3)
        for row in message.buttons {
            guard case .url(let url)? = row.first?.action else {
                Issue.record("a URL button")
                continue
            }
            let payload = String(url.split(separator: "=", maxSplits: 1)[1])
            #expect(payload.wholeMatch(of: /[A-Za-z0-9_-]{1,64}/) != nil, "\(payload)")
        }
    }
}
