import Foundation
import Storage
import TelegramBotAPI
import TestSupport
import Testing

@Suite("Bot API types")
struct DecodingTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    func update(_ name: String) throws -> Update {
        try JSONDecoder().decode(Update.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent(name + ".json")))
    }

    @Test("the committed generated code is what the generator makes from the pinned spec")
    func generatedCodeIsCurrent() async throws {
        let result = try await ProcessRunner.run(
            "/usr/bin/env", ["python3", RepositoryPaths.root + "/scripts/generate-telegram-api.py", "--check"],
            workingDirectory: RepositoryPaths.root
        )
        #expect(result.succeeded, "\(result.output)")
    }

    @Test("a /start message with a deep-link payload decodes with its command entity and sender language")
    func startMessage() throws {
        let message = try #require(try update("message_start").message)
        #expect(message.text == "/start c_Xy9-Qk2_pLm4")
        #expect(message.from?.languageCode == "ru")
        #expect(message.from?.firstName == "Анна")
        #expect(message.entities?.first?.type == "bot_command")
        #expect(message.chat.type == "private")
        #expect(message.chat.id == 5_550_001)
    }

    @Test("a callback query decodes its data and the inline keyboard it was pressed on")
    func callbackQuery() throws {
        let query = try #require(try update("callback_query").callbackQuery)
        #expect(query.data == "v1:t:42:1")
        guard case .message(let message) = query.message else {
            Issue.record("expected an accessible message")
            return
        }
        let rows = try #require(message.replyMarkup?.inlineKeyboard)
        #expect(rows[0][0].action == .callbackData("v1:t:42:1"))
        #expect(rows[1][0].action == .url("https://example.com"))
    }

    @Test("a callback on a message too old to read decodes as inaccessible (date 0)")
    func inaccessibleMessage() throws {
        let query = try #require(try update("callback_query_inaccessible").callbackQuery)
        guard case .inaccessibleMessage(let message) = query.message else {
            Issue.record("expected an inaccessible message")
            return
        }
        #expect(message.messageId == 12)
    }

    @Test("my_chat_member updates decode blocks in private chats and promotions in channels")
    func myChatMember() throws {
        let blocked = try #require(try update("my_chat_member_blocked").myChatMember)
        guard case .banned(let banned) = blocked.newChatMember else {
            Issue.record("expected kicked")
            return
        }
        #expect(banned.untilDate == 0)
        let promoted = try #require(try update("my_chat_member_promoted").myChatMember)
        guard case .administrator(let admin) = promoted.newChatMember else {
            Issue.record("expected administrator")
            return
        }
        #expect(admin.canInviteUsers)
        #expect(admin.canRestrictMembers)
        #expect(promoted.chat.type == "channel")
    }

    @Test("chat_member and chat_join_request updates decode the invite link used")
    func membership() throws {
        let joined = try #require(try update("chat_member_joined").chatMember)
        #expect(joined.viaJoinRequest == true)
        #expect(joined.inviteLink?.name == "order 8812")
        guard case .member = joined.newChatMember else {
            Issue.record("expected member")
            return
        }
        let request = try #require(try update("chat_join_request").chatJoinRequest)
        #expect(request.userChatId == 5_550_001)
        #expect(request.inviteLink?.createsJoinRequest == true)
        #expect(request.inviteLink?.expireDate == 1_764_153_890)
    }

    @Test("shared chats, forward origins and replies decode; fields outside the subset are ignored")
    func sharedChatAndReply() throws {
        let message = try #require(try update("message_forwarded_chat_shared").message)
        #expect(message.chatShared?.chatId == -1_001_234_567_890)
        guard case .channel(let origin) = message.forwardOrigin else {
            Issue.record("expected a channel origin")
            return
        }
        #expect(origin.chat.id == -1_009_876_543_210)
        #expect(message.replyToMessage?.value.text == "Pick the private channel")
    }

    @Test("requests encode with snake_case keys and omit unset options; buttons encode their one action")
    func requestEncoding() throws {
        let request = SendMessage(
            chatId: .id(42), text: "hi", parseMode: "HTML",
            replyMarkup: .inlineKeyboard(InlineKeyboardMarkup(inlineKeyboard: [[InlineKeyboardButton(text: "Go", action: .callbackData("v1:go"))]]))
        )
        let json = try #require(String(data: JSONEncoder().encode(request), encoding: .utf8))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["chat_id", "text", "parse_mode", "reply_markup"])
        #expect(json.contains(#""callback_data":"v1:go""#))
        #expect(!json.contains("url"))
        let scope = try String(data: JSONEncoder().encode(BotCommandScope.allPrivateChats(BotCommandScopeAllPrivateChats())), encoding: .utf8)
        #expect(scope == #"{"type":"all_private_chats"}"#)
    }
}
