import Foundation
import Money

/// The asset NOWPayments pays the platform in: every payment's `outcome_amount`, in this currency, reaches
/// the hot wallet. Booked in the ledger in its smallest unit.
public struct SettlementAsset: Sendable, Hashable {
    /// NOWPayments' currency code of the outcome, e.g. `eth`.
    public var currency: String
    /// The ledger's asset code, e.g. `ETH`.
    public var asset: String
    /// Decimals of the smallest unit (18 for wei).
    public var decimals: Int

    public static let ether = SettlementAsset(currency: "eth", asset: "ETH", decimals: 18)
    /// What threshold owners' shares are converted into and paid from: USDT (ERC-20 on Ethereum).
    public static let usdt = SettlementAsset(currency: "usdt", asset: "USDT", decimals: 6)

    public init(currency: String, asset: String, decimals: Int) {
        self.currency = currency
        self.asset = asset
        self.decimals = decimals
    }

    /// Smallest units per whole coin (10^decimals: 10^18 wei per ETH).
    public var unitsPerCoin: Decimal { Self.power(of: 10, decimals) }

    /// `amount` in whole smallest units, rounded down (a provider never reports more decimals than the asset has).
    public func units(_ amount: Decimal) -> Decimal {
        DecimalText.rounded(amount * unitsPerCoin, scale: 0, .down)
    }

    /// `base` to a non-negative integer `exponent`, exactly.
    public static func power(of base: Decimal, _ exponent: Int) -> Decimal {
        (0..<max(exponent, 0)).reduce(Decimal(1)) { value, _ in value * base }
    }
}

/// How purchases, access and reminders behave; built from TelePay's configuration.
public struct SubscriptionSettings: Sendable, Hashable {
    /// The platform's share of each payment, in percent.
    public var platformFeePercent: Decimal
    /// A `partially_paid` payment missing at most this percentage of the amount is accepted as paid; 0 accepts none.
    public var partialPaymentTolerancePercent: Decimal
    public var inviteMode: InviteMode
    /// How long a single-use invite link stays valid.
    public var singleUseLinkLifetime: Duration
    /// Log who the expiry sweep would remove, without removing or expiring anyone.
    public var expiryDryRun: Bool
    /// Days before the end at which a reminder is sent, e.g. [3, 1].
    public var reminderDays: [Int]
    /// How the outside world reaches TelePay's HTTP server; callback and return URLs are built from it.
    public var publicURL: URL?
    /// How long an invoice can be paid: an order with no payment by then expires.
    public var invoiceLifetime: Duration
    /// How often open payments and unpaid orders are looked up at the provider, in case callbacks were lost.
    public var paymentRecheckInterval: Duration
    /// What NOWPayments settles in.
    public var settlement: SettlementAsset

    public init(
        platformFeePercent: Decimal = 3, partialPaymentTolerancePercent: Decimal = 0, inviteMode: InviteMode = .joinRequest,
        singleUseLinkLifetime: Duration = .seconds(24 * 3600), expiryDryRun: Bool = false, reminderDays: [Int] = [3, 1], publicURL: URL? = nil,
        invoiceLifetime: Duration = .seconds(24 * 3600), paymentRecheckInterval: Duration = .seconds(60), settlement: SettlementAsset = .ether
    ) {
        self.platformFeePercent = platformFeePercent
        self.partialPaymentTolerancePercent = partialPaymentTolerancePercent
        self.inviteMode = inviteMode
        self.singleUseLinkLifetime = singleUseLinkLifetime
        self.expiryDryRun = expiryDryRun
        self.reminderDays = reminderDays
        self.publicURL = publicURL
        self.invoiceLifetime = invoiceLifetime
        self.paymentRecheckInterval = paymentRecheckInterval
        self.settlement = settlement
    }

    /// `POST` target of NOWPayments' callbacks, relative to the public URL.
    public static let ipnPath = "payments/nowpayments/ipn"
    /// Where the invoice page sends the buyer back, relative to the public URL.
    public static let returnPath = "payments/return"
}
