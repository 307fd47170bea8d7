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

/// What `telepay payouts` shows.
public struct PayoutOverview: Sendable {
    public var open: [Payout]
    public var failed: [Payout]
    public var paid: [Payout]
    public var balances: [OwnerPayoutBalance]
    public var conversions: [(conversion: Conversion, parts: [ConversionPart])]

    public init(
        open: [Payout], failed: [Payout], paid: [Payout], balances: [OwnerPayoutBalance],
        conversions: [(conversion: Conversion, parts: [ConversionPart])] = []
    ) {
        self.open = open
        self.failed = failed
        self.paid = paid
        self.balances = balances
        self.conversions = conversions
    }

    /// Reads the overview: `limit` of each list; balances of one owner or of all.
    public static func read(_ desk: PayoutDesk, owner: Int64?, limit: Int) async throws -> PayoutOverview {
        PayoutOverview(
            open: try await desk.payouts(in: PayoutState.open, limit: limit),
            failed: try await desk.payouts(in: [.failed], limit: limit),
            paid: try await desk.payouts(in: [.paid], limit: limit),
            balances: try await desk.balances(ownerUserID: owner, limit: limit),
            conversions: try await desk.conversions(limit: min(limit, 10))
        )
    }
}

/// Renders `telepay payouts` output. Amounts in the settlement asset are shown in whole coins (ETH), not wei.
public enum PayoutReport {
    public static func render(_ overview: PayoutOverview, now: Date = Date()) -> String {
        var lines = ["Open payouts (\(overview.open.count)):"]
        if overview.open.isEmpty { lines.append("  (none)") }
        for payout in overview.open {
            lines.append("  #\(payout.id) \(payout.state.rawValue) for \(age(payout.updatedAt, now)) — " + describe(payout))
        }
        lines.append("Failed payouts (\(overview.failed.count)), each with why; `telepay payouts retry ID` releases the channel's latest:")
        if overview.failed.isEmpty { lines.append("  (none)") }
        for payout in overview.failed {
            let fix = payout.ownerFixable ? " [the owner must change the wallet]" : ""
            lines.append("  #\(payout.id) " + describe(payout) + fix + ": \(payout.failure ?? "no reason recorded")")
        }
        lines.append("Recently paid (\(overview.paid.count)):")
        if overview.paid.isEmpty { lines.append("  (none)") }
        for payout in overview.paid {
            var arrived = payout.amountTo.map { " → \(DecimalText.plain($0)) \(payout.currency)" } ?? ""
            if let amountTo = payout.amountTo, let estimate = payout.estimatedTo, estimate > 0 {
                // The spread between the estimate and what arrived is the owner's (the platform sent exactly their share).
                let percent = DecimalText.rounded((amountTo - estimate) / estimate * 100, scale: 2, .plain)
                arrived += " (estimated \(DecimalText.plain(estimate)), \(percent >= 0 ? "+" : "")\(DecimalText.plain(percent)) %)"
            }
            let hash = payout.payoutHash.map { " tx \($0)" } ?? ""
            lines.append("  #\(payout.id) " + describe(payout) + arrived + hash)
        }
        lines += conversionLines(overview.conversions)
        lines.append("Per owner and channel (earned + received = pending + converting + in flight + paid out + converted):")
        if overview.balances.isEmpty { lines.append("  (none)") }
        for balance in overview.balances {
            var line =
                "  owner \(balance.ownerUserID) channel \(balance.channelID) \(balance.asset): earned \(coins(balance.earned, balance.asset)) "
                + "pending \(coins(balance.pending, balance.asset)) in flight \(coins(balance.inFlight, balance.asset)) paid out \(coins(balance.paidOut, balance.asset))"
            if balance.converting != 0 || balance.converted != 0 || balance.received != 0 {
                line +=
                    " converting \(coins(balance.converting, balance.asset)) converted \(coins(balance.converted, balance.asset)) received \(coins(balance.received, balance.asset))"
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// Batch conversions to USDT: what went in (and its worth at payment time), what arrived, and per channel
    /// what it put in and got — the conversion's spread, owner by owner.
    static func conversionLines(_ conversions: [(conversion: Conversion, parts: [ConversionPart])]) -> [String] {
        var lines = ["Conversions to USDT (latest \(conversions.count)):"]
        if conversions.isEmpty { lines.append("  (none)") }
        for (conversion, parts) in conversions {
            var line =
                "  #\(conversion.id) \(conversion.state.rawValue) — \(coins(conversion.fromUnits, conversion.fromAsset)) \(conversion.fromAsset) "
                + "worth $\(DecimalText.usd(conversion.valueUSD)) at payment time"
            if let received = conversion.receivedUnits {
                line += " → \(coins(received, conversion.toAsset)) \(conversion.toAsset) received"
                if let reported = conversion.reportedUnits, reported != received {
                    line += " (ChangeNOW reported \(coins(reported, conversion.toAsset)))"
                }
            } else if let estimate = conversion.estimatedUnits {
                line += ", estimated \(coins(estimate, conversion.toAsset)) \(conversion.toAsset)"
            }
            if let failure = conversion.failure { line += ": \(failure)" }
            lines.append(line)
            for part in parts {
                var text =
                    "    owner \(part.ownerUserID) channel \(part.channelID): \(coins(part.fromUnits, conversion.fromAsset)) \(conversion.fromAsset) "
                    + "worth $\(DecimalText.usd(part.valueUSD))"
                if let allocated = part.allocatedUnits {
                    let got = allocated / SettlementAsset.usdt.unitsPerCoin
                    let spread = got - part.valueUSD
                    text +=
                        " → \(coins(allocated, conversion.toAsset)) \(conversion.toAsset) (spread \(spread >= 0 ? "+" : "")\(DecimalText.plain(DecimalText.rounded(spread, scale: 2, .plain))))"
                    text += part.payoutID.map { ", paid by payout #\($0)" } ?? ", not paid yet"
                }
                lines.append(text)
            }
        }
        return lines
    }

    static func describe(_ payout: Payout) -> String {
        let memo = payout.walletMemo.map { " memo \($0)" } ?? ""
        return
            "owner \(payout.ownerUserID) channel \(payout.channelID): \(coins(payout.amount, payout.asset)) \(payout.asset) \(payout.route.rawValue) "
            + "to \(payout.currency) on \(payout.network) \(payout.walletAddress)\(memo)"
    }

    /// Smallest units of ETH and USDT shown as whole coins (ETH, not wei); other assets (USD) as booked.
    static func coins(_ units: Decimal, _ asset: String) -> String {
        guard let kind = [SettlementAsset.ether, SettlementAsset.usdt].first(where: { $0.asset == asset }) else { return DecimalText.plain(units) }
        return DecimalText.plain(units / kind.unitsPerCoin)
    }

    static func age(_ since: Date, _ now: Date) -> String {
        let seconds = max(Int(now.timeIntervalSince(since)), 0)
        if seconds < 120 { return "\(seconds) s" }
        if seconds < 7200 { return "\(seconds / 60) min" }
        return "\(seconds / 3600) h"
    }
}

/// Why an operator's action on a conversion cannot be taken at all.
public enum ConversionCommandError: Error, CustomStringConvertible {
    case notConfigured(String)

    public var description: String {
        switch self {
        case .notConfigured(let what): return "threshold payouts are not configured: \(what)"
        }
    }
}

/// The conversion service as `telepay payouts settle-conversion` and `write-off-conversion` use it, built from
/// the configuration as `serve` builds it (hot wallet, ChangeNOW, the USDT contract).
public enum ConversionOperator {
    public static func service(configuration: Configuration, context: CommandContext, logger: Logger) throws -> ConversionService {
        let database = context.database
        guard let key = try HotWalletConfiguration.key(configuration) else {
            throw ConversionCommandError.notConfigured("TELEPAY_ETH_PRIVATE_KEY is unset")
        }
        guard let apiKey = configuration.changeNowAPIKey else { throw ConversionCommandError.notConfigured("TELEPAY_CHANGENOW_API_KEY is unset") }
        guard let usdt = configuration.thresholdPayouts.usdtContract else {
            throw ConversionCommandError.notConfigured("no USDT contract on this chain (TELEPAY_USDT_CONTRACT)")
        }
        let rpc = HotWalletConfiguration.rpc(configuration)
        let sender = TransferSender(
            key: key, chainId: configuration.ethereumChainId, rpc: rpc, database: database, alerts: LoggingWalletAlerts(logger: logger),
            logger: logger
        )
        let client = ChangeNowClient(baseURL: configuration.changeNowAPIURL.absoluteString, apiKey: apiKey.value)
        let orders = ExchangeOrderService(database: database, api: client, alerts: LoggingExchangeAlerts(logger: logger), logger: logger)
        return ConversionService(
            database: database, queue: context.queue, wallet: HotWalletPayouts(sender: sender, rpc: rpc),
            arrivals: ChainConversionArrivals(rpc: rpc, token: usdt, wallet: key.address, confirmations: configuration.ethereumConfirmations),
            settlement: configuration.subscriptions.settlement,
            exchange: PayoutExchange(
                orders: orders, api: client, refundAddress: key.address.checksummed, verifyingAlertAfter: configuration.exchangeVerifyingAlertAfter),
            hotWallet: key.address.checksummed,
            settings: ConversionSettings(
                minimumUSD: configuration.thresholdPayouts.conversionMinimumUSD, interval: configuration.thresholdPayouts.conversionInterval),
            logger: logger
        )
    }
}
