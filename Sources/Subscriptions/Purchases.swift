import Foundation
import Jobs
import Logging
import Money
import Payments
import PostgresNIO
import Storage

/// A channel's offer as a subscriber sees it.
public struct Offer: Sendable, Hashable {
    public struct Tier: Sendable, Hashable {
        public var position: Int
        public var priceUSD: Decimal
        public var durationDays: Int
    }

    public var channelID: Int64
    public var closedTitle: String
    public var closedDescription: String
    public var openTitle: String
    /// Enabled tiers, by position.
    public var tiers: [Tier]
}

/// What choosing a tier (or retrying its invoice) led to.
public enum PurchaseOutcome: Sendable, Hashable {
    /// The invoice exists: send the buyer to `invoiceURL`.
    case invoice(orderID: Int64, invoiceURL: String, priceUSD: Decimal, durationDays: Int, title: String)
    /// The provider refused or did not answer; the order records why and can be retried.
    case invoiceFailed(orderID: Int64)
    /// The channel is not on sale or the tier is disabled (an old menu).
    case unavailable
    /// No payment provider is configured.
    case paymentsUnavailable
}

/// One of a user's subscriptions, for `/subscriptions`.
public struct SubscriptionSummary: Sendable, Hashable {
    public var id: Int64
    public var channelID: Int64
    public var title: String
    public var isActive: Bool
    public var expiresAt: Date
}

/// An order as the return page shows it.
public struct OrderView: Sendable, Hashable {
    public var status: OrderStatus
    public var title: String
    public var userID: Int64
    public var kind: OrderKind = .subscription
}

/// Subscriber purchases: offers, orders and invoices. Every purchase is its own order row with a snapshot
/// of what was chosen, so concurrent buyers never see each other's choice.
public struct PurchaseService: Sendable {
    let database: Database
    let provider: (any PaymentProvider)?
    let settings: SubscriptionSettings
    let clock: any WallClock
    let logger: Logger

    public init(
        database: Database, provider: (any PaymentProvider)?, settings: SubscriptionSettings, clock: any WallClock = SystemWallClock(), logger: Logger
    ) {
        self.database = database
        self.provider = provider
        self.settings = settings
        self.clock = clock
        self.logger = logger
    }

    /// The active channel whose offer token is `token`.
    public func offer(token: String) async throws -> Offer? {
        try await loadOffer(token: token, channelID: nil)
    }

    /// The active channel `channelID`'s offer.
    public func offer(channelID: Int64) async throws -> Offer? {
        try await loadOffer(token: nil, channelID: channelID)
    }

    private func loadOffer(token: String?, channelID: Int64?) async throws -> Offer? {
        let logger = self.logger
        return try await database.withConnection { try await OfferStore.offer(token: token, channelID: channelID, on: $0, logger: logger) }
    }

    /// Creates an order for `userID` buying tier `position` of `channelID`, then its invoice.
    public func buy(userID: Int64, channelID: Int64, position: Int) async throws -> PurchaseOutcome {
        guard provider != nil else { return .paymentsUnavailable }
        let logger = self.logger
        guard
            let order = try await database.withConnection({
                try await OrderStore.create(userID: userID, channelID: channelID, position: position, on: $0, logger: logger)
            })
        else { return .unavailable }
        logger.info(
            "order created", metadata: ["order_id": "\(order.id)", "user_id": "\(userID)", "channel_id": "\(channelID)", "tier": "\(position)"])
        return try await requestInvoice(for: order)
    }

    /// Tries the invoice of a failed order again; an order that already has its invoice gets it back.
    public func retryInvoice(orderID: Int64, userID: Int64) async throws -> PurchaseOutcome {
        guard provider != nil else { return .paymentsUnavailable }
        let logger = self.logger
        guard
            let (order, url) = try await database.withConnection({
                try await OrderStore.pending(id: orderID, userID: userID, on: $0, logger: logger)
            })
        else { return .unavailable }
        switch order.status {
        case .invoiceFailed, .created:
            return try await requestInvoice(for: order)
        case .awaitingPayment, .waiting, .confirming, .confirmed, .sending:
            guard let url else { return .unavailable }
            return .invoice(orderID: order.id, invoiceURL: url, priceUSD: order.priceUSD, durationDays: order.durationDays, title: order.title)
        default:
            return .unavailable
        }
    }

    /// Asks the provider for an invoice. Not retried here: a timed-out request may have created one, and the
    /// user decides whether to try again (a second invoice for the same order can only be paid once).
    func requestInvoice(for order: PendingOrder) async throws -> PurchaseOutcome {
        guard let provider else { return .paymentsUnavailable }
        let base = settings.publicURL?.absoluteString
        let returnURL = base.flatMap { URL(string: "\($0)/\(SubscriptionSettings.returnPath)?order=\(order.publicID)") }
        let request = InvoiceRequest(
            priceAmount: order.priceUSD, priceCurrency: "usd", orderID: order.publicID,
            orderDescription: order.durationDays > 0 ? "\(order.title) — \(order.durationDays) d" : "\(order.title) — donation",
            ipnCallbackURL: base.flatMap { URL(string: "\($0)/\(SubscriptionSettings.ipnPath)") },
            successURL: returnURL, cancelURL: returnURL
        )
        let logger = self.logger
        do {
            let invoice = try await provider.createInvoice(request)
            let now = clock.now()
            let expires = now.addingTimeInterval(TimeInterval(settings.invoiceLifetime.components.seconds))
            let firstCheck = now.addingTimeInterval(TimeInterval(settings.paymentRecheckInterval.components.seconds))
            try await database.withConnection { connection in
                try await OrderStore.invoiceCreated(
                    order.id, invoiceID: invoice.id, url: invoice.invoiceURL.absoluteString, expiresAt: expires, checkAt: firstCheck,
                    on: connection, logger: logger
                )
            }
            return .invoice(
                orderID: order.id, invoiceURL: invoice.invoiceURL.absoluteString, priceUSD: order.priceUSD,
                durationDays: order.durationDays, title: order.title
            )
        } catch {
            logger.warning("invoice creation failed", metadata: ["order_id": "\(order.id)", "error": "\(error)"])
            try await database.withConnection { try await OrderStore.invoiceFailed(order.id, reason: "\(error)", on: $0, logger: logger) }
            return .invoiceFailed(orderID: order.id)
        }
    }

    /// The user's subscriptions, newest expiry first.
    public func subscriptions(of userID: Int64) async throws -> [SubscriptionSummary] {
        let logger = self.logger
        return try await database.withConnection { try await OfferStore.subscriptions(of: userID, on: $0, logger: logger) }
    }

    /// The order behind a return-page visit.
    public func order(publicID: String) async throws -> OrderView? {
        let logger = self.logger
        return try await database.withConnection { try await OrderStore.view(publicID: publicID, on: $0, logger: logger) }
    }
}

/// An order about to get its invoice.
struct PendingOrder: Sendable {
    var id: Int64
    var publicID: String
    var priceUSD: Decimal
    var durationDays: Int
    var title: String
    var status: OrderStatus
}
