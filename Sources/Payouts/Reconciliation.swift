import BigInt
import Ethereum
import Exchange
import ExchangeOrders
import Foundation
import HotWallet
import Jobs
import Logging
import Metrics
import Money
import PostgresNIO
import Storage
import Subscriptions
import Synchronization

/// Compares the ledger with the chain: the hot wallet's balance of each asset at one block against the
/// ledger's `hot_wallet` account, explained by what is legitimately between them at that moment:
///
/// - **mined, not booked**: a payout's or a conversion's transfer is in a block but the payout engine has
///   not booked it yet (it books once the transfer is final at depth): its value and its gas have left the
///   chain balance, not yet the ledger;
/// - **arrived, not allocated**: a conversion's USDT reached the hot wallet and waits to be allocated.
///
/// Whatever remains is drift: money that moved without TelePay (a transfer made with the key elsewhere, a
/// deposit nobody booked — see `recordDeposit`), or a settlement the ledger booked from NOWPayments' report
/// that never reached the wallet. The exchanges' side (ChangeNOW exchanges without an intent) is
/// `ExchangeReconciliation`'s.
public struct Reconciliation: Sendable {
    let database: Database
    let sender: TransferSender
    let rpc: any EthereumRPC
    /// Ledger asset → the token contract it is on the chain (USDT); ETH is the chain's own coin.
    let tokens: [String: Address]
    let orders: ExchangeOrderService?
    /// ChangeNOW with the key that may list exchanges (the private key), for the orphan check.
    let lister: (any ChangeNowAPI)?
    let logger: Logger

    public init(
        database: Database, sender: TransferSender, rpc: any EthereumRPC, tokens: [String: Address], orders: ExchangeOrderService?,
        lister: (any ChangeNowAPI)? = nil, logger: Logger
    ) {
        self.database = database
        self.sender = sender
        self.rpc = rpc
        self.tokens = tokens
        self.orders = orders
        self.lister = lister
        self.logger = logger
    }

    /// One asset's comparison, in its smallest units.
    public struct Line: Sendable, Hashable {
        public var asset: String
        public var onChain: Decimal
        public var ledger: Decimal
        /// Value and gas that left the chain balance and are not booked yet (positive).
        public var minedNotBooked: Decimal
        /// Value that reached the chain balance and is not booked yet (positive).
        public var arrivedNotBooked: Decimal
        /// What the ledger, as explained, says the chain should hold.
        public var expected: Decimal { ledger - minedNotBooked + arrivedNotBooked }
        /// Chain minus expected: positive when the wallet holds more than the books explain.
        public var drift: Decimal { onChain - expected }
        /// What makes up the explained part, for the operator.
        public var explanations: [String]
    }

    public struct Report: Sendable, Hashable {
        public var block: UInt64
        public var wallet: String
        public var lines: [Line]
        /// ChangeNOW's exchanges of the last 7 days against the intents (with a private key only).
        public var exchanges: ExchangeReconciliation?
        public var isClean: Bool { lines.allSatisfy { $0.drift == 0 } && exchanges?.isClean != false }
        public var drifts: [Line] { lines.filter { $0.drift != 0 } }
    }

    public func run() async throws -> Report {
        let logger = self.logger
        let wallet = sender.wallet
        let block = try await rpc.blockNumber()
        let summary = try await database.withConnection { try await LedgerStore.summary(heldLimit: 0, on: $0, logger: logger) }
        func ledger(_ asset: String) -> Decimal {
            summary.balances.first { $0.account == LedgerAccount.hotWallet.rawValue && $0.asset == asset }?.amount ?? 0
        }
        var lines = [
            Line(
                asset: "ETH", onChain: try Self.decimal(try await rpc.balance(of: wallet, at: .number(block))), ledger: ledger("ETH"),
                minedNotBooked: 0, arrivedNotBooked: 0, explanations: [])
        ]
        for (asset, contract) in tokens.sorted(by: { $0.key < $1.key }) {
            lines.append(
                Line(
                    asset: asset, onChain: try Self.decimal(try await rpc.tokenBalance(token: contract, owner: wallet, at: .number(block))),
                    ledger: ledger(asset),
                    minedNotBooked: 0, arrivedNotBooked: 0, explanations: []
                ))
        }
        func add(_ asset: String, out: Decimal = 0, in arrived: Decimal = 0, _ why: String) {
            guard let index = lines.firstIndex(where: { $0.asset == asset }) else { return }
            lines[index].minedNotBooked += out
            lines[index].arrivedNotBooked += arrived
            lines[index].explanations.append(why)
        }

        // Transfers of payouts and conversions that have not booked their transfer yet.
        let (payouts, conversions) = try await database.withConnection { connection in
            var open: [Payout] = []
            for state in [PayoutState.planned, .sending] {
                for asset in ["ETH"] + tokens.keys.sorted() {
                    open += try await PayoutStore.inState(state, asset: asset, limit: 10_000, on: connection, logger: logger)
                }
            }
            return (open, try await ConversionStore.open(on: connection, logger: logger))
        }
        var keyed: [(key: String, what: String, asset: String)] = payouts.map { ($0.transferKey, "payout \($0.id)", $0.asset) }
        for conversion in conversions where conversion.state == .planned || conversion.state == .sending {
            if let key = conversion.transferKey { keyed.append((key, "conversion \(conversion.id)", conversion.fromAsset)) }
        }
        for (key, what, asset) in keyed {
            guard let transfer = try await sender.transfer(key: key), let hash = transfer.minedTransactionHash,
                let receipt = try await rpc.transactionReceipt(hash), receipt.blockNumber <= block
            else { continue }
            let gas = try Self.decimal(receipt.fee)
            let value = receipt.succeeded ? try Self.decimal(transfer.amount) : 0
            if asset == "ETH" {
                add(
                    "ETH", out: value + gas, "\(what): \(DecimalText.plain(value)) wei and \(DecimalText.plain(gas)) wei of gas mined, not booked yet"
                )
            } else {
                add(asset, out: value, "\(what): \(DecimalText.plain(value)) \(asset) units mined, not booked yet")
                add("ETH", out: gas, "\(what): \(DecimalText.plain(gas)) wei of gas mined, not booked yet")
            }
        }
        // Conversions' USDT that arrived and is not allocated yet (the active one's and any held one's).
        for conversion in conversions where conversion.state == .exchanging || conversion.state == .held {
            guard let contract = tokens[conversion.toAsset], let intentID = conversion.exchangeIntentID, let orders else { continue }
            if let hash = try await orders.tracking(intentId: intentID).payoutHash, let bytes = try? Hex.decodeData(hash), bytes.count == 32,
                let receipt = try await rpc.transactionReceipt(bytes),
                receipt.blockNumber <= block, receipt.succeeded
            {
                let units = try Self.decimal(ERC20.received(by: wallet, token: contract, in: receipt.logs))
                add(
                    conversion.toAsset, in: units,
                    "conversion \(conversion.id): \(DecimalText.plain(units)) \(conversion.toAsset) units arrived, not allocated yet")
            }
        }
        var exchanges: ExchangeReconciliation?
        if let lister, let orders {
            exchanges = try await orders.reconcile(lister: lister, since: Date().addingTimeInterval(-7 * 86_400))
        }
        return Report(block: block, wallet: wallet.checksummed, lines: lines, exchanges: exchanges)
    }

    /// Books money put into the hot wallet from outside the sales (gas money from the operator) as the
    /// operator's capital, so the books explain it.
    public static func recordDeposit(
        asset: String, units: Decimal, note: String, database: Database, logger: Logger
    ) async throws -> Bool {
        try await database.withConnection { connection in
            try await LedgerStore.book(
                .deposit, key: "deposit:\(UUID().uuidString)", orderID: nil, paymentID: nil,
                entries: [LedgerEntry(.hotWallet, asset: asset, units), LedgerEntry(.operatorCapital, asset: asset, -units)],
                on: connection, logger: logger
            ) != nil
        }
    }

    /// A chain amount as a decimal, exactly (a failure is an error, never a silent zero).
    static func decimal(_ value: BigUInt) throws -> Decimal {
        try DecimalText.require(value.description, "chain amount")
    }
}

/// One reconciliation pass.
public struct ReconciliationJob: JobPayload {
    public static let kind = "ledger.reconcile"
    public static let maxAttempts = 3

    public var slot: PeriodicSlot
}

/// Reconciles every `interval` (default hourly). Drift in two passes in a row raises an admin alert with the
/// assets and amounts (one pass alone may catch a deposit between its arrival and its booking); the gauge
/// `telepay_reconciliation_drift{asset}` holds the latest drift in smallest units.
public struct ReconciliationRunner: JobHandler {
    public let reconciliation: Reconciliation
    let queue: JobQueue
    let metrics: (any MetricsFactory)?
    let previous = PreviousDrift()

    public init(reconciliation: Reconciliation, queue: JobQueue, metrics: (any MetricsFactory)? = nil) {
        self.reconciliation = reconciliation
        self.queue = queue
        self.metrics = metrics
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 1) }

    public func run(_ payload: ReconciliationJob, context: JobContext) async throws {
        let report = try await reconciliation.run()
        try await act(on: report)
    }

    /// Alerts when this report and the one before both drift.
    public func act(on report: Reconciliation.Report) async throws {
        if let metrics {
            for line in report.lines {
                Gauge(label: "telepay_reconciliation_drift", dimensions: [("asset", line.asset)], factory: metrics)
                    .record(NSDecimalNumber(decimal: line.drift).doubleValue)
            }
        }
        let drifted = !report.isClean
        let before = previous.swap(drifted)
        guard drifted, before else {
            if drifted {
                reconciliation.logger.warning(
                    "reconciliation found drift; alerting if the next pass finds it too", metadata: ["block": "\(report.block)"])
            }
            return
        }
        var parts = report.drifts.map {
            "\($0.asset) on chain \(DecimalText.plain($0.onChain)), books explain \(DecimalText.plain($0.expected)) (hot_wallet \(DecimalText.plain($0.ledger))), drift \(DecimalText.plain($0.drift))"
        }
        if let exchanges = report.exchanges, !exchanges.isClean {
            parts.append(
                "ChangeNOW: \(exchanges.orphans.count) exchange(s) without an intent, \(exchanges.missing.count) recorded exchange(s) ChangeNOW does not list"
            )
        }
        let detail = parts.joined(separator: "; ")
        try await reconciliation.database.withConnection { connection in
            try await queue.enqueue(SubscriptionAlertJob(alert: .drift(check: "hot wallet at block \(report.block)", detail: detail)), on: connection)
        }
        reconciliation.logger.error("reconciliation drift", metadata: ["detail": "\(detail)"])
    }

    public static func periodicTask(every interval: Duration) throws -> PeriodicTask {
        try PeriodicTask("ledger.reconcile", every: interval, catchUp: .runOnce) { ReconciliationJob(slot: $0) }
    }
}

/// Whether the last pass drifted.
final class PreviousDrift: Sendable {
    private let value = Mutex(false)

    func swap(_ new: Bool) -> Bool {
        value.withLock { old in
            defer { old = new }
            return old
        }
    }
}
