import App
import Foundation
import HTTPTypes
import Hummingbird
import Jobs
import Logging
import NIOCore
import NOWPaymentsFake
import OperatorCommands
import Payouts
import Storage
import Subscriptions
import TelegramBotAPI
import TelegramFake

/// The sandbox's web page and the JSON it reads and posts, on TelePay's own HTTP server under `/sandbox`.
struct SandboxRoutes: Sendable {
    let world: SandboxWorldState
    let page: SandboxPage
    let database: Database
    let queue: JobQueue
    let logger: Logger

    func add(to router: Router<TelePayRequestContext>) {
        let page = self.page
        router.get("/sandbox") { _, _ in Self.text(page.html, type: "text/html; charset=utf-8") }
        router.get("/sandbox/app.js") { _, _ in Self.text(page.script, type: "text/javascript; charset=utf-8") }
        router.get("/sandbox/app.css") { _, _ in Self.text(page.style, type: "text/css; charset=utf-8") }
        router.get("/sandbox/strings.json") { _, _ in try Self.json(page.strings) }
        router.get("/sandbox/api/state") { request, _ in
            guard let persona = request.uri.queryParameters.get("persona").flatMap(Int64.init) else {
                return Self.failure(.badRequest, "persona must be a user id")
            }
            guard await world.bot.users[persona] != nil else { return Self.failure(.notFound, "no persona \(persona)") }
            return try Self.json(await state(for: persona))
        }
        router.post("/sandbox/api/act") { request, _ in
            let action: ActionRequest
            do {
                action = try JSONDecoder().decode(ActionRequest.self, from: Data(try await request.body.collect(upTo: 64 * 1024).readableBytesView))
            } catch {
                return Self.failure(.badRequest, "the action is not valid JSON of the expected shape: \(error)")
            }
            do {
                return try Self.json(try await act(action))
            } catch let error as SandboxActionError {
                return Self.failure(.unprocessableContent, error.description)
            } catch let error as FakeError {
                return Self.failure(.unprocessableContent, "Telegram says no: \(error)")
            }
        }
        router.get("/sandbox/api/invoice") { request, _ in
            guard let id = request.uri.queryParameters.get("id"), let invoice = await world.payments.invoices[id] else {
                return Self.failure(.notFound, "no such invoice")
            }
            return try Self.json(await checkoutView(invoice))
        }
        router.post("/sandbox/api/checkout") { request, _ in
            let checkout: CheckoutRequest
            do {
                checkout = try JSONDecoder().decode(
                    CheckoutRequest.self, from: Data(try await request.body.collect(upTo: 64 * 1024).readableBytesView))
            } catch {
                return Self.failure(.badRequest, "the checkout request is not valid JSON of the expected shape: \(error)")
            }
            do {
                return try Self.json(try await Checkout(world: world).perform(checkout))
            } catch let error as SandboxActionError {
                return Self.failure(.unprocessableContent, error.description)
            }
        }
        router.get("/sandbox/api/operator") { _, _ in try Self.json(try await operatorView()) }
        router.get("/sandbox/api/events") { _, _ in
            let world = self.world
            var headers = HTTPFields()
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            // Each stream ends cleanly after 20 s, within the server's request deadline (30 s), which would
            // otherwise cut it; the browser reconnects after `retry` ms and the page refreshes on the first event.
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "retry: 300\n\n"))
                    var last: Int?
                    let end = ContinuousClock.now + .seconds(20)
                    while !Task.isCancelled, ContinuousClock.now < end {
                        let version = await Self.version(of: world)
                        if version != last {
                            last = version
                            try await writer.write(ByteBuffer(string: "data: \(version)\n\n"))
                        }
                        try await Task.sleep(for: .milliseconds(200))
                    }
                    try await writer.finish(nil)
                })
        }
    }

    // MARK: - State

    /// A fingerprint of everything the page shows; it changes whenever something on the page would.
    static func version(of world: SandboxWorldState) async -> Int {
        var hasher = Hasher()
        hasher.combine(await world.bot.messages)
        hasher.combine(await world.bot.members)
        hasher.combine(await world.bot.pendingJoinRequests)
        hasher.combine(await world.bot.answeredCallbacks.count)
        hasher.combine(await world.transcript.version)
        hasher.combine(world.clock.advancedBy)
        hasher.combine(await world.payments.payments)
        return hasher.finalize()
    }

    func state(for persona: Int64) async throws -> StateView {
        let bot = world.bot
        let users = await bot.users
        let chats = await bot.chats
        let members = await bot.members
        let personas = (SandboxWorld.personas + (await world.transcript.addedPersonas)).map {
            PersonaView(id: $0.id, name: $0.name, role: $0.role.rawValue, language: $0.language)
        }
        // The bot chat: the bot's messages, with what the persona wrote placed after the message it answered.
        let sent = await bot.sentMessages(to: persona)
        var items: [(key: (Int64, Int, Int), view: MessageView)] = sent.filter { !$0.deleted }.map {
            ((($0.messageID, 0, 0)), Self.messageView($0))
        }
        for entry in await world.transcript.entries(of: persona) {
            items.append(
                (
                    (entry.afterMessageID, 1, entry.sequence),
                    MessageView(id: -Int64(entry.sequence) - 1, fromBot: false, text: entry.text, html: false, buttons: [])
                ))
        }
        items.sort { $0.key < $1.key }
        var replyKeyboard: [[ReplyButtonView]]?
        if let markup = sent.last(where: { !$0.deleted && $0.replyMarkup != nil })?.replyMarkup, case .replyKeyboard(let keyboard) = markup {
            replyKeyboard = keyboard.keyboard.map { row in
                row.map { button in
                    ReplyButtonView(
                        text: button.text,
                        requestChat: button.requestChat.map { request in
                            Self.pickable(request, persona: persona, chats: chats, members: members)
                        })
                }
            }
        }
        var channels: [ChannelView] = []
        for (id, chat) in chats.sorted(by: { $0.key > $1.key }) where chat.type == "channel" {
            let status = Self.status(members[id]?[persona])
            let isMember = ["creator", "administrator", "member", "restricted"].contains(status)
            guard isMember || chat.username != nil || status == "kicked" else { continue }
            let manages = status == "creator" || status == "administrator"
            let roster = (members[id] ?? [:]).sorted { $0.key < $1.key }.map { userID, member in
                MemberView(
                    id: userID, name: userID == bot.bot.id ? "\(bot.bot.firstName) (bot)" : users[userID]?.firstName ?? "\(userID)",
                    status: Self.status(member))
            }
            // Requests filed through the page, with their outcome; then any other pending ones.
            let pending = await bot.pendingJoinRequests[id] ?? []
            let filed = await world.transcript.joinRequests[id] ?? []
            var requests = filed.map { userID in
                let outcome =
                    pending.contains(userID)
                    ? "pending"
                    : ["member", "restricted"].contains(Self.status(members[id]?[userID])) ? "approved" : "declined"
                return MemberView(id: userID, name: users[userID]?.firstName ?? "\(userID)", status: outcome)
            }
            requests += pending.subtracting(filed).sorted().map { MemberView(id: $0, name: users[$0]?.firstName ?? "\($0)", status: "pending") }
            channels.append(
                ChannelView(
                    id: id, title: chat.title ?? "", username: chat.username, membership: status,
                    posts: await bot.sentMessages(to: id).filter { !$0.deleted }.map(Self.messageView),
                    members: manages ? roster.filter { $0.status != "left" } : [],
                    joinRequests: manages ? requests : (requests.contains { $0.id == persona } ? requests.filter { $0.id == persona } : [])
                ))
        }
        let toasts = await bot.answeredCallbacks.compactMap { id, text in text.map { ToastView(id: id, text: $0) } }
        return StateView(
            persona: persona, personas: personas, botName: bot.bot.firstName, botUsername: bot.bot.username ?? "",
            messages: items.map(\.view), replyKeyboard: replyKeyboard, channels: channels, toasts: toasts,
            clock: ClockView(now: world.clock.now().formatted(.iso8601), advancedHours: world.clock.advancedBy / 3600)
        )
    }

    static func messageView(_ message: FakeBotAPI.SentMessage) -> MessageView {
        MessageView(
            id: message.messageID, fromBot: true, text: message.text, html: message.parseMode?.lowercased() == "html",
            buttons: (message.keyboard?.inlineKeyboard ?? []).map { row in
                row.map { button in
                    switch button.action {
                    case .callbackData(let data): ButtonView(text: button.text, kind: "callback", value: data)
                    case .url(let url): ButtonView(text: button.text, kind: "url", value: url)
                    default: ButtonView(text: button.text, kind: "unsupported", value: "")
                    }
                }
            }
        )
    }

    /// The persona's channels the chat picker offers for `request`: of the asked kind, with or without a public
    /// username as asked, where the persona holds the asked rights (Telegram checks them again on the pick).
    static func pickable(_ request: KeyboardButtonRequestChat, persona: Int64, chats: [Int64: Chat], members: [Int64: [Int64: ChatMember]])
        -> PickerView
    {
        let candidates = chats.sorted { $0.key > $1.key }.compactMap { id, chat -> PickerChat? in
            guard chat.type == (request.chatIsChannel ? "channel" : "supergroup") else { return nil }
            if let wantsUsername = request.chatHasUsername, wantsUsername != (chat.username != nil) { return nil }
            let status = status(members[id]?[persona])
            if request.userAdministratorRights != nil, !["creator", "administrator"].contains(status) { return nil }
            return PickerChat(id: id, title: chat.title ?? "\(id)", isPublic: chat.username != nil)
        }
        return PickerView(isChannel: request.chatIsChannel, chats: candidates)
    }

    static func status(_ member: ChatMember?) -> String {
        switch member {
        case .owner: "creator"
        case .administrator: "administrator"
        case .member: "member"
        case .restricted(let restricted): restricted.isMember ? "restricted" : "left"
        case .left, nil: "left"
        case .banned: "kicked"
        }
    }

    // MARK: - Actions

    func act(_ action: ActionRequest) async throws -> ActionResult {
        let bot = world.bot
        if action.action == "addUser" {
            let name = (action.name ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard (1...32).contains(name.count) else { throw SandboxActionError.invalid("a new user needs a name of 1 to 32 characters") }
            let language = action.language ?? "en"
            guard ["en", "ru"].contains(language) else { throw SandboxActionError.invalid("language must be en or ru") }
            let id = 1100 + Int64(await world.transcript.addedPersonas.count)
            await bot.addUser(id: id, firstName: name, username: nil, languageCode: language)
            await world.transcript.add(Persona(id: id, name: name, role: .subscriber, language: language))
            return ActionResult(persona: id)
        }
        if action.action == "advanceClock" {
            guard let hours = action.hours, hours > 0, hours <= 24 * 400 else {
                throw SandboxActionError.invalid("advance the clock by 1 hour to 400 days")
            }
            world.clock.advance(by: TimeInterval(hours) * 3600)
            return ActionResult()
        }
        guard let persona = action.persona, await bot.users[persona] != nil else { throw SandboxActionError.invalid("no such persona") }
        let newest = await bot.sentMessages(to: persona).last?.messageID ?? 0
        switch action.action {
        case "send":
            let text = (action.text ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { throw SandboxActionError.invalid("type something first") }
            guard text.utf16.count <= 4096 else { throw SandboxActionError.invalid("a message holds at most 4096 characters") }
            await world.transcript.record(persona: persona, after: newest, text)
            await bot.userSendsText(persona, text)
            return ActionResult()
        case "press":
            guard let messageID = action.messageID, let data = action.data else { throw SandboxActionError.invalid("press needs messageID and data") }
            await bot.userSendsCallback(persona, data: data, onMessage: messageID)
            return ActionResult()
        case "shareChat":
            guard let chat = action.chat else { throw SandboxActionError.invalid("pick a chat") }
            try await bot.userSharesChat(persona, chat: chat)
            await world.transcript.record(persona: persona, after: newest, "📢 shared “\(await bot.chats[chat]?.title ?? "\(chat)")”")
            return ActionResult()
        case "openURL":
            guard let url = action.url else { throw SandboxActionError.invalid("openURL needs a url") }
            return try await open(url, as: persona, after: newest)
        case "leave":
            guard let chat = action.chat else { throw SandboxActionError.invalid("leave needs a chat") }
            await bot.userLeaves(persona, chat: chat)
            return ActionResult()
        default:
            throw SandboxActionError.invalid("unknown action \(action.action)")
        }
    }

    /// What opening a link does in the sandbox: a `t.me/<bot>?start=` link starts the bot with its payload, an
    /// invoice link opens the checkout page, an invite link joins the channel (or files a join request);
    /// anything else would leave the sandbox, so it is only shown.
    func open(_ url: String, as persona: Int64, after newest: Int64) async throws -> ActionResult {
        let bot = world.bot
        if let invite = await bot.inviteLinks[url] {
            try await bot.userOpensInviteLink(persona, url)
            if await bot.pendingJoinRequests[invite.chatID]?.contains(persona) == true {
                await world.transcript.recordJoinRequest(chat: invite.chatID, persona: persona)
                return ActionResult(opened: "joinRequest")
            }
            return ActionResult(opened: "invite")
        }
        if let components = URLComponents(string: url), let host = components.host {
            let username = bot.bot.username ?? ""
            if host == "t.me", components.path.lowercased() == "/\(username.lowercased())" {
                let payload = components.queryItems?.first { $0.name == "start" }?.value
                let text = payload.map { "/start \($0)" } ?? "/start"
                await world.transcript.record(persona: persona, after: newest, text)
                await bot.userSendsText(persona, text)
                return ActionResult(opened: "bot")
            }
            if host.hasSuffix("nowpayments.io"), let invoice = components.queryItems?.first(where: { $0.name == "iid" })?.value {
                guard await world.payments.invoices[invoice] != nil else { throw SandboxActionError.invalid("no such invoice") }
                return ActionResult(opened: "checkout", invoice: invoice)
            }
        }
        return ActionResult(opened: "outside")
    }

    // MARK: - Checkout and operator

    func checkoutView(_ invoice: FakeNOWPayments.Invoice) async -> CheckoutView {
        let payments = await world.payments.payments.values.filter { $0.invoiceID == invoice.id }.sorted { $0.id < $1.id }
        return CheckoutView(
            id: invoice.id, orderID: invoice.orderID ?? "", description: invoice.orderDescription ?? "",
            price: invoice.priceAmount, currency: invoice.priceCurrency.uppercased(),
            coins: Checkout.coins.map { coin in CoinView(code: coin, amount: Checkout.amount(invoice.priceAmount, in: coin).map { "\($0)" } ?? "") },
            payments: payments.map {
                PaymentView(id: $0.id, status: $0.status, coin: $0.payCurrency, payAmount: "\($0.payAmount)", actuallyPaid: "\($0.actuallyPaid)")
            }
        )
    }

    func operatorView() async throws -> OperatorView {
        let logger = self.logger
        let ledger = try await database.withConnection { try await LedgerStore.summary(heldLimit: 20, on: $0, logger: logger) }
        let jobs = try await queue.summary(recentFailures: 5)
        // Balances are read per persona: `PayoutDesk.balances(ownerUserID: nil)` fails on PostgreSQL today
        // ("could not determine data type of parameter $1").
        let desk = PayoutDesk(database: database, logger: logger)
        var balances: [OwnerPayoutBalance] = []
        for persona in SandboxWorld.personas + (await world.transcript.addedPersonas) {
            balances += try await desk.balances(ownerUserID: persona.id, limit: 20)
        }
        let payouts = PayoutOverview(
            open: try await desk.payouts(in: PayoutState.open, limit: 20), failed: try await desk.payouts(in: [.failed], limit: 20),
            paid: try await desk.payouts(in: [.paid], limit: 20), balances: balances
        )
        return OperatorView(
            ledger: LedgerReport.render(ledger), balanced: Self.balanced(ledger), jobs: JobsReport.render(jobs),
            payouts: PayoutReport.render(payouts),
            wallet: await walletView()
        )
    }

    func walletView() async -> String {
        switch world.chain {
        case .success(let chain):
            return await chain.describeBalances() + ". Owners paid in ETH on Ethereum are paid from it (payouts run every 15 s); "
                + "other coins need ChangeNOW, which the sandbox does not simulate yet."
        case .failure(let why):
            return why.description
        }
    }

    /// Whether every asset's balances sum to zero, as double entry demands.
    static func balanced(_ summary: LedgerSummary) -> Bool {
        Dictionary(grouping: summary.balances, by: \.asset).values.allSatisfy { $0.reduce(Decimal(0)) { $0 + $1.amount } == 0 }
    }

    // MARK: - Responses

    static func text(_ body: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    static func failure(_ status: HTTPResponse.Status, _ message: String) -> Response {
        struct Failure: Encodable { var error: String }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let body = (try? JSONEncoder().encode(Failure(error: message))) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// A sandbox action the page asked for that cannot be done, in words the page shows.
enum SandboxActionError: Error, CustomStringConvertible {
    case invalid(String)

    var description: String {
        switch self {
        case .invalid(let reason): reason
        }
    }
}

struct ActionRequest: Decodable, Sendable {
    var action: String
    var persona: Int64?
    var text: String?
    var messageID: Int64?
    var data: String?
    var chat: Int64?
    var url: String?
    var name: String?
    var language: String?
    var hours: Int?
}

struct ActionResult: Encodable, Sendable {
    var ok = true
    var persona: Int64?
    var opened: String?
    var invoice: String?
}

struct PersonaView: Encodable, Sendable { var id: Int64; var name: String; var role: String; var language: String }
struct ButtonView: Encodable, Sendable { var text: String; var kind: String; var value: String }
struct MessageView: Encodable, Sendable { var id: Int64; var fromBot: Bool; var text: String; var html: Bool; var buttons: [[ButtonView]] }
struct PickerChat: Encodable, Sendable { var id: Int64; var title: String; var isPublic: Bool }
struct PickerView: Encodable, Sendable { var isChannel: Bool; var chats: [PickerChat] }
struct ReplyButtonView: Encodable, Sendable { var text: String; var requestChat: PickerView? }
struct MemberView: Encodable, Sendable { var id: Int64; var name: String; var status: String }
struct ChannelView: Encodable, Sendable {
    var id: Int64
    var title: String
    var username: String?
    var membership: String
    var posts: [MessageView]
    var members: [MemberView]
    var joinRequests: [MemberView]
}
struct ToastView: Encodable, Sendable { var id: String; var text: String }
struct ClockView: Encodable, Sendable { var now: String; var advancedHours: Double }
struct StateView: Encodable, Sendable {
    var persona: Int64
    var personas: [PersonaView]
    var botName: String
    var botUsername: String
    var messages: [MessageView]
    var replyKeyboard: [[ReplyButtonView]]?
    var channels: [ChannelView]
    var toasts: [ToastView]
    var clock: ClockView
}
struct CoinView: Encodable, Sendable { var code: String; var amount: String }
struct PaymentView: Encodable, Sendable { var id: Int64; var status: String; var coin: String; var payAmount: String; var actuallyPaid: String }
struct CheckoutView: Encodable, Sendable {
    var id: String
    var orderID: String
    var description: String
    var price: String
    var currency: String
    var coins: [CoinView]
    var payments: [PaymentView]
}
struct OperatorView: Encodable, Sendable {
    var ledger: String
    var balanced: Bool
    var jobs: String
    var payouts: String
    var wallet: String
}
