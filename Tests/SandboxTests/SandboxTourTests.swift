import App
import Foundation
import Logging
import Sandbox
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Drives a running sandbox over its HTTP API, the same calls the page makes.
struct SandboxClient {
    let base: String

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func get(_ path: String) async throws -> (Int, Data) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: base + path)!)
        return ((response as! HTTPURLResponse).statusCode, data)
    }

    func post(_ path: String, _ body: [String: Any]) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }

    @discardableResult
    func act(_ persona: Int64, _ body: [String: Any]) async throws -> [String: Any] {
        var body = body
        body["persona"] = persona
        let (status, answer) = try await post("/sandbox/api/act", body)
        guard status == 200 else { throw Failure(description: "act \(body) answered \(status): \(answer)") }
        return answer
    }

    func state(_ persona: Int64) async throws -> [String: Any] {
        let (status, data) = try await get("/sandbox/api/state?persona=\(persona)")
        guard status == 200, let state = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Failure(description: "state answered \(status)")
        }
        return state
    }

    static func messages(_ state: [String: Any]) -> [[String: Any]] { state["messages"] as? [[String: Any]] ?? [] }

    static func buttons(_ message: [String: Any]) -> [[String: Any]] {
        (message["buttons"] as? [[[String: Any]]] ?? []).flatMap { $0 }
    }

    /// Waits (up to 45 s) until the persona's newest bot message contains `text`; returns it.
    @discardableResult
    func see(_ persona: Int64, _ text: String) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(45)
        var last = ""
        while ContinuousClock.now < deadline {
            let newest = Self.messages(try await state(persona)).last { $0["fromBot"] as? Bool == true }
            last = newest?["text"] as? String ?? ""
            if last.contains(text), let newest { return newest }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "persona \(persona) never saw “\(text)”; the newest message: \(last)")
    }

    /// Waits for a button labelled `label` on the newest bot message, then presses it (callback) or opens it (URL).
    @discardableResult
    func tap(_ persona: Int64, _ label: String) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(45)
        while ContinuousClock.now < deadline {
            if let message = Self.messages(try await state(persona)).last(where: { $0["fromBot"] as? Bool == true }),
                let button = Self.buttons(message).first(where: { $0["text"] as? String == label })
            {
                if button["kind"] as? String == "url" {
                    return try await act(persona, ["action": "openURL", "url": button["value"] as! String])
                }
                return try await act(persona, ["action": "press", "messageID": message["id"] as! Int, "data": button["value"] as! String])
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "persona \(persona) never got a button “\(label)”")
    }

    func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(45)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "timed out waiting for \(what)")
    }
}

@Suite("The sandbox: the real TelePay on simulated Telegram and NOWPayments, driven over its page's API")
struct SandboxTourTests {
    @Test("owner connects two channels with the chat picker and sets two tiers; a subscriber buys on the checkout page and joins")
    func tour() async throws {
        let dataDirectory = try RepositoryPaths.makeTemporaryDirectory("telepay-sandbox")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let sandbox = try await Sandbox.start(
            settings: SandboxSettings(dataDirectory: dataDirectory, port: 0, resourcesDirectory: RepositoryPaths.root, logLevel: "error"),
            logger: quietLogger, onServerRunning: { continuation.yield($0) }
        )
        let running = Task { try await sandbox.run() }
        do {
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            if case .failure(let why) = sandbox.world.chain { Issue.record("the local chain did not start: \(why.reason)") }
            let client = SandboxClient(base: "http://127.0.0.1:\(port)")
            try await walk(client)
        } catch {
            await sandbox.stop()
            _ = try? await running.value
            throw error
        }
        await sandbox.stop()
        try await running.value
    }

    func walk(_ client: SandboxClient) async throws {
        let (pageStatus, page) = try await client.get("/sandbox")
        #expect(pageStatus == 200 && String(decoding: page, as: UTF8.self).contains("TelePay sandbox"))
        #expect(try await client.get("/sandbox/app.js").0 == 200)
        // The page's own words, from the String Catalog, in every language it has.
        let (stringsStatus, stringsData) = try await client.get("/sandbox/strings.json")
        let catalog = try #require(try JSONSerialization.jsonObject(with: stringsData) as? [String: Any])
        let strings = try #require(catalog["strings"] as? [String: [String: String]])
        #expect(stringsStatus == 200 && catalog["languages"] as? [String] == ["en", "ru"])
        #expect(strings["en"]?["sandbox.page.title"] == "TelePay sandbox" && strings["ru"]?["sandbox.page.title"] == "Песочница TelePay")
        #expect(Set(strings["en"]?.keys ?? [:].keys) == Set(strings["ru"]?.keys ?? [:].keys))
        #expect(try await client.get("/sandbox/api/state?persona=424242").0 == 404)
        #expect(try await client.post("/sandbox/api/act", ["action": "advanceClock", "hours": -5]).0 == 422)

        let owner = SandboxWorld.owner.id
        let sam = SandboxWorld.subscribers[0].id
        try await client.act(owner, ["action": "send", "text": "/channels"])
        try await client.see(owner, "You have no channels yet")
        try await client.tap(owner, "➕ Add channel")
        try await client.see(owner, "Step 1 of 2")
        // The chat picker offers only the owner's channels that fit: first the private one.
        let picker = try #require(
            ((try await client.state(owner))["replyKeyboard"] as? [[[String: Any]]])?.first?.first?["requestChat"] as? [String: Any])
        let offered = (picker["chats"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int64 ?? ($0["id"] as? Int).map(Int64.init) }
        #expect(offered.contains(SandboxWorld.privateChannel))
        try await client.act(owner, ["action": "shareChat", "chat": SandboxWorld.privateChannel])
        try await client.see(owner, "Step 2 of 2")
        try await client.act(owner, ["action": "shareChat", "chat": SandboxWorld.publicChannel])
        try await client.see(owner, "Channel settings")
        try await client.tap(owner, "💰 Tiers")
        try await client.tap(owner, "Tier 1: ❌")
        try await client.see(owner, "Tier 1: send the price")
        try await client.act(owner, ["action": "send", "text": "5"])
        try await client.see(owner, "Tier 1: for how many days")
        try await client.act(owner, ["action": "send", "text": "7"])
        try await client.see(owner, "🥇 Tier 1 ✅ $5.00 · 7 days")
        try await client.tap(owner, "Tier 2: ❌")
        try await client.see(owner, "Tier 2: send the price")
        try await client.act(owner, ["action": "send", "text": "12"])
        try await client.see(owner, "Tier 2: for how many days")
        try await client.act(owner, ["action": "send", "text": "30"])
        try await client.see(owner, "$12.00 · 30 days")
        try await client.tap(owner, "⬅️ Back")
        try await client.tap(owner, "💳 Payout")
        try await client.tap(owner, "🌐 Network")
        try await client.tap(owner, "Ethereum (ETH)")
        try await client.tap(owner, "ETH")
        try await client.see(owner, "wallet address")
        try await client.act(owner, ["action": "send", "text": "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"])
        try await client.see(owner, "Wallet: <code>0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359</code>")
        try await client.tap(owner, "⬅️ Back")
        try await client.tap(owner, "✅ Save all changes")
        try await client.see(owner, "All changes saved")

        // The offer is posted in the public channel, which every persona sees; Sam opens its first tier.
        var tierLink: String?
        try await client.eventually("the offer post in the public channel") {
            let channels = (try await client.state(sam))["channels"] as? [[String: Any]] ?? []
            let open = channels.first { ($0["id"] as? Int64 ?? ($0["id"] as? Int).map(Int64.init)) == SandboxWorld.publicChannel }
            tierLink =
                (open?["posts"] as? [[String: Any]] ?? []).flatMap(SandboxClient.buttons).first {
                    ($0["value"] as? String)?.contains("?start=t1") == true
                }?["value"] as? String
            return tierLink != nil
        }
        let opened = try await client.act(sam, ["action": "openURL", "url": try #require(tierLink)])
        #expect(opened["opened"] as? String == "bot")
        let checkout = try await client.tap(sam, "💰 Pay")
        #expect(checkout["opened"] as? String == "checkout")
        let invoice = try #require(checkout["invoice"] as? String)
        let (invoiceStatus, invoiceData) = try await client.get("/sandbox/api/invoice?id=\(invoice)")
        #expect(invoiceStatus == 200)
        let shown = try #require(try JSONSerialization.jsonObject(with: invoiceData) as? [String: Any])
        #expect(shown["price"] as? String == "5")
        let (paid, deliveries) = try await client.post("/sandbox/api/checkout", ["invoice": invoice, "action": "full", "coin": "eth"])
        #expect(paid == 200)
        #expect((deliveries["deliveries"] as? [[String: Any]] ?? []).map { $0["answer"] as? Int } == [200, 200, 200])

        // The invite files a join request, which TelePay approves for a subscriber.
        let joined = try await client.tap(sam, "🔗 Join the channel")
        #expect(joined["opened"] as? String == "joinRequest")
        try await client.eventually("Sam in the private channel") {
            let channels = (try await client.state(sam))["channels"] as? [[String: Any]] ?? []
            return channels.contains {
                ($0["id"] as? Int64 ?? ($0["id"] as? Int).map(Int64.init)) == SandboxWorld.privateChannel && $0["membership"] as? String == "member"
            }
        }
        // The owner sees Sam among the members of the private channel.
        let ownerChannels = (try await client.state(owner))["channels"] as? [[String: Any]] ?? []
        let members =
            ownerChannels.first { ($0["id"] as? Int64 ?? ($0["id"] as? Int).map(Int64.init)) == SandboxWorld.privateChannel }?["members"]
            as? [[String: Any]] ?? []
        #expect(members.contains { $0["name"] as? String == "Sam" && $0["status"] as? String == "member" })
        // Sam's invite works only for Sam: Max, who did not pay, files a request with it and is declined.
        let invite = try #require(
            SandboxClient.messages(try await client.state(sam)).flatMap(SandboxClient.buttons)
                .last { $0["text"] as? String == "🔗 Join the channel" }?["value"] as? String)
        let max = SandboxWorld.subscribers[2].id
        #expect(try await client.act(max, ["action": "openURL", "url": invite])["opened"] as? String == "joinRequest")
        try await client.eventually("Max's request declined and Sam's approved") {
            let channels = (try await client.state(owner))["channels"] as? [[String: Any]] ?? []
            let requests =
                channels.first { ($0["id"] as? Int64 ?? ($0["id"] as? Int).map(Int64.init)) == SandboxWorld.privateChannel }?["joinRequests"]
                as? [[String: Any]] ?? []
            return requests.map { "\($0["name"] ?? "") \($0["status"] ?? "")" } == ["Sam approved", "Max declined"]
        }

        // The operator panel: the sale is in a balanced ledger.
        let (operatorStatus, operatorData) = try await client.get("/sandbox/api/operator")
        #expect(operatorStatus == 200)
        let report = try #require(try JSONSerialization.jsonObject(with: operatorData) as? [String: Any])
        #expect(report["balanced"] as? Bool == true)
        #expect((report["ledger"] as? String)?.contains("owner") == true)

        // Time moves past the 7 days: the scheduler runs the missed expiry sweep at once, Sam is removed and
        // offered a renewal.
        func offerPostIDs() async throws -> [Int] {
            let channels = (try await client.state(owner))["channels"] as? [[String: Any]] ?? []
            let open = channels.first { ($0["id"] as? Int64 ?? ($0["id"] as? Int).map(Int64.init)) == SandboxWorld.publicChannel }
            return (open?["posts"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
        }
        let postsBefore = try await offerPostIDs()
        // Five days on, two of the seven are left: the reminder due three days before the end arrives.
        try await client.act(0, ["action": "advanceClock", "hours": 5 * 24])
        try await client.see(sam, "⏰ Your subscription to <b>Olga's Kitchen: Members</b> ends in")
        try await client.act(0, ["action": "advanceClock", "hours": 3 * 24])
        // The daily offer refresh is due too: the post is deleted and posted anew.
        try await client.eventually("the offer post re-posted") {
            let after = try await offerPostIDs()
            return !after.isEmpty && Set(after).isDisjoint(with: postsBefore)
        }
        let ended = try await client.see(sam, "has ended")
        #expect(SandboxClient.buttons(ended).contains { $0["text"] as? String == "🔁 Renew" })
        try await client.eventually("Sam out of the private channel") {
            let channels = (try await client.state(sam))["channels"] as? [[String: Any]] ?? []
            return !channels.contains {
                ($0["id"] as? Int64 ?? ($0["id"] as? Int).map(Int64.init)) == SandboxWorld.privateChannel && $0["membership"] as? String == "member"
            }
        }

        // Another persona joins the world with a language; the checkout's other buttons drive their callbacks.
        let added = try await client.act(0, ["action": "addUser", "name": "Lena", "language": "ru"])
        let lena = try #require(added["persona"] as? Int64 ?? (added["persona"] as? Int).map(Int64.init))
        #expect(try await client.post("/sandbox/api/act", ["action": "addUser", "name": "Bad", "language": "xx"]).0 == 422)
        try await client.act(lena, ["action": "openURL", "url": try #require(tierLink).replacingOccurrences(of: "?start=t1", with: "?start=t2")])
        let lenaCheckout = try await client.tap(lena, "💰 Оплатить")
        let lenaInvoice = try #require(lenaCheckout["invoice"] as? String)
        let (refusedRefund, refusal) = try await client.post("/sandbox/api/checkout", ["invoice": lenaInvoice, "action": "refund"])
        #expect(refusedRefund == 422 && (refusal["error"] as? String)?.contains("nothing was paid") == true)
        for action in ["fail", "expire", "part"] {
            let (status, answer) = try await client.post("/sandbox/api/checkout", ["invoice": lenaInvoice, "action": action, "coin": "usdttrc20"])
            #expect(
                status == 200 && (answer["deliveries"] as? [[String: Any]] ?? []).allSatisfy { $0["answer"] as? Int == 200 }, "\(action): \(answer)")
        }
        let (_, lenaData) = try await client.get("/sandbox/api/invoice?id=\(lenaInvoice)")
        let lenaPayments = (try JSONSerialization.jsonObject(with: lenaData) as? [String: Any])?["payments"] as? [[String: Any]] ?? []
        #expect(lenaPayments.compactMap { $0["status"] as? String } == ["failed", "expired", "partially_paid"])

        // The owner takes ETH on Ethereum, instantly: the hot wallet on the local chain pays the share.
        try await client.eventually("the owner's payout") {
            let (_, data) = try await client.get("/sandbox/api/operator")
            let report = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            return (report?["payouts"] as? String)?.contains("Recently paid (1)") == true
        }
        let (_, walletData) = try await client.get("/sandbox/api/operator")
        let wallet = (try JSONSerialization.jsonObject(with: walletData) as? [String: Any])?["wallet"] as? String ?? ""
        #expect(wallet.contains("on the local chain"), "\(wallet)")
    }
}
