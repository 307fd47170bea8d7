import Bot
import Channels
import Foundation
import Localization
import PostgresNIO
import Storage
import TelegramBotAPI
import TelegramFake
import TestSupport
import Testing

/// Anna (1001, English) owns the "VIP Club" private channel and the "Public News" public channel; Boris
/// (1002, Russian) owns "Клуб" and "Новости". The bot is an administrator with every right it needs.
enum World {
    static let anna: Int64 = 1001
    static let boris: Int64 = 1002
    static let annaClosed: Int64 = -1001000000001
    static let annaOpen: Int64 = -1001000000002
    static let borisClosed: Int64 = -1001000000011
    static let borisOpen: Int64 = -1001000000012

    static func build(_ fake: FakeBotAPI) async {
        await fake.addChannel(id: annaClosed, title: "VIP Club", owner: anna)
        await fake.addChannel(id: annaOpen, title: "Public News", owner: anna, username: "public_news")
        await fake.addChannel(id: borisClosed, title: "Клуб", owner: boris)
        await fake.addChannel(id: borisOpen, title: "Новости", owner: boris)
    }

    /// Administrator rights holding only the named ones.
    static func rights(invite: Bool = false, restrict: Bool = false, post: Bool = false, edit: Bool = false, delete: Bool = false)
        -> ChatAdministratorRights
    {
        ChatAdministratorRights(
            isAnonymous: false, canManageChat: true, canDeleteMessages: delete, canManageVideoChats: false, canRestrictMembers: restrict,
            canPromoteMembers: false, canChangeInfo: false, canInviteUsers: invite, canPostStories: false, canEditStories: false,
            canDeleteStories: false, canPostMessages: post, canEditMessages: edit
        )
    }

    /// A complete, valid form for Anna's pair, as a save would store it.
    static let annaValues: [String: String] = [
        "closed_chat": String(annaClosed), "open_chat": String(annaOpen), "closed_title": "VIP Club", "open_title": "Public News",
        "tier1_enabled": "true", "tier1_price": "9.99", "tier1_days": "30", "payout_network": "ETH", "payout_currency": "USDT",
        "wallet_address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "payout_strategy": "instant", "notifications_enabled": "false",
    ]
}

extension BotHarness {
    /// Waits until the newest message to `user` contains `text`; returns it.
    @discardableResult
    func see(_ user: Int64, _ text: String, seconds: Double = 45) async -> FakeBotAPI.SentMessage? {
        let seen = await eventually("message to \(user) containing “\(text)”", seconds: seconds) {
            await fake.lastMessage(to: user)?.text.contains(text) == true
        }
        return seen ? await fake.lastMessage(to: user) : nil
    }

    /// Waits until the newest message shows a button labelled `label`, then taps it.
    func tap(_ user: Int64, _ label: String) async throws {
        await eventually("a button “\(label)” for \(user)") {
            await fake.lastMessage(to: user)?.keyboard?.inlineKeyboard.joined().contains { $0.text == label } == true
        }
        try await fake.userTapsButton(user, label: label)
    }

    func say(_ user: Int64, _ text: String) async {
        await fake.userSendsText(user, text)
    }

    func en(_ key: String, _ arguments: [String: String] = [:]) -> String {
        localizer.text(key, language: "en", arguments)
    }

    func ru(_ key: String, _ arguments: [String: String] = [:]) -> String {
        localizer.text(key, language: "ru", arguments)
    }

    /// The person's conversation step and one draft value.
    func draft(_ user: Int64, _ field: String) async throws -> (step: String, value: String?)? {
        try await database.withConnection { connection in
            let rows = try await connection.query(
                "SELECT step, draft->'values'->>\(field) FROM conversation_states WHERE user_id = \(user)", logger: quietLogger
            )
            for try await row in rows.decode((String, String?).self) { return (row.0, row.1) }
            return nil
        }
    }

    func storeChannel(_ values: [String: String], owner: Int64) async throws -> Int64 {
        try await database.withTransaction { connection in
            _ = try await connection.query(
                "INSERT INTO telegram_users (id, first_name) VALUES (\(owner), 'x') ON CONFLICT DO NOTHING", logger: quietLogger)
            return try await ChannelStore.save(values, id: nil, ownerUserID: owner, maximumChannels: 1000, on: connection, logger: quietLogger)
        }
    }

    /// Waits until `query` returns `expected`: a message the person sees is not always ordered after the
    /// write it reports (a notice may go out before that change is visible here), so the database is
    /// checked once it has caught up.
    func expectRow<T: PostgresDecodable & Sendable & Equatable>(_ query: PostgresQuery, _ expected: T?, _ what: String) async {
        await eventually(what) { (try? await scalar(T.self, query)) == expected }
    }

    /// Waits until the person has no conversation (saved, cancelled, expired or refused).
    func draftGone(_ user: Int64, _ what: String) async {
        await eventually(what) {
            do { return try await draft(user, "x") == nil } catch { return false }
        }
    }

    /// Waits until a save's transaction has committed (the form's state row is gone).
    func settledSave() async {
        await eventually("the save committed") { (try? await scalar(Int.self, "SELECT count(*)::int FROM conversation_states")) == 0 }
    }

    /// Waits until the person's conversation is saved at `step`.
    func settled(_ user: Int64, at step: String) async {
        await eventually("conversation of \(user) at \(step)") {
            do { return try await draft(user, "x")?.step == step } catch { return false }
        }
    }

    func scalar<T: PostgresDecodable & Sendable>(_ type: T.Type, _ query: PostgresQuery) async throws -> T? {
        try await database.withConnection { connection in
            for try await value in try await connection.query(query, logger: quietLogger).decode(T.self) { return value }
            return nil
        }
    }

    /// Opens Anna's (or anyone's) only channel in the edit form, from /channels.
    func openEditForm(_ user: Int64, channelTitle: String) async throws {
        await say(user, "/channels")
        try await tap(user, "🟢 " + channelTitle)
        try await tap(user, en("channels.button.edit"))
        await see(user, "Channel settings")
        await settled(user, at: "screen:main")
    }
}

func withOwnerBot<Result: Sendable>(
    _ settings: OwnerSettings = OwnerSettings(),
    _ body: @Sendable (BotHarness) async throws -> Result
) async throws -> Result {
    try await withBot(dispatcher: { $0.fullDispatcher(settings) }) { bot in
        await World.build(bot.fake)
        return try await body(bot)
    }
}

@Suite("Owners configure channels through the bot (fake Bot API, real PostgreSQL)")
struct ChannelFormTests {
    @Test("onboarding by tapping buttons and picking chats ends in exactly the rows the owner chose")
    func onboarding() async throws {
        try await withOwnerBot { bot in
            let anna = World.anna
            await bot.say(anna, "/channels")
            await bot.see(anna, "You have no channels yet")
            try await bot.tap(anna, "➕ Add channel")
            let first = await bot.see(anna, "Step 1 of 2")
            guard case .replyKeyboard(let keyboard)? = first?.replyMarkup, let request = keyboard.keyboard.joined().first?.requestChat else {
                Issue.record("the first question shows the native chat picker")
                return
            }
            #expect(request.chatIsChannel)
            #expect(request.botAdministratorRights?.canInviteUsers == true && request.botAdministratorRights?.canRestrictMembers == true)
            #expect(request.userAdministratorRights != nil)
            try await bot.fake.userSharesChat(anna, chat: World.annaClosed)
            await bot.see(anna, "Step 2 of 2")
            try await bot.fake.userSharesChat(anna, chat: World.annaOpen)
            let main = await bot.see(anna, "Channel settings")
            #expect(main?.text.contains("🔒 Private: VIP Club") == true)
            #expect(main?.text.contains("📢 Public: Public News") == true)

            try await bot.tap(anna, "💰 Tiers")
            try await bot.tap(anna, "Tier 1: ❌")
            await bot.see(anna, "Tier 1: send the price")
            await bot.say(anna, "9.99")
            await bot.see(anna, "Tier 1: for how many days")
            await bot.say(anna, "30")
            await bot.see(anna, "🥇 Tier 1 ✅ $9.99 · 30 days")
            try await bot.tap(anna, "Tier 3: ❌")
            await bot.say(anna, "99")
            await bot.see(anna, "Tier 3: for how many days")
            await bot.say(anna, "365")
            await bot.see(anna, "🥉 Tier 3 ✅ $99.00 · 365 days")
            try await bot.tap(anna, "⬅️ Back")

            try await bot.tap(anna, "💳 Payout")
            try await bot.tap(anna, "🌐 Network")
            try await bot.tap(anna, "TRON (TRX)")
            try await bot.tap(anna, "USDT")
            await bot.see(anna, "wallet address")
            await bot.say(anna, "TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9")
            await bot.see(anna, "Wallet: <code>TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9</code>")
            try await bot.tap(anna, "⚖️ Strategy")
            try await bot.tap(anna, "📦 Threshold — in batches")
            await bot.see(anna, "at which a payout is made")
            await bot.say(anna, "250")
            await bot.see(anna, "Threshold: $250.00")
            try await bot.tap(anna, "⬅️ Back")
            try await bot.tap(anna, "🔔 Notifications")
            try await bot.tap(anna, "Notifications: ❌")
            await bot.see(anna, "Payment notifications: ✅")
            try await bot.tap(anna, "⬅️ Back")
            try await bot.tap(anna, "✅ Save all changes")
            await bot.see(anna, "All changes saved")
            await bot.settledSave()

            let row = try await bot.database.withConnection { connection in
                let rows = try await connection.query(
                    """
                    SELECT c.owner_user_id, c.closed_chat_id, c.closed_title, c.open_chat_id, c.open_title, c.status,
                           p.network_code, p.currency_code, p.wallet_address, p.strategy, p.threshold_usd::text,
                           p.notifications_enabled, p.notification_user_id
                    FROM channels c JOIN channel_payout_settings p ON p.channel_id = c.id
                    """,
                    logger: quietLogger
                )
                var all: [(Int64, Int64, String, Int64, String, String, String, String, String, String, String?, Bool, Int64?)] = []
                for try await row in rows.decode(
                    (Int64, Int64, String, Int64, String, String, String, String, String, String, String?, Bool, Int64?).self)
                { all.append(row) }
                return all
            }
            #expect(row.count == 1)
            if let saved = row.first {
                #expect(
                    saved.0 == anna && saved.1 == World.annaClosed && saved.2 == "VIP Club" && saved.3 == World.annaOpen && saved.4 == "Public News")
                #expect(saved.5 == "active")
                #expect(saved.6 == "TRX" && saved.7 == "USDT" && saved.8 == "TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9")
                #expect(saved.9 == "threshold" && saved.10 == "250.00")
                #expect(saved.11 && saved.12 == anna)
            }
            let tiers = try await bot.database.withConnection { connection in
                let rows = try await connection.query(
                    "SELECT position::int, price_usd::text, duration_days, enabled FROM channel_tiers ORDER BY position", logger: quietLogger)
                var all: [String] = []
                for try await (position, price, days, enabled) in rows.decode((Int, String, Int, Bool).self) {
                    all.append("\(position) \(price) \(days) \(enabled)")
                }
                return all
            }
            #expect(tiers == ["1 9.99 30 true", "3 99.00 365 true"])
            await bot.draftGone(anna, "the draft is gone after saving")
            await bot.say(anna, "/channels")
            await bot.see(anna, "1. 📢 Public News → 🔒 VIP Club — 🟢 selling")
            try await bot.tap(anna, "🟢 Public News")
            let token = try #require(try await bot.scalar(String.self, "SELECT offer_token FROM channels"))
            await bot.see(anna, "🔗 Offer link for buyers: https://t.me/telepay_test_bot?start=\(token)")
            // The owner sees where the threshold stands and what the next payout will be.
            await bot.see(anna, "💰 Payout at $250.00: $0.00 of $250.00 converted to USDT (0%); $0.00 waits for the next conversion.")
            await bot.see(anna, "Next payout: everything converted, in USDT on TRX, once it reaches $250.00.")
        }
    }

    @Test("each field refuses bad input with its localized error, and the form stays as it was")
    func badInputs() async throws {
        try await withOwnerBot { bot in
            let anna = World.anna
            _ = try await bot.storeChannel(World.annaValues, owner: anna)
            try await bot.openEditForm(anna, channelTitle: "Public News")

            func refuses(_ field: String, _ input: String, _ key: String, _ arguments: [String: String] = [:]) async throws {
                let before = try await bot.draft(anna, field)
                await bot.say(anna, input)
                await bot.see(anna, "⚠️ " + bot.en(key, arguments))
                let after = try await bot.draft(anna, field)
                #expect(after?.step == "ask:\(field)", "still asking \(field)")
                #expect(after?.value == before?.value, "\(field) unchanged")
            }

            try await bot.tap(anna, "🔒 Private channel")
            try await bot.tap(anna, "✏️ Title")
            try await refuses("closed_title", String(repeating: "x", count: 31), "form.error.too_long", ["max": "30", "length": "31"])
            try await bot.tap(anna, "⬅️ Back")
            try await bot.tap(anna, "✏️ Description")
            try await refuses("closed_description", String(repeating: "y", count: 141), "form.error.too_long", ["max": "140", "length": "141"])
            try await bot.tap(anna, "⬅️ Back")
            await bot.see(anna, "<b>🔒 Private channel</b>")
            try await bot.tap(anna, "⬅️ Back")

            try await bot.tap(anna, "📢 Public channel")
            try await bot.tap(anna, "✏️ Donation message")
            try await refuses("donation_message", "Thanks!", "form.error.too_short", ["min": "10"])
            try await bot.tap(anna, "⬅️ Back")
            await bot.see(anna, "<b>📢 Public channel</b>")
            try await bot.tap(anna, "⬅️ Back")

            try await bot.tap(anna, "💰 Tiers")
            try await bot.tap(anna, "✏️ Tier 1 price and days")
            await bot.see(anna, "Tier 1: send the price")
            try await refuses("tier1_price", "0", "form.error.out_of_range", ["min": "0.01", "max": "9999.99"])
            try await refuses("tier1_price", "10000", "form.error.out_of_range", ["min": "0.01", "max": "9999.99"])
            try await refuses("tier1_price", "1.999", "form.error.too_many_decimals", ["decimals": "2"])
            try await refuses("tier1_price", "free", "form.error.not_amount")
            await bot.say(anna, "5")
            await bot.see(anna, "Tier 1: for how many days")
            try await refuses("tier1_days", "0", "form.error.out_of_range", ["min": "1", "max": "3650"])
            try await refuses("tier1_days", "3651", "form.error.out_of_range", ["min": "1", "max": "3650"])
            try await refuses("tier1_days", "1.5", "form.error.not_whole_number")
            await bot.say(anna, "7")
            await bot.see(anna, "🥇 Tier 1 ✅ $5.00 · 7 days")
            try await bot.tap(anna, "⬅️ Back")
            await bot.see(anna, "Channel settings")

            try await bot.tap(anna, "💳 Payout")
            try await bot.tap(anna, "👛 Wallet address")
            try await refuses("wallet_address", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "form.error.wallet_not_network", ["network": "ETH"])
            try await refuses("wallet_address", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "form.error.wallet_checksum")
            await bot.say(anna, "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359")
            await bot.see(anna, "Wallet: <code>0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359</code>")
            try await bot.tap(anna, "⚖️ Strategy")
            try await bot.tap(anna, "📦 Threshold — in batches")
            await bot.see(anna, "at which a payout is made")
            try await refuses("payout_threshold", "5", "form.error.out_of_range", ["min": "10.00", "max": "100000.00"])
            await bot.say(anna, "10")
            await bot.see(anna, "Threshold: $10.00")
            try await bot.tap(anna, "⬅️ Back")

            try await bot.tap(anna, "🔔 Notifications")
            try await bot.tap(anna, "Notifications: ❌")
            try await bot.tap(anna, "👤 Recipient")
            try await refuses("notification_recipient", "@boris", "form.error.not_user_id")
            try await refuses("notification_recipient", "123456789", "channels.error.recipient_unreachable", ["id": "123456789"])
            _ = try await bot.database.withConnection { connection in
                try await connection.query("INSERT INTO telegram_users (id, first_name) VALUES (55555, 'Accountant')", logger: quietLogger)
            }
            await bot.say(anna, "55555")
            await bot.see(anna, "Recipient: 55555")
            try await bot.tap(anna, "⬅️ Back")
            try await bot.tap(anna, "✅ Save all changes")
            await bot.see(anna, "All changes saved")
            await bot.settledSave()
            let stored = try await bot.scalar(String.self, "SELECT price_usd::text || ' ' || duration_days FROM channel_tiers WHERE position = 1")
            #expect(stored == "5.00 7")
            let wallet = try await bot.scalar(
                String.self, "SELECT wallet_address || ' ' || strategy || ' ' || threshold_usd::text FROM channel_payout_settings")
            #expect(wallet == "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359 threshold 10.00")
            #expect(try await bot.scalar(Int64.self, "SELECT notification_user_id FROM channel_payout_settings") == 55555)
        }
    }

    @Test("saving needs every required field and at least one tier; nothing is written otherwise")
    func saveRules() async throws {
        try await withOwnerBot { bot in
            let anna = World.anna
            await bot.say(anna, "/channels")
            try await bot.tap(anna, "➕ Add channel")
            await bot.see(anna, "Step 1 of 2")
            try await bot.fake.userSharesChat(anna, chat: World.annaClosed)
            await bot.see(anna, "Step 2 of 2")
            await bot.fake.userForwardsPost(anna, from: World.annaOpen)
            await bot.see(anna, "Channel settings")
            try await bot.tap(anna, "✅ Save all changes")
            await bot.see(anna, bot.en("form.error.missing", ["fields": "payout network"]))
            try await bot.tap(anna, "💳 Payout")
            try await bot.tap(anna, "🌐 Network")
            try await bot.tap(anna, "Ethereum (ETH)")
            try await bot.tap(anna, "ETH")
            await bot.say(anna, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
            await bot.see(anna, "Wallet: <code>0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed</code>")
            try await bot.tap(anna, "⬅️ Back")
            try await bot.tap(anna, "✅ Save all changes")
            await bot.see(anna, bot.en("channels.error.no_tier"))
            #expect(try await bot.scalar(Int.self, "SELECT count(*)::int FROM channels") == 0)
            try await bot.tap(anna, "❌ Cancel")
            await bot.see(anna, "Editing cancelled")
            await bot.draftGone(anna, "the draft is discarded")
        }
    }

    @Test("a non-owner, and crafted callback data, can neither read nor change another owner's channel")
    func ownership() async throws {
        try await withOwnerBot { bot in
            let id = try await bot.storeChannel(World.annaValues, owner: World.anna)
            let boris = World.boris
            await bot.say(boris, "/channels")
            let list = await bot.see(boris, "Каналов пока нет")
            let message = list?.messageID ?? 1
            for (index, data) in [CallbackData.channelOpen(id), .channelEdit(id), .channelPause(id), .channelDelete(id), .channelDeleteConfirmed(id)]
                .enumerated()
            {
                await bot.fake.userSendsCallback(boris, data: data.encoded, onMessage: message)
                await bot.eventually("refusal \(index + 1)") {
                    await bot.texts(to: boris).filter { $0 == bot.ru("channels.not_yours") }.count == index + 1
                }
            }
            // A forged form press without a conversation does nothing but say the menu is outdated.
            await bot.fake.userSendsCallback(boris, data: CallbackData.form(code: "cf", revision: 1, row: 4, column: 0).encoded, onMessage: message)
            await bot.eventually("the forged press is answered") { await bot.fake.answeredCallbacks.values.contains(bot.ru("menu.outdated")) }
            #expect(try await bot.scalar(String.self, "SELECT status || '/' || open_title FROM channels WHERE id = \(id)") == "active/Public News")
            #expect(try await bot.draft(boris, "open_title") == nil)
            let shown = await bot.texts(to: boris).joined(separator: "\n")
            #expect(!shown.contains("Public News") && !shown.contains("VIP Club"))
        }
    }

    @Test("an owner's edit form cannot be continued by them after the channel changes hands")
    func ownershipCheckedOnEveryStep() async throws {
        try await withOwnerBot { bot in
            let id = try await bot.storeChannel(World.annaValues, owner: World.anna)
            try await bot.openEditForm(World.anna, channelTitle: "Public News")
            _ = try await bot.database.withConnection { connection in
                _ = try await connection.query(
                    "INSERT INTO telegram_users (id, first_name) VALUES (\(World.boris), 'B') ON CONFLICT DO NOTHING", logger: quietLogger)
                _ = try await connection.query("INSERT INTO owners (user_id) VALUES (\(World.boris)) ON CONFLICT DO NOTHING", logger: quietLogger)
                return try await connection.query("UPDATE channels SET owner_user_id = \(World.boris) WHERE id = \(id)", logger: quietLogger)
            }
            try await bot.tap(World.anna, "💰 Tiers")
            await bot.see(World.anna, bot.en("channels.not_yours"))
            await bot.draftGone(World.anna, "the draft is discarded")
        }
    }

    @Test("missing bot rights and missing user rights are refused with exact instructions")
    func rights() async throws {
        try await withOwnerBot { bot in
            let anna = World.anna
            await bot.fake.addChannel(id: -1001000000099, title: "Half Set Up", owner: anna)
            await bot.fake.setBotAdministrator(chat: -1001000000099, rights: World.rights(invite: true), by: anna)
            await bot.say(anna, "/channels")
            try await bot.tap(anna, "➕ Add channel")
            await bot.see(anna, "Step 1 of 2")
            await bot.fake.userForwardsPost(anna, from: -1001000000099)
            await bot.see(anna, "In “Half Set Up” I am an administrator but lack these rights")
            let text = await bot.fake.lastMessage(to: anna)?.text ?? ""
            #expect(text.contains("• Ban users") && !text.contains("• Invite users via link"))
            #expect(try await bot.draft(anna, "closed_chat")?.value == nil)

            // Boris's channel: Anna is no administrator there.
            await bot.fake.userForwardsPost(anna, from: World.borisClosed)
            await bot.see(anna, "You are not an administrator of “Клуб”")
            // A group is not a channel, and the picker would not even offer Boris's channel to Anna.
            await #expect(throws: FakeError.self) { try await bot.fake.userSharesChat(anna, chat: World.borisClosed) }
            await bot.say(anna, "@nosuchchannel")
            await bot.see(anna, bot.en("form.error.chat_not_found", ["username": "@nosuchchannel"]))
            await bot.say(anna, "hello")
            await bot.see(anna, bot.en("form.error.chat_expected"))

            // Now the closed channel, then the public one by @username; the same chat twice is refused.
            try await bot.fake.userSharesChat(anna, chat: World.annaClosed)
            await bot.see(anna, "Step 2 of 2")
            await bot.fake.userForwardsPost(anna, from: World.annaClosed)
            await bot.see(anna, bot.en("channels.error.same_chat"))
            await bot.say(anna, "https://t.me/public_news")
            await bot.see(anna, "Channel settings")
        }
    }

    @Test("a restart in the middle of the form resumes where the owner was")
    func resumeAfterRestart() async throws {
        try await withBot(dispatcher: { $0.fullDispatcher() }, polling: false) { bot in
            await World.build(bot.fake)
            let anna = World.anna
            let first = Task { try await bot.poller(bot.fullDispatcher()).run() }
            await bot.say(anna, "/channels")
            try await bot.tap(anna, "➕ Add channel")
            await bot.see(anna, "Step 1 of 2")
            try await bot.fake.userSharesChat(anna, chat: World.annaClosed)
            await bot.see(anna, "Step 2 of 2")
            first.cancel()
            _ = try? await first.value
            // A new process: new dispatcher, engine and poller, the same database.
            let second = Task { try await bot.poller(bot.fullDispatcher()).run() }
            defer { second.cancel() }
            try await bot.fake.userSharesChat(anna, chat: World.annaOpen)
            let main = await bot.see(anna, "Channel settings")
            #expect(main?.text.contains("VIP Club") == true && main?.text.contains("Public News") == true)
        }
    }

    @Test("a press on an outdated menu redraws the current one with a notice instead of acting")
    func outdatedMenu() async throws {
        try await withOwnerBot { bot in
            let anna = World.anna
            _ = try await bot.storeChannel(World.annaValues, owner: anna)
            try await bot.openEditForm(anna, channelTitle: "Public News")
            try await bot.tap(anna, "💰 Tiers")
            try await bot.tap(anna, "✏️ Tier 1 price and days")
            await bot.see(anna, "Tier 1: send the price")
            let prompt = await bot.fake.lastMessage(to: anna)
            await bot.say(anna, "12")
            await bot.see(anna, "Tier 1: for how many days")
            // The price prompt is still on screen with its Back button; pressing it is stale.
            try await bot.fake.userTapsButton(anna, label: "⬅️ Back", onMessage: prompt?.messageID)
            await bot.see(anna, "⚠️ " + bot.en("form.menu_outdated"))
            #expect(await bot.fake.lastMessage(to: anna)?.text.contains("Tier 1: for how many days") == true)
            #expect(try await bot.draft(anna, "tier1_price")?.step == "ask:tier1_days")
            #expect(await bot.fake.answeredCallbacks.values.contains(bot.en("menu.outdated")))

            // A menu drawn by an older definition of the form is outdated too, even at the current revision.
            await bot.say(anna, "30")
            await bot.see(anna, "🥇 Tier 1 ✅ $12.00 · 30 days")
            await bot.settled(anna, at: "screen:tiers")
            _ = try await bot.database.withConnection { connection in
                try await connection.query("UPDATE conversation_states SET definition_version = 'older'", logger: quietLogger)
            }
            let before = await bot.fake.sentMessages(to: anna).count
            try await bot.fake.userTapsButton(anna, label: "Tier 2: ❌")
            await bot.see(anna, "⚠️ " + bot.en("form.menu_outdated"))
            #expect(await bot.fake.sentMessages(to: anna).count == before + 1)
            #expect(await bot.fake.lastMessage(to: anna)?.text.contains("🥈 Tier 2 ❌") == true, "tier 2 was not toggled")
        }
    }

    @Test(
        "a menu that cannot be sent after its step committed leaves the answer saved and no menu recorded; the old menu then redraws the current one")
    func sendFailsAfterCommit() async throws {
        try await withOwnerBot { bot in
            let anna = World.anna
            _ = try await bot.storeChannel(World.annaValues, owner: anna)
            try await bot.openEditForm(anna, channelTitle: "Public News")
            try await bot.tap(anna, "💰 Tiers")
            try await bot.tap(anna, "✏️ Tier 1 price and days")
            await bot.see(anna, "Tier 1: send the price")
            await bot.settled(anna, at: "ask:tier1_price")
            let prompt = await bot.fake.lastMessage(to: anna)
            // The next question, and the generic error after it, fail to send.
            await bot.fake.failCalls("sendMessage", chat: anna, times: 2)
            await bot.say(anna, "12")
            await bot.settled(anna, at: "ask:tier1_days")
            #expect(try await bot.draft(anna, "tier1_price")?.value == "12.00")
            #expect(try await bot.scalar(Bool.self, "SELECT menu_message_id IS NULL FROM conversation_states WHERE user_id = \(anna)") == true)

            try await bot.fake.userTapsButton(anna, label: "⬅️ Back", onMessage: prompt?.messageID)
            await bot.see(anna, "⚠️ " + bot.en("form.menu_outdated"))
            let redrawn = await bot.fake.lastMessage(to: anna)
            #expect(redrawn?.text.contains("Tier 1: for how many days") == true)
            #expect(await bot.fake.sentMessages(to: anna).filter { $0.text.contains("Tier 1: for how many days") }.count == 1)
            await bot.expectRow(
                "SELECT menu_message_id FROM conversation_states WHERE user_id = \(anna)", redrawn?.messageID, "the redrawn menu is recorded")
            #expect(try await bot.draft(anna, "tier1_price")?.value == "12.00")
        }
    }

    @Test("an expired draft is discarded with a message on the next interaction")
    func draftExpiry() async throws {
        try await withOwnerBot { bot in
            let anna = World.anna
            _ = try await bot.storeChannel(World.annaValues, owner: anna)
            try await bot.openEditForm(anna, channelTitle: "Public News")
            _ = try await bot.database.withConnection { connection in
                try await connection.query("UPDATE conversation_states SET expires_at = now() - interval '1 second'", logger: quietLogger)
            }
            try await bot.fake.userTapsButton(anna, label: "💰 Tiers")
            await bot.see(anna, bot.en("form.expired"))
            await bot.draftGone(anna, "the draft is discarded")
        }
    }

    @Test("/cancel leaves the form and discards the draft")
    func cancel() async throws {
        try await withOwnerBot { bot in
            await bot.say(World.anna, "/channels")
            try await bot.tap(World.anna, "➕ Add channel")
            await bot.see(World.anna, "Step 1 of 2")
            await bot.say(World.anna, "/cancel")
            let reply = await bot.see(World.anna, bot.en("cancel.done"))
            if case .removeKeyboard = reply?.replyMarkup {} else { Issue.record("the chat picker keyboard is removed") }
            await bot.draftGone(World.anna, "the draft is discarded")
        }
    }

    @Test("two owners configuring at the same time each get their own channel")
    func twoOwnersAtOnce() async throws {
        try await withOwnerBot { bot in
            await withThrowingTaskGroup(of: Void.self) { group in
                for (owner, closed, open) in [(World.anna, World.annaClosed, World.annaOpen), (World.boris, World.borisClosed, World.borisOpen)] {
                    group.addTask {
                        let l = owner == World.anna ? bot.en : bot.ru
                        await bot.say(owner, "/channels")
                        try await bot.tap(owner, l("channels.button.add", [:]))
                        await bot.eventually("picker for \(owner)") {
                            await bot.fake.lastMessage(to: owner)?.replyMarkup.flatMap(FakeBotAPI.chatRequest) != nil
                        }
                        try await bot.fake.userSharesChat(owner, chat: closed)
                        await bot.eventually("second picker for \(owner)") {
                            let last = await bot.fake.lastMessage(to: owner)
                            return last?.replyMarkup.flatMap(FakeBotAPI.chatRequest)?.requestId == 2
                        }
                        try await bot.fake.userSharesChat(owner, chat: open)
                        let russian = owner == World.boris
                        try await bot.tap(owner, l("form.channel.button.tiers", [:]))
                        try await bot.tap(owner, l("form.channel.button.tier_toggle", ["n": "2", "mark": "❌"]))
                        await bot.see(owner, russian ? "Тариф 2: пришлите цену" : "Tier 2: send the price")
                        await bot.say(owner, russian ? "4" : "3")
                        await bot.see(owner, russian ? "Тариф 2: на сколько дней" : "Tier 2: for how many days")
                        await bot.say(owner, russian ? "20" : "10")
                        await bot.see(owner, russian ? "🥈 Тариф 2 ✅" : "🥈 Tier 2 ✅")
                        try await bot.tap(owner, l("form.button.back", [:]))
                        try await bot.tap(owner, l("form.channel.button.payout", [:]))
                        try await bot.tap(owner, l("form.channel.button.payout_network", [:]))
                        try await bot.tap(owner, "BNB Smart Chain (BSC)")
                        try await bot.tap(owner, "USDC")
                        let wallet = russian ? "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359" : "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
                        await bot.see(owner, russian ? "адрес кошелька" : "wallet address")
                        await bot.say(owner, wallet)
                        await bot.see(owner, "<code>\(wallet)</code>")
                        try await bot.tap(owner, l("form.button.back", [:]))
                        try await bot.tap(owner, l("form.button.save", [:]))
                        await bot.eventually("saved for \(owner)") { await bot.fake.lastMessage(to: owner)?.text.contains("/channels") == true }
                    }
                }
            }
            await bot.settledSave()
            let rows = try await bot.database.withConnection { connection in
                let rows = try await connection.query(
                    """
                    SELECT c.owner_user_id, c.closed_chat_id, t.price_usd::text, t.duration_days, p.wallet_address
                    FROM channels c JOIN channel_tiers t ON t.channel_id = c.id JOIN channel_payout_settings p ON p.channel_id = c.id
                    ORDER BY c.owner_user_id
                    """,
                    logger: quietLogger
                )
                var all: [String] = []
                for try await (owner, closed, price, days, wallet) in rows.decode((Int64, Int64, String, Int, String).self) {
                    all.append("\(owner) \(closed) \(price) \(days) \(wallet.prefix(6))")
                }
                return all
            }
            #expect(rows == ["1001 \(World.annaClosed) 3.00 10 0x5aAe", "1002 \(World.borisClosed) 4.00 20 0xfB69"])
        }
    }

    @Test("the 11th channel is refused; the limit is configurable")
    func channelLimit() async throws {
        try await withOwnerBot { bot in
            for index in 0..<10 {
                var values = World.annaValues
                values["closed_chat"] = String(-1002000000000 - Int64(index))
                values["open_chat"] = String(-1003000000000 - Int64(index))
                _ = try await bot.storeChannel(values, owner: World.anna)
            }
            await bot.say(World.anna, "/channels")
            await bot.see(World.anna, "(10 of 10)")
            try await bot.tap(World.anna, "➕ Add channel")
            await bot.see(World.anna, bot.en("channels.limit_reached", ["max": "10"]))
            #expect(try await bot.draft(World.anna, "closed_chat") == nil)
            // The save checks again: a form started under the limit cannot exceed it.
            let refused = try await bot.database.withTransaction { connection -> Bool in
                do {
                    _ = try await ChannelStore.save(
                        World.annaValues, id: nil, ownerUserID: World.anna, maximumChannels: 10, on: connection, logger: quietLogger)
                    return false
                } catch ChannelSaveError.limitReached(10) {
                    return true
                }
            }
            #expect(refused)
        }
    }

    @Test("catalogue choices show only the currencies the chosen network carries")
    func catalogue() async throws {
        try await withOwnerBot { bot in
            let anna = World.anna
            _ = try await bot.storeChannel(World.annaValues, owner: anna)
            try await bot.openEditForm(anna, channelTitle: "Public News")
            try await bot.tap(anna, "💳 Payout")
            try await bot.tap(anna, "🌐 Network")
            await bot.see(anna, "On which network")
            let networks = await bot.fake.lastMessage(to: anna)?.keyboard?.inlineKeyboard.joined().map(\.text) ?? []
            #expect(networks.count == 16 + 1)
            try await bot.tap(anna, "TRON (TRX)")
            await bot.see(anna, "Which coin")
            let shown = await bot.fake.lastMessage(to: anna)?.keyboard?.inlineKeyboard.joined().map(\.text).filter { $0 != "⬅️ Back" } ?? []
            let expected = try await bot.database.withConnection { connection in
                var codes: [String] = []
                for try await code in try await connection.query(
                    "SELECT currency_code FROM payout_options WHERE network_code = 'TRX' AND enabled ORDER BY 1", logger: quietLogger
                ).decode(String.self) {
                    codes.append(code)
                }
                return codes
            }
            #expect(shown == expected)
            #expect(shown == ["TRX", "USD1", "USDT"])
            // Switching the network dropped the ETH address, which is not a TRON address.
            await bot.eventually("the ETH address is dropped") {
                guard let state = try? await bot.draft(anna, "wallet_address") else { return false }
                return state.step == "ask:payout_currency" && state.value == nil
            }
            // A crafted choice of a pair the catalogue lacks cannot be made: options are the rendered buttons.
            let state = try await bot.draft(anna, "payout_network")
            #expect(state?.value == "TRX")
        }
    }

    @Test("the same screen in English and in Russian")
    func languages() async throws {
        try await withOwnerBot { bot in
            var values = World.annaValues
            values["closed_chat"] = String(World.borisClosed)
            values["open_chat"] = String(World.borisOpen)
            values["open_title"] = "Новости"
            values["closed_title"] = "Клуб"
            _ = try await bot.storeChannel(World.annaValues, owner: World.anna)
            _ = try await bot.storeChannel(values, owner: World.boris)
            try await bot.openEditForm(World.anna, channelTitle: "Public News")
            await bot.say(World.boris, "/channels")
            try await bot.tap(World.boris, "🟢 Новости")
            try await bot.tap(World.boris, bot.ru("channels.button.edit"))
            let english = await bot.see(World.anna, "Channel settings")
            let russian = await bot.see(World.boris, "Настройки канала")
            #expect(english?.text.contains("💳 Payout: USDT on ETH, ⚡ Instant — each payment") == true)
            #expect(russian?.text.contains("💳 Выплаты: USDT в сети ETH, ⚡ Сразу — за каждую оплату") == true)
            #expect(
                english?.keyboard?.inlineKeyboard.joined().map(\.text) == [
                    "🔒 Private channel", "📢 Public channel", "💰 Tiers", "💳 Payout", "🔔 Notifications", "✅ Save all changes", "❌ Cancel",
                ])
            #expect(
                russian?.keyboard?.inlineKeyboard.joined().map(\.text) == [
                    "🔒 Закрытый канал", "📢 Открытый канал", "💰 Тарифы", "💳 Выплаты", "🔔 Уведомления", "✅ Сохранить всё", "❌ Отмена",
                ])
            try await bot.tap(World.boris, "💰 Тарифы")
            await bot.see(World.boris, "🥇 Тариф 1 ✅ 9.99 $ · 30 дней")
        }
    }

    @Test("when the bot is removed from a configured channel, sales pause and the owner is told what to grant")
    func botRemoved() async throws {
        try await withOwnerBot { bot in
            let id = try await bot.storeChannel(World.annaValues, owner: World.anna)
            await bot.fake.setBotAdministrator(chat: World.annaClosed, rights: nil, by: World.anna)
            await bot.see(World.anna, "I lost access to your private channel “VIP Club”")
            let notice = await bot.fake.lastMessage(to: World.anna)?.text ?? ""
            #expect(notice.contains("• Invite users via link") && notice.contains("• Ban users"))
            await bot.expectRow(
                "SELECT status || '/' || coalesce(paused_reason, '') FROM channels WHERE id = \(id)", "paused/bot_removed", "paused: bot removed")

            // Resuming checks the rights again: refused until the bot is back with what it needs.
            await bot.say(World.anna, "/channels")
            try await bot.tap(World.anna, "⏸ Public News")
            try await bot.tap(World.anna, "▶️ Resume sales")
            await bot.see(World.anna, "I am not an administrator of “VIP Club”")
            #expect(try await bot.scalar(String.self, "SELECT status FROM channels WHERE id = \(id)") == "paused")
            await bot.fake.setBotAdministrator(chat: World.annaClosed, rights: World.rights(invite: true, restrict: true), by: World.anna)
            await bot.say(World.anna, "/channels")
            try await bot.tap(World.anna, "⏸ Public News")
            try await bot.tap(World.anna, "▶️ Resume sales")
            await bot.see(World.anna, "🟢 selling")
            await bot.expectRow("SELECT status FROM channels WHERE id = \(id)", "active", "resumed")

            // Demoted in the public channel: paused for missing rights.
            await bot.fake.setBotAdministrator(chat: World.annaOpen, rights: World.rights(post: true, delete: true), by: World.anna)
            await bot.see(World.anna, "public channel “Public News”")
            await bot.expectRow(
                "SELECT status || '/' || coalesce(paused_reason, '') FROM channels WHERE id = \(id)", "paused/bot_rights", "paused: rights")
        }
    }

    @Test("pausing and deleting from the channel card; a never-sold pair is removed outright")
    func pauseAndDelete() async throws {
        try await withOwnerBot { bot in
            let id = try await bot.storeChannel(World.annaValues, owner: World.anna)
            await bot.say(World.anna, "/channels")
            try await bot.tap(World.anna, "🟢 Public News")
            try await bot.tap(World.anna, "⏸ Pause sales")
            await bot.see(World.anna, "paused by you")
            await bot.expectRow(
                "SELECT status || '/' || coalesce(paused_reason, '') FROM channels WHERE id = \(id)", "paused/owner", "paused by the owner")
            try await bot.tap(World.anna, "🗑 Delete")
            try await bot.tap(World.anna, "🗑 Yes, delete it")
            await bot.see(World.anna, "was deleted")
            await bot.expectRow("SELECT count(*)::int FROM channels", 0, "deleted")
            #expect(try await bot.scalar(Int.self, "SELECT count(*)::int FROM channel_chat_claims") == 0)
        }
    }

    @Test("deleting is refused while subscriptions are active (pausing is offered); a sold pair is kept for its records and its chats freed")
    func deleteWithSubscriptions() async throws {
        try await withOwnerBot { bot in
            let id = try await bot.storeChannel(World.annaValues, owner: World.anna)
            _ = try await bot.database.withTransaction { connection in
                _ = try await connection.query(
                    "INSERT INTO telegram_users (id, first_name) VALUES (\(World.boris), 'B') ON CONFLICT DO NOTHING", logger: quietLogger)
                let rows = try await connection.query(
                    """
                    INSERT INTO orders (user_id, channel_id, owner_user_id, tier_position, price_usd, duration_days, closed_chat_id, closed_title, status, paid_at)
                    VALUES (\(World.boris), \(id), \(World.anna), 1, 9.99, 30, \(World.annaClosed), 'VIP Club', 'paid', now()) RETURNING id
                    """,
                    logger: quietLogger
                )
                var order: Int64 = 0
                for try await value in rows.decode(Int64.self) { order = value }
                return try await connection.query(
                    """
                    INSERT INTO subscriptions (user_id, channel_id, status, started_at, expires_at, last_order_id)
                    VALUES (\(World.boris), \(id), 'active', now(), now() + interval '30 days', \(order))
                    """,
                    logger: quietLogger
                )
            }
            await bot.say(World.anna, "/channels")
            try await bot.tap(World.anna, "🟢 Public News")
            try await bot.tap(World.anna, "🗑 Delete")
            try await bot.tap(World.anna, "🗑 Yes, delete it")
            let refusal = await bot.see(World.anna, bot.en("channels.delete_refused", ["count": "1"]))
            #expect(refusal?.keyboard?.inlineKeyboard.joined().map(\.text).contains("⏸ Pause sales") == true)
            #expect(try await bot.scalar(String.self, "SELECT status FROM channels WHERE id = \(id)") == "active")

            _ = try await bot.database.withConnection { connection in
                try await connection.query("UPDATE subscriptions SET status = 'expired', expired_at = now()", logger: quietLogger)
            }
            await bot.say(World.anna, "/channels")
            try await bot.tap(World.anna, "🟢 Public News")
            try await bot.tap(World.anna, "🗑 Delete")
            try await bot.tap(World.anna, "🗑 Yes, delete it")
            await bot.see(World.anna, "was deleted")
            await bot.expectRow(
                "SELECT (deleted_at IS NOT NULL)::text || '/' || status FROM channels WHERE id = \(id)", "true/paused", "kept, marked deleted")
            #expect(try await bot.scalar(Int.self, "SELECT count(*)::int FROM orders WHERE channel_id = \(id)") == 1)
            #expect(try await bot.scalar(Int.self, "SELECT count(*)::int FROM channel_chat_claims") == 0)
            await bot.say(World.anna, "/channels")
            await bot.see(World.anna, "You have no channels yet")
            // The same chats can make a new pair.
            let again = try await bot.storeChannel(World.annaValues, owner: World.anna)
            #expect(again != id)
        }
    }
}
