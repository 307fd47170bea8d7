import Bot
import Conversations
import Foundation
import PostgresNIO
import Storage
import TelegramFake
import TestSupport
import Testing

/// The title from issue 15: 25 visible characters, 31 code points, 43 UTF-16 units.
let flagTitle = "Crypto Signals VIP 🇺🇸🇬🇧🇩🇪🇯🇵🇨🇳🇮🇳"

@Suite("One way to measure a text: the form, the database and Telegram agree")
struct TextLengthTests {
    static let samples = [
        "", "VIP Club", flagTitle, "Клуб", "頻道", "👍🏽", "e\u{301}", "👨‍👩‍👧‍👦", "a\u{1F600}b", String(repeating: "🇺🇸", count: 7),
    ]

    @Test("the flag title is 25 characters to Swift, 31 code points to PostgreSQL and 43 units to Telegram and TelePay")
    func theThreeCounts() {
        #expect(flagTitle.count == 25)
        #expect(flagTitle.unicodeScalars.count == 31)
        #expect(TextLength.of(flagTitle) == 43)
    }

    @Test("the database's telepay_text_length equals TextLength for every sample")
    func databaseAgrees() async throws {
        try await withMigratedDatabase { database in
            for sample in Self.samples {
                let measured = try await database.withConnection { connection -> Int? in
                    for try await value in try await connection.query("SELECT telepay_text_length(\(sample))", logger: quietLogger).decode(Int.self) {
                        return value
                    }
                    return nil
                }
                #expect(measured == TextLength.of(sample), "\(sample.debugDescription)")
            }
        }
    }

    @Test("a text field refuses more units than its maximum with the length and the limit, and accepts exactly the maximum")
    func fieldInput() {
        #expect(
            FieldInput.parse(flagTitle, as: .text(minLength: 1, maxLength: 30))
                == .failure(InputRejection("form.error.too_long", ["max": "30", "length": "43"])))
        let thirty = "Signals 🇺🇸🇬🇧🇩🇪🇯🇵 " + String(repeating: "x", count: 5)
        #expect(TextLength.of(thirty) == 30)
        #expect(FieldInput.parse(thirty, as: .text(minLength: 1, maxLength: 30)) == .success(thirty))
        #expect(FieldInput.parse("Thanks! 🎉", as: .text(minLength: 10, maxLength: 256)) == .success("Thanks! 🎉"))
    }

    @Test("shortening keeps whole characters: a flag is kept whole or dropped whole")
    func prefix() {
        #expect(TextLength.prefix(flagTitle, fitting: 30) == "Crypto Signals VIP 🇺🇸🇬🇧")
        #expect(TextLength.prefix(flagTitle, fitting: 43) == flagTitle)
        #expect(TextLength.prefix("ab 👨‍👩‍👧‍👦", fitting: 5) == "ab")
        for maximum in 0...45 {
            let cut = TextLength.prefix(flagTitle, fitting: maximum)
            #expect(TextLength.of(cut) <= maximum && flagTitle.hasPrefix(cut))
        }
    }

    @Test("the flag-titled channel copied in by the chat picker is shortened to fit, typed in full is refused at input, and the save succeeds")
    func flagTitleThroughTheForm() async throws {
        try await withOwnerBot { bot in
            let anna = World.anna
            let closed: Int64 = -1001000000099
            await bot.fake.addChannel(id: closed, title: flagTitle, owner: anna)
            await bot.say(anna, "/channels")
            try await bot.tap(anna, "➕ Add channel")
            await bot.see(anna, "Step 1 of 2")
            try await bot.fake.userSharesChat(anna, chat: closed)
            await bot.eventually("the shortening notice") {
                await bot.texts(to: anna).contains { $0.contains("it is shortened to “Crypto Signals VIP 🇺🇸🇬🇧”") }
            }
            await bot.see(anna, "Step 2 of 2")
            try await bot.fake.userSharesChat(anna, chat: World.annaOpen)
            await bot.see(anna, "🔒 Private: Crypto Signals VIP 🇺🇸🇬🇧")

            try await bot.tap(anna, "🔒 Private channel")
            try await bot.tap(anna, "✏️ Title")
            await bot.settled(anna, at: "ask:closed_title")
            await bot.say(anna, flagTitle)
            await bot.see(anna, "⚠️ " + bot.en("form.error.too_long", ["max": "30", "length": "43"]))
            #expect(try await bot.draft(anna, "closed_title")?.value == "Crypto Signals VIP 🇺🇸🇬🇧")
            await bot.say(anna, "Signals VIP 🇺🇸🇬🇧🇩🇪")
            await bot.see(anna, "<b>🔒 Private channel</b>")
            try await bot.tap(anna, "⬅️ Back")

            try await bot.tap(anna, "💰 Tiers")
            try await bot.tap(anna, "Tier 1: ❌")
            await bot.see(anna, "Tier 1: send the price")
            await bot.say(anna, "9.99")
            await bot.see(anna, "Tier 1: for how many days")
            await bot.say(anna, "30")
            await bot.see(anna, "🥇 Tier 1 ✅ $9.99 · 30 days")
            try await bot.tap(anna, "⬅️ Back")
            try await bot.tap(anna, "💳 Payout")
            try await bot.tap(anna, "🌐 Network")
            try await bot.tap(anna, "TRON (TRX)")
            try await bot.tap(anna, "USDT")
            await bot.see(anna, "wallet address")
            await bot.say(anna, "TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9")
            await bot.see(anna, "Wallet: <code>TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9</code>")
            try await bot.tap(anna, "⬅️ Back")
            try await bot.tap(anna, "✅ Save all changes")
            await bot.see(anna, "All changes saved")
            await bot.settledSave()
            #expect(try await bot.scalar(String.self, "SELECT closed_title FROM channels") == "Signals VIP 🇺🇸🇬🇧🇩🇪")
            #expect(await bot.texts(to: anna).allSatisfy { !$0.contains(bot.en("error.generic")) })
        }
    }

    @Test("a value the database refuses at save is named with its limit, never “something went wrong”, and the form stays")
    func databaseRefusalIsReadable() async throws {
        try await withOwnerBot { bot in
            let anna = World.anna
            _ = try await bot.storeChannel(World.annaValues, owner: anna)
            try await bot.openEditForm(anna, channelTitle: "Public News")
            // A value that reached a draft before the rule tightened (the form itself would refuse it).
            _ = try await bot.database.withConnection { connection in
                try await connection.query(
                    "UPDATE conversation_states SET draft = jsonb_set(draft, '{values,closed_title}', to_jsonb(\(flagTitle)::text))",
                    logger: quietLogger
                )
            }
            try await bot.tap(anna, "✅ Save all changes")
            await bot.see(
                anna,
                bot.en(
                    "form.error.saved_length",
                    [
                        "field": bot.en("form.channel.field.closed_title"), "length": "43", "min": "1", "max": "30",
                    ]))
            #expect(try await bot.scalar(String.self, "SELECT closed_title FROM channels") == "VIP Club")
            await bot.settled(anna, at: "screen:main")
            #expect(await bot.texts(to: anna).allSatisfy { !$0.contains(bot.en("error.generic")) })
        }
    }
}
