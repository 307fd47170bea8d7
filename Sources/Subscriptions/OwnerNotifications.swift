import Foundation
import Jobs
import Logging
import Money
import PostgresNIO
import Storage

/// Something a channel's owner hears about, in the language of the recipient they chose. The cases carry
/// ids and, for payouts, what the payout engine knows; everything else is read when the message is sent.
public enum OwnerNotification: Codable, Sendable, Hashable {
    /// A subscription was sold (`renewal`: the buyer extended one they had).
    case sale(orderID: Int64, renewal: Bool)
    case donation(orderID: Int64)
    /// A sold order's money was refunded: the sale (and any access it gave) was undone.
    case refund(orderID: Int64)
    case payoutSent(PayoutNotice)
    case payoutArrived(PayoutNotice)
    case payoutFailed(PayoutNotice, problem: PayoutProblem)
    /// Shares of a threshold channel were converted (the channel's part of a batch conversion).
    case converted(ConversionNotice)
    /// The owner's "Send a test notification".
    case test

    /// The same event enqueued twice while the first waits has the same key; `nil` for the test.
    var uniqueKey: String? {
        switch self {
        case .sale(let order, _): return "owner-notice:sale:\(order)"
        case .donation(let order): return "owner-notice:donation:\(order)"
        case .refund(let order): return "owner-notice:refund:\(order)"
        case .payoutSent(let payout): return "owner-notice:payout-sent:\(payout.payoutID)"
        case .payoutArrived(let payout): return "owner-notice:payout-arrived:\(payout.payoutID)"
        case .payoutFailed(let payout, _): return "owner-notice:payout-failed:\(payout.payoutID)"
        case .converted(let notice): return "owner-notice:converted:\(notice.conversionID)"
        case .test: return nil
        }
    }
}

/// A payout as the owner is told about it; amounts are exact decimal text in `currency`.
public struct PayoutNotice: Codable, Sendable, Hashable {
    public var payoutID: Int64
    /// e.g. `0.0123` (never an exponent; `DecimalText.plain` of the amount in the coin, not its base units).
    public var amount: String
    /// e.g. `ETH`, `USDT`.
    public var currency: String
    /// e.g. `ETH`, `TRX` (the payout network's code).
    public var network: String
    public var wallet: String
    /// The chain transaction, once there is one.
    public var transactionHash: String?

    public init(payoutID: Int64, amount: String, currency: String, network: String, wallet: String, transactionHash: String? = nil) {
        self.payoutID = payoutID
        self.amount = amount
        self.currency = currency
        self.network = network
        self.wallet = wallet
        self.transactionHash = transactionHash
    }
}

/// A channel's part of a batch conversion as the owner is told about it.
public struct ConversionNotice: Codable, Sendable, Hashable {
    public var conversionID: Int64
    /// What the converted shares were worth at payment time, in dollars (`12.34`).
    public var valueUSD: String
    /// What the channel got, in whole coins of `currency` (`12.1`).
    public var amount: String
    public var currency: String

    public init(conversionID: Int64, valueUSD: String, amount: String, currency: String) {
        self.conversionID = conversionID
        self.valueUSD = valueUSD
        self.amount = amount
        self.currency = currency
    }
}

/// Why a payout failed, as far as the owner can act on it; each has a localized fix
/// (`owner.notice.payout_fix.<raw value>`).
public enum PayoutProblem: String, Codable, Sendable, Hashable, CaseIterable {
    /// The wallet refused the transfer or the address is not valid on the network: the owner corrects it.
    case invalidWallet = "invalid_wallet"
    /// The coin or network cannot be paid out now: the owner may choose another currency.
    case unsupportedCurrency = "unsupported_currency"
    /// A passing problem (network, exchange, gas): TelePay tries again by itself.
    case temporary
    /// Something the operators must look at; they have been told.
    case other
}

/// Sends one owner notification. Whether it is sent, and to whom, is read when it runs: notifications off
/// means none is sent, a changed recipient gets it.
public struct OwnerNotificationJob: JobPayload {
    public static let kind = "owners.notify"
    public static let maxAttempts = 12

    public var channelID: Int64
    public var notification: OwnerNotification

    public init(channelID: Int64, notification: OwnerNotification) {
        self.channelID = channelID
        self.notification = notification
    }
}

/// Enqueuing owner notifications, always inside the transaction of the event they report.
public enum OwnerNotifications {
    public static func enqueue(_ notification: OwnerNotification, channelID: Int64, in transaction: JobTransaction) async throws {
        try await transaction.enqueue(
            OwnerNotificationJob(channelID: channelID, notification: notification), options: JobOptions(uniqueKey: notification.uniqueKey)
        )
    }

    public static func enqueue(_ notification: OwnerNotification, channelID: Int64, queue: JobQueue, on connection: PostgresConnection) async throws {
        try await queue.enqueue(
            OwnerNotificationJob(channelID: channelID, notification: notification), options: JobOptions(uniqueKey: notification.uniqueKey),
            on: connection
        )
    }
}

/// What an owner notification says, read from the database when it is sent.
public struct OwnerNotificationFacts: Sendable, Hashable {
    /// The order a sale, donation or refund notification is about.
    public struct Order: Sendable, Hashable {
        public var kind: OrderKind
        public var tier: Int?
        public var priceUSD: Decimal
        public var durationDays: Int?
        public var buyerID: Int64
        public var buyerName: String
    }

    /// How the channel's owner is paid.
    public struct Payout: Sendable, Hashable {
        public var strategy: String
        public var currency: String
        public var network: String
        public var wallet: String
        public var thresholdUSD: Decimal?
        /// The channel's converted balance (USDT, counted as dollars): what a threshold payout pays once it
        /// reaches the threshold.
        public var convertedUSD: Decimal
        /// The channel's shares not converted yet (pending or converting), valued at payment time.
        public var waitingUSD: Decimal

        public init(
            strategy: String, currency: String, network: String, wallet: String, thresholdUSD: Decimal?, convertedUSD: Decimal, waitingUSD: Decimal
        ) {
            self.strategy = strategy
            self.currency = currency
            self.network = network
            self.wallet = wallet
            self.thresholdUSD = thresholdUSD
            self.convertedUSD = convertedUSD
            self.waitingUSD = waitingUSD
        }
    }

    public var recipientID: Int64
    public var recipientChosenLanguage: String?
    public var recipientTelegramLanguage: String?
    public var channelTitle: String
    public var order: Order?
    public var payout: Payout?
}
