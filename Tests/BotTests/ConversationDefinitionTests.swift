import Bot
import Conversations
import Foundation
import Localization
import TestSupport
import Testing

@Suite("Conversation definitions, callback codec and field rules")
struct ConversationDefinitionTests {
    static let minimal = """
        id: sample
        code: sm
        entries:
          start:
            screen: main
        fields:
          title:
            kind: text
            max_length: 30
            label: form.channel.field.open_title
            prompt: form.channel.prompt.title
        screens:
          main:
            text: form.channel.screen.main
            rows:
              - [{edit: title, label: form.channel.button.edit_title}]
              - [{action: save, label: form.button.save}]
        """

    func parse(_ text: String) throws -> ConversationDefinition {
        try ConversationLoader.parse(text, file: "sample.yaml", knownKeys: Set(BotHarness.localizer.catalogs["en"]!.keys))
    }

    func failure(_ text: String) -> ConversationDefinitionError? {
        do {
            _ = try parse(text)
            return nil
        } catch let error as ConversationDefinitionError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test("the shipped conversations load, and every localization key they use exists")
    func shippedDefinitionsLoad() throws {
        let definitions = try BotAssembly.loadConversations(directory: RepositoryPaths.root + "/Conversations", localizer: BotHarness.localizer)
        let form = try #require(definitions.first { $0.id == "channel_form" })
        #expect(form.entries["new"]?.ask == ["closed_chat", "open_chat"])
        #expect(form.actions == ["save", "cancel"])
        for key in form.localizationKeys {
            #expect(BotHarness.localizer.has(key), "missing \(key)")
        }
        _ = try BotAssembly.router(conversations: definitions, settings: OwnerSettings())
    }

    @Test(
        "a malformed definition is refused with its file, line and reason",
        arguments: [
            ("kind: text\n", "kind: colour\n", 8, "unknown kind 'colour'"),
            ("{edit: title,", "{edit: subtitle,", 16, "unknown field 'subtitle'"),
            ("[{action: save,", "[{go: nowhere,", 17, "unknown screen 'nowhere'"),
            ("max_length: 30\n", "max_length: 30\n    when: {ghost: true}\n", 8, "unknown field 'ghost'"),
            ("label: form.channel.field.open_title", "label: form.nothing.here", 8, "form.nothing.here"),
            ("code: sm", "code: waytoolong", 2, "code"),
            ("max_length: 30\n", "max_length: 30\n    colour: red\n", 10, "unknown key 'colour'"),
            ("rows:\n      - [{edit", "rows:\n      - [{edit: [}", 16, "not valid YAML"),
        ])
    func malformed(original: String, replacement: String, line: Int, reason: String) throws {
        let text = Self.minimal.replacingOccurrences(of: original, with: replacement)
        #expect(text != Self.minimal, "the mutation applies")
        let error = try #require(failure(text))
        #expect(error.file == "sample.yaml")
        #expect(error.line == line, "\(error)")
        #expect(error.description.contains(reason), "\(error)")
    }

    @Test("an action or validator the code does not implement, or a conversation no code runs, stops the start-up")
    func unimplementedAction() throws {
        let definition = try parse(
            Self.minimal.replacingOccurrences(of: "id: sample", with: "id: channel_form").replacingOccurrences(
                of: "action: save", with: "action: launch"))
        #expect(throws: ConversationDefinitionError.self) {
            _ = try FormEngine(definitions: [definition], bindings: [ChannelFormBinding(maximumChannelsPerOwner: 10)])
        }
        let unknownValidator = try parse(
            Self.minimal.replacingOccurrences(of: "id: sample", with: "id: channel_form").replacingOccurrences(
                of: "    max_length: 30\n", with: "    max_length: 30\n    validator: astrology\n"))
        #expect(throws: ConversationDefinitionError.self) {
            _ = try FormEngine(definitions: [unknownValidator], bindings: [ChannelFormBinding(maximumChannelsPerOwner: 10)])
        }
        let orphan = try parse(Self.minimal)
        #expect(throws: ConversationDefinitionError.self) {
            _ = try FormEngine(definitions: [orphan], bindings: [ChannelFormBinding(maximumChannelsPerOwner: 10)])
        }
    }

    @Test("every callback case, with its largest values, fits 64 bytes and decodes back to itself")
    func callbackCodec() {
        for data in CallbackData.largestOfEachCase {
            #expect(data.encoded.utf8.count <= CallbackData.maximumBytes, "\(data.encoded)")
            #expect(CallbackData(data.encoded) == data)
        }
        #expect(
            CallbackData(CallbackData.form(code: "cf", revision: 1234, row: 3, column: 1).encoded)
                == .form(code: "cf", revision: 1234, row: 3, column: 1))
        for garbage in [
            "", "v0:ch:list", "v1:ch:open:abc", "v1:f:CF:1:0:0", "v1:f:cf:1:100:0", "v1:f:cf:zzzzzzzzz:0:0", "v1:ch:open:1:2", "v1:lang:EN",
            String(repeating: "v", count: 65),
        ] {
            #expect(CallbackData(garbage) == nil, "\(garbage)")
        }
    }

    @Test("text, money, whole numbers and user ids are checked exactly")
    func fieldRules() {
        let title = FieldKind.text(minLength: 1, maxLength: 30)
        #expect(FieldInput.parse("  Club  ", as: title) == .success("Club"))
        #expect(FieldInput.parse(String(repeating: "a", count: 30), as: title) == .success(String(repeating: "a", count: 30)))
        #expect(
            FieldInput.parse(String(repeating: "a", count: 31), as: title)
                == .failure(InputRejection("form.error.too_long", ["max": "30", "length": "31"])))
        #expect(FieldInput.parse("   ", as: title) == .failure(InputRejection("form.error.empty")))
        #expect(
            FieldInput.parse("short", as: .text(minLength: 10, maxLength: 256)) == .failure(InputRejection("form.error.too_short", ["min": "10"])))

        let price = FieldKind.money(min: Decimal(string: "0.01")!, max: Decimal(string: "9999.99")!, decimals: 2)
        let accepted = ["0.01": "0.01", "9999.99": "9999.99", "5": "5.00", "12,5": "12.50", "$7.1": "7.10", "3 USD": "3.00"]
        for (input, stored) in accepted {
            #expect(FieldInput.parse(input, as: price) == .success(stored), "\(input)")
        }
        #expect(FieldInput.parse("0", as: price) == .failure(InputRejection("form.error.out_of_range", ["min": "0.01", "max": "9999.99"])))
        #expect(FieldInput.parse("10000", as: price) == .failure(InputRejection("form.error.out_of_range", ["min": "0.01", "max": "9999.99"])))
        #expect(FieldInput.parse("1.999", as: price) == .failure(InputRejection("form.error.too_many_decimals", ["decimals": "2"])))
        for bad in ["abc", "-5", "1e3", "1,000.00", ""] {
            #expect(FieldInput.parse(bad, as: price) == .failure(InputRejection("form.error.not_amount")), "\(bad)")
        }

        let days = FieldKind.integer(min: 1, max: 3650)
        #expect(FieldInput.parse("1", as: days) == .success("1"))
        #expect(FieldInput.parse("3650", as: days) == .success("3650"))
        #expect(FieldInput.parse("0", as: days) == .failure(InputRejection("form.error.out_of_range", ["min": "1", "max": "3650"])))
        #expect(FieldInput.parse("3651", as: days) == .failure(InputRejection("form.error.out_of_range", ["min": "1", "max": "3650"])))
        #expect(FieldInput.parse("1.5", as: days) == .failure(InputRejection("form.error.not_whole_number")))

        #expect(FieldInput.parse("123456789", as: .telegramUser) == .success("123456789"))
        #expect(FieldInput.parse("@anna", as: .telegramUser) == .failure(InputRejection("form.error.not_user_id")))
    }

    @Test("conditions hide fields, and hidden fields are neither required nor saved")
    func conditions() throws {
        let form = try #require(BotHarness.conversations.first { $0.id == "channel_form" })
        var values = ChannelFormBinding.newChannelDefaults
        #expect(!form.isActive("tier1_price", in: values))
        #expect(!form.isActive("payout_threshold", in: values))
        #expect(!form.missingFields(values).map(\.name).contains("tier1_price"))
        values["tier1_enabled"] = "true"
        values["payout_strategy"] = "threshold"
        values["payout_threshold"] = "50.00"
        #expect(
            form.missingFields(values).map(\.name).starts(with: [
                "closed_chat", "open_chat", "closed_title", "open_title", "post_language", "tier1_price", "tier1_days", "payout_network",
            ]))
        values["payout_strategy"] = "instant"
        #expect(form.activeValues(values)["payout_threshold"] == nil)
        #expect(form.dependents(of: "payout_network").map(\.name) == ["payout_currency", "wallet_address"])
    }

    @Test("the transition graph lists every entry, screen, question and action")
    func graph() throws {
        let form = try #require(BotHarness.conversations.first { $0.id == "channel_form" })
        let edges = ConversationGraph.edges(of: form)
        #expect(edges.contains(.init(from: "entry:new", to: "ask:closed_chat", label: "start")))
        #expect(edges.contains(.init(from: "ask:open_chat", to: "screen:main", label: "valid")))
        #expect(edges.contains(.init(from: "ask:tier1_price", to: "ask:tier1_days", label: "valid")))
        #expect(edges.contains(.init(from: "screen:main", to: "action:save", label: "form.button.save")))
        let states = Set(edges.flatMap { [$0.from, $0.to] })
        for screen in form.screenOrder { #expect(states.contains("screen:\(screen)")) }
        #expect(ConversationGraph.dot(form).hasPrefix("digraph channel_form {"))
    }
}
