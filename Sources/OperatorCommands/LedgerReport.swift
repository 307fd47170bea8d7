import App
import Exchange
import ExchangeOrders
import Foundation
import HotWallet
import Logging
import Money
import Payouts
import Storage
import Subscriptions

/// Renders `telepay ledger` output.
public enum LedgerReport {
    public static func render(_ summary: LedgerSummary) -> String {
        var lines = ["Balances (debits minus credits; each asset sums to zero):"]
        if summary.balances.isEmpty { lines.append("  (no entries)") }
        for balance in summary.balances {
            lines.append(
                "  \(balance.asset.padding(toLength: 5, withPad: " ", startingAt: 0)) \(balance.account.padding(toLength: 18, withPad: " ", startingAt: 0)) \(DecimalText.plain(balance.amount))"
            )
        }
        if let wallet = summary.balances.first(where: { $0.account == "hot_wallet" && $0.asset == "ETH" }) {
            lines.append(
                "The hot wallet should hold at least \(PayoutReport.coins(wallet.amount, "ETH")) ETH (what the ledger books there; gas money not booked with `--record-deposit` comes on top; `--reconcile` compares with the chain)"
            )
        }
        lines.append("Owners' pending payout balances (per channel and state: `telepay payouts`):")
        if summary.owners.isEmpty { lines.append("  (none)") }
        for owner in summary.owners {
            if owner.asset == LedgerAsset.usd {
                // Sales are booked in USD as well as in the settlement asset; payouts move the settlement asset (and
                // USDT), so the USD side is what the owner's sales were worth, not money waiting to be paid.
                lines.append("  owner \(owner.ownerUserID)  $\(DecimalText.usd(owner.pending)) of sales (their USD value; payouts move ETH and USDT)")
            } else {
                lines.append("  owner \(owner.ownerUserID)  \(PayoutReport.coins(owner.pending, owner.asset)) \(owner.asset)")
            }
        }
        lines.append(
            "Owed to buyers (money that arrived and was not delivered): $\(DecimalText.usd(summary.owedToBuyersUSD)) over \(summary.ordersOwingBuyers) order(s)"
        )
        lines.append("Payments held for review: \(summary.held.count)")
        for payment in summary.held {
            lines.append(
                "  payment \(payment.providerPaymentID) order \(payment.orderRef ?? "-") $\(DecimalText.usd(payment.valueUSD)) since \(payment.receivedAt.formatted(.iso8601)): \(payment.reason)"
            )
        }
        return lines.joined(separator: "\n")
    }
}

/// `telepay ledger --reconcile`: the hot wallet on the chain against the ledger (see `Reconciliation`).
public enum ReconcileReport {
    /// The reconciliation for the configured hot wallet, or why there is none.
    public static func run(configuration: Configuration, database: Database, logger: Logger) async throws -> Reconciliation.Report {
        guard let key = try HotWalletConfiguration.key(configuration) else { throw HotWalletInspectionError.notConfigured }
        let rpc = HotWalletConfiguration.rpc(configuration)
        let sender = TransferSender(
            key: key, chainId: configuration.ethereumChainId, rpc: rpc, database: database, alerts: LoggingWalletAlerts(logger: logger),
            logger: logger
        )
        let orders = configuration.changeNowAPIKey.map {
            ExchangeOrderService(
                database: database, api: ChangeNowClient(baseURL: configuration.changeNowAPIURL.absoluteString, apiKey: $0.value),
                alerts: LoggingExchangeAlerts(logger: logger), logger: logger
            )
        }
        let tokens = configuration.thresholdPayouts.usdtContract.map { [SettlementAsset.usdt.asset: $0] } ?? [:]
        let lister = configuration.changeNowPrivateAPIKey.map {
            ChangeNowClient(baseURL: configuration.changeNowAPIURL.absoluteString, apiKey: $0.value)
        }
        return try await Reconciliation(database: database, sender: sender, rpc: rpc, tokens: tokens, orders: orders, lister: lister, logger: logger)
            .run()
    }

    public static func render(_ report: Reconciliation.Report) -> String {
        var lines = ["Hot wallet \(report.wallet) at block \(report.block), in smallest units (wei, USDT units):"]
        for line in report.lines {
            lines.append("  \(line.asset.padding(toLength: 5, withPad: " ", startingAt: 0)) on chain \(DecimalText.plain(line.onChain))")
            lines.append(
                "        ledger hot_wallet \(DecimalText.plain(line.ledger)), mined not booked −\(DecimalText.plain(line.minedNotBooked)), arrived not booked +\(DecimalText.plain(line.arrivedNotBooked)) → expected \(DecimalText.plain(line.expected))"
            )
            for why in line.explanations { lines.append("        · \(why)") }
            lines.append(
                line.drift == 0
                    ? "        no drift"
                    : "        DRIFT \(DecimalText.plain(line.drift)) (\(line.drift > 0 ? "the wallet holds more than the books explain" : "the wallet holds less than the books explain"))"
            )
        }
        if let exchanges = report.exchanges {
            lines.append("ChangeNOW exchanges of the last 7 days against the intents:")
            lines += exchanges.reportLines.map { "  " + $0 }
        } else {
            lines.append("ChangeNOW exchanges: not checked (listing needs TELEPAY_CHANGENOW_PRIVATE_API_KEY).")
        }
        lines.append(
            report.isClean ? "Reconciled: the chain equals the books." : "Drift found: see the README's \"Reconciliation\" for how to read it.")
        return lines.joined(separator: "\n")
    }
}
