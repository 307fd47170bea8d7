import BigInt
import Ethereum
import FakeServing
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// A ChangeNOW v2 stand-in that enforces what ChangeNOW's v2 documentation says: the
/// `x-changenow-api-key` header, required and mutually exclusive parameters, positive decimal amounts
/// (as strings in the create body), minimum amounts per pair, `rateId` for fixed-rate creates, the
/// `{"error","message"}` body with the documented codes, and `by-id` answering `forbidden` for an
/// exchange created with another key. `GET /v2/exchanges` answers only a private key (each private key
/// lists the exchanges of the standard key it belongs to); a standard key gets 403 `forbidden`.
///
/// Tests drive exchanges through the status enum with `setStatus`, and `dropNextCreateResponses`
/// makes the server create the exchange and then break the connection instead of answering, which is
/// what a lost reply looks like to the client.
///
/// Assumed where the reference is silent: a missing or unknown key gets 401 `unauthorized`, an unknown
/// exchange id 404 `not_found`, amounts are rounded to 8 decimals, a private key is refused by every other
/// endpoint (401), and the list's `forbidden` message text (ChangeNOW's is not documented).
public actor FakeChangeNow {
    /// A swap the fake offers, with its rate and limits.
    public struct PairRule: Sendable {
        public var from: (currency: String, network: String)
        public var to: (currency: String, network: String)
        public var minAmount: Decimal
        public var maxAmount: Decimal?
        /// Units of `to` per unit of `from`.
        public var rate: Decimal
        public var withdrawalFee: Decimal

        public init(
            from: (String, String), to: (String, String), minAmount: Decimal, maxAmount: Decimal? = nil, rate: Decimal, withdrawalFee: Decimal
        ) {
            self.from = (from.0, from.1)
            self.to = (to.0, to.1)
            self.minAmount = minAmount
            self.maxAmount = maxAmount
            self.rate = rate
            self.withdrawalFee = withdrawalFee
        }

        var key: String { "\(from.currency)/\(from.network)>\(to.currency)/\(to.network)" }

        /// v1's `{from}_{to}` with legacy tickers.
        var legacyPair: String { "\(FakeChangeNow.legacyTicker(from))_\(FakeChangeNow.legacyTicker(to))" }
    }

    /// An exchange as the fake holds it.
    public struct FakeExchange: Sendable {
        public var id: String
        public var apiKey: String
        public var pairKey: String
        public var flow: String
        public var type: String
        public var fromCurrency, fromNetwork, toCurrency, toNetwork: String
        public var expectedAmountFrom: Decimal
        public var expectedAmountTo: Decimal
        public var amountFrom: Decimal?
        public var amountTo: Decimal?
        public var payinAddress: String
        public var payoutAddress: String
        public var payoutExtraId: String
        public var refundAddress: String
        public var rateId: String
        public var status: String
        public var payinHash: String?
        public var payoutHash: String?
        public var refundHash: String?
        public var refundAmount: Decimal?
        public var createdAt: Date
        public var updatedAt: Date
    }

    public static let statuses: Set<String> = [
        "new", "waiting", "confirming", "exchanging", "sending", "finished", "failed", "refunded", "verifying",
    ]

    public let apiKeys: Set<String>
    /// Private key → the standard key whose exchanges it lists.
    public let privateKeys: [String: String]
    private var pairs: [String: PairRule] = [:]
    private var exchangesByID: [String: FakeExchange] = [:]
    private var creationOrder: [String] = []
    private var rateIDs: [String: (pairKey: String, fromAmount: Decimal, toAmount: Decimal, validUntil: Date)] = [:]
    private var responsesToDrop = 0
    private var chain: Chain?
    private var payinKeys: [String: PrivateKey] = [:]
    private var nextScripts: [DepositScript] = []
    private var scripts: [String: DepositScript] = [:]
    private var shortChecks: [String: Int] = [:]
    private var injected: [String: [(HTTPResponse.Status, String)]] = [:]
    private var delays: [String: [Duration]] = [:]
    /// By-id reads a short deposit waits for the rest before it is refunded.
    public private(set) var shortDepositPatience = 3
    /// Every request's method and path, in arrival order.
    public private(set) var requestLog: [String] = []

    public init(
        apiKeys: Set<String> = ["test-api-key"], privateKeys: [String: String] = ["test-private-key": "test-api-key"],
        pairs: [PairRule] = FakeChangeNow.defaultPairs
    ) {
        self.apiKeys = apiKeys
        self.privateKeys = privateKeys
        for pair in pairs { self.pairs[pair.key] = pair }
    }

    public static let defaultPairs: [PairRule] = [
        PairRule(
            from: ("eth", "eth"), to: ("usdt", "trx"), minAmount: Decimal(string: "0.005")!, maxAmount: Decimal(50),
            rate: Decimal(string: "2500.25")!, withdrawalFee: Decimal(1)),
        PairRule(
            from: ("eth", "eth"), to: ("btc", "btc"), minAmount: Decimal(string: "0.0002787")!, rate: Decimal(string: "0.0367")!,
            withdrawalFee: Decimal(string: "0.00002")!),
        PairRule(
            from: ("eth", "eth"), to: ("usdc", "eth"), minAmount: Decimal(string: "0.01")!, rate: Decimal(string: "2499.5")!,
            withdrawalFee: Decimal(string: "2.5")!),
        PairRule(
            from: ("eth", "eth"), to: ("usdt", "eth"), minAmount: Decimal(string: "0.008")!, rate: Decimal(string: "2498.75")!,
            withdrawalFee: Decimal(string: "1.5")!),
        PairRule(
            from: ("usdt", "eth"), to: ("usdc", "eth"), minAmount: Decimal(10), rate: Decimal(string: "0.9985")!,
            withdrawalFee: Decimal(string: "0.5")!),
        PairRule(
            from: ("usdt", "eth"), to: ("btc", "btc"), minAmount: Decimal(15), rate: Decimal(string: "0.0000149")!,
            withdrawalFee: Decimal(string: "0.00002")!),
    ]

    /// The legacy ticker v1 uses for a currency on a network: the ticker alone on its own chain, else
    /// with the network's token-standard suffix (`usdttrc20`, `usdterc20`, `usdtbsc`).
    public static func legacyTicker(_ leg: (currency: String, network: String)) -> String {
        guard leg.currency != leg.network else { return leg.currency }
        let suffix = ["trx": "trc20", "eth": "erc20"][leg.network] ?? leg.network
        return leg.currency + suffix
    }

    // MARK: - The local chain

    /// The chain the fake settles on, as ChangeNOW settles on real ones: each exchange's pay-in address is
    /// a key the fake holds; a `by-id` read looks at the chain for the deposit, and the exchange moves
    /// `new → waiting → confirming → exchanging → sending → finished` (one step per read) only once the
    /// expected amount arrived. The exchange pays `amountTo` on the chain (a token transfer from the
    /// treasury) when its currency is one of `tokens`, else reports a made-up payout hash. A short deposit
    /// waits `shortDepositPatience` reads and is then refunded to the refund address, on the chain.
    public struct Chain: Sendable {
        public var rpc: HTTPEthereumRPC
        public var chainId: UInt64
        /// Holds ETH for gas and the tokens the fake pays out.
        public var treasury: PrivateKey
        /// Tokens on the chain by ChangeNOW's `currency/network` (e.g. `usdc/eth`), with their decimals.
        public var tokens: [String: Token]

        public struct Token: Sendable {
            public var address: Address
            public var decimals: UInt8

            public init(address: Address, decimals: UInt8) {
                self.address = address
                self.decimals = decimals
            }
        }

        public init(rpc: HTTPEthereumRPC, chainId: UInt64, treasury: PrivateKey, tokens: [String: Token]) {
            self.rpc = rpc
            self.chainId = chainId
            self.treasury = treasury
            self.tokens = tokens
        }
    }

    /// What an exchange does once its full deposit arrived.
    public enum DepositScript: Sendable {
        case exchange
        /// Ends `failed`, keeping the deposit (ChangeNOW support would refund it by hand).
        case fail
        /// Sends the deposit back to the refund address and ends `refunded`.
        case refund
    }

    public func settle(on chain: Chain, shortDepositPatience: Int = 3) {
        self.chain = chain
        self.shortDepositPatience = shortDepositPatience
    }

    /// The next exchanges created follow these scripts, in order (then `.exchange`).
    public func script(next scripts: DepositScript...) {
        nextScripts += scripts
    }

    /// The next `count` calls to `path` (e.g. `/v2/exchange`) answer `status` with ChangeNOW's error body
    /// (`code`), or — with code `gateway` — an HTML gateway page, as a proxy in front of it would.
    public func failNext(_ path: String, status: HTTPResponse.Status, code: String = "too_many_requests", count: Int = 1) {
        injected[path, default: []] += Array(repeating: (status, code), count: count)
    }

    /// The next `count` calls to `path` are answered only after `delay` (then normally): a client with a
    /// shorter timeout gives up first, and for a create the exchange is made all the same.
    public func delayNext(_ path: String, by delay: Duration, count: Int = 1) {
        delays[path, default: []] += Array(repeating: delay, count: count)
    }

    private func wei(_ amount: Decimal) throws -> BigUInt {
        try TokenUnits.baseUnits(fromDecimal: "\(amount)", decimals: 18)
    }

    private func ether(_ wei: BigUInt) -> Decimal {
        Decimal(string: TokenUnits.decimalString(fromBaseUnits: wei, decimals: 18), locale: Locale(identifier: "en_US_POSIX")) ?? 0
    }

    private func send(from key: PrivateKey, to: Address, value: BigUInt, data: [UInt8] = [], gas: UInt64, on chain: Chain) async throws -> String {
        let nonce = try await chain.rpc.transactionCount(of: key.address, at: .pending)
        let base = try await chain.rpc.block(.latest)?.baseFeePerGas ?? 1_000_000_000
        let tip = BigUInt(1_000_000_000)
        let transaction = EIP1559Transaction(
            chainId: chain.chainId, nonce: nonce, maxPriorityFeePerGas: tip, maxFeePerGas: base * 2 + tip, gasLimit: gas, to: to, value: value,
            data: data
        )
        let signed = try transaction.sign(with: key)
        return Hex.encodeData(try await chain.rpc.sendRawTransaction(signed.rawTransaction))
    }

    /// Waits (a few blocks at most on the local chain) until `address` holds some ETH.
    private func waitForBalance(of address: Address, on chain: Chain) async throws {
        for _ in 0..<50 {
            if try await chain.rpc.balance(of: address, at: .latest) > 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// The fee cap of a plain transfer: what a refund keeps back for gas.
    private func transferGasCost(on chain: Chain) async throws -> BigUInt {
        let base = try await chain.rpc.block(.latest)?.baseFeePerGas ?? 1_000_000_000
        return BigUInt(21_000) * (base * 2 + 1_000_000_000)
    }

    /// The token an exchange's deposit is paid in (its `from` side is one of the chain's tokens), if any.
    private func depositToken(_ exchange: FakeExchange, on chain: Chain) -> Chain.Token? {
        chain.tokens["\(exchange.fromCurrency)/\(exchange.fromNetwork)"]
    }

    /// What the pay-in address holds of the exchange's deposit asset, in its base units, and in whole coins.
    private func deposit(_ exchange: FakeExchange, key: PrivateKey, on chain: Chain) async throws -> (
        units: BigUInt, amount: Decimal, expected: BigUInt
    ) {
        if let token = depositToken(exchange, on: chain) {
            let units = try await chain.rpc.tokenBalance(token: token.address, owner: key.address)
            let amount =
                Decimal(string: TokenUnits.decimalString(fromBaseUnits: units, decimals: token.decimals), locale: Locale(identifier: "en_US_POSIX"))
                ?? 0
            return (units, amount, try TokenUnits.baseUnits(fromDecimal: "\(exchange.expectedAmountFrom)", decimals: token.decimals))
        }
        let wei = try await chain.rpc.balance(of: key.address, at: .latest)
        return (wei, ether(wei), try self.wei(exchange.expectedAmountFrom))
    }

    private func refund(_ exchange: inout FakeExchange, key: PrivateKey, balance: BigUInt, on chain: Chain) async throws {
        if let token = depositToken(exchange, on: chain), let refundTo = try? Address(parsing: exchange.refundAddress) {
            // A token deposit goes back whole; the treasury pays the pay-in key's gas, as an exchange would.
            _ = try await send(from: chain.treasury, to: key.address, value: BigUInt(10).power(16), gas: 21_000, on: chain)
            try await waitForBalance(of: key.address, on: chain)
            let data = try ERC20.transferCallData(to: refundTo, amount: balance)
            let hash = try await send(from: key, to: token.address, value: 0, data: data, gas: 120_000, on: chain)
            let amount =
                Decimal(string: TokenUnits.decimalString(fromBaseUnits: balance, decimals: token.decimals), locale: Locale(identifier: "en_US_POSIX"))
                ?? 0
            exchange.amountFrom = amount
            exchange.refundAmount = amount
            exchange.refundHash = hash
            exchange.status = "refunded"
            return
        }
        let cost = try await transferGasCost(on: chain)
        guard balance > cost, let refundTo = try? Address(parsing: exchange.refundAddress) else {
            exchange.status = "failed"
            return
        }
        let hash = try await send(from: key, to: refundTo, value: balance - cost, gas: 21_000, on: chain)
        exchange.amountFrom = ether(balance)
        exchange.refundAmount = ether(balance - cost)
        exchange.refundHash = hash
        exchange.status = "refunded"
    }

    /// One step of an exchange on the chain (see `Chain`).
    private func advance(_ id: String) async throws {
        guard let chain, let key = payinKeys[id], var exchange = exchangesByID[id] else { return }
        switch exchange.status {
        case "new", "waiting":
            let (balance, amount, expected) = try await deposit(exchange, key: key, on: chain)
            if balance == 0 {
                exchange.status = "waiting"
            } else if balance >= expected {
                exchange.amountFrom = amount
                switch scripts[id] ?? .exchange {
                case .exchange: exchange.status = "confirming"
                case .fail: exchange.status = "failed"
                case .refund: try await refund(&exchange, key: key, balance: balance, on: chain)
                }
            } else {
                exchange.status = "waiting"
                shortChecks[id, default: 0] += 1
                if shortChecks[id, default: 0] >= shortDepositPatience {
                    try await refund(&exchange, key: key, balance: balance, on: chain)
                }
            }
        case "confirming":
            exchange.status = "exchanging"
        case "exchanging":
            // The rate applies to what actually arrived.
            guard let rule = pairs[exchange.pairKey] else { return }
            let received = exchange.amountFrom ?? exchange.expectedAmountFrom
            let amountTo = Self.round(max(received * rule.rate - rule.withdrawalFee, 0), .down)
            exchange.amountTo = amountTo
            if let token = chain.tokens["\(exchange.toCurrency)/\(exchange.toNetwork)"], let recipient = try? Address(parsing: exchange.payoutAddress)
            {
                var exact = amountTo
                var whole = Decimal()
                NSDecimalRound(&whole, &exact, Int(token.decimals), .down)
                let amountTo = whole
                exchange.amountTo = amountTo
                let units = try TokenUnits.baseUnits(fromDecimal: "\(amountTo)", decimals: token.decimals)
                let data = try ERC20.transferCallData(to: recipient, amount: units)
                exchange.payoutHash = try await send(from: chain.treasury, to: token.address, value: 0, data: data, gas: 120_000, on: chain)
            } else {
                exchange.payoutHash = "0x" + Self.randomHex(bytes: 32)
            }
            exchange.status = "sending"
        case "sending":
            exchange.status = "finished"
        default:
            return
        }
        exchange.updatedAt = Date()
        exchangesByID[id] = exchange
    }

    // MARK: - Test controls

    /// The next `count` creates are carried out, but the client gets a broken connection instead of the answer.
    public func dropNextCreateResponses(_ count: Int = 1) {
        responsesToDrop += count
    }

    /// Moves an exchange to `status`; `finished` fills in the actual amounts and a payout hash.
    public func setStatus(_ id: String, _ status: String, payinHash: String? = nil) throws {
        guard Self.statuses.contains(status) else { throw FakeChangeNowError.unknownStatus(status) }
        guard var exchange = exchangesByID[id] else { throw FakeChangeNowError.unknownExchange(id) }
        exchange.status = status
        exchange.updatedAt = Date()
        if let payinHash { exchange.payinHash = payinHash }
        if ["confirming", "exchanging", "sending", "finished"].contains(status) {
            exchange.amountFrom = exchange.expectedAmountFrom
        }
        if status == "finished" {
            exchange.amountTo = exchange.expectedAmountTo
            exchange.payoutHash = "0x" + Self.randomHex(bytes: 32)
        }
        if status == "refunded" {
            exchange.refundHash = "0x" + Self.randomHex(bytes: 32)
            exchange.refundAmount = exchange.amountFrom ?? exchange.expectedAmountFrom
        }
        exchangesByID[id] = exchange
    }

    public func exchange(_ id: String) -> FakeExchange? {
        exchangesByID[id]
    }

    /// Every exchange created so far, oldest first, including those whose answer was dropped.
    public func exchanges() -> [FakeExchange] {
        creationOrder.compactMap { exchangesByID[$0] }
    }

    // MARK: - Server

    /// Runs the fake on 127.0.0.1 (an ephemeral port) for the duration of `body`, which gets its base URL.
    public func serve<Result: Sendable>(_ body: @Sendable (String) async throws -> Result) async throws -> Result {
        let router = Router()
        router.get("/v2/exchange/min-amount") { request, _ in await self.handle(request) { try await self.minAmount(request) } }
        router.get("/v2/exchange/estimated-amount") { request, _ in await self.handle(request) { try await self.estimatedAmount(request) } }
        router.post("/v2/exchange") { request, context in
            let body = try await request.body.collect(upTo: context.maxUploadSize)
            return await self.handle(request) { try await self.create(request, body: body) }
        }
        router.get("/v2/exchange/by-id") { request, _ in await self.handle(request) { try await self.byID(request) } }
        router.get("/v2/validate/address") { request, _ in await self.handle(request) { try await self.validateAddress(request) } }
        router.get("/v2/exchanges") { request, _ in await self.list(request) }
        router.get("/v1/exchange-range/fixed-rate/:pair") { request, context in
            await self.handleV1(request, key: Self.query(request)["api_key"]) { try await self.v1Range(context.parameters.get("pair") ?? "") }
        }
        router.get("/v1/exchange-amount/fixed-rate/:amount/:pair") { request, context in
            await self.handleV1(request, key: Self.query(request)["api_key"]) {
                try await self.v1Estimate(
                    request, amount: context.parameters.get("amount") ?? "", pair: context.parameters.get("pair") ?? "", type: "direct")
            }
        }
        router.get("/v1/exchange-deposit/fixed-rate/:amount/:pair") { request, context in
            await self.handleV1(request, key: Self.query(request)["api_key"]) {
                try await self.v1Estimate(
                    request, amount: context.parameters.get("amount") ?? "", pair: context.parameters.get("pair") ?? "", type: "reverse")
            }
        }
        router.post("/v1/transactions/fixed-rate/:key") { request, context in
            let body = try await request.body.collect(upTo: context.maxUploadSize)
            let key = context.parameters.get("key")
            return await self.handleV1(request, key: key) { try await self.v1Create(body: body, key: key ?? "", type: "direct") }
        }
        router.post("/v1/transactions/fixed-rate/from-result/:key") { request, context in
            let body = try await request.body.collect(upTo: context.maxUploadSize)
            let key = context.parameters.get("key")
            return await self.handleV1(request, key: key) { try await self.v1Create(body: body, key: key ?? "", type: "reverse") }
        }

        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "FakeChangeNow"),
            onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) },
            logger: Logger(label: "fake-changenow") { _ in SwiftLogNoOpLogHandler() }
        )
        // Stopped gracefully when `body` returns (see `serveUntilCancelled`).
        let server = serveUntilCancelled(application, logger: application.logger)
        defer { server.cancel() }
        var iterator = portStream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw FakeChangeNowError.didNotStart }
        return try await body("http://127.0.0.1:\(port)")
    }

    private func handle(_ request: Request, _ route: () async throws -> Response) async -> Response {
        requestLog.append("\(request.method) \(request.uri.path)")
        let key = request.headers[HTTPField.Name("x-changenow-api-key")!]
        guard let key, apiKeys.contains(key) else {
            return Self.error(.unauthorized, "unauthorized", "Invalid api key")
        }
        if var waits = delays[request.uri.path], !waits.isEmpty {
            let wait = waits.removeFirst()
            delays[request.uri.path] = waits
            try? await Task.sleep(for: wait)
        }
        if var queued = injected[request.uri.path], !queued.isEmpty {
            let (status, code) = queued.removeFirst()
            injected[request.uri.path] = queued
            if code == "gateway" {
                return Response(
                    status: status, headers: [.contentType: "text/html"],
                    body: .init(byteBuffer: ByteBuffer(string: "<html><body>502 Bad Gateway</body></html>")))
            }
            return Self.error(status, code, "Injected by the test")
        }
        do {
            return try await route()
        } catch let rejection as Rejection {
            return Self.error(rejection.status, rejection.code, rejection.message)
        } catch {
            return Self.error(.internalServerError, "internal_error", "\(error)")
        }
    }

    /// v1 carries the key in the path or the query instead of the header.
    private func handleV1(_ request: Request, key: String?, _ route: () async throws -> Response) async -> Response {
        requestLog.append("\(request.method) \(request.uri.path.replacingOccurrences(of: key ?? "\u{0}", with: "{api_key}"))")
        guard let key, apiKeys.contains(key) else {
            return Self.error(.unauthorized, "unauthorized", "Invalid api key")
        }
        do {
            return try await route()
        } catch let rejection as Rejection {
            return Self.error(rejection.status, rejection.code, rejection.message)
        } catch {
            return Self.error(.internalServerError, "internal_error", "\(error)")
        }
    }

    private func v1Rule(_ pair: String) throws -> PairRule {
        guard let rule = pairs.values.first(where: { $0.legacyPair == pair }) else {
            throw Rejection(.badRequest, "pair_is_inactive", "Pair is inactive")
        }
        return rule
    }

    private func v1Range(_ pair: String) throws -> Response {
        let rule = try v1Rule(pair)
        return Self.json(V1RangeBody(minAmount: rule.minAmount, maxAmount: rule.maxAmount))
    }

    private func v1Estimate(_ request: Request, amount: String, pair: String, type: String) throws -> Response {
        let rule = try v1Rule(pair)
        let (fromAmount, toAmount) = try quote(
            rule: rule, type: type, fromText: type == "direct" ? amount : nil, toText: type == "reverse" ? amount : nil
        )
        var rateID: String?
        var validUntil: String?
        if Self.query(request)["useRateId"] == "true" {
            let id = Self.randomHex(bytes: 16)
            let expiry = Date().addingTimeInterval(20 * 60)
            rateIDs[id] = (rule.key, fromAmount, toAmount, expiry)
            rateID = id
            validUntil = ISO8601DateFormatter().string(from: expiry)
        }
        return Self.json(
            V1EstimateBody(
                estimatedAmount: type == "direct" ? toAmount : nil, estimatedDeposit: type == "reverse" ? fromAmount : nil,
                networkFee: type == "direct" ? rule.withdrawalFee : nil, rateId: rateID, validUntil: validUntil,
                transactionSpeedForecast: "10-60", warningMessage: nil
            ))
    }

    private func v1Create(body: ByteBuffer, key: String, type: String) throws -> Response {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
            throw Rejection(.badRequest, "not_valid_params", "Request body must be a JSON object")
        }
        var fields: [String: String] = [:]
        for (name, value) in object {
            guard let text = value as? String else { throw Rejection(.badRequest, "not_valid_params", "\(name) must be a string") }
            fields[name] = text
        }
        guard let from = fields["from"], !from.isEmpty, let to = fields["to"], !to.isEmpty else {
            throw Rejection(.badRequest, "not_valid_params", "from and to are required")
        }
        let rule = try v1Rule("\(from)_\(to)")
        guard let address = fields["address"], !address.isEmpty, Self.isValidAddress(address, network: rule.to.network) else {
            throw Rejection(.badRequest, "not_valid_params", "Invalid address")
        }
        if let refund = fields["refundAddress"], !refund.isEmpty, !Self.isValidAddress(refund, network: rule.from.network) {
            throw Rejection(.badRequest, "not_valid_params", "Invalid refund address")
        }
        let nonEmpty = { (name: String) in fields[name].flatMap { $0.isEmpty ? nil : $0 } }
        if type == "direct", nonEmpty("result") != nil { throw Rejection(.badRequest, "not_valid_params", "result is not allowed here") }
        if type == "reverse", nonEmpty("amount") != nil { throw Rejection(.badRequest, "not_valid_params", "amount is not allowed here") }
        var (fromAmount, toAmount) = try quote(rule: rule, type: type, fromText: nonEmpty("amount"), toText: nonEmpty("result"))
        let rateID = fields["rateId"] ?? ""
        if !rateID.isEmpty {
            guard let rate = rateIDs[rateID], rate.validUntil > Date(), rate.pairKey == rule.key else {
                throw Rejection(.badRequest, "not_valid_params", "rateId is expired or belongs to another pair")
            }
            fromAmount = rate.fromAmount
            toAmount = rate.toAmount
        }
        let id = Self.randomHex(bytes: 7)
        let now = Date()
        let exchange = FakeExchange(
            id: id, apiKey: key, pairKey: rule.key, flow: "fixed-rate", type: type,
            fromCurrency: rule.from.currency, fromNetwork: rule.from.network, toCurrency: rule.to.currency, toNetwork: rule.to.network,
            expectedAmountFrom: fromAmount, expectedAmountTo: toAmount, amountFrom: nil, amountTo: nil,
            payinAddress: Self.randomEVMAddress(), payoutAddress: address, payoutExtraId: fields["extraId"] ?? "",
            refundAddress: fields["refundAddress"] ?? "", rateId: rateID, status: "new", payinHash: nil, payoutHash: nil, refundHash: nil,
            refundAmount: nil,
            createdAt: now, updatedAt: now
        )
        exchangesByID[id] = exchange
        creationOrder.append(id)
        return Self.json(
            V1CreateBody(
                id: id, payinAddress: exchange.payinAddress, payoutAddress: address,
                payoutExtraId: exchange.payoutExtraId, fromCurrency: from, toCurrency: to,
                amount: type == "direct" ? toAmount : nil, result: type == "reverse" ? toAmount : nil,
                refundAddress: exchange.refundAddress, refundExtraId: fields["refundExtraId"] ?? "", payoutExtraIdName: nil,
                validUntil: ISO8601DateFormatter().string(from: now.addingTimeInterval(20 * 60)), rateId: rateID.isEmpty ? nil : rateID
            ))
    }

    // MARK: - Endpoints

    private func list(_ request: Request) -> Response {
        requestLog.append("\(request.method) \(request.uri.path)")
        let key = request.headers[HTTPField.Name("x-changenow-api-key")!] ?? ""
        guard let owner = privateKeys[key] else {
            if apiKeys.contains(key) {
                return Self.error(.forbidden, "forbidden", "The list of exchanges is available with the private api key only")
            }
            return Self.error(.unauthorized, "unauthorized", "Invalid api key")
        }
        do {
            let query = Self.query(request)
            let limit = try Self.integer(query["limit"], default: 100, in: 1...100, "limit")
            let offset = try Self.integer(query["offset"], default: 0, in: 0...Int.max, "offset")
            let direction = query["sortDirection"].flatMap { $0.isEmpty ? nil : $0 } ?? "DESC"
            guard direction == "ASC" || direction == "DESC" else {
                throw Rejection(.badRequest, "not_valid_params", "sortDirection must be ASC or DESC")
            }
            let field = query["sortField"].flatMap { $0.isEmpty ? nil : $0 } ?? "createdAt"
            let dateField = query["dateField"].flatMap { $0.isEmpty ? nil : $0 } ?? "createdAt"
            guard ["createdAt", "updatedAt"].contains(field), ["createdAt", "updatedAt"].contains(dateField) else {
                throw Rejection(.badRequest, "not_valid_params", "sortField and dateField must be createdAt or updatedAt")
            }
            let from = try Self.listDate(query["dateFrom"], "dateFrom")
            let to = try Self.listDate(query["dateTo"], "dateTo")
            func date(_ exchange: FakeExchange, _ name: String) -> Date { name == "createdAt" ? exchange.createdAt : exchange.updatedAt }
            var matching = creationOrder.compactMap { exchangesByID[$0] }.filter { exchange in
                exchange.apiKey == owner
                    && from.map { date(exchange, dateField) >= $0 } ?? true
                    && to.map { date(exchange, dateField) <= $0 } ?? true
            }
            matching.sort { direction == "ASC" ? date($0, field) < date($1, field) : date($0, field) > date($1, field) }
            let page = matching.dropFirst(offset).prefix(limit)
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return Self.json(
                ListBody(
                    count: matching.count,
                    exchanges: page.map { exchange in
                        ListBody.Item(
                            createdAt: formatter.string(from: exchange.createdAt), updatedAt: formatter.string(from: exchange.updatedAt),
                            exchangeId: "x" + exchange.id, requestId: exchange.id, status: exchange.status, validUntil: nil, flow: exchange.flow,
                            payin: .init(
                                currency: exchange.fromCurrency, address: exchange.payinAddress, extraId: nil, amount: exchange.amountFrom,
                                expectedAmount: exchange.expectedAmountFrom, hash: exchange.payinHash),
                            payout: .init(
                                currency: exchange.toCurrency, address: exchange.payoutAddress,
                                extraId: exchange.payoutExtraId.isEmpty ? nil : exchange.payoutExtraId, amount: exchange.amountTo,
                                expectedAmount: exchange.expectedAmountTo, hash: exchange.payoutHash)
                        )
                    }))
        } catch let rejection as Rejection {
            return Self.error(rejection.status, rejection.code, rejection.message)
        } catch {
            return Self.error(.internalServerError, "internal_error", "\(error)")
        }
    }

    private static func integer(_ text: String?, default value: Int, in range: ClosedRange<Int>, _ name: String) throws -> Int {
        guard let text, !text.isEmpty else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw Rejection(.badRequest, "not_valid_params", "\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    /// `YYYY-MM-DDTHH:mm:ss.sssZ`, as documented.
    private static func listDate(_ text: String?, _ name: String) throws -> Date? {
        guard let text, !text.isEmpty else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = formatter.date(from: text) else {
            throw Rejection(.badRequest, "not_valid_params", "\(name) must be YYYY-MM-DDTHH:mm:ss.sssZ")
        }
        return date
    }

    private func minAmount(_ request: Request) throws -> Response {
        let (rule, flow) = try pairAndFlow(Self.query(request))
        return Self.json(
            MinAmountBody(
                fromCurrency: rule.from.currency, fromNetwork: rule.from.network, toCurrency: rule.to.currency,
                toNetwork: rule.to.network, flow: flow, minAmount: rule.minAmount
            ))
    }

    private func estimatedAmount(_ request: Request) throws -> Response {
        let query = Self.query(request)
        let (rule, flow) = try pairAndFlow(query)
        let type = query["type"] ?? "direct"
        let (fromAmount, toAmount) = try quote(rule: rule, type: type, fromText: query["fromAmount"], toText: query["toAmount"])
        var rateID: String?
        var validUntil: String?
        if flow == "fixed-rate", query["useRateId"] == "true" {
            let id = Self.randomHex(bytes: 16)
            let expiry = Date().addingTimeInterval(20 * 60)
            rateIDs[id] = (rule.key, fromAmount, toAmount, expiry)
            rateID = id
            validUntil = ISO8601DateFormatter().string(from: expiry)
        }
        return Self.json(
            EstimateBody(
                fromCurrency: rule.from.currency, fromNetwork: rule.from.network, toCurrency: rule.to.currency,
                toNetwork: rule.to.network, flow: flow, type: type, rateId: rateID, validUntil: validUntil,
                transactionSpeedForecast: "10-60", warningMessage: nil, fromAmount: fromAmount, toAmount: toAmount,
                depositFee: 0, withdrawalFee: rule.withdrawalFee, userId: nil
            ))
    }

    private func create(_ request: Request, body: ByteBuffer) throws -> Response {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
            throw Rejection(.badRequest, "not_valid_params", "Request body must be a JSON object")
        }
        // Every documented field is a string; a number where a string belongs is refused.
        var fields: [String: String] = [:]
        for (name, value) in object {
            guard let text = value as? String else {
                throw Rejection(.badRequest, "not_valid_params", "\(name) must be a string")
            }
            fields[name] = text
        }
        let (rule, flow) = try pairAndFlow(fields)
        let type = fields["type"].flatMap { $0.isEmpty ? nil : $0 } ?? "direct"
        guard let address = fields["address"], !address.isEmpty else {
            throw Rejection(.badRequest, "not_valid_params", "address is required")
        }
        guard Self.isValidAddress(address, network: rule.to.network) else {
            throw Rejection(.badRequest, "not_valid_params", "Invalid address")
        }
        if let refund = fields["refundAddress"], !refund.isEmpty, !Self.isValidAddress(refund, network: rule.from.network) {
            throw Rejection(.badRequest, "not_valid_params", "Invalid refund address")
        }
        var (fromAmount, toAmount) = try quote(
            rule: rule, type: type, fromText: fields["fromAmount"].flatMap { $0.isEmpty ? nil : $0 },
            toText: fields["toAmount"].flatMap { $0.isEmpty ? nil : $0 }
        )
        let rateID = fields["rateId"] ?? ""
        if flow == "fixed-rate" {
            guard let rate = rateIDs[rateID] else {
                throw Rejection(.badRequest, "not_valid_params", "rateId is required for fixed-rate exchanges")
            }
            guard rate.validUntil > Date(), rate.pairKey == rule.key else {
                throw Rejection(.badRequest, "not_valid_params", "rateId is expired or belongs to another pair")
            }
            fromAmount = rate.fromAmount
            toAmount = rate.toAmount
        }
        let id = Self.randomHex(bytes: 7)
        let now = Date()
        var payin = Self.randomEVMAddress()
        if chain != nil, rule.from.network == "eth" {
            let key = try PrivateKey(bytes: (0..<32).map { _ in UInt8.random(in: .min ... .max) })
            payinKeys[id] = key
            payin = key.address.checksummed
            scripts[id] = nextScripts.isEmpty ? .exchange : nextScripts.removeFirst()
        }
        let exchange = FakeExchange(
            id: id, apiKey: request.headers[HTTPField.Name("x-changenow-api-key")!] ?? "", pairKey: rule.key, flow: flow, type: type,
            fromCurrency: rule.from.currency, fromNetwork: rule.from.network, toCurrency: rule.to.currency, toNetwork: rule.to.network,
            expectedAmountFrom: fromAmount, expectedAmountTo: toAmount, amountFrom: nil, amountTo: nil,
            payinAddress: payin, payoutAddress: address, payoutExtraId: fields["extraId"] ?? "",
            refundAddress: fields["refundAddress"] ?? "", rateId: rateID, status: "new", payinHash: nil, payoutHash: nil, refundHash: nil,
            refundAmount: nil,
            createdAt: now, updatedAt: now
        )
        exchangesByID[id] = exchange
        creationOrder.append(id)
        if responsesToDrop > 0 {
            responsesToDrop -= 1
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody { _ in
                    throw FakeChangeNowError.droppedResponse
                })
        }
        return Self.json(
            CreateBody(
                id: id, fromAmount: fromAmount, toAmount: toAmount, flow: flow, type: type,
                payinAddress: exchange.payinAddress, payoutAddress: address, payinExtraId: nil,
                payoutExtraId: exchange.payoutExtraId.isEmpty ? nil : exchange.payoutExtraId, payoutExtraIdName: nil,
                fromCurrency: rule.from.currency, fromNetwork: rule.from.network, toCurrency: rule.to.currency,
                toNetwork: rule.to.network, refundAddress: exchange.refundAddress.isEmpty ? nil : exchange.refundAddress,
                refundExtraId: nil, rateId: rateID.isEmpty ? nil : rateID
            ))
    }

    private func byID(_ request: Request) async throws -> Response {
        guard let id = Self.query(request)["id"], !id.isEmpty else {
            throw Rejection(.badRequest, "not_valid_params", "id is required")
        }
        guard let known = exchangesByID[id] else {
            throw Rejection(.notFound, "not_found", "Transaction not found")
        }
        guard known.apiKey == request.headers[HTTPField.Name("x-changenow-api-key")!] else {
            throw Rejection(.forbidden, "forbidden", "The transaction was made from another api key")
        }
        try await advance(id)
        guard let exchange = exchangesByID[id] else { throw Rejection(.notFound, "not_found", "Transaction not found") }
        let formatter = ISO8601DateFormatter()
        return Self.json(
            StatusBody(
                id: exchange.id, status: exchange.status, actionsAvailable: false,
                fromCurrency: exchange.fromCurrency, fromNetwork: exchange.fromNetwork, toCurrency: exchange.toCurrency,
                toNetwork: exchange.toNetwork, expectedAmountFrom: exchange.expectedAmountFrom,
                expectedAmountTo: exchange.expectedAmountTo, amountFrom: exchange.amountFrom, amountTo: exchange.amountTo,
                payinAddress: exchange.payinAddress, payoutAddress: exchange.payoutAddress,
                payinExtraId: nil, payoutExtraId: exchange.payoutExtraId.isEmpty ? nil : exchange.payoutExtraId,
                refundAddress: exchange.refundAddress.isEmpty ? nil : exchange.refundAddress,
                createdAt: formatter.string(from: exchange.createdAt), updatedAt: formatter.string(from: exchange.updatedAt),
                payinHash: exchange.payinHash, payoutHash: exchange.payoutHash, refundHash: exchange.refundHash, refundAmount: exchange.refundAmount
            ))
    }

    private func validateAddress(_ request: Request) throws -> Response {
        let query = Self.query(request)
        guard let network = query["currency"], !network.isEmpty,
            let address = query["address"], !address.isEmpty
        else { throw Rejection(.badRequest, "not_valid_params", "currency and address are required") }
        let valid = Self.isValidAddress(address, network: network)
        return Self.json(ValidationBody(result: valid, message: valid ? nil : "Invalid address", isActivated: nil))
    }

    // MARK: - Rules

    private func pairAndFlow(_ query: [String: String]) throws -> (PairRule, String) {
        guard let from = query["fromCurrency"], !from.isEmpty, let to = query["toCurrency"], !to.isEmpty else {
            throw Rejection(.badRequest, "not_valid_params", "fromCurrency and toCurrency are required")
        }
        let flow = query["flow"].flatMap { $0.isEmpty ? nil : $0 } ?? "standard"
        guard flow == "standard" || flow == "fixed-rate" else {
            throw Rejection(.badRequest, "not_valid_params", "flow must be standard or fixed-rate")
        }
        let fromNetwork = query["fromNetwork"].flatMap { $0.isEmpty ? nil : $0 } ?? from
        let toNetwork = query["toNetwork"].flatMap { $0.isEmpty ? nil : $0 } ?? to
        guard let rule = pairs["\(from)/\(fromNetwork)>\(to)/\(toNetwork)"] else {
            throw Rejection(.badRequest, "pair_is_inactive", "Pair is inactive")
        }
        return (rule, flow)
    }

    private func quote(rule: PairRule, type: String, fromText: String?, toText: String?) throws -> (Decimal, Decimal) {
        let fromAmount: Decimal
        let toAmount: Decimal
        switch type {
        case "direct":
            guard toText == nil else { throw Rejection(.badRequest, "not_valid_params", "toAmount is not allowed for type direct") }
            guard let text = fromText else { throw Rejection(.badRequest, "not_valid_params", "fromAmount is required for type direct") }
            fromAmount = try Self.positiveAmount(text, "fromAmount")
            toAmount = max(0, Self.round(fromAmount * rule.rate - rule.withdrawalFee, .down))
        case "reverse":
            guard fromText == nil else { throw Rejection(.badRequest, "not_valid_params", "fromAmount is not allowed for type reverse") }
            guard let text = toText else { throw Rejection(.badRequest, "not_valid_params", "toAmount is required for type reverse") }
            toAmount = try Self.positiveAmount(text, "toAmount")
            fromAmount = Self.round((toAmount + rule.withdrawalFee) / rule.rate, .up)
        default:
            throw Rejection(.badRequest, "not_valid_params", "type must be direct or reverse")
        }
        guard fromAmount >= rule.minAmount else {
            throw Rejection(.badRequest, "out_of_range", "Amount is less then minimal: \(rule.minAmount) \(rule.from.currency.uppercased())")
        }
        if let maximum = rule.maxAmount, fromAmount > maximum {
            throw Rejection(.badRequest, "out_of_range", "Amount is more then maximal: \(maximum) \(rule.from.currency.uppercased())")
        }
        return (fromAmount, toAmount)
    }

    private static func positiveAmount(_ text: String, _ name: String) throws -> Decimal {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard !parts[0].isEmpty, parts.count == 1 || !parts[1].isEmpty,
            parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")), value > 0
        else { throw Rejection(.badRequest, "not_valid_params", "\(name) must be a positive number") }
        return value
    }

    private static func round(_ value: Decimal, _ mode: NSDecimalNumber.RoundingMode) -> Decimal {
        var input = value
        var output = Decimal()
        NSDecimalRound(&output, &input, 8, mode)
        return output
    }

    static func isValidAddress(_ address: String, network: String) -> Bool {
        let base58 = Set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
        switch network {
        case "eth", "bsc", "base", "matic", "arbitrum":
            return address.count == 42 && address.hasPrefix("0x") && address.dropFirst(2).allSatisfy(\.isHexDigit)
        case "trx":
            return address.count == 34 && address.hasPrefix("T") && address.allSatisfy { base58.contains($0) }
        case "btc":
            if address.hasPrefix("bc1") {
                return (14...74).contains(address.count) && address.dropFirst(3).allSatisfy { $0.isLowercase || $0.isNumber }
            }
            return (address.hasPrefix("1") || address.hasPrefix("3")) && (26...35).contains(address.count)
                && address.allSatisfy { base58.contains($0) }
        default:
            return (10...128).contains(address.count) && !address.contains(where: \.isWhitespace)
        }
    }

    static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }

    private static func randomEVMAddress() -> String {
        "0x" + randomHex(bytes: 20)
    }

    private static func query(_ request: Request) -> [String: String] {
        var values: [String: String] = [:]
        for (name, value) in request.uri.queryParameters {
            values[String(name)] = String(value)
        }
        return values
    }

    private static func json(_ value: some Encodable) -> Response {
        let data = (try? JSONEncoder().encode(value)) ?? Data("{}".utf8)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    private static func error(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> Response {
        let data = (try? JSONEncoder().encode(["error": code, "message": message])) ?? Data()
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Why a fake control call or start-up failed.
public enum FakeChangeNowError: Error, Sendable {
    case unknownStatus(String)
    case unknownExchange(String)
    case didNotStart
    case droppedResponse
}

private struct Rejection: Error {
    let status: HTTPResponse.Status
    let code: String
    let message: String

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }
}

private struct MinAmountBody: Encodable {
    let fromCurrency, fromNetwork, toCurrency, toNetwork, flow: String
    let minAmount: Decimal
}

private struct EstimateBody: Encodable {
    let fromCurrency, fromNetwork, toCurrency, toNetwork, flow, type: String
    let rateId, validUntil, transactionSpeedForecast, warningMessage: String?
    let fromAmount, toAmount, depositFee, withdrawalFee: Decimal
    let userId: String?
}

private struct CreateBody: Encodable {
    let id: String
    let fromAmount, toAmount: Decimal
    let flow, type, payinAddress, payoutAddress: String
    let payinExtraId, payoutExtraId, payoutExtraIdName: String?
    let fromCurrency, fromNetwork, toCurrency, toNetwork: String
    let refundAddress, refundExtraId, rateId: String?
}

private struct StatusBody: Encodable {
    let id, status: String
    let actionsAvailable: Bool
    let fromCurrency, fromNetwork, toCurrency, toNetwork: String
    let expectedAmountFrom, expectedAmountTo: Decimal
    let amountFrom, amountTo: Decimal?
    let payinAddress, payoutAddress: String
    let payinExtraId, payoutExtraId, refundAddress: String?
    let createdAt, updatedAt: String
    let payinHash, payoutHash, refundHash: String?
    let refundAmount: Decimal?
}

private struct ListBody: Encodable {
    struct Leg: Encodable {
        let currency, address: String
        let extraId: String?
        let amount, expectedAmount: Decimal?
        let hash: String?
    }

    struct Item: Encodable {
        let createdAt, updatedAt, exchangeId, requestId, status: String
        let validUntil: String?
        let flow: String
        let payin, payout: Leg
    }

    let count: Int
    let exchanges: [Item]
}

private struct V1RangeBody: Encodable {
    let minAmount: Decimal
    let maxAmount: Decimal?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(minAmount, forKey: .minAmount)
        // Documented as `null` when there is no maximum, not left out.
        try container.encode(maxAmount, forKey: .maxAmount)
    }

    private enum CodingKeys: String, CodingKey {
        case minAmount, maxAmount
    }
}

private struct V1EstimateBody: Encodable {
    let estimatedAmount, estimatedDeposit, networkFee: Decimal?
    let rateId, validUntil, transactionSpeedForecast, warningMessage: String?
}

private struct V1CreateBody: Encodable {
    let id, payinAddress, payoutAddress, payoutExtraId, fromCurrency, toCurrency: String
    let amount, result: Decimal?
    let refundAddress, refundExtraId: String
    let payoutExtraIdName: String?
    let validUntil: String
    let rateId: String?
}

private struct ValidationBody: Encodable {
    let result: Bool
    let message: String?
    let isActivated: Bool?
}
