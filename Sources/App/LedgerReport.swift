import Foundation
import Money
import Subscriptions

/// Renders `telepay ledger` output.
public enum LedgerReport {
    public static func render(_ summary: LedgerSummary) -> String {
        var lines = ["Balances (debits minus credits; each asset sums to zero):"]
        if summary.balances.isEmpty { lines.append("  (no entries)") }
        for balance in summary.balances {
            lines.append("  \(balance.asset.padding(toLength: 5, withPad: " ", startingAt: 0)) \(balance.account.padding(toLength: 18, withPad: " ", startingAt: 0)) \(DecimalText.plain(balance.amount))")
        }
        if let wallet = summary.balances.first(where: { $0.account == "hot_wallet" && $0.asset == "ETH" }) {
            lines.append("The hot wallet should hold at least \(PayoutReport.coins(wallet.amount, "ETH")) ETH (what the ledger books there; gas money added by hand comes on top)")
        }
        lines.append("Owners' pending payout balances (per channel and state: `telepay payouts`):")
        if summary.owners.isEmpty { lines.append("  (none)") }
        for owner in summary.owners {
            lines.append("  owner \(owner.ownerUserID)  \(DecimalText.plain(owner.pending)) \(owner.asset)")
        }
        lines.append("Owed to buyers (money that arrived and was not delivered): $\(DecimalText.usd(summary.owedToBuyersUSD)) over \(summary.ordersOwingBuyers) order(s)")
        lines.append("Payments held for review: \(summary.held.count)")
        for payment in summary.held {
            lines.append("  payment \(payment.providerPaymentID) order \(payment.orderRef ?? "-") $\(DecimalText.usd(payment.valueUSD)) since \(payment.receivedAt.formatted(.iso8601)): \(payment.reason)")
        }
        return lines.joined(separator: "\n")
    }
}
