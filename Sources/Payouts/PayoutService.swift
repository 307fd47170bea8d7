import Foundation
import Jobs
import Logging
import Money
import PostgresNIO
import Storage
import Subscriptions

/// How an owner takes their money (the `channel_payout_settings.strategy` column).
public enum PayoutStrategy: String, Sendable, Hashable, CaseIterable, Codable {
    /// Each sale's share is paid as soon as it is settled.
    case instant
    /// Shares accumulate until the owner's threshold (not paid by this service yet).
    case threshold
}

/// What became of a hot-wallet transfer a payout made.
public enum PayoutTransferOutcome: Sendable, Hashable {
    /// Recorded, signed, sent or mined but not yet final.
    case pending
    /// Final at depth: the value left the wallet; `gas` is what the transaction cost, in wei.
    case confirmed(gas: Decimal)
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

/// Pays owners who take instant payouts in the settlement asset on its own network (ETH on Ethereum)
/// straight from the hot wallet: every sold order's owner share becomes a payout, recorded — with its share
/// moved from pending to in flight in the ledger — before its transfer is recorded, and the transfer is the
/// hot wallet's own exactly-once transfer keyed by the payout. A confirmed transfer moves the share out of
/// the hot wallet and books its gas as a network fee; a transfer that moved nothing (never sent, or
/// reverted) puts the share back to pending and alerts the admins.
public struct PayoutService: Sendable {
    let database: Database
    let queue: JobQueue
    let wallet: any PayoutWallet
    let settlement: SettlementAsset
    let logger: Logger
    /// The owner currency and network that are the settlement asset itself: paid without an exchange.
    let directCurrency = "ETH"
    let directNetwork = "ETH"

    public init(database: Database, queue: JobQueue, wallet: any PayoutWallet, settlement: SettlementAsset, logger: Logger) {
        self.database = database
        self.queue = queue
        self.wallet = wallet
        self.settlement = settlement
        self.logger = logger
    }

    /// What one pass did.
    public struct Pass: Sendable, Hashable {
        public var planned = 0
        public var submitted = 0
        public var paid = 0
        public var failed = 0
    }

    /// Plans new payouts, records their transfers, and settles the ones whose transfers are final.
    @discardableResult
    public func runPass(batch: Int = 100) async throws -> Pass {
        var pass = Pass()
        pass.planned = try await plan(batch: batch)
        pass.submitted = try await submit(batch: batch)
        let (paid, failed) = try await track(batch: batch)
        pass.paid = paid
        pass.failed = failed
        return pass
    }

    /// Each payable share becomes a planned payout, its share moved from pending to in flight, in one
    /// transaction per payout.
    func plan(batch: Int) async throws -> Int {
        let logger = self.logger
        let asset = settlement.asset
        let shares = try await database.withConnection { connection in
            try await PayoutStore.payableShares(
                asset: asset, currency: directCurrency, network: directNetwork, strategy: .instant, limit: batch, on: connection, logger: logger
            )
        }
        var planned = 0
        for share in shares {
            let created = try await database.withTransaction { connection -> Payout? in
                guard let payout = try await PayoutStore.insert(share, asset: asset, on: connection, logger: logger) else { return nil }
                try await LedgerStore.book(
                    .payout, key: "payout:\(payout.id):planned", orderID: nil, paymentID: nil,
                    entries: [
                        LedgerEntry(.ownerPayable, owner: share.ownerUserID, asset: asset, share.amount),
                        LedgerEntry(.ownerInFlight, owner: share.ownerUserID, asset: asset, -share.amount),
                    ],
                    on: connection, logger: logger
                )
                return payout
            }
            if let created {
                planned += 1
                logger.info("payout planned", metadata: ["payout_id": "\(created.id)", "owner": "\(created.ownerUserID)", "units": "\(DecimalText.plain(created.amount))"])
            }
        }
        return planned
    }

    /// Records each planned payout's transfer with the hot wallet (idempotent on the payout's key), then marks it sending.
    func submit(batch: Int) async throws -> Int {
        let logger = self.logger
        let planned = try await database.withConnection { try await PayoutStore.inState(.planned, limit: batch, on: $0, logger: logger) }
        var submitted = 0
        for payout in planned {
            do {
                try await wallet.submit(key: payout.transferKey, recipient: payout.walletAddress, units: payout.amount)
            } catch {
                // Only when no transfer was recorded under the payout's key has it provably moved nothing: then it
                // fails and its share is pending again. Otherwise the next pass submits the same key again.
                if try await wallet.outcome(key: payout.transferKey) == nil {
                    try await fail(payout, from: .planned, reason: "the hot wallet refused the transfer: \(error)", gas: 0)
                } else {
                    logger.warning("recording a payout's transfer failed; trying again next pass", metadata: ["payout_id": "\(payout.id)", "error": "\(error)"])
                }
                continue
            }
            if try await database.withConnection({ try await PayoutStore.move(payout.id, from: .planned, to: .sending, on: $0, logger: logger) }) {
                submitted += 1
            }
        }
        return submitted
    }

    /// Ends a payout that moved no money: its share goes back to pending (any gas a reverted transfer cost is
    /// booked), and the admins are told. Returns whether this call ended it.
    @discardableResult
    func fail(_ payout: Payout, from state: PayoutState, reason: String, gas: Decimal) async throws -> Bool {
        let logger = self.logger
        let asset = settlement.asset
        let queue = self.queue
        let ended = try await database.withTransaction { connection -> Bool in
            guard try await PayoutStore.move(payout.id, from: state, to: .failed, failure: reason, gas: gas, on: connection, logger: logger) else {
                return false
            }
            try await LedgerStore.book(
                .payout, key: "payout:\(payout.id):failed", orderID: nil, paymentID: nil,
                entries: [
                    LedgerEntry(.ownerInFlight, owner: payout.ownerUserID, asset: asset, payout.amount),
                    LedgerEntry(.ownerPayable, owner: payout.ownerUserID, asset: asset, -payout.amount),
                    LedgerEntry(.networkFees, asset: asset, gas),
                    LedgerEntry(.hotWallet, asset: asset, -gas),
                ],
                on: connection, logger: logger
            )
            try await queue.enqueue(
                SubscriptionAlertJob(alert: .payoutFailed(payoutID: payout.id, ownerUserID: payout.ownerUserID, reason: reason)), on: connection
            )
            return true
        }
        if ended {
            logger.error("payout failed; its share is pending again", metadata: ["payout_id": "\(payout.id)", "reason": "\(reason)"])
        }
        return ended
    }

    /// Settles payouts whose transfers are final.
    func track(batch: Int) async throws -> (paid: Int, failed: Int) {
        let logger = self.logger
        let asset = settlement.asset
        let sending = try await database.withConnection { try await PayoutStore.inState(.sending, limit: batch, on: $0, logger: logger) }
        var paid = 0
        var failed = 0
        for payout in sending {
            switch try await wallet.outcome(key: payout.transferKey) {
            case nil, .pending?:
                continue
            case .confirmed(let gas)?:
                let moved = try await database.withTransaction { connection -> Bool in
                    guard try await PayoutStore.move(payout.id, from: .sending, to: .paid, gas: gas, on: connection, logger: logger) else { return false }
                    try await LedgerStore.book(
                        .payout, key: "payout:\(payout.id):paid", orderID: nil, paymentID: nil,
                        entries: [
                            LedgerEntry(.ownerInFlight, owner: payout.ownerUserID, asset: asset, payout.amount),
                            LedgerEntry(.hotWallet, asset: asset, -payout.amount),
                            LedgerEntry(.networkFees, asset: asset, gas),
                            LedgerEntry(.hotWallet, asset: asset, -gas),
                        ],
                        on: connection, logger: logger
                    )
                    return true
                }
                if moved {
                    paid += 1
                    logger.info("payout paid", metadata: ["payout_id": "\(payout.id)", "gas": "\(DecimalText.plain(gas))"])
                }
            case .failed(let reason, let gas)?:
                if try await fail(payout, from: .sending, reason: reason, gas: gas) { failed += 1 }
            }
        }
        return (paid, failed)
    }
}

/// One pass of the payouts.
public struct PayoutPassJob: JobPayload {
    public static let kind = "payouts.pass"
    public static let maxAttempts = 3

    public var slot: PeriodicSlot
}

/// Runs the payouts every `interval`.
public struct PayoutRunner: JobHandler {
    public let service: PayoutService

    public init(service: PayoutService) {
        self.service = service
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 1) }

    public func run(_ payload: PayoutPassJob, context: JobContext) async throws {
        try await service.runPass()
    }

    public static func periodicTask(every interval: Duration) throws -> PeriodicTask {
        try PeriodicTask("payouts.pass", every: interval, catchUp: .runOnce) { PayoutPassJob(slot: $0) }
    }
}
