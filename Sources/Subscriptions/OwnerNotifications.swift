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

        public init(strategy: String, currency: String, network: String, wallet: String, thresholdUSD: Decimal?, convertedUSD: Decimal, waitingUSD: Decimal) {
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

/// A channel's way to its threshold, from `owner_balances`: the converted balance (USDT, whole dollars and
/// cents) and what still waits for a conversion (pending and converting settlement asset, valued at payment
/// time).
public enum ThresholdProgress {
    public static func read(
        channelID: Int64, ownerUserID: Int64, on connection: PostgresConnection, logger: Logger
    ) async throws -> (convertedUSD: Decimal, waitingUSD: Decimal) {
        let usdt = SettlementAsset.usdt
        let (converted, waiting) = try await connection.first(
            """
            SELECT coalesce(sum(pending) FILTER (WHERE asset = \(usdt.asset)), 0)::text,
                   coalesce(sum(pending_usd + converting_usd) FILTER (WHERE asset NOT IN ('USD', \(usdt.asset))), 0)::text
            FROM owner_balances WHERE channel_id = \(channelID) AND owner_user_id = \(ownerUserID)
            """,
            as: (String, String).self, logger: logger
        ) ?? ("0", "0")
        return (
            DecimalText.rounded(try DecimalText.require(converted, "converted") / usdt.unitsPerCoin, scale: 2, .down),
            try DecimalText.require(waiting, "waiting")
        )
    }
}

/// The reads behind owner notifications (channel settings, the order, the recipient, the owner's balance).
public enum OwnerNotificationStore {
    /// `nil` when the channel has notifications off (or no payout settings yet): nothing is sent.
    public static func facts(for job: OwnerNotificationJob, on connection: PostgresConnection, logger: Logger) async throws -> OwnerNotificationFacts? {
        guard let (recipient, title, owner, strategy, currency, network, wallet, threshold) = try await connection.first(
            """
            SELECT coalesce(s.notification_user_id, c.owner_user_id), c.closed_title, c.owner_user_id, s.strategy, s.currency_code,
                   s.network_code, s.wallet_address, s.threshold_usd::text
            FROM channels c JOIN channel_payout_settings s ON s.channel_id = c.id
            WHERE c.id = \(job.channelID) AND s.notifications_enabled
            """,
            as: (Int64, String, Int64, String, String, String, String, String?).self, logger: logger
        ) else { return nil }
        let language = try await connection.first(
            "SELECT chosen_language, telegram_language FROM telegram_users WHERE id = \(recipient)", as: (String?, String?).self, logger: logger
        )
        let progress = try await ThresholdProgress.read(channelID: job.channelID, ownerUserID: owner, on: connection, logger: logger)
        var facts = OwnerNotificationFacts(
            recipientID: recipient, recipientChosenLanguage: language?.0, recipientTelegramLanguage: language?.1, channelTitle: title, order: nil,
            payout: OwnerNotificationFacts.Payout(
                strategy: strategy, currency: currency, network: network, wallet: wallet,
                thresholdUSD: try threshold.map { try DecimalText.require($0, "threshold") }, convertedUSD: progress.convertedUSD, waitingUSD: progress.waitingUSD
            )
        )
        let orderID: Int64? = switch job.notification {
        case .sale(let id, _), .donation(let id), .refund(let id): id
        default: nil
        }
        if let orderID, let (kind, tier, price, days, buyer, name, username) = try await connection.first(
            """
            SELECT o.kind, o.tier_position::int, o.price_usd::text, o.duration_days, o.user_id, coalesce(u.first_name, ''), u.username
            FROM orders o LEFT JOIN telegram_users u ON u.id = o.user_id WHERE o.id = \(orderID)
            """,
            as: (String, Int?, String, Int32?, Int64, String, String?).self, logger: logger
        ) {
            guard let kind = OrderKind(rawValue: kind) else { throw OrderStoreError.unknownKind(kind) }
            facts.order = OwnerNotificationFacts.Order(
                kind: kind, tier: tier, priceUSD: try DecimalText.require(price, "order price"), durationDays: days.map(Int.init), buyerID: buyer,
                buyerName: name.isEmpty ? (username.map { "@" + $0 } ?? String(buyer)) : name
            )
        }
        return facts
    }
}
