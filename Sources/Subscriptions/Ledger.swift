import Foundation
import Logging
import Money
import PostgresNIO
import Storage

/// An account of the double-entry ledger (migration 0012 says what each holds).
public enum LedgerAccount: String, Sendable, Hashable, CaseIterable, Codable {
    case providerClearing = "provider_clearing"
    case hotWallet = "hot_wallet"
    case buyerCredit = "buyer_credit"
    case paymentReview = "payment_review"
    case paymentVariance = "payment_variance"
    case platformFee = "platform_fee"
    case ownerPayable = "owner_payable"
    case ownerInFlight = "owner_in_flight"
    case networkFees = "network_fees"
    /// The settlement asset sent to a ChangeNOW exchange that has not finished or refunded yet.
    case exchangeClearing = "exchange_clearing"
    /// An owner's settlement-asset share taken by a batch conversion (threshold payouts) that has not ended.
    case ownerConverting = "owner_converting"
    /// Money the operator put into the hot wallet from outside the sales (gas money).
    case operatorCapital = "operator_capital"

    /// Accounts of what an owner is owed; their entries name the owner and the channel.
    public var isOwners: Bool { self == .ownerPayable || self == .ownerInFlight || self == .ownerConverting }
}

/// What a ledger transaction records.
public enum LedgerTransactionKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// Money a payment brought in.
    case receipt
    /// An order delivered: the money it consumed split into fee and owner share.
    case sale
    /// A sold order's settled money (the settlement asset that reached the hot wallet) split into fee and
    /// owner share.
    case split
    /// The exact negation of an earlier transaction (a refund, a sale undone).
    case reversal
    /// An owner's share on its way to their wallet, or arrived there, with the gas it cost.
    case payout
    /// A batch conversion of threshold owners' shares: planned (pending → converting), or ended (converting →
    /// converted, and the asset received allocated to the owners' pending).
    case conversion
    /// A conversion that failed or was refunded: its shares pending again.
    case conversionReturn = "conversion_return"
    /// Operator capital put into the hot wallet.
    case deposit
}

/// One line of a ledger transaction: positive debits, negative credits, exact in its asset.
/// Ledger asset codes that are not a settlement coin.
public enum LedgerAsset {
    /// What orders are priced and buyers credited in: US dollars, two decimals.
    public static let usd = "USD"
}

public struct LedgerEntry: Sendable, Hashable {
    public var account: LedgerAccount
    public var ownerUserID: Int64?
    /// The channel an owner's entry is about (its payout settings decide where the money goes). When nil on
    /// an owner's entry, the transaction's order gives it.
    public var channelID: Int64?
    public var asset: String
    public var amount: Decimal
    /// On an owner's settlement-asset entry: what the amount was worth in USD at payment time (same sign as
    /// the amount). It travels with the money so pending shares keep a value for display and thresholds.
    public var valueUSD: Decimal?

    public init(
        _ account: LedgerAccount, owner: Int64? = nil, channel: Int64? = nil, asset: String = LedgerAsset.usd, _ amount: Decimal,
        valueUSD: Decimal? = nil
    ) {
        self.account = account
        self.ownerUserID = owner
        self.channelID = channel
        self.asset = asset
        self.amount = amount
        self.valueUSD = valueUSD
    }
}

/// The bookings of the purchase flow, without I/O. Every function returns entries that sum to zero per asset.
public enum LedgerBookings {
    /// A payment's money arrived: the provider holds it for us, and it is owed to the buyer's order until a
    /// sale consumes it — or held for review when it cannot be delivered.
    public static func receipt(_ amount: Decimal, inReview: Bool) -> [LedgerEntry] {
        [LedgerEntry(.providerClearing, amount), LedgerEntry(inReview ? .paymentReview : .buyerCredit, -amount)]
    }

    /// What reached the hot wallet for a payment, in the settlement asset's smallest unit: owed to the
    /// buyer's order until the order is sold (then split), or held for review.
    public static func settlement(_ units: Decimal, asset: String, inReview: Bool) -> [LedgerEntry] {
        [LedgerEntry(.hotWallet, asset: asset, units), LedgerEntry(inReview ? .paymentReview : .buyerCredit, asset: asset, -units)]
    }

    /// A sold order's settled `units` divided into the platform's fee and the owner's share by the largest
    /// remainder, so the two sum to the units exactly. Negative units (settled money refunded after the
    /// split) take back the same split of that amount.
    /// `ownerValueUSD` is what the owner's part was worth in USD at payment time (positive), kept on its entry.
    public static func split(_ units: Decimal, asset: String, feePercent: Decimal, ownerUserID: Int64, ownerValueUSD: Decimal? = nil) -> [LedgerEntry]
    {
        let sign: Decimal = units < 0 ? -1 : 1
        let parts = Allocation.largestRemainder(units * sign, weights: [feePercent, 100 - feePercent]).map { $0 * sign }
        return [
            LedgerEntry(.buyerCredit, asset: asset, units),
            LedgerEntry(.platformFee, asset: asset, -parts[0]),
            LedgerEntry(.ownerPayable, owner: ownerUserID, asset: asset, -parts[1], valueUSD: ownerValueUSD.map { -$0 * sign }),
        ].filter { $0.amount != 0 }
    }

    /// A sale of `price` paid by `received` (covering it within the tolerance): the sale consumes at most the
    /// price from the buyer's credit (any excess stays there, owed to the buyer), a shortfall accepted under
    /// the tolerance is the platform's variance, and the price splits into fee and owner share.
    public static func sale(received: Decimal, price: Decimal, feePercent: Decimal, ownerUserID: Int64) -> [LedgerEntry] {
        let consumed = min(received, price)
        let split = FeeSplit(gross: price, feePercent: feePercent)
        let entries = [
            LedgerEntry(.buyerCredit, consumed),
            LedgerEntry(.paymentVariance, price - consumed),
            LedgerEntry(.platformFee, -split.platformFee),
            LedgerEntry(.ownerPayable, owner: ownerUserID, -split.ownerShare),
        ]
        return entries.filter { $0.amount != 0 }
    }
}

/// The ledger holds something the code does not know.
public enum LedgerError: Error, Sendable, Hashable, CustomStringConvertible {
    case unknownAccount(String)

    public var description: String {
        switch self {
        case .unknownAccount(let account): return "unknown ledger account '\(account)'"
        }
    }
}

/// What `telepay ledger` shows: every account's balance per asset, each owner's pending payout balance,
/// money owed to buyers, and the payments held for review.
public struct LedgerSummary: Sendable, Hashable {
    public struct Balance: Sendable, Hashable {
        public var account: String
        public var asset: String
        /// Debits minus credits, exact.
        public var amount: Decimal
    }

    public struct OwnerBalance: Sendable, Hashable {
        public var ownerUserID: Int64
        public var asset: String
        public var pending: Decimal
    }

    public struct HeldPayment: Sendable, Hashable {
        public var providerPaymentID: String
        public var orderRef: String?
        public var valueUSD: Decimal
        public var reason: String
        public var receivedAt: Date
    }

    public var balances: [Balance]
    public var owners: [OwnerBalance]
    /// Orders holding money that arrived and was not delivered, and how much (USD).
    public var ordersOwingBuyers: Int
    public var owedToBuyersUSD: Decimal
    public var held: [HeldPayment]
}
