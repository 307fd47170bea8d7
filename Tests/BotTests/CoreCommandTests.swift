import Bot
import Foundation
import Localization
import PostgresNIO
import Storage
import TelegramBotAPI
import TelegramFake
import TestSupport
import Testing

@Suite("Core commands through the fake Bot API")
struct CoreCommandTests {
    @Test("/start without a payload greets the user by name, escaping it for HTML")
    func startGreets() async throws {
        try await withBot { bot in
            await bot.fake.addUser(id: 1004, firstName: "<Dan & Co>", languageCode: "en")
            await bot.fake.userSendsText(1004, "/start")
            await bot.eventually("a greeting") { await bot.texts(to: 1004).count == 1 }
            let text = try #require(await bot.texts(to: 1004).first)
            #expect(text.hasPrefix("Hello, &lt;Dan &amp; Co&gt;!"))
        }
    }

    @Test("/start with valid, invalid and over-long payloads")
    func startPayloads() async throws {
        try await withBot { bot in
            await bot.fake.userSendsText(1001, "/start abc_DEF-123")
            await bot.fake.userSendsText(1001, "/start bad!payload")
            await bot.fake.userSendsText(1001, "/start " + String(repeating: "a", count: 65))
            await bot.fake.userSendsText(1001, "/start " + String(repeating: "b", count: 64))
            await bot.eventually("four answers") { await bot.texts(to: 1001).count == 4 }
            let en = bot.localizer
            #expect(
                await bot.texts(to: 1001) == [
                    en.text("start.offer_not_found", language: "en"),
                    en.text("start.link_invalid", language: "en"),
                    en.text("start.link_invalid", language: "en"),
                    en.text("start.offer_not_found", language: "en"),
                ])
        }
    }

    @Test("a payload naming an active channel's offer token is recognised")
    func startKnownOffer() async throws {
        try await withBot { bot in
            let token = try await bot.database.withConnection { connection in
                try await connection.query("INSERT INTO telegram_users (id) VALUES (9)", logger: quietLogger)
                try await connection.query("INSERT INTO owners (user_id) VALUES (9)", logger: quietLogger)
                let rows = try await connection.query(
                    """
                    INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, status)
                    VALUES (9, -1001000000001, 'Closed', -1001000000002, 'Open', 'active') RETURNING offer_token
                    """,
                    logger: quietLogger
                )
                var token = ""
                for try await (value) in rows.decode(String.self) { token = value }
                return token
            }
            await bot.fake.userSendsText(1001, "/start \(token)")
            await bot.eventually("an answer") { await bot.texts(to: 1001).count == 1 }
            #expect(await bot.texts(to: 1001).first?.hasPrefix("Hello, Anna!") == true)
        }
    }

    @Test("/language stores the choice and the next reply comes in the chosen language")
    func languageChoice() async throws {
        try await withBot { bot in
            await bot.fake.userSendsText(1001, "/language")
            await bot.eventually("the language menu") { await bot.texts(to: 1001).count == 1 }
            try await bot.fake.userTapsButton(1001, label: "Русский")
            await bot.eventually("the confirmation") { await bot.texts(to: 1001).count == 2 }
            #expect(await bot.texts(to: 1001)[1] == bot.localizer.text("language.changed", language: "ru", ["language": "Русский"]))
            #expect(await bot.fake.answeredCallbacks.count == 1)

            let stored = try await bot.database.withConnection { connection in
                var value: String?
                for try await (language) in try await connection.query(
                    "SELECT chosen_language FROM telegram_users WHERE id = 1001", logger: quietLogger
                ).decode(String?.self) {
                    value = language
                }
                return value
            }
            #expect(stored == "ru")

            await bot.fake.userSendsText(1001, "/help")
            await bot.eventually("help") { await bot.texts(to: 1001).count == 3 }
            #expect(await bot.texts(to: 1001)[2] == bot.localizer.text("help.text", language: "ru"))
        }
    }

    @Test("without a choice the reply follows Telegram's language when we have it, else English")
    func languageFromTelegram() async throws {
        try await withBot { bot in
            await bot.fake.userSendsText(1002, "/help")
            await bot.fake.userSendsText(1003, "/help")
            await bot.eventually("two replies") {
                let boris = await bot.texts(to: 1002).count
                let chen = await bot.texts(to: 1003).count
                return boris == 1 && chen == 1
            }
            #expect(await bot.texts(to: 1002) == [bot.localizer.text("help.text", language: "ru")])
            #expect(await bot.texts(to: 1003) == [bot.localizer.text("help.text", language: "en")])
        }
    }

    @Test("/cancel discards a conversation draft, and says so when there is none")
    func cancel() async throws {
        try await withBot { bot in
            _ = try await bot.database.withConnection { connection in
                try await connection.query(
                    """
                    INSERT INTO conversation_states (chat_id, user_id, conversation, step, definition_version, expires_at)
                    VALUES (1001, 1001, 'channel_setup', 'title', '1', now() + interval '1 day')
                    """,
                    logger: quietLogger
                )
            }
            await bot.fake.userSendsText(1001, "/cancel")
            await bot.fake.userSendsText(1001, "/cancel")
            await bot.eventually("two replies") { await bot.texts(to: 1001).count == 2 }
            #expect(
                await bot.texts(to: 1001) == [
                    bot.localizer.text("cancel.done", language: "en"), bot.localizer.text("cancel.nothing", language: "en"),
                ])
        }
    }

    @Test("unknown commands get the help text; stray text gets a hint")
    func unknownCommand() async throws {
        try await withBot { bot in
            await bot.fake.userSendsText(1001, "/frobnicate now")
            await bot.eventually("two replies") { await bot.texts(to: 1001).count == 2 }
            #expect(
                await bot.texts(to: 1001) == [
                    bot.localizer.text("command.unknown", language: "en", ["command": "/frobnicate"]),
                    bot.localizer.text("help.text", language: "en"),
                ])
            await bot.fake.userSendsText(1001, "hello?")
            await bot.eventually("a hint") { await bot.texts(to: 1001).count == 3 }
            #expect(await bot.texts(to: 1001).last == bot.localizer.text("text.unexpected", language: "en"))
        }
    }

    @Test("a press on a button from an outdated menu is answered with a notice, never left spinning")
    func outdatedButton() async throws {
        try await withBot { bot in
            let stale = InlineKeyboardMarkup(inlineKeyboard: [[InlineKeyboardButton(text: "Old", action: .callbackData("v0:old:1"))]])
            try await bot.client.send(SendMessage(chatId: .id(1001), text: "old menu", replyMarkup: .inlineKeyboard(stale)))
            try await bot.fake.userTapsButton(1001, label: "Old")
            await bot.eventually("the callback answered") { await bot.fake.answeredCallbacks.count == 1 }
            #expect(await bot.fake.answeredCallbacks.values.first == bot.localizer.text("menu.outdated", language: "en"))
        }
    }

    @Test("blocking the bot is recorded on the user")
    func blockRecorded() async throws {
        try await withBot { bot in
            await bot.fake.userSendsText(1001, "/help")
            await bot.eventually("help") { await bot.texts(to: 1001).count == 1 }
            await bot.fake.userBlocksBot(1001)
            try await bot.eventually("blocked_bot_at set") {
                try await bot.database.withConnection { connection in
                    var blocked = false
                    for try await (flag) in try await connection.query(
                        "SELECT blocked_bot_at IS NOT NULL FROM telegram_users WHERE id = 1001", logger: quietLogger
                    ).decode(Bool.self) {
                        blocked = flag
                    }
                    return blocked
                }
            }
        }
    }

    @Test("the command menu is published in every catalog language and matches the registered commands")
    func commandMenu() async throws {
        try await withBot { bot in
            try await CoreCommands.publishCommandMenu(client: bot.client, localizer: bot.localizer)
            let english = await bot.fake.commands[""]?.map(\.command)
            let russian = await bot.fake.commands["ru"]
            #expect(english == BotCommandName.allCases.map(\.rawValue))
            #expect(russian?.first?.description == bot.localizer.text("command.start.description", language: "ru"))
            let router = try BotAssembly.router(conversations: BotHarness.conversations, settings: OwnerSettings())
            #expect(router.registeredCommands == Set(BotCommandName.allCases.map(\.rawValue)))
        }
    }
}
