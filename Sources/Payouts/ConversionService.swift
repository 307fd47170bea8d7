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

/// How batch conversions behave; built from TelePay's configuration.
public struct ConversionSettings: Sendable, Hashable {
    /// A conversion starts once the pooled shares were worth at least this much at payment time.
    public var minimumUSD: Decimal
    /// What shares are converted into, and how ChangeNOW names it.
    public var target: SettlementAsset
    public var targetLeg: ExchangeLeg
    /// How often a new conversion may be planned (the open one is advanced on every pass).
    public var interval: Duration

    public init(
        minimumUSD: Decimal = 20, interval: Duration = .seconds(900), target: SettlementAsset = .usdt,
        targetLeg: ExchangeLeg = ExchangeLeg(currency: "usdt", network: "eth")
    ) {
        self.minimumUSD = minimumUSD
        self.interval = interval
        self.target = target
        self.targetLeg = targetLeg
    }
}

/// Converts threshold owners' shares into USDT in batches. Each pass plans a conversion when there is none
/// open and the pooled pending shares are worth the minimum (and at least ChangeNOW's minimum), then advances
/// the open one a step, each recorded before the next external call, with the same exactly-once rules as
/// exchange payouts: the intent before the create call, the exchange checked before it is funded, one funding
/// transfer per intent. The exchange pays the hot wallet itself. When it finishes, the USDT that reached the
/// hot wallet on the chain (read from the payout transaction's logs, not from ChangeNOW's report) is allocated
/// to the contributing channels by the largest remainder over what each put in, so the parts sum exactly to
/// what arrived; a difference from ChangeNOW's report alerts the admins. A conversion that fails before
/// funding, or is refunded, returns every share to pending (a refund's shortfall is the platform's cost); one
/// that fails after funding is held for the admins. Shares that arrive meanwhile wait for the next conversion.
/// The platform's fee is never converted: only owners' shares are pending.
public struct ConversionService: Sendable {
    let database: Database
    let queue: JobQueue
    let wallet: any PayoutWallet
    let arrivals: any ConversionArrivals
    let settlement: SettlementAsset
    let exchange: PayoutExchange
    /// Where the converted asset goes: the hot wallet's own address.
    let hotWallet: String
    let settings: ConversionSettings
    let probe: (any PayoutProbe)?
    let logger: Logger
    let minimums = MinimumCache()
    let cadence = Cadence()

    public init(
        database: Database, queue: JobQueue, wallet: any PayoutWallet, arrivals: any ConversionArrivals, settlement: SettlementAsset,
        exchange: PayoutExchange, hotWallet: String, settings: ConversionSettings = ConversionSettings(), probe: (any PayoutProbe)? = nil,
        logger: Logger
    ) {
        self.database = database
        self.queue = queue
        self.wallet = wallet
        self.arrivals = arrivals
        self.settlement = settlement
        self.exchange = exchange
        self.hotWallet = hotWallet
        self.settings = settings
        self.probe = probe
        self.logger = logger
    }

    /// What one pass did.
    public struct Pass: Sendable, Hashable {
        public var planned: Int64?
        /// Why nothing was planned (below the minimum, ChangeNOW's minimum unknown), when nothing was.
        public var waiting: String?
        public var funded = false
        public var converted = false
        public var failed = false
        public var held = false
    }

    var pair: ExchangePair { ExchangePair(from: exchange.from, to: settings.targetLeg) }

    /// Watches the held conversions (their exchange may still refund or pay), then advances the active one as
    /// far as it goes now (each step recorded before the next); with none active, plans one when the last
    /// planning attempt is `settings.interval` old. A held conversion does not stop the next one.
    @discardableResult
    public func runPass() async throws -> Pass {
        var pass = Pass()
        let logger = self.logger
        for held in try await database.withConnection({ try await ConversionStore.held(limit: 100, on: $0, logger: logger) }) {
            try await trackExchange(held, into: &pass)
        }
        for _ in 0..<4 {
            var open = try await database.withConnection { try await ConversionStore.active(on: $0, logger: logger) }
            if open == nil {
                guard cadence.due(every: settings.interval) else { return pass }
                open = try await plan(into: &pass)
            }
            guard let conversion = open else { return pass }
            switch conversion.state {
            case .planned: try await advance(conversion, into: &pass)
            case .sending: try await trackFunding(conversion, into: &pass)
            case .exchanging: try await trackExchange(conversion, into: &pass)
            case .held, .converted, .failed: return pass
            }
            let now = try await database.withConnection { try await ConversionStore.find(conversion.id, on: $0, logger: logger) }
            guard let now, now.state != conversion.state, ConversionState.active.contains(now.state) else { return pass }
        }
        return pass
    }

    // MARK: - Planning

    /// The part of a pending share a conversion can take: whole steps of ChangeNOW's precision (8 decimals),
    /// and its USD value in proportion.
    func part(of share: PendingShare) -> PendingShare {
        let step = SettlementAsset.power(of: 10, settlement.decimals - exchange.amountDecimals)
        let units = DecimalText.rounded(share.units / step, scale: 0, .down) * step
        return PendingShare(
            ownerUserID: share.ownerUserID, channelID: share.channelID, units: units,
            valueUSD: PayoutStore.value(of: units, pending: share.units, pendingUSD: share.valueUSD)
        )
    }

    func plan(into pass: inout Pass) async throws -> Conversion? {
        let logger = self.logger
        let asset = settlement.asset
        let shares = try await database.withConnection { try await ConversionStore.pendingShares(asset: asset, lock: false, on: $0, logger: logger) }
        let parts = shares.map(part).filter { $0.units > 0 }
        let units = parts.reduce(Decimal(0)) { $0 + $1.units }
        let value = parts.reduce(Decimal(0)) { $0 + $1.valueUSD }
        guard value >= settings.minimumUSD, units > 0 else {
            pass.waiting = "pending shares are worth $\(DecimalText.plain(value)), below the $\(DecimalText.plain(settings.minimumUSD)) minimum"
            return nil
        }
        do {
            let minimum = try await minimums.minimum(for: pair, exchange: exchange)
            guard units / settlement.unitsPerCoin >= minimum else {
                pass.waiting =
                    "pending shares are \(DecimalText.plain(units / settlement.unitsPerCoin)) \(asset), below ChangeNOW's minimum of \(DecimalText.plain(minimum))"
                return nil
            }
        } catch {
            pass.waiting = "ChangeNOW's minimum is unknown now: \(error)"
            logger.warning("cannot read ChangeNOW's minimum; the conversion waits for the next pass", metadata: ["error": "\(error)"])
            return nil
        }
        let target = settings.target.asset
        let conversion = try await database.withTransaction { connection -> Conversion? in
            // Under the balance rows' locks, what is pending cannot change; the parts are taken again from it.
            let locked = try await ConversionStore.pendingShares(asset: asset, lock: true, on: connection, logger: logger).map(part).filter {
                $0.units > 0
            }
            guard !locked.isEmpty,
                let conversion = try await ConversionStore.insert(parts: locked, fromAsset: asset, toAsset: target, on: connection, logger: logger)
            else {
                return nil
            }
            var entries: [LedgerEntry] = []
            for part in locked {
                entries.append(
                    LedgerEntry(.ownerPayable, owner: part.ownerUserID, channel: part.channelID, asset: asset, part.units, valueUSD: part.valueUSD))
                entries.append(
                    LedgerEntry(
                        .ownerConverting, owner: part.ownerUserID, channel: part.channelID, asset: asset, -part.units, valueUSD: -part.valueUSD))
            }
            try await LedgerStore.book(
                .conversion, key: "conversion:\(conversion.id):planned", orderID: nil, paymentID: nil, entries: entries, on: connection,
                logger: logger)
            return conversion
        }
        if let conversion {
            pass.planned = conversion.id
            await probe?.reached(.planned, payoutID: conversion.id)
            logger.info(
                "conversion planned",
                metadata: [
                    "conversion_id": "\(conversion.id)", "units": "\(DecimalText.plain(conversion.fromUnits))",
                    "value_usd": "\(DecimalText.plain(conversion.valueUSD))",
                ]
            )
        }
        return conversion
    }

    // MARK: - Planned → sending

    func advance(_ conversion: Conversion, into pass: inout Pass) async throws {
        let logger = self.logger
        let database = self.database
        let probe = self.probe
        let target = settings.target
        let subject = ExchangeSteps.Subject(
            key: "conversion:\(conversion.id)", pair: pair, fromAmount: conversion.fromUnits / settlement.unitsPerCoin, payoutAddress: hotWallet,
            payoutMemo: nil, intentID: conversion.exchangeIntentID
        )
        let outcome = try await ExchangeSteps(exchange: exchange, logger: logger).run(
            subject,
            recorded: { intentID, estimate in
                try await database.withConnection { connection in
                    try await ConversionStore.setIntent(
                        conversion.id, intentID: intentID, estimatedUnits: estimate.map { target.units($0) }, on: connection, logger: logger
                    )
                }
            },
            reached: { step in await probe?.reached(step, payoutID: conversion.id) }
        )
        switch outcome {
        case .later:
            return
        case .refused(let reason, _, let release):
            if try await fail(conversion, from: .planned, reason: reason, gas: 0, alert: !release) { pass.failed = true }
        case .ready(let funding):
            do {
                try await wallet.submit(key: funding.transferKey, recipient: funding.payinAddress, units: conversion.fromUnits)
                await probe?.reached(.transferRecorded, payoutID: conversion.id)
            } catch {
                if try await wallet.outcome(key: funding.transferKey) == nil {
                    if try await fail(conversion, from: .planned, reason: "the hot wallet refused the transfer: \(error)", gas: 0, alert: true) {
                        pass.failed = true
                    }
                } else {
                    logger.warning(
                        "recording a conversion's transfer failed; trying again next pass",
                        metadata: ["conversion_id": "\(conversion.id)", "error": "\(error)"])
                }
                return
            }
            let moved = try await database.withConnection {
                try await ConversionStore.move(conversion.id, from: .planned, to: .sending, on: $0, logger: logger)
            }
            if moved {
                await probe?.reached(.sending, payoutID: conversion.id)
                logger.info("conversion sending", metadata: ["conversion_id": "\(conversion.id)", "transfer": "\(funding.transferKey)"])
            }
        }
    }

    // MARK: - Sending → exchanging

    func trackFunding(_ conversion: Conversion, into pass: inout Pass) async throws {
        let logger = self.logger
        let asset = settlement.asset
        guard let key = conversion.transferKey else { return }
        switch try await wallet.outcome(key: key) {
        case nil, .pending?:
            return
        case .confirmed(let gas, _)?:
            let moved = try await database.withTransaction { connection -> Bool in
                guard try await ConversionStore.move(conversion.id, from: .sending, to: .exchanging, gas: gas, on: connection, logger: logger) else {
                    return false
                }
                try await LedgerStore.book(
                    .conversion, key: "conversion:\(conversion.id):funded", orderID: nil, paymentID: nil,
                    entries: [
                        LedgerEntry(.exchangeClearing, asset: asset, conversion.fromUnits),
                        LedgerEntry(.hotWallet, asset: asset, -conversion.fromUnits),
                        LedgerEntry(.networkFees, asset: asset, gas), LedgerEntry(.hotWallet, asset: asset, -gas),
                    ],
                    on: connection, logger: logger
                )
                return true
            }
            if moved {
                pass.funded = true
                await probe?.reached(.funded, payoutID: conversion.id)
                logger.info("conversion's exchange funded", metadata: ["conversion_id": "\(conversion.id)", "gas": "\(DecimalText.plain(gas))"])
            }
        case .failed(let reason, let gas)?:
            if try await fail(conversion, from: .sending, reason: reason, gas: gas, alert: true) { pass.failed = true }
        }
    }

    // MARK: - Exchanging → converted / failed / held

    func trackExchange(_ conversion: Conversion, into pass: inout Pass) async throws {
        let logger = self.logger
        guard let intentID = conversion.exchangeIntentID else { return }
        let intent: ExchangeIntent
        do {
            intent = try await exchange.orders.refreshStatus(intentId: intentID, verifyingAlertAfter: exchange.verifyingAlertAfter)
        } catch {
            logger.warning(
                "cannot read a conversion's exchange; trying again next pass", metadata: ["conversion_id": "\(conversion.id)", "error": "\(error)"])
            return
        }
        switch intent.state {
        case .finished:
            let tracking = try await exchange.orders.tracking(intentId: intentID)
            let reported = settings.target.units(tracking.amountTo ?? 0)
            guard let hash = tracking.payoutHash else {
                try await hold(
                    conversion,
                    detail:
                        "ChangeNOW reports exchange \(intent.exchangeId ?? "?") finished without a payout transaction; nothing can be allocated until the USDT is found"
                )
                pass.held = conversion.state != .held
                return
            }
            guard let received = try await arrivals.received(transaction: hash) else { return }
            guard received > 0 else {
                try await hold(
                    conversion,
                    detail: "ChangeNOW reports \(DecimalText.plain(tracking.amountTo ?? 0)) sent in \(hash), but none of it reached the hot wallet")
                pass.held = conversion.state != .held
                return
            }
            if try await allocate(conversion, reported: reported, received: received, hash: hash) {
                pass.converted = true
                await probe?.reached(.paid, payoutID: conversion.id)
            }
        case .refunded:
            let tracking = try await exchange.orders.tracking(intentId: intentID)
            let refund = min(settlement.units(tracking.refundAmount ?? 0), conversion.fromUnits)
            if try await refunded(conversion, refundUnits: refund) { pass.failed = true }
        case .failed:
            if conversion.state == .exchanging {
                try await hold(conversion, detail: "exchange \(intent.exchangeId ?? "?") failed after it was funded; ask ChangeNOW for the refund")
                pass.held = true
            }
        default:
            return
        }
    }

    /// Books the conversion's end: the settlement asset leaves the exchange's clearing and the owners'
    /// converting balances; what arrived enters the hot wallet and is allocated to the parts.
    func allocate(_ conversion: Conversion, reported: Decimal, received: Decimal, hash: String) async throws -> Bool {
        let logger = self.logger
        let asset = settlement.asset
        let target = settings.target.asset
        let queue = self.queue
        let done = try await database.withTransaction { connection -> Bool in
            guard
                try await ConversionStore.move(
                    conversion.id, from: conversion.state, to: .converted, received: received, on: connection, logger: logger)
            else {
                return false
            }
            let parts = try await ConversionStore.parts(of: conversion.id, on: connection, logger: logger)
            let shares = Allocation.largestRemainder(received, weights: parts.map(\.fromUnits))
            var entries = [LedgerEntry(.exchangeClearing, asset: asset, -conversion.fromUnits), LedgerEntry(.hotWallet, asset: target, received)]
            for (part, share) in zip(parts, shares) {
                entries.append(
                    LedgerEntry(
                        .ownerConverting, owner: part.ownerUserID, channel: part.channelID, asset: asset, part.fromUnits, valueUSD: part.valueUSD))
                entries.append(LedgerEntry(.ownerPayable, owner: part.ownerUserID, channel: part.channelID, asset: target, -share))
            }
            try await ConversionStore.recordArrival(
                conversion.id, reported: reported, received: received, payoutHash: hash,
                allocations: zip(parts, shares).map { ($0.channelID, $1) }, on: connection, logger: logger
            )
            try await LedgerStore.book(
                .conversion, key: "conversion:\(conversion.id):converted", orderID: nil, paymentID: nil, entries: entries, on: connection,
                logger: logger)
            for (part, share) in zip(parts, shares) {
                try await OwnerNotifications.enqueue(
                    .converted(
                        ConversionNotice(
                            conversionID: conversion.id, valueUSD: DecimalText.plain(part.valueUSD),
                            amount: DecimalText.plain(share / settings.target.unitsPerCoin), currency: target
                        )),
                    channelID: part.channelID, queue: queue, on: connection
                )
            }
            if received != reported {
                try await queue.enqueue(
                    SubscriptionAlertJob(
                        alert: .conversion(
                            conversionID: conversion.id, event: "arrived-differently",
                            detail:
                                "ChangeNOW reported \(DecimalText.plain(reported)) \(target) units sent in \(hash); \(DecimalText.plain(received)) reached the hot wallet, and that is what was allocated"
                        )), on: connection)
            }
            return true
        }
        if done {
            logger.info(
                "conversion allocated",
                metadata: [
                    "conversion_id": "\(conversion.id)", "received": "\(DecimalText.plain(received))", "reported": "\(DecimalText.plain(reported))",
                ]
            )
        }
        return done
    }

    /// Holds a conversion that needs an operator (once), alerting the admins.
    func hold(_ conversion: Conversion, detail: String) async throws {
        guard conversion.state != .held else { return }
        let logger = self.logger
        let queue = self.queue
        let moved = try await database.withConnection { connection -> Bool in
            guard try await ConversionStore.move(conversion.id, from: conversion.state, to: .held, failure: detail, on: connection, logger: logger)
            else { return false }
            try await queue.enqueue(
                SubscriptionAlertJob(alert: .conversion(conversionID: conversion.id, event: "held", detail: detail)), on: connection)
            return true
        }
        if moved { logger.error("conversion held", metadata: ["conversion_id": "\(conversion.id)", "detail": "\(detail)"]) }
    }

    /// Ends a conversion whose deposit came back: the refund is in the hot wallet again, what the exchange
    /// kept is the platform's cost, and every share is pending again in full.
    func refunded(_ conversion: Conversion, refundUnits: Decimal) async throws -> Bool {
        let reason = "the exchange refunded \(DecimalText.plain(refundUnits / settlement.unitsPerCoin)) \(settlement.asset) to the hot wallet"
        let asset = settlement.asset
        return try await end(
            conversion, from: conversion.state, reason: reason, refund: refundUnits, alert: true,
            extra: [
                LedgerEntry(.exchangeClearing, asset: asset, -conversion.fromUnits),
                LedgerEntry(.hotWallet, asset: asset, refundUnits),
                LedgerEntry(.networkFees, asset: asset, conversion.fromUnits - refundUnits),
            ],
            key: "refunded"
        )
    }

    /// Ends a conversion that moved no money: every share is pending again (any gas a reverted transfer cost is
    /// the platform's). `alert`: the admins hear of it (not when ChangeNOW only said "out of range now").
    @discardableResult
    func fail(_ conversion: Conversion, from state: ConversionState, reason: String, gas: Decimal, alert: Bool) async throws -> Bool {
        let asset = settlement.asset
        return try await end(
            conversion, from: state, reason: reason, gas: gas, alert: alert,
            extra: [LedgerEntry(.networkFees, asset: asset, gas), LedgerEntry(.hotWallet, asset: asset, -gas)], key: "failed"
        )
    }

    func end(
        _ conversion: Conversion, from state: ConversionState, reason: String, gas: Decimal? = nil, refund: Decimal? = nil, alert: Bool,
        extra: [LedgerEntry], key: String
    ) async throws -> Bool {
        let logger = self.logger
        let asset = settlement.asset
        let queue = self.queue
        let ended = try await database.withTransaction { connection -> Bool in
            guard
                try await ConversionStore.move(
                    conversion.id, from: state, to: .failed, failure: reason, gas: gas, refund: refund, on: connection, logger: logger)
            else {
                return false
            }
            var entries = extra
            for part in try await ConversionStore.parts(of: conversion.id, on: connection, logger: logger) {
                entries.append(
                    LedgerEntry(
                        .ownerConverting, owner: part.ownerUserID, channel: part.channelID, asset: asset, part.fromUnits, valueUSD: part.valueUSD))
                entries.append(
                    LedgerEntry(
                        .ownerPayable, owner: part.ownerUserID, channel: part.channelID, asset: asset, -part.fromUnits, valueUSD: -part.valueUSD))
            }
            try await LedgerStore.book(
                .conversionReturn, key: "conversion:\(conversion.id):\(key)", orderID: nil, paymentID: nil, entries: entries, on: connection,
                logger: logger)
            if alert {
                try await queue.enqueue(
                    SubscriptionAlertJob(
                        alert: .conversion(
                            conversionID: conversion.id, event: key, detail: "\(reason); every share is pending again for the next conversion"
                        )), on: connection)
            }
            return true
        }
        if ended {
            logger.error(
                "conversion ended without converting; its shares are pending again",
                metadata: ["conversion_id": "\(conversion.id)", "reason": "\(reason)"])
            await probe?.reached(.failed, payoutID: conversion.id)
        }
        return ended
    }

    // MARK: - Operators

    /// What an operator's action on a conversion did.
    public enum OperatorOutcome: Sendable, Hashable {
        case done(String)
        case refused(String)
    }

    /// Books a conversion whose exchange finished but whose USDT TelePay could not find by itself (ChangeNOW
    /// reported no payout transaction, or one that never shows): the operator names the transaction that paid
    /// the hot wallet; what it moved to the hot wallet, read from the chain at depth, is allocated as usual.
    /// Refused unless the conversion is exchanging or held, its exchange finished, the transaction brought
    /// something, and no other conversion was booked from it.
    public func settle(conversionID: Int64, transaction hash: String) async throws -> OperatorOutcome {
        let logger = self.logger
        guard let conversion = try await database.withConnection({ try await ConversionStore.find(conversionID, on: $0, logger: logger) }) else {
            return .refused("there is no conversion \(conversionID)")
        }
        guard conversion.state == .exchanging || conversion.state == .held, let intentID = conversion.exchangeIntentID else {
            return .refused("conversion \(conversionID) is \(conversion.state.rawValue): only an exchanging or held conversion is settled by hand")
        }
        let intent = try await exchange.orders.refreshStatus(intentId: intentID, verifyingAlertAfter: exchange.verifyingAlertAfter)
        guard intent.state == .finished else {
            return .refused("its exchange \(intent.exchangeId ?? "?") is \(intent.state), not finished")
        }
        let used = try await database.withConnection { try await ConversionStore.booked(from: hash, other: conversionID, on: $0, logger: logger) }
        if let used { return .refused("transaction \(hash) was already booked for conversion \(used)") }
        guard let received = try await arrivals.received(transaction: hash) else {
            return .refused("transaction \(hash) is not mined to the wallet's confirmation depth yet")
        }
        guard received > 0 else { return .refused("transaction \(hash) brought the hot wallet nothing") }
        let tracking = try await exchange.orders.tracking(intentId: intentID)
        let reported = settings.target.units(tracking.amountTo ?? 0)
        guard try await allocate(conversion, reported: reported, received: received, hash: hash) else {
            return .refused("conversion \(conversionID) moved on meanwhile")
        }
        logger.notice("conversion settled by an operator", metadata: ["conversion_id": "\(conversionID)", "transaction": "\(hash)"])
        return .done(
            "conversion \(conversionID) settled: \(DecimalText.plain(received)) \(settings.target.asset) units from \(hash) allocated to its parts")
    }

    /// Writes off a held conversion whose money is not coming back (the exchange failed and will not refund,
    /// or it finished and nothing reached the wallet): the platform bears the loss (`exchange_clearing` →
    /// `network_fees`) and every share is pending again for the owners, who lose nothing. Refused unless held.
    public func writeOff(conversionID: Int64, reason: String) async throws -> OperatorOutcome {
        let logger = self.logger
        guard let conversion = try await database.withConnection({ try await ConversionStore.find(conversionID, on: $0, logger: logger) }) else {
            return .refused("there is no conversion \(conversionID)")
        }
        guard conversion.state == .held else {
            return .refused("conversion \(conversionID) is \(conversion.state.rawValue): only a held conversion is written off")
        }
        let asset = settlement.asset
        let ended = try await end(
            conversion, from: .held, reason: "written off by an operator: \(reason)", alert: true,
            extra: [
                LedgerEntry(.exchangeClearing, asset: asset, -conversion.fromUnits), LedgerEntry(.networkFees, asset: asset, conversion.fromUnits),
            ],
            key: "written-off"
        )
        guard ended else { return .refused("conversion \(conversionID) moved on meanwhile") }
        logger.notice("conversion written off by an operator", metadata: ["conversion_id": "\(conversionID)", "reason": "\(reason)"])
        return .done(
            "conversion \(conversionID) written off: \(DecimalText.plain(conversion.fromUnits / settlement.unitsPerCoin)) \(asset) booked as a loss; every share is pending again"
        )
    }
}

/// When something periodic last happened in this process (a restart plans at once).
final class Cadence: Sendable {
    private let last = Mutex<ContinuousClock.Instant?>(nil)

    /// Whether `interval` has passed since the last time this returned true (and if so, now is the last time).
    func due(every interval: Duration) -> Bool {
        let now = ContinuousClock.now
        return last.withLock { last in
            if let previous = last, now - previous < interval { return false }
            last = now
            return true
        }
    }
}
