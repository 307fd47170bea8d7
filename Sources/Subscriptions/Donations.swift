import Foundation
import Logging
import Money
import PostgresNIO
import Storage

/// What a donor's keypad shows: the channel it gives to, the amount typed, the accepted range.
public struct DonationKeypadView: Sendable, Hashable {
    public var channelID: Int64
    public var title: String
    public var amount: String
    public var range: DonationRange
}

/// What pressing a keypad key led to.
public enum DonationPress: Sendable, Hashable {
    /// The amount changed (or, for a refused key, did not): redraw the keypad.
    case updated(DonationKeypadView, rejection: DonationRejection?)
    /// The donor confirmed an amount: the donation's invoice (or why there is none).
    case confirmed(PurchaseOutcome, amountUSD: Decimal)
    case cancelled(title: String)
    /// The press came from a keypad that is no longer the donor's current one.
    case outdated
    /// The channel stopped selling since the keypad was drawn.
    case unavailable
}

/// Donations: a donor opens the channel's donation link, types an amount on a keypad of their own (its state
/// is one row per donor, so two donors never share an amount), and confirming creates a donation order and
/// its invoice exactly as a purchase does. Processing a paid donation is `PaymentProcessor`'s.
public struct DonationService: Sendable {
    let database: Database
    let purchases: PurchaseService
    let logger: Logger

    public init(database: Database, purchases: PurchaseService, logger: Logger) {
        self.database = database
        self.purchases = purchases
        self.logger = logger
    }

    /// Starts a fresh keypad for `userID` on the active channel whose offer token is `token`; `nil` when no
    /// active channel has it. The caller draws the keypad and then `attach`es the message it drew.
    public func open(token: String, userID: Int64, chatID: Int64) async throws -> DonationKeypadView? {
        let logger = self.logger
        return try await database.withConnection {
            try await DonationStore.open(token: token, userID: userID, chatID: chatID, on: $0, logger: logger)
        }
    }

    /// The keypad of `userID` is drawn in `messageID`; presses on any other message are outdated.
    public func attach(userID: Int64, messageID: Int64) async throws {
        let logger = self.logger
        try await database.withConnection { try await DonationStore.attach(userID: userID, messageID: messageID, on: $0, logger: logger) }
    }

    /// Applies one key pressed on `messageID`. Presses of one user arrive in order, so every digit counts.
    public func press(_ key: DonationKey, userID: Int64, messageID: Int64) async throws -> DonationPress {
        let logger = self.logger
        enum Step: Sendable { case done(DonationPress), donate(PendingOrder, Decimal) }
        let step: Step = try await database.withTransaction { connection in
            guard let keypad = try await DonationStore.lock(userID: userID, on: connection, logger: logger), keypad.messageID == messageID else {
                return .done(.outdated)
            }
            switch key {
            case .cancel:
                try await DonationStore.close(userID: userID, on: connection, logger: logger)
                return .done(.cancelled(title: keypad.view.title))
            case .confirm:
                switch DonationKeypad.confirm(keypad.view.amount, range: keypad.view.range) {
                case .failure(let rejection):
                    return .done(.updated(keypad.view, rejection: rejection))
                case .success(let amount):
                    guard
                        let order = try await OrderStore.createDonation(
                            userID: userID, channelID: keypad.view.channelID, amountUSD: amount, on: connection, logger: logger
                        )
                    else { return .done(.unavailable) }
                    try await DonationStore.close(userID: userID, on: connection, logger: logger)
                    return .donate(order, amount)
                }
            default:
                switch DonationKeypad.press(key, on: keypad.view.amount) {
                case .failure(let rejection):
                    return .done(.updated(keypad.view, rejection: rejection))
                case .success(let amount):
                    try await DonationStore.setAmount(amount, userID: userID, on: connection, logger: logger)
                    var view = keypad.view
                    view.amount = amount
                    return .done(.updated(view, rejection: nil))
                }
            }
        }
        switch step {
        case .done(let press):
            return press
        case .donate(let order, let amount):
            logger.info(
                "donation order created", metadata: ["order_id": "\(order.id)", "user_id": "\(userID)", "amount_usd": "\(DecimalText.usd(amount))"])
            return .confirmed(try await purchases.requestInvoice(for: order), amountUSD: amount)
        }
    }
}

extension PurchaseService {
    /// Donations go through the same provider, settings and invoices as purchases.
    public var donations: DonationService {
        DonationService(database: database, purchases: self, logger: logger)
    }
}
