import Exchange
import ExchangeOrders
import Foundation
import Jobs
import Logging
import Metrics
import Money
import PostgresNIO
import Storage
import Subscriptions
import Synchronization

/// How an owner takes their money (the `channel_payout_settings.strategy` column).
public enum PayoutStrategy: String, Sendable, Hashable, CaseIterable, Codable {
    /// Each sale's share is paid as soon as it is settled.
    case instant
    /// Shares accumulate, are converted to USDT in batches, and are paid once the converted balance reaches
    /// the owner's threshold.
    case threshold
}

/// What became of a hot-wallet transfer a payout made.
public enum PayoutTransferOutcome: Sendable, Hashable {
    /// Recorded, signed, sent or mined but not yet final.
    case pending
    /// Final at depth: the value left the wallet; `gas` is what the transaction cost, in wei; `hash` the
    /// mined transaction's, when known.
    case confirmed(gas: Decimal, hash: String? = nil)
    /// Final without moving the value. `gas` is what a reverted transaction still cost (zero when it never
    /// reached the chain).
    case failed(reason: String, gas: Decimal)
}

/// The hot wallet as payouts use it. The production implementation is the hot-wallet sender, which records
/// each transfer under its key before it signs anything and pays a key at most once.
public protocol PayoutWallet: Sendable {
    /// Records the transfer of `units` of the settlement asset to `recipient` under `key`; sends nothing by itself.
    func submit(key: String, recipient: String, units: Decimal) async throws
    /// Where the transfer recorded under `key` stands; `nil` when there is none.
    func outcome(key: String) async throws -> PayoutTransferOutcome?
}

/// Payouts in another coin than the settlement asset: through ChangeNOW, funded by the hot wallet.
public struct PayoutExchange: Sendable {
    public var orders: ExchangeOrderService
    public var api: any ChangeNowAPI
    /// The hot wallet's address: where ChangeNOW returns a deposit it cannot exchange.
    public var refundAddress: String
    /// The settlement asset as ChangeNOW names it (`eth` on `eth`).
    public var from: ExchangeLeg
    /// An exchange held in `verifying` (ChangeNOW's AML/KYC check) longer than this alerts the admins.
    public var verifyingAlertAfter: Duration
    /// Decimals ChangeNOW takes in an amount; what is below them stays pending for the next payout.
    public var amountDecimals: Int
    /// How long a pair's minimum amount is trusted before it is asked again.
    public var minimumLifetime: Duration

    public init(
        orders: ExchangeOrderService, api: any ChangeNowAPI, refundAddress: String, from: ExchangeLeg = ExchangeLeg(currency: "eth", network: "eth"),
        verifyingAlertAfter: Duration = .seconds(3600), amountDecimals: Int = 8, minimumLifetime: Duration = .seconds(600)
    ) {
        self.orders = orders
        self.api = api
        self.refundAddress = refundAddress
        self.from = from
        self.verifyingAlertAfter = verifyingAlertAfter
        self.amountDecimals = amountDecimals
        self.minimumLifetime = minimumLifetime
    }
}

/// A point in a payout's life, each reached right after what it names was recorded (or done, for calls).
public enum PayoutStep: String, Sendable, Hashable, CaseIterable {
    case planned, validated, estimated, intentRecorded, exchangeCreated, exchangeVerified, transferRecorded, sending, funded, paid, failed
}

/// Observes payouts' progress (crash tests stop the process at a step).
public protocol PayoutProbe: Sendable {
    func reached(_ step: PayoutStep, payoutID: Int64) async
}

/// Hears about payouts that reached a point an owner or an admin should know of. Called after the commit
/// that recorded the change, at most once per change of state.
public protocol PayoutEvents: Sendable {
    func payoutSent(_ payout: Payout) async
    func payoutArrived(_ payout: Payout) async
    func payoutFailed(_ payout: Payout, reason: String) async
}

/// Pays owners who take instant payouts. Each pass plans, per channel, one payout of what is pending (the
/// amount moves from pending to in flight in the ledger, in the transaction that records the payout), then
/// advances every open payout one step, recording each step before the next external call:
///
/// - **direct** (the owner takes the settlement asset on its own network, ETH on Ethereum): the hot wallet's
///   exactly-once transfer keyed by the payout; final → paid, gas booked.
/// - **exchange** (any other coin): ChangeNOW validates the wallet, a share below the pair's minimum waits for
///   more (carried over, never failed), an estimate is recorded, an exchange intent is recorded before the
///   create call (a create whose answer was lost is never followed by a second funded exchange), the
///   exchange is checked (`new`/`waiting`, our pay-in asset, our amount), the hot wallet sends exactly its
///   `fromAmount` to its pay-in address, and the exchange is tracked to `finished` (amount and hash recorded).
///
/// A payout that moved no money (never sent, reverted, refused before funding, or refunded back to the hot
/// wallet) fails: its amount is pending again, the admins are alerted, and the channel gets no new payout
/// until an operator releases it or — when the failure was the owner's wallet — the owner changes the wallet.
/// An exchange that fails after it was funded holds the payout (`held`): the money is at ChangeNOW.
public struct PayoutService: Sendable {
    let database: Database
    let queue: JobQueue
    let wallet: any PayoutWallet
    let settlement: SettlementAsset
    let exchange: PayoutExchange?
    let events: (any PayoutEvents)?
    let probe: (any PayoutProbe)?
    /// The transaction page prefix of the hot wallet's chain (`https://etherscan.io/tx/` on mainnet).
    let explorer: String?
    let logger: Logger
    let minimums = MinimumCache()
    /// Payouts advanced at once within a step of a pass (each is its own transactions; ChangeNOW's 30 calls/s
    /// per key bounds how many exchange steps may run together).
    let parallelism: Int
    /// Which balances it pays.
    let planning: PayoutPlanning
    /// How often new payouts may be planned (open ones advance on every pass): zero for instant payouts,
    /// 5 minutes for threshold payouts by default.
    let planInterval: Duration
    let cadence = Cadence()
    /// Whether its payouts pay conversions' parts (USDT); instant payouts of the settlement asset never do.
    var paysConversions: Bool {
        if case .converted = planning { return true }
        return false
    }
    /// The owner currency and network that are the paid asset itself on the hot wallet's chain: paid without
    /// an exchange (ETH or USDT on Ethereum).
    var directCurrency: String { settlement.asset }
    let directNetwork = "ETH"
    /// What gas is paid in: the chain's own coin, whatever the transfer moves.
    let gasAsset = "ETH"

    public init(
        database: Database, queue: JobQueue, wallet: any PayoutWallet, settlement: SettlementAsset, exchange: PayoutExchange? = nil,
        events: (any PayoutEvents)? = nil, parallelism: Int = 4, probe: (any PayoutProbe)? = nil, explorer: String? = nil,
        planning: PayoutPlanning = .instant, planInterval: Duration = .zero, logger: Logger
    ) {
        self.planning = planning
        self.planInterval = planInterval
        self.explorer = explorer
        self.probe = probe
        self.parallelism = parallelism
        self.database = database
        self.queue = queue
        self.wallet = wallet
        self.settlement = settlement
        self.exchange = exchange
        self.events = events
        self.logger = logger
    }

    /// What one pass did.
    public struct Pass: Sendable, Hashable {
        public var planned = 0
        /// Balances left pending because they are below the exchange's minimum.
        public var carried = 0
        public var submitted = 0
        /// Exchange payouts whose transfer is final and whose exchange is working.
        public var exchanging = 0
        public var paid = 0
        public var failed = 0
        public var held = 0

        static func += (total: inout Pass, more: Pass) {
            total.planned += more.planned
            total.carried += more.carried
            total.submitted += more.submitted
            total.exchanging += more.exchanging
            total.paid += more.paid
            total.failed += more.failed
            total.held += more.held
        }
    }

    /// Runs `body` for each item, at most `parallelism` at once, and adds up what they did.
    func concurrently<Item: Sendable>(_ items: [Item], _ body: @escaping @Sendable (Item) async throws -> Pass) async throws -> Pass {
        try await withThrowingTaskGroup(of: Pass.self) { group in
            var total = Pass()
            var iterator = items.makeIterator()
            for _ in 0..<max(parallelism, 1) {
                guard let item = iterator.next() else { break }
                group.addTask { try await body(item) }
            }
            while let done = try await group.next() {
                total += done
                if let item = iterator.next() { group.addTask { try await body(item) } }
            }
            return total
        }
    }

    /// Plans new payouts and advances open ones by one step each.
    @discardableResult
    public func runPass(batch: Int = 100) async throws -> Pass {
        var pass = Pass()
        if cadence.due(every: planInterval) { try await plan(batch: batch, into: &pass) }
        try await advancePlanned(batch: batch, into: &pass)
        try await trackSending(batch: batch, into: &pass)
        try await trackExchanges(batch: batch, into: &pass)
        return pass
    }

    // MARK: - Planning

    func isDirect(currency: String, network: String) -> Bool {
        currency == directCurrency && network == directNetwork
    }

    /// The smallest step ChangeNOW can express, in smallest units (10^(decimals − amountDecimals)).
    func exchangeStep(_ exchange: PayoutExchange) -> Decimal {
        SettlementAsset.power(of: 10, settlement.decimals - exchange.amountDecimals)
    }

    func pair(_ exchange: PayoutExchange, currency: String, network: String) -> ExchangePair {
        ExchangePair(from: exchange.from, to: ExchangeLeg(currency: currency.lowercased(), network: network.lowercased()))
    }

    func plan(batch: Int, into pass: inout Pass) async throws {
        let logger = self.logger
        let asset = settlement.asset
        let balances = try await database.withConnection { connection in
            try await PayoutStore.plannable(asset: asset, rule: planning, limit: batch, on: connection, logger: logger)
        }
        pass += try await concurrently(balances) { balance in
            var pass = Pass()
            let route: PayoutRoute = isDirect(currency: balance.currency, network: balance.network) ? .direct : .exchange
            var amount = balance.pending
            if route == .exchange {
                guard let exchange else { return pass }
                let step = exchangeStep(exchange)
                amount = DecimalText.rounded(balance.pending / step, scale: 0, .down) * step
                let minimum: Decimal
                do {
                    minimum = try await minimums.minimum(
                        for: pair(exchange, currency: balance.currency, network: balance.network), exchange: exchange)
                } catch {
                    logger.warning(
                        "cannot read ChangeNOW's minimum; the payout waits for the next pass",
                        metadata: ["channel_id": "\(balance.channelID)", "error": "\(error)"]
                    )
                    return pass
                }
                if amount <= 0 || amount / settlement.unitsPerCoin < minimum {
                    pass.carried += 1
                    logger.debug("pending balance below the exchange minimum; carried over", metadata: ["channel_id": "\(balance.channelID)"])
                    return pass
                }
            }
            let plannedAmount = amount
            let created = try await database.withTransaction { connection -> Payout? in
                // Under the balance row's lock, what is pending cannot change: the amount still fits.
                let pending = try await PayoutStore.lockPending(
                    ownerUserID: balance.ownerUserID, channelID: balance.channelID, asset: asset, on: connection, logger: logger)
                guard pending.units >= plannedAmount else { return nil }
                let value = PayoutStore.value(of: plannedAmount, pending: pending.units, pendingUSD: pending.valueUSD)
                guard
                    let payout = try await PayoutStore.insert(
                        balance, amount: plannedAmount, valueUSD: value, asset: asset, route: route, on: connection, logger: logger
                    )
                else {
                    return nil
                }
                if paysConversions {
                    try await ConversionStore.claimParts(
                        channelID: payout.channelID, asset: asset, payoutID: payout.id, on: connection, logger: logger)
                }
                try await LedgerStore.book(
                    .payout, key: "payout:\(payout.id):planned", orderID: nil, paymentID: nil,
                    entries: [
                        LedgerEntry(
                            .ownerPayable, owner: payout.ownerUserID, channel: payout.channelID, asset: asset, plannedAmount, valueUSD: value),
                        LedgerEntry(.ownerInFlight, owner: payout.ownerUserID, channel: payout.channelID, asset: asset, -plannedAmount),
                    ],
                    on: connection, logger: logger
                )
                return payout
            }
            if let created {
                await probe?.reached(.planned, payoutID: created.id)
                pass.planned += 1
                logger.info(
                    "payout planned",
                    metadata: [
                        "payout_id": "\(created.id)", "owner": "\(created.ownerUserID)", "route": "\(route.rawValue)",
                        "units": "\(DecimalText.plain(created.amount))",
                    ]
                )
            }
            return pass
        }
    }

    // MARK: - Planned → sending

    func advancePlanned(batch: Int, into pass: inout Pass) async throws {
        let logger = self.logger
        let asset = settlement.asset
        let planned = try await database.withConnection {
            try await PayoutStore.inState(.planned, asset: asset, limit: batch, on: $0, logger: logger)
        }
        pass += try await concurrently(planned) { payout in
            var pass = Pass()
            switch payout.route {
            case .direct:
                if try await fund(payout, recipient: payout.walletAddress, into: &pass) { pass.submitted += 1 }
            case .exchange:
                guard let exchange else { return pass }
                if try await prepareExchange(payout, exchange, into: &pass) { pass.submitted += 1 }
            }
            return pass
        }
    }

    /// Records the payout's transfer with the hot wallet (idempotent on its key), then marks it sending.
    func fund(_ payout: Payout, recipient: String, into pass: inout Pass) async throws -> Bool {
        let logger = self.logger
        do {
            try await wallet.submit(key: payout.transferKey, recipient: recipient, units: payout.amount)
            await probe?.reached(.transferRecorded, payoutID: payout.id)
        } catch {
            // Only when no transfer was recorded under the key has it provably moved nothing: then it fails and
            // its amount is pending again. Otherwise the next pass submits the same key again.
            if try await wallet.outcome(key: payout.transferKey) == nil {
                if try await fail(payout, from: .planned, reason: "the hot wallet refused the transfer: \(error)", gas: 0) { pass.failed += 1 }
            } else {
                logger.warning(
                    "recording a payout's transfer failed; trying again next pass", metadata: ["payout_id": "\(payout.id)", "error": "\(error)"])
            }
            return false
        }
        let queue = self.queue
        let notice = sentNotice(payout)
        let moved = try await database.withTransaction { connection -> Bool in
            guard try await PayoutStore.move(payout.id, from: .planned, to: .sending, on: connection, logger: logger) else { return false }
            try await OwnerNotifications.enqueue(.payoutSent(notice), channelID: payout.channelID, queue: queue, on: connection)
            return true
        }
        if moved {
            await probe?.reached(.sending, payoutID: payout.id)
            logger.info("payout sending", metadata: ["payout_id": "\(payout.id)", "transfer": "\(payout.transferKey)"])
            await events?.payoutSent(payout)
        }
        return moved
    }

    /// The exchange steps before funding, each recorded before the next call. Returns whether the payout was
    /// funded (its transfer recorded) in this call. A step ChangeNOW could not answer is tried again next pass.
    func prepareExchange(_ payout: Payout, _ exchange: PayoutExchange, into pass: inout Pass) async throws -> Bool {
        let logger = self.logger
        let pair = pair(exchange, currency: payout.currency, network: payout.network)
        if payout.exchangeIntentID == nil {
            // The owner's wallet, as ChangeNOW sees it for the payout network.
            let validation: AddressValidation
            do {
                validation = try await exchange.api.validateAddress(network: pair.to.network ?? pair.to.currency, address: payout.walletAddress)
            } catch {
                logger.warning("payout step postponed", metadata: ["payout_id": "\(payout.id)", "step": "validate the wallet", "error": "\(error)"])
                return false
            }
            await probe?.reached(.validated, payoutID: payout.id)
            guard validation.isValid else {
                let reason =
                    "ChangeNOW rejects the wallet \(payout.walletAddress) for \(payout.currency) on \(payout.network)"
                    + (validation.message.map { ": \($0)" } ?? "")
                if try await fail(payout, from: .planned, reason: reason, gas: 0, ownerFixable: true) { pass.failed += 1 }
                return false
            }
        }
        let database = self.database
        let probe = self.probe
        let subject = ExchangeSteps.Subject(
            key: "payout:\(payout.id)", pair: pair, fromAmount: payout.amount / settlement.unitsPerCoin, payoutAddress: payout.walletAddress,
            payoutMemo: payout.walletMemo, intentID: payout.exchangeIntentID
        )
        let outcome = try await ExchangeSteps(exchange: exchange, logger: logger).run(
            subject,
            recorded: { intentID, estimate in
                try await database.withConnection { connection in
                    try await PayoutStore.setIntent(payout.id, intentID: intentID, estimatedTo: estimate, on: connection, logger: logger)
                }
            },
            reached: { step in await probe?.reached(step, payoutID: payout.id) }
        )
        switch outcome {
        case .later:
            return false
        case .refused(let reason, let ownerFixable, let release):
            if try await fail(payout, from: .planned, reason: reason, gas: 0, ownerFixable: ownerFixable, release: release) { pass.failed += 1 }
            return false
        case .ready(let funding):
            // The payout as stored now: its intent (and estimate) are recorded.
            let current = try await database.withConnection { try await PayoutStore.find(payout.id, on: $0, logger: logger) } ?? payout
            return try await fund(current, recipient: funding.payinAddress, into: &pass)
        }
    }

    // MARK: - What the owner is told

    /// The payout's amount in the settlement asset's coin (ETH, not wei).
    func coins(_ payout: Payout) -> String {
        DecimalText.plain(payout.amount / settlement.unitsPerCoin)
    }

    /// Sent: direct payouts in ETH; exchange payouts as the estimate in the owner's coin (what arrives is told
    /// on arrival).
    func sentNotice(_ payout: Payout) -> PayoutNotice {
        if payout.route == .exchange, let estimate = payout.estimatedTo {
            return PayoutNotice(
                payoutID: payout.id, amount: "≈" + DecimalText.plain(estimate), currency: payout.currency, network: payout.network,
                wallet: payout.walletAddress)
        }
        return PayoutNotice(
            payoutID: payout.id, amount: coins(payout), currency: payout.currency, network: payout.network, wallet: payout.walletAddress)
    }

    func directNotice(_ payout: Payout, hash: String?) -> PayoutNotice {
        PayoutNotice(
            payoutID: payout.id, amount: coins(payout), currency: payout.currency, network: payout.network, wallet: payout.walletAddress,
            transactionHash: hash.map { Self.transactionLink(network: payout.network, hash: $0, explorer: explorer) }
        )
    }

    func exchangeNotice(_ payout: Payout) -> PayoutNotice {
        PayoutNotice(
            payoutID: payout.id, amount: payout.amountTo.map(DecimalText.plain) ?? "?", currency: payout.currency, network: payout.network,
            wallet: payout.walletAddress,
            transactionHash: payout.payoutHash.map { Self.transactionLink(network: payout.network, hash: $0, explorer: nil) }
        )
    }

    func failedNotice(_ payout: Payout) -> PayoutNotice {
        PayoutNotice(payoutID: payout.id, amount: coins(payout), currency: settlement.asset, network: directNetwork, wallet: payout.walletAddress)
    }

    /// A link to the transaction on the network's public explorer (`explorer` overrides Ethereum's, for a test
    /// chain), or the bare hash when the network has none we know.
    public static func transactionLink(network: String, hash: String, explorer: String?) -> String {
        let known = [
            "ETH": "https://etherscan.io/tx/", "BSC": "https://bscscan.com/tx/", "MATIC": "https://polygonscan.com/tx/",
            "BASE": "https://basescan.org/tx/", "TRX": "https://tronscan.org/#/transaction/", "SOL": "https://solscan.io/tx/",
            "BTC": "https://mempool.space/tx/", "LTC": "https://litecoinspace.org/tx/", "TON": "https://tonviewer.com/transaction/",
        ]
        let prefix = network == "ETH" ? (explorer ?? known["ETH"]) : known[network]
        return prefix.map { $0 + hash } ?? hash
    }

    // MARK: - Sending → paid / exchanging / failed

    func trackSending(batch: Int, into pass: inout Pass) async throws {
        let logger = self.logger
        let asset = settlement.asset
        let sending = try await database.withConnection {
            try await PayoutStore.inState(.sending, asset: asset, limit: batch, on: $0, logger: logger)
        }
        pass += try await concurrently(sending) { payout in
            var pass = Pass()
            switch try await wallet.outcome(key: payout.transferKey) {
            case nil, .pending?:
                return pass
            case .confirmed(let gas, let hash)?:
                let next: PayoutState = payout.route == .direct ? .paid : .exchanging
                let moved = try await database.withTransaction { connection -> Bool in
                    guard try await PayoutStore.move(payout.id, from: .sending, to: next, gas: gas, on: connection, logger: logger) else {
                        return false
                    }
                    var entries = [LedgerEntry(.networkFees, asset: gasAsset, gas), LedgerEntry(.hotWallet, asset: gasAsset, -gas)]
                    switch payout.route {
                    case .direct:
                        entries += [
                            LedgerEntry(.ownerInFlight, owner: payout.ownerUserID, channel: payout.channelID, asset: asset, payout.amount),
                            LedgerEntry(.hotWallet, asset: asset, -payout.amount),
                        ]
                        try await PayoutStore.addPaidOut(payout, on: connection, logger: logger)
                        try await OwnerNotifications.enqueue(
                            .payoutArrived(directNotice(payout, hash: hash)), channelID: payout.channelID, queue: queue, on: connection
                        )
                    case .exchange:
                        entries += [
                            LedgerEntry(.exchangeClearing, asset: asset, payout.amount), LedgerEntry(.hotWallet, asset: asset, -payout.amount),
                        ]
                    }
                    try await LedgerStore.book(
                        .payout, key: "payout:\(payout.id):\(next == .paid ? "paid" : "funded")", orderID: nil, paymentID: nil, entries: entries,
                        on: connection, logger: logger)
                    return true
                }
                guard moved else { return pass }
                await probe?.reached(next == .paid ? .paid : .funded, payoutID: payout.id)
                if next == .paid {
                    pass.paid += 1
                    logger.info("payout paid", metadata: ["payout_id": "\(payout.id)", "gas": "\(DecimalText.plain(gas))"])
                    await events?.payoutArrived(payout)
                } else {
                    pass.exchanging += 1
                    logger.info("payout's exchange funded", metadata: ["payout_id": "\(payout.id)", "gas": "\(DecimalText.plain(gas))"])
                }
            case .failed(let reason, let gas)?:
                if try await fail(payout, from: .sending, reason: reason, gas: gas) { pass.failed += 1 }
            }
            return pass
        }
    }

    /// Follows funded exchanges to their end: `finished` pays the owner, `refunded` (the deposit back in the
    /// hot wallet) fails the payout with its amount pending again, `failed` holds it for the admins.
    func trackExchanges(batch: Int, into pass: inout Pass) async throws {
        guard let exchange else { return }
        let logger = self.logger
        let asset = settlement.asset
        var open = try await database.withConnection {
            try await PayoutStore.inState(.exchanging, asset: asset, limit: batch, on: $0, logger: logger)
        }
        open += try await database.withConnection { try await PayoutStore.inState(.held, asset: asset, limit: batch, on: $0, logger: logger) }
        pass += try await concurrently(open) { payout in
            var pass = Pass()
            guard let intentID = payout.exchangeIntentID else { return pass }
            let intent: ExchangeIntent
            do {
                intent = try await exchange.orders.refreshStatus(intentId: intentID, verifyingAlertAfter: exchange.verifyingAlertAfter)
            } catch {
                logger.warning(
                    "cannot read a payout's exchange; trying again next pass", metadata: ["payout_id": "\(payout.id)", "error": "\(error)"])
                return pass
            }
            switch intent.state {
            case .finished:
                let tracking = try await exchange.orders.tracking(intentId: intentID)
                let moved = try await database.withTransaction { connection -> Bool in
                    guard try await PayoutStore.move(payout.id, from: payout.state, to: .paid, on: connection, logger: logger) else { return false }
                    try await PayoutStore.recordArrival(
                        payout.id, amountTo: tracking.amountTo, payoutHash: tracking.payoutHash, on: connection, logger: logger)
                    try await PayoutStore.addPaidOut(payout, on: connection, logger: logger)
                    var arrived = payout
                    arrived.amountTo = tracking.amountTo
                    arrived.payoutHash = tracking.payoutHash
                    try await OwnerNotifications.enqueue(
                        .payoutArrived(exchangeNotice(arrived)), channelID: payout.channelID, queue: queue, on: connection)
                    try await LedgerStore.book(
                        .payout, key: "payout:\(payout.id):paid", orderID: nil, paymentID: nil,
                        entries: [
                            LedgerEntry(.ownerInFlight, owner: payout.ownerUserID, channel: payout.channelID, asset: asset, payout.amount),
                            LedgerEntry(.exchangeClearing, asset: asset, -payout.amount),
                        ],
                        on: connection, logger: logger
                    )
                    return true
                }
                if moved {
                    await probe?.reached(.paid, payoutID: payout.id)
                    pass.paid += 1
                    var arrived = payout
                    arrived.amountTo = tracking.amountTo
                    arrived.payoutHash = tracking.payoutHash
                    arrived.state = .paid
                    logger.info(
                        "payout paid through the exchange",
                        metadata: ["payout_id": "\(payout.id)", "amount_to": "\(tracking.amountTo.map(DecimalText.plain) ?? "?")"])
                    await events?.payoutArrived(arrived)
                }
            case .refunded:
                let tracking = try await exchange.orders.tracking(intentId: intentID)
                let refund = settlement.units(tracking.refundAmount ?? 0)
                let reason = "the exchange refunded \(DecimalText.plain(tracking.refundAmount ?? 0)) \(asset) to the hot wallet"
                if try await refunded(payout, refundUnits: min(refund, payout.amount), reason: reason) { pass.failed += 1 }
            case .failed:
                if payout.state == .exchanging {
                    let moved = try await database.withConnection {
                        try await PayoutStore.move(
                            payout.id, from: .exchanging, to: .held, failure: "the exchange failed after it was funded; the money is at ChangeNOW",
                            on: $0, logger: logger)
                    }
                    if moved {
                        pass.held += 1
                        try await database.withConnection { connection in
                            try await queue.enqueue(
                                SubscriptionAlertJob(
                                    alert: .payoutFailed(
                                        payoutID: payout.id, ownerUserID: payout.ownerUserID,
                                        reason: "exchange \(intent.exchangeId ?? "?") failed after it was funded; ask ChangeNOW for the refund"
                                    )),
                                on: connection
                            )
                        }
                        logger.error("payout held: its exchange failed after it was funded", metadata: ["payout_id": "\(payout.id)"])
                    }
                }
            default:
                return pass
            }
            return pass
        }
    }

    /// Ends an exchange payout whose deposit came back: the refund is in the hot wallet again, what the
    /// exchange kept is the platform's cost, and the owner's amount is pending again in full.
    func refunded(_ payout: Payout, refundUnits: Decimal, reason: String) async throws -> Bool {
        let logger = self.logger
        let asset = settlement.asset
        let queue = self.queue
        let ended = try await database.withTransaction { connection -> Bool in
            guard
                try await PayoutStore.move(
                    payout.id, from: payout.state, to: .failed, failure: reason, refund: refundUnits, on: connection, logger: logger)
            else {
                return false
            }
            if paysConversions { try await ConversionStore.releaseParts(payoutID: payout.id, on: connection, logger: logger) }
            try await LedgerStore.book(
                .payout, key: "payout:\(payout.id):refunded", orderID: nil, paymentID: nil,
                entries: [
                    LedgerEntry(.exchangeClearing, asset: asset, -payout.amount),
                    LedgerEntry(.hotWallet, asset: asset, refundUnits),
                    LedgerEntry(.networkFees, asset: asset, payout.amount - refundUnits),
                    LedgerEntry(.ownerInFlight, owner: payout.ownerUserID, channel: payout.channelID, asset: asset, payout.amount),
                    LedgerEntry(
                        .ownerPayable, owner: payout.ownerUserID, channel: payout.channelID, asset: asset, -payout.amount,
                        valueUSD: payout.valueUSD.map { -$0 }),
                ],
                on: connection, logger: logger
            )
            try await queue.enqueue(
                SubscriptionAlertJob(alert: .payoutFailed(payoutID: payout.id, ownerUserID: payout.ownerUserID, reason: reason)), on: connection)
            try await OwnerNotifications.enqueue(
                .payoutFailed(failedNotice(payout), problem: .other), channelID: payout.channelID, queue: queue, on: connection)
            return true
        }
        if ended {
            logger.error("payout refunded; its amount is pending again", metadata: ["payout_id": "\(payout.id)", "reason": "\(reason)"])
            await events?.payoutFailed(payout, reason: reason)
        }
        return ended
    }

    /// Ends a payout that moved no money: its amount goes back to pending (any gas a reverted transfer cost is
    /// booked), and the admins are told. `ownerFixable`: the owner must change the wallet; `release`: the
    /// channel may be planned again at once (the amount was below what the exchange takes). Returns whether
    /// this call ended it.
    @discardableResult
    func fail(_ payout: Payout, from state: PayoutState, reason: String, gas: Decimal, ownerFixable: Bool = false, release: Bool = false) async throws
        -> Bool
    {
        let logger = self.logger
        let asset = settlement.asset
        let queue = self.queue
        let ended = try await database.withTransaction { connection -> Bool in
            guard
                try await PayoutStore.move(
                    payout.id, from: state, to: .failed, failure: reason, gas: gas, ownerFixable: ownerFixable, released: release, on: connection,
                    logger: logger
                )
            else {
                return false
            }
            if paysConversions { try await ConversionStore.releaseParts(payoutID: payout.id, on: connection, logger: logger) }
            try await LedgerStore.book(
                .payout, key: "payout:\(payout.id):failed", orderID: nil, paymentID: nil,
                entries: [
                    LedgerEntry(.ownerInFlight, owner: payout.ownerUserID, channel: payout.channelID, asset: asset, payout.amount),
                    LedgerEntry(
                        .ownerPayable, owner: payout.ownerUserID, channel: payout.channelID, asset: asset, -payout.amount,
                        valueUSD: payout.valueUSD.map { -$0 }),
                    LedgerEntry(.networkFees, asset: gasAsset, gas),
                    LedgerEntry(.hotWallet, asset: gasAsset, -gas),
                ],
                on: connection, logger: logger
            )
            if !release {
                try await queue.enqueue(
                    SubscriptionAlertJob(alert: .payoutFailed(payoutID: payout.id, ownerUserID: payout.ownerUserID, reason: reason)), on: connection
                )
                try await OwnerNotifications.enqueue(
                    .payoutFailed(failedNotice(payout), problem: ownerFixable ? .invalidWallet : .other), channelID: payout.channelID, queue: queue,
                    on: connection
                )
            }
            return true
        }
        if ended {
            if release {
                logger.notice(
                    "payout returned to pending; it is planned again when the exchange takes it",
                    metadata: ["payout_id": "\(payout.id)", "reason": "\(reason)"])
            } else {
                logger.error("payout failed; its amount is pending again", metadata: ["payout_id": "\(payout.id)", "reason": "\(reason)"])
                var failed = payout
                failed.ownerFixable = ownerFixable
                await events?.payoutFailed(failed, reason: reason)
            }
        }
        return ended
    }

    /// What operators read and steer.
    public var desk: PayoutDesk { PayoutDesk(database: database, logger: logger) }
}

/// Payouts as operators see and steer them (`telepay payouts`): needs the database only.
public struct PayoutDesk: Sendable {
    let database: Database
    let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// Allows the channel's next payout after failed payout `id` (`telepay payouts retry`). Refused unless the
    /// payout failed — which it does only when it provably moved no money, or its refund is booked — and is
    /// its channel's latest payout and not released already: a retry can never pay twice.
    public func release(payoutID: Int64) async throws -> PayoutRelease {
        let logger = self.logger
        return try await database.withTransaction { connection in
            guard let payout = try await PayoutStore.find(payoutID, on: connection, logger: logger) else { return .notFound }
            guard payout.state == .failed else { return .refused("payout \(payoutID) is \(payout.state.rawValue), not failed") }
            guard try await PayoutStore.release(payoutID, on: connection, logger: logger) else {
                return .refused("payout \(payoutID) is not its channel's latest payout, or was released already")
            }
            logger.notice("failed payout released by an operator", metadata: ["payout_id": "\(payoutID)"])
            return .released(payout)
        }
    }

    /// Per owner and channel: earned, pending, in flight and paid out.
    public func balances(ownerUserID: Int64? = nil, limit: Int = 1000) async throws -> [OwnerPayoutBalance] {
        let logger = self.logger
        return try await database.withConnection { try await PayoutStore.balances(ownerUserID: ownerUserID, limit: limit, on: $0, logger: logger) }
    }

    /// The latest payouts in `states`.
    public func payouts(in states: [PayoutState], limit: Int = 50) async throws -> [Payout] {
        let logger = self.logger
        return try await database.withConnection { try await PayoutStore.recent(states, limit: limit, on: $0, logger: logger) }
    }

    /// The latest batch conversions with their parts (each channel's part and what it got).
    public func conversions(limit: Int = 10) async throws -> [(conversion: Conversion, parts: [ConversionPart])] {
        let logger = self.logger
        return try await database.withConnection { connection in
            var result: [(Conversion, [ConversionPart])] = []
            for conversion in try await ConversionStore.recent(limit: limit, on: connection, logger: logger) {
                result.append((conversion, try await ConversionStore.parts(of: conversion.id, on: connection, logger: logger)))
            }
            return result
        }
    }

    /// Open payouts per state: how many and the oldest one's age in seconds.
    public func openCounts() async throws -> [(state: PayoutState, count: Int, oldestSeconds: Double)] {
        let logger = self.logger
        return try await database.withConnection { try await PayoutStore.openCounts(on: $0, logger: logger) }.map { ($0.0, $0.1, $0.2) }
    }
}

/// What `release` did.
public enum PayoutRelease: Sendable, Hashable {
    case released(Payout)
    case refused(String)
    case notFound
}

/// ChangeNOW's minimum per pair, asked at most once per `minimumLifetime`.
final class MinimumCache: Sendable {
    private let entries = Mutex<[ExchangePair: (Decimal, ContinuousClock.Instant)]>([:])

    func minimum(for pair: ExchangePair, exchange: PayoutExchange) async throws -> Decimal {
        let now = ContinuousClock.now
        if let (amount, fetched) = entries.withLock({ $0[pair] }), now - fetched < exchange.minimumLifetime {
            return amount
        }
        let minimum = try await exchange.api.minimumAmount(pair: pair, flow: .standard).minAmount
        entries.withLock { $0[pair] = (minimum, now) }
        return minimum
    }
}

/// One pass of the payouts.
public struct PayoutPassJob: JobPayload {
    public static let kind = "payouts.pass"
    public static let maxAttempts = 3

    public var slot: PeriodicSlot
}

/// Runs the payouts every `interval`: the batch conversion (when threshold payouts are on), then each payout
/// service (instant payouts in the settlement asset, threshold payouts in USDT). After each pass it records
/// `telepay_payouts_open{state}` and `telepay_payouts_oldest_seconds{state}` (zero for an empty state) and
/// counts what the pass did in `telepay_payouts_total{event}` (planned, carried, paid, failed, held) and
/// `telepay_conversions_total{event}` (planned, funded, converted, failed, held).
public struct PayoutRunner: JobHandler {
    public let services: [PayoutService]
    public let conversions: ConversionService?
    let metrics: (any MetricsFactory)?

    public init(service: PayoutService, metrics: (any MetricsFactory)? = nil) {
        self.init(services: [service], conversions: nil, metrics: metrics)
    }

    public init(services: [PayoutService], conversions: ConversionService?, metrics: (any MetricsFactory)? = nil) {
        self.services = services
        self.conversions = conversions
        self.metrics = metrics
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 1) }

    public func run(_ payload: PayoutPassJob, context: JobContext) async throws {
        let converted = try await conversions?.runPass()
        var pass = PayoutService.Pass()
        for service in services {
            pass += try await service.runPass()
        }
        guard let metrics, let desk = services.first?.desk else { return }
        if let converted {
            for (event, happened) in [
                ("planned", converted.planned != nil), ("funded", converted.funded), ("converted", converted.converted), ("failed", converted.failed),
                ("held", converted.held),
            ] where happened {
                Counter(label: "telepay_conversions_total", dimensions: [("event", event)], factory: metrics).increment()
            }
        }
        for (event, count) in [
            ("planned", pass.planned), ("carried", pass.carried), ("paid", pass.paid), ("failed", pass.failed), ("held", pass.held),
        ] where count > 0 {
            Counter(label: "telepay_payouts_total", dimensions: [("event", event)], factory: metrics).increment(by: count)
        }
        let open = try await desk.openCounts()
        for state in PayoutState.open {
            let row = open.first { $0.state == state }
            Gauge(label: "telepay_payouts_open", dimensions: [("state", state.rawValue)], factory: metrics).record(row?.count ?? 0)
            Gauge(label: "telepay_payouts_oldest_seconds", dimensions: [("state", state.rawValue)], factory: metrics).record(row?.oldestSeconds ?? 0)
        }
    }

    public static func periodicTask(every interval: Duration) throws -> PeriodicTask {
        try PeriodicTask("payouts.pass", every: interval, catchUp: .runOnce) { PayoutPassJob(slot: $0) }
    }
}
