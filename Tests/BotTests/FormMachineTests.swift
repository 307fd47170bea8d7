import Conversations
import Foundation
import Localization
import TelegramBotAPI
import Testing

@testable import Bot

/// The channel form run as the pure machine: no database, no Telegram. The binding's answers are given
/// by each test, and the questions the machine asks are recorded.
struct FormRun: Sendable {
    static let definition = BotHarness.conversations.first { $0.id == "channel_form" }!
    static let chat: Int64 = 501
    static let user: Int64 = 501

    var language = "en"
    var allowed = true
    var networks = [ChoiceOption(value: "ETH", label: "Ethereum (ETH)"), ChoiceOption(value: "TRX", label: "Tron (TRX)")]
    var currencies: [String: [ChoiceOption]] = [
        "ETH": [ChoiceOption(value: "USDT", label: "USDT"), ChoiceOption(value: "ETH", label: "ETH")],
        "TRX": [ChoiceOption(value: "USDT", label: "USDT")],
    ]
    var validation: InputRejection?
    var check: @Sendable (_ value: String, _ values: [String: String]) -> Result<String, InputRejection> = { value, _ in .success(value) }
    var action: FormActionResult = .stay(notice: nil)

    var machine: FormMachine {
        FormMachine(definition: Self.definition, localizer: BotHarness.localizer, language: language) { role, requestID in
            KeyboardButtonRequestChat(requestId: requestID, chatIsChannel: true, requestTitle: role == "closed")
        }
    }

    /// Runs one step to its end, answering every question the way this run is set up.
    func step(_ stored: FormMachine.Stored?, _ event: FormEvent) -> (transition: FormTransition, asked: [FormQuestion]) {
        var facts = FormFacts()
        var asked: [FormQuestion] = []
        while true {
            switch machine.step(stored, event, facts: facts) {
            case .done(let transition):
                return (transition, asked)
            case .needs(let question):
                #expect(!asked.contains(question), "asked \(question) twice")
                asked.append(question)
                facts.answers[question] = answer(question)
            }
        }
    }

    func answer(_ question: FormQuestion) -> FormFacts.Answer {
        switch question {
        case .allowed: .allowed(allowed)
        case .options("payout_networks", _): .options(networks)
        case .options(_, let filter): .options(currencies[filter ?? ""] ?? [])
        case .validation: .validation(validation)
        case .check(_, let value, let values): .check(check(value, values))
        case .action: .action(action)
        }
    }

    /// A stored conversation at `step` whose menu is message 77 at revision 5.
    static func stored(
        _ step: ConversationState.Step, values: [String: String] = [:], pending: [String] = [], returnScreen: String = "main", expired: Bool = false
    ) -> FormMachine.Stored {
        (
            ConversationState(
                chatID: chat, userID: user, conversation: definition.id, step: step, values: values, pending: pending, returnScreen: returnScreen,
                context: [:], revision: 5, menuMessageID: 77, definitionVersion: definition.version, expiresAt: .distantFuture
            ), expired
        )
    }

    func text(_ key: String, _ arguments: [String: String] = [:]) -> String {
        BotHarness.localizer.text(key, language: language, arguments)
    }

    /// The position of the button labelled `label` on the view the state shows.
    func button(_ label: String, on stored: FormMachine.Stored) -> (row: Int, column: Int)? {
        let view = FormView.draw(stored.state, definition: Self.definition, localizer: BotHarness.localizer, language: language, options: networks) {
            _, id in
            KeyboardButtonRequestChat(requestId: id, chatIsChannel: true)
        }
        for (row, buttons) in view.rows.enumerated() {
            if let column = buttons.firstIndex(where: { $0.label == label }) { return (row, column) }
        }
        return nil
    }

    func press(_ label: String, on stored: FormMachine.Stored) -> (transition: FormTransition, asked: [FormQuestion]) {
        guard let (row, column) = button(label, on: stored) else {
            Issue.record("no button “\(label)”")
            return (FormTransition(), [])
        }
        return step(stored, .press(revision: stored.state.revision, row: row, column: column, message: stored.state.menuMessageID))
    }
}

extension FormTransition {
    var saved: ConversationState? {
        if case .save(let state) = storage { return state }
        return nil
    }

    var menu: FormMenu? {
        for item in output { if case .showMenu(let menu) = item { return menu } }
        return nil
    }
}

@Suite("The form machine: every step's transition, without a database or Telegram")
struct FormMachineTests {
    let run = FormRun()

    // MARK: - Starting

    @Test("starting a new channel asks the private channel first, with the chat picker, as a new message")
    func startNew() {
        let (transition, asked) = run.step(
            nil, .start(entry: "new", chatID: FormRun.chat, userID: FormRun.user, values: ["payout_strategy": "instant"], context: [:]))
        #expect(asked.isEmpty)
        let saved = transition.saved
        #expect(saved?.step == .ask("closed_chat"))
        #expect(saved?.pending == ["open_chat"])
        #expect(saved?.values == ["payout_strategy": "instant"])
        #expect(saved?.revision == 1)
        #expect(saved?.menuMessageID == nil)
        guard case .replyKeyboard(let keyboard)? = transition.menu?.markup else {
            Issue.record("no chat picker")
            return
        }
        let requestID = Int64(FormRun.definition.fieldOrder.firstIndex(of: "closed_chat")! + 1)
        #expect(keyboard.keyboard.first?.first?.requestChat?.requestId == requestID)
        #expect(transition.menu?.editing == nil)
        #expect(transition.menu?.text == run.text("form.channel.prompt.closed_chat", ["current": run.text("form.value.unset")]))
    }

    @Test("starting the edit entry shows the main screen with buttons carrying the form's code and revision 1")
    func startEdit() {
        let (transition, _) = run.step(
            nil, .start(entry: "edit", chatID: FormRun.chat, userID: FormRun.user, values: [:], context: ["channel_id": "9"]))
        #expect(transition.saved?.step == .screen("main"))
        #expect(transition.saved?.context == ["channel_id": "9"])
        guard case .inlineKeyboard(let keyboard)? = transition.menu?.markup, case .callbackData(let data) = keyboard.inlineKeyboard[1][0].action
        else {
            Issue.record("no inline menu")
            return
        }
        #expect(CallbackData(data) == .form(code: FormRun.definition.code, revision: 1, row: 1, column: 0))
        #expect(keyboard.inlineKeyboard[1][0].text == run.text("form.channel.button.tiers"))
    }

    @Test("an unknown entry starts nothing")
    func unknownEntry() {
        let (transition, _) = run.step(nil, .start(entry: "nowhere", chatID: FormRun.chat, userID: FormRun.user, values: [:], context: [:]))
        #expect(transition == FormTransition())
    }

    // MARK: - Checks every press goes through

    @Test("a press with no conversation stored only answers the query as outdated")
    func pressWithoutState() {
        let (transition, asked) = run.step(nil, .press(revision: 1, row: 0, column: 0, message: 77))
        #expect(transition.storage == .keep)
        #expect(transition.output == [.answerCallback(text: run.text("menu.outdated"))])
        #expect(asked.isEmpty)
    }

    @Test("an expired conversation is deleted and the person told, without asking the binding anything")
    func expired() {
        let stored = FormRun.stored(.screen("main"), expired: true)
        for event in [FormEvent.press(revision: 5, row: 0, column: 0, message: 77), .message(text: "hello", chat: nil)] {
            let (transition, asked) = run.step(stored, event)
            #expect(transition.storage == .delete)
            #expect(
                transition.output == [
                    .answerCallback(text: run.text("form.expired_short")), .send(text: run.text("form.expired"), removeKeyboard: true),
                ])
            #expect(asked.isEmpty)
        }
    }

    @Test("a step the binding does not allow deletes the conversation, refuses and logs a warning")
    func notAllowed() {
        var run = run
        run.allowed = false
        let stored = FormRun.stored(.ask("closed_title"), values: ["closed_title": "Old"])
        for event in [FormEvent.press(revision: 5, row: 0, column: 0, message: 77), .message(text: "New", chat: nil)] {
            let (transition, asked) = run.step(stored, event)
            #expect(asked == [.allowed])
            #expect(transition.storage == .delete)
            #expect(
                transition.output == [
                    .answerCallback(text: run.text("channels.not_yours")), .send(text: run.text("channels.not_yours"), removeKeyboard: false),
                ])
            #expect(transition.logs.map(\.level) == [.warning])
        }
    }

    @Test("a press on an older revision, another message or an earlier definition redraws the current menu as a new message")
    func outdatedPress() {
        let stored = FormRun.stored(.screen("main"))
        var older = stored
        older.state.definitionVersion = "old"
        let presses: [(FormMachine.Stored, FormEvent)] = [
            (stored, .press(revision: 4, row: 1, column: 0, message: 77)),
            (stored, .press(revision: 5, row: 1, column: 0, message: 76)),
            (older, .press(revision: 5, row: 1, column: 0, message: 77)),
        ]
        for (stored, event) in presses {
            let (transition, _) = run.step(stored, event)
            #expect(transition.output.first == .answerCallback(text: run.text("menu.outdated")))
            #expect(transition.saved?.step == .screen("main"))
            #expect(transition.saved?.revision == 6)
            #expect(transition.saved?.definitionVersion == FormRun.definition.version)
            #expect(transition.saved?.menuMessageID == nil)
            #expect(transition.menu?.editing == nil)
            #expect(transition.menu?.text.hasPrefix("⚠️ " + run.text("form.menu_outdated") + "\n\n") == true)
            #expect(transition.logs.map(\.message) == ["outdated menu pressed; redrawing the current one"])
        }
    }

    @Test("a press on a button the current view does not have is outdated too")
    func missingButton() {
        let (transition, _) = run.step(FormRun.stored(.screen("main")), .press(revision: 5, row: 40, column: 0, message: 77))
        #expect(transition.output.first == .answerCallback(text: run.text("menu.outdated")))
        #expect(transition.saved?.step == .screen("main"))
        #expect(transition.menu?.editing == nil)
    }

    // MARK: - Buttons

    @Test("a screen button moves to its screen, editing the pressed menu in place")
    func goButton() {
        let stored = FormRun.stored(.screen("main"))
        let (transition, _) = run.press(run.text("form.channel.button.tiers"), on: stored)
        #expect(transition.output.first == .answerCallback(text: nil))
        #expect(transition.saved?.step == .screen("tiers"))
        #expect(transition.saved?.revision == 6)
        #expect(transition.saved?.menuMessageID == 77)
        #expect(transition.menu?.editing == 77)
        #expect(
            transition.menu?.text
                == run.text(
                    "form.channel.screen.tiers",
                    FormView.displayArguments([:], definition: FormRun.definition, localizer: BotHarness.localizer, language: "en")))
    }

    @Test("turning a tier on asks its empty price and days, then comes back; turning it off asks nothing")
    func toggle() {
        let stored = FormRun.stored(.screen("tiers"), values: ["tier1_enabled": "false"])
        let label = run.text("form.channel.button.tier_toggle", ["n": "1", "mark": "❌"])
        let on = run.press(label, on: stored).transition.saved
        #expect(on?.values["tier1_enabled"] == "true")
        #expect(on?.step == .ask("tier1_price"))
        #expect(on?.pending == ["tier1_days"])
        #expect(on?.returnScreen == "tiers")

        let priced = FormRun.stored(.screen("tiers"), values: ["tier1_enabled": "true", "tier1_price": "5.00", "tier1_days": "30"])
        let off = run.press(run.text("form.channel.button.tier_toggle", ["n": "1", "mark": "✅"]), on: priced).transition.saved
        #expect(off?.values["tier1_enabled"] == "false")
        #expect(off?.step == .screen("tiers"))
    }

    @Test("an edit button asks its fields in turn, skipping those hidden by the answers so far")
    func editSkipsHidden() {
        let stored = FormRun.stored(.screen("payout"), values: ["payout_strategy": "instant"])
        let asked = run.press(run.text("form.channel.button.payout_strategy"), on: stored).transition.saved
        #expect(asked?.step == .ask("payout_strategy"))
        #expect(asked?.pending == ["payout_threshold"])

        let answered = run.press(run.text("form.channel.strategy.instant"), on: (asked!, false)).transition.saved
        #expect(answered?.step == .screen("payout"))
        #expect(answered?.pending == [])
    }

    @Test("back leaves the questions and returns to the screen they were asked from")
    func back() {
        let stored = FormRun.stored(.ask("tier1_price"), pending: ["tier1_days"], returnScreen: "tiers")
        let saved = run.press(run.text("form.button.back"), on: stored).transition.saved
        #expect(saved?.step == .screen("tiers"))
        #expect(saved?.pending == [])
    }

    @Test("clear empties an optional field that has a value and moves on")
    func clear() {
        let stored = FormRun.stored(.ask("closed_description"), values: ["closed_description": "About"], returnScreen: "closed_channel")
        let saved = run.press(run.text("form.button.clear"), on: stored).transition.saved
        #expect(saved?.values["closed_description"] == nil)
        #expect(saved?.step == .screen("closed_channel"))
    }

    @Test("choosing another network asks the binding for the catalogues and addresses that depend on it")
    func catalogueRecheck() {
        var run = run
        run.check = { value, values in
            values["payout_network"] == "TRX" ? .failure(InputRejection("form.error.wallet_not_network")) : .success(value.lowercased())
        }
        let values = ["payout_network": "ETH", "payout_currency": "ETH", "wallet_address": "0xABC"]
        let stored = FormRun.stored(.ask("payout_network"), values: values, pending: ["payout_currency"], returnScreen: "payout")
        let (transition, asked) = run.press("Tron (TRX)", on: stored)
        let saved = transition.saved
        #expect(saved?.values["payout_network"] == "TRX")
        #expect(saved?.values["payout_currency"] == nil)
        #expect(saved?.values["wallet_address"] == nil)
        #expect(saved?.step == .ask("payout_currency"))
        #expect(asked.contains(.options(catalogue: "payout_currencies", filter: "TRX")))
        #expect(asked.contains(.check(field: "wallet_address", value: "0xABC", values: ["payout_network": "TRX", "wallet_address": "0xABC"])))
        guard case .inlineKeyboard(let keyboard)? = transition.menu?.markup else {
            Issue.record("no inline menu")
            return
        }
        #expect(keyboard.inlineKeyboard.map { $0.map(\.text) } == [["USDT"], [run.text("form.button.back")]])

        let kept = run.press(
            "Ethereum (ETH)",
            on: FormRun.stored(
                .ask("payout_network"), values: ["payout_network": "TRX", "payout_currency": "USDT", "wallet_address": "0xABC"],
                returnScreen: "payout"))
        #expect(kept.transition.saved?.values["payout_currency"] == "USDT")
        #expect(kept.transition.saved?.values["wallet_address"] == "0xabc")
    }

    @Test("an action that stays shows its notice over the same screen; one that finishes deletes the form and replaces the menu")
    func actions() {
        var run = run
        let stored = FormRun.stored(.screen("main"))
        run.action = .stay(notice: InputRejection("channels.error.no_tier"))
        let (stayed, asked) = run.press(run.text("form.button.save"), on: stored)
        #expect(asked == [.allowed, .action("save")])
        #expect(stayed.saved?.step == .screen("main"))
        #expect(stayed.menu?.editing == 77)
        #expect(stayed.menu?.text.hasPrefix("⚠️ " + run.text("channels.error.no_tier")) == true)

        run.action = .show("payout")
        #expect(run.press(run.text("form.button.save"), on: stored).transition.saved?.step == .screen("payout"))

        run.action = .finish(text: "Saved.")
        let finished = run.press(run.text("form.button.save"), on: stored).transition
        #expect(finished.storage == .delete)
        #expect(finished.output == [.answerCallback(text: nil), .replaceMenu(messageID: 77, text: "Saved.")])
    }

    // MARK: - Answers

    @Test("a typed answer is stored in canonical form and the next question is sent as a new message")
    func typedAnswer() {
        let stored = FormRun.stored(.ask("tier1_price"), values: ["tier1_enabled": "true"], pending: ["tier1_days"], returnScreen: "tiers")
        let (transition, asked) = run.step(stored, .message(text: " 9,9 ", chat: nil))
        #expect(asked == [.allowed])
        #expect(transition.saved?.values["tier1_price"] == "9.90")
        #expect(transition.saved?.step == .ask("tier1_days"))
        #expect(transition.saved?.menuMessageID == nil)
        #expect(transition.menu?.editing == nil)
        #expect(transition.output.count == 1)
    }

    @Test("a refused answer keeps the question, shows why above it and logs the refusal")
    func refusedAnswer() {
        let stored = FormRun.stored(.ask("tier1_days"), values: ["tier1_enabled": "true"], returnScreen: "tiers")
        let (transition, _) = run.step(stored, .message(text: "forever", chat: nil))
        #expect(transition.saved?.step == .ask("tier1_days"))
        #expect(transition.saved?.values["tier1_days"] == nil)
        #expect(transition.menu?.text.hasPrefix("⚠️ " + run.text("form.error.not_whole_number")) == true)
        #expect(transition.logs.map(\.metadata["reason"]) == ["form.error.not_whole_number"])
    }

    @Test("a named validator is asked of the binding after the kind's own rules, and its refusal shown")
    func validator() {
        var run = run
        run.validation = InputRejection("channels.error.recipient_unreachable", ["id": "123456"])
        let stored = FormRun.stored(.ask("notification_recipient"), values: ["notifications_enabled": "true"], returnScreen: "notifications")
        let (refused, asked) = run.step(stored, .message(text: "123456", chat: nil))
        #expect(asked == [.allowed, .validation(validator: "reachable_user", value: "123456")])
        #expect(refused.saved?.values["notification_recipient"] == nil)
        #expect(refused.logs.map(\.metadata["validator"]) == ["reachable_user"])

        run.validation = nil
        #expect(run.step(stored, .message(text: "123456", chat: nil)).transition.saved?.values["notification_recipient"] == "123456")
    }

    @Test("a wallet address is the binding's to check; the engine stores what it returns")
    func wallet() {
        var run = run
        run.check = { value, _ in value == "good" ? .success("GOOD") : .failure(InputRejection("form.error.wallet_checksum")) }
        let stored = FormRun.stored(.ask("wallet_address"), values: ["payout_network": "ETH"], returnScreen: "payout")
        let (accepted, asked) = run.step(stored, .message(text: "good", chat: nil))
        #expect(asked.last == .check(field: "wallet_address", value: "good", values: ["payout_network": "ETH"]))
        #expect(accepted.saved?.values["wallet_address"] == "GOOD")
        let refused = run.step(stored, .message(text: "bad", chat: nil)).transition
        #expect(refused.saved?.values["wallet_address"] == nil)
        #expect(refused.menu?.text.hasPrefix("⚠️ " + run.text("form.error.wallet_checksum")) == true)
    }

    @Test("an accepted channel is stored with its title, said with the picker removed, and the next question asked")
    func chosenChat() {
        let stored = FormRun.stored(.ask("closed_chat"), pending: ["open_chat"])
        let chosen = ChatChoice(field: "closed_chat", result: .success(ChosenChat(chatID: -100123, title: " VIP Club ")))
        let (transition, _) = run.step(stored, .message(text: nil, chat: chosen))
        #expect(transition.saved?.values["closed_chat"] == "-100123")
        #expect(transition.saved?.values["closed_title"] == "VIP Club")
        #expect(transition.saved?.step == .ask("open_chat"))
        #expect(transition.output.first == .send(text: run.text("form.chat_accepted", ["title": " VIP Club "]), removeKeyboard: true))
        #expect(transition.output.count == 2)
    }

    @Test("a channel title longer than its field is cut to fit, and the person told")
    func longTitle() {
        let title = String(repeating: "Я", count: 40)
        let stored = FormRun.stored(.ask("closed_chat"))
        let (transition, _) = run.step(
            stored, .message(text: nil, chat: ChatChoice(field: "closed_chat", result: .success(ChosenChat(chatID: -1, title: title)))))
        let fitting = String(repeating: "Я", count: 30)
        #expect(transition.saved?.values["closed_title"] == fitting)
        #expect(
            transition.output.first
                == .send(
                    text: run.text("form.chat_accepted", ["title": title]) + "\n"
                        + run.text("form.chat_title_shortened", ["title": fitting, "max": "30"]),
                    removeKeyboard: true
                ))
    }

    @Test("a refused channel, or none resolved for the field being asked, keeps the question with the reason")
    func refusedChat() {
        let stored = FormRun.stored(.ask("closed_chat"))
        let cases: [(ChatChoice?, String)] = [
            (ChatChoice(field: "closed_chat", result: .failure(InputRejection("channels.error.chat_taken"))), "channels.error.chat_taken"),
            (ChatChoice(field: "open_chat", result: .success(ChosenChat(chatID: -1, title: "x"))), "form.error.chat_expected"),
            (nil, "form.error.chat_expected"),
        ]
        for (chat, key) in cases {
            let (transition, _) = run.step(stored, .message(text: "@someone", chat: chat))
            #expect(transition.saved?.step == .ask("closed_chat"))
            #expect(transition.saved?.values["closed_chat"] == nil)
            #expect(transition.menu?.text.hasPrefix("⚠️ " + run.text(key)) == true)
            #expect(transition.output.count == 1)
        }
    }

    @Test("text while a screen or a button question is shown asks for the buttons")
    func useButtons() {
        for stored in [FormRun.stored(.screen("main")), FormRun.stored(.ask("post_language"))] {
            let (transition, _) = run.step(stored, .message(text: "hello", chat: nil))
            #expect(transition.menu?.text.hasPrefix("⚠️ " + run.text("form.use_buttons")) == true)
            #expect(transition.saved?.values == stored.state.values)
            #expect(transition.saved?.step == stored.state.step)
        }
    }

    @Test("a state saved at a screen the definition no longer has is drawn at the first entry's screen")
    func vanishedScreen() {
        let (transition, _) = run.step(FormRun.stored(.screen("gone")), .message(text: "hello", chat: nil))
        #expect(transition.saved?.step == .screen("main"))
    }

    @Test("the machine answers in the person's language")
    func language() {
        var run = run
        run.language = "ru"
        let (transition, _) = run.step(nil, .press(revision: 1, row: 0, column: 0, message: 77))
        #expect(transition.output == [.answerCallback(text: BotHarness.localizer.text("menu.outdated", language: "ru"))])
    }
}

@Suite("The form view: a state drawn as text and buttons")
struct FormViewTests {
    let definition = FormRun.definition
    let localizer = BotHarness.localizer

    func draw(_ step: ConversationState.Step, values: [String: String] = [:], options: [ChoiceOption] = []) -> FormView {
        FormView.draw(FormRun.stored(step, values: values).state, definition: definition, localizer: localizer, language: "en", options: options) {
            role, id in
            KeyboardButtonRequestChat(requestId: id, chatIsChannel: true, requestTitle: role == "open")
        }
    }

    func en(_ key: String, _ arguments: [String: String] = [:]) -> String { localizer.text(key, language: "en", arguments) }

    @Test("buttons whose condition does not hold are left out, and toggles show their mark")
    func conditions() {
        let off = draw(.screen("tiers"), values: ["tier1_enabled": "false"])
        #expect(off.rows[0].map(\.label) == [en("form.channel.button.tier_toggle", ["n": "1", "mark": "❌"])])
        let on = draw(.screen("tiers"), values: ["tier1_enabled": "true"])
        #expect(
            on.rows[0].map(\.label) == [
                en("form.channel.button.tier_toggle", ["n": "1", "mark": "✅"]), en("form.channel.button.tier_edit", ["n": "1"]),
            ])
    }

    @Test("fixed choices come two to a row, catalogue options three, each followed by back")
    func choices() {
        let strategy = draw(.ask("payout_strategy"))
        #expect(strategy.rows.map { $0.map(\.target) } == [[.option("instant"), .option("threshold")], [.back]])
        let options = (1...4).map { ChoiceOption(value: "N\($0)", label: "Network \($0)") }
        let networks = draw(.ask("payout_network"), options: options)
        #expect(networks.rows.map { $0.map(\.label) } == [["Network 1", "Network 2", "Network 3"], ["Network 4"], [en("form.button.back")]])
    }

    @Test("an optional typed field offers clear only when it has a value")
    func clear() {
        #expect(draw(.ask("closed_description")).rows.map { $0.map(\.target) } == [[.back]])
        #expect(draw(.ask("closed_description"), values: ["closed_description": "x"]).rows.map { $0.map(\.target) } == [[.back, .clear]])
    }

    @Test("a chat field is asked with the binding's picker on a reply keyboard, numbered by the field's place")
    func chatPicker() {
        let view = draw(.ask("open_chat"))
        #expect(view.rows.isEmpty)
        let button = view.replyKeyboard?.keyboard.first?.first
        #expect(button?.text == en("form.button.pick_channel"))
        #expect(
            button?.requestChat
                == KeyboardButtonRequestChat(
                    requestId: Int64(definition.fieldOrder.firstIndex(of: "open_chat")! + 1), chatIsChannel: true, requestTitle: true))
        #expect(view.message(notice: nil, code: "cf", revision: 3).markup == .replyKeyboard(view.replyKeyboard!))
    }

    @Test("values are shown formatted: unset, dollars, counted units, option labels and marks")
    func displayArguments() {
        let arguments = FormView.displayArguments(
            ["tier1_price": "9.90", "tier1_days": "30", "post_language": "ru", "notifications_enabled": "true"],
            definition: definition, localizer: localizer, language: "en"
        )
        #expect(arguments["tier1_price"] == en("form.value.usd", ["amount": "9.90"]))
        #expect(arguments["tier1_days"] == localizer.text("days.count", language: "en", count: 30))
        #expect(arguments["post_language"] == en("form.channel.language.ru"))
        #expect(arguments["notifications_enabled"] == "✅")
        #expect(arguments["tier2_enabled"] == "❌")
        #expect(arguments["closed_title"] == en("form.value.unset"))
    }

    @Test("the message puts a notice above the text and numbers each button's callback by row and column")
    func message() {
        let view = draw(.screen("main"))
        let message = view.message(notice: "Careful", code: "cf", revision: 9)
        #expect(message.text == "⚠️ Careful\n\n" + view.text)
        guard case .inlineKeyboard(let keyboard) = message.markup else {
            Issue.record("no inline keyboard")
            return
        }
        for (row, buttons) in keyboard.inlineKeyboard.enumerated() {
            for (column, button) in buttons.enumerated() {
                #expect(button.action == .callbackData(CallbackData.form(code: "cf", revision: 9, row: row, column: column).encoded))
            }
        }
    }
}
