import Bot
import Conversations
import Foundation
import Localization
import Logging
import Metrics
import Storage
import TelegramBotAPI

/// Answers every call with a canned successful `sendMessage` result and counts the calls.
final class CountingTransport: TelegramTransport {
    private let calls = Counter()
    private let reply: [UInt8]

    init() {
        let message = #"{"ok":true,"result":{"message_id":1,"date":1764150000,"chat":{"id":1,"type":"private"},"text":"ok"}}"#
        reply = Array(message.utf8)
    }

    var count: Int { calls.value }

    func post(method: String, body: [UInt8], timeout: Duration) async throws(TelegramError) -> TelegramHTTPResponse {
        calls.increment()
        return TelegramHTTPResponse(status: 200, body: reply)
    }

    func upload(method: String, body: MultipartUpload, timeout: Duration) async throws(TelegramError) -> TelegramHTTPResponse {
        calls.increment()
        return TelegramHTTPResponse(status: 200, body: reply)
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var total = 0
        func increment() { lock.withLock { total += 1 } }
        var value: Int { lock.withLock { total } }
    }
}

/// Updates through the whole pipeline: JSON decode → dispatcher (per-user order, user upsert, language) →
/// the conversation engine running a one-question form → replies through the client into a counting
/// transport. A person's first message starts the form (a locked step that saves the state and sends the
/// question); every later one is a typed step on it: the unlocked look-up, the locked load and save,
/// the commit, then the menu sent and its message id written. Fed in batches of 100, as getUpdates
/// delivers them.
struct UpdatesBenchmark {
    var updates: Int
    var users: Int
    var concurrency: Int

    /// One text field, then a screen: a person's second message answers it, later ones are typed on the
    /// screen and get it redrawn with "use the buttons" — each a full step of the engine.
    static let form = """
        id: bench_note
        code: bn
        entries:
          start:
            ask: [note]
            screen: main
        fields:
          note:
            kind: text
            max_length: 30
            label: form.channel.field.open_title
            prompt: form.channel.prompt.title
        screens:
          main:
            text: form.channel.screen.closed_channel
            rows:
              - [{edit: note, label: form.channel.button.edit_title}]
              - [{action: save, label: form.button.save}]
        """

    func run(database: Database, localizer: Localizer, logger: Logger) async throws -> String {
        let transport = CountingTransport()
        let client = TelegramClient(transport: transport, limiter: nil, retry: .none, logger: logger)
        let definition = try ConversationLoader.parse(
            Self.form, file: "bench_note.yaml", knownKeys: Set(localizer.catalogs[Localizer.fallbackLanguage]?.keys ?? [:].keys))
        let engine = try FormEngine(definitions: [definition], bindings: [NoteFormBinding()])
        var router = BotRouter()
        engine.register(into: &router)
        router.onText { context in
            try await engine.start(NoteFormBinding.conversation, entry: "start", context: context)
        }
        let services = BotServices(client: client, database: database, localizer: localizer, logger: logger)
        let dispatcher = Dispatcher(router: router, services: services, maxConcurrency: concurrency)

        let payloads: [Data] = (0..<updates).map { index in
            let user = 10_000 + index % users
            return Data(
                #"{"update_id":\#(index + 1),"message":{"message_id":\#(index + 1),"date":1764150000,"chat":{"id":\#(user),"type":"private","first_name":"U"},"from":{"id":\#(user),"is_bot":false,"first_name":"User \#(user)","language_code":"en"},"text":"step"}}"#
                    .utf8)
        }
        var latencies: [Duration] = []
        latencies.reserveCapacity(updates)
        let started = ContinuousClock.now
        for batchStart in stride(from: 0, to: updates, by: 100) {
            let batchBegan = ContinuousClock.now
            let decoder = JSONDecoder()
            let batch = payloads[batchStart..<min(batchStart + 100, updates)].compactMap { try? decoder.decode(Update.self, from: $0) }
            for finished in await dispatcher.dispatch(batch) { latencies.append(finished - batchBegan) }
        }
        let elapsed = ContinuousClock.now - started
        latencies.sort()
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        func percentile(_ p: Double) -> String {
            let value = latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
            return String(format: "%.1f ms", Double(value.components.attoseconds) / 1e15 + Double(value.components.seconds) * 1000)
        }
        return String(
            format: "updates: %d updates from %d users in %.2f s = %.0f updates/s; latency p50 %@, p99 %@ (replies sent: %d)",
            updates, users, seconds, Double(updates) / seconds, percentile(0.5), percentile(0.99), transport.count
        )
    }
}

/// The code behind the benchmark's form: anyone may use it; it has no catalogues, chats or checks.
struct NoteFormBinding: ConversationBinding {
    static let conversation = "bench_note"
    var conversationID: String { Self.conversation }
    var actions: Set<String> { ["save"] }
    var validators: Set<String> { [] }

    func isAllowed(_ state: ConversationState, session: FormSession) async throws -> Bool { true }
    func options(catalogue: String, filter: String?, session: FormSession) async throws -> [ChoiceOption] { [] }
    func check(_ field: FieldDefinition, value: String, values: [String: String], session: FormSession) async throws -> Result<String, InputRejection>
    {
        .success(value)
    }
    func chatRequest(role: String, requestID: Int64) -> KeyboardButtonRequestChat {
        KeyboardButtonRequestChat(requestId: requestID, chatIsChannel: true)
    }
    func resolveChat(_ message: Message, role: String, state: ConversationState, context: UpdateContext) async throws -> Result<
        ChosenChat, InputRejection
    > {
        .failure(InputRejection("form.error.chat_expected"))
    }
    func perform(_ action: String, state: ConversationState, session: FormSession) async throws -> FormActionResult {
        .finish(text: "")
    }
    func validate(_ validator: String, value: String, state: ConversationState, session: FormSession) async throws -> InputRejection? { nil }
}
