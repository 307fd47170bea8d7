import Foundation
import Logging
import Money
import PostgresNIO
import Storage
import Subscriptions

/// Where a payout is (the `payouts.state` column; migration 0060 defines each).
public enum PayoutState: String, Sendable, Hashable, CaseIterable, Codable {
    case planned, sending, exchanging, held, paid, failed

    /// States in which the payout's amount is in flight.
    public static let open: [PayoutState] = [.planned, .sending, .exchanging, .held]
}

/// How a payout reaches the owner.
public enum PayoutRoute: String, Sendable, Hashable, CaseIterable, Codable {
    /// A hot-wallet transfer of the settlement asset to the owner's wallet.
    case direct
    /// A ChangeNOW exchange into the owner's coin, funded by a hot-wallet transfer to its pay-in address.
    case exchange
}

/// A payout as stored.
public struct Payout: Sendable, Hashable {
    public var id: Int64
    public var ownerUserID: Int64
    public var channelID: Int64
    public var asset: String
    /// Smallest units of `asset` (wei).
    public var amount: Decimal
    public var route: PayoutRoute
    public var currency: String
    public var network: String
    public var walletAddress: String
    public var walletMemo: String?
    public var state: PayoutState
    public var failure: String?
    public var exchangeIntentID: Int64?
    /// What the estimate said the owner would receive, in their currency.
    public var estimatedTo: Decimal?
    /// What the exchange paid the owner, in their currency.
    public var amountTo: Decimal?
    public var payoutHash: String?
    public var ownerFixable: Bool
    public var createdAt: Date
    public var updatedAt: Date
    /// What the amount was worth in USD at payment time (settlement-asset payouts).
    public var valueUSD: Decimal?

    /// The hot-wallet transfer that pays it, by its idempotency key: to the owner (direct), or funding the
    /// payout's exchange (the exchange intent's own key, so one exchange is funded at most once).
    public var transferKey: String {
        switch route {
        case .direct: return "payout:\(id)"
        case .exchange: return exchangeIntentID.map { "exchange-intent:\($0)" } ?? "payout:\(id):unfunded"
        }
    }

    public init(
        id: Int64, ownerUserID: Int64, channelID: Int64, asset: String, amount: Decimal, route: PayoutRoute, currency: String, network: String,
        walletAddress: String, walletMemo: String?, state: PayoutState, failure: String?, exchangeIntentID: Int64?, estimatedTo: Decimal?,
        amountTo: Decimal?, payoutHash: String?, ownerFixable: Bool, createdAt: Date, updatedAt: Date, valueUSD: Decimal? = nil
    ) {
        self.id = id
        self.ownerUserID = ownerUserID
        self.channelID = channelID
        self.asset = asset
        self.amount = amount
        self.route = route
        self.currency = currency
        self.network = network
        self.walletAddress = walletAddress
        self.walletMemo = walletMemo
        self.state = state
        self.failure = failure
        self.exchangeIntentID = exchangeIntentID
        self.estimatedTo = estimatedTo
        self.amountTo = amountTo
        self.payoutHash = payoutHash
        self.ownerFixable = ownerFixable
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.valueUSD = valueUSD
    }
}

/// Which balances a payout service pays.
public enum PayoutPlanning: Sendable, Hashable {
    /// Instant channels' pending balance (the settlement asset: threshold channels' shares are converted first).
    case instant
    /// Converted balances (USDT): a threshold channel's once it reaches the threshold (in USD, `unitsPerUSD`
    /// smallest units to the dollar), an instant channel's at once (it switched from threshold).
    case converted(unitsPerUSD: Decimal)
}

/// A channel whose owner is owed something in the settlement asset and could be paid now.
struct PlannableBalance: Sendable {
    var ownerUserID: Int64
    var channelID: Int64
    var pending: Decimal
    var currency: String
    var network: String
    var wallet: String
    var memo: String?
}

/// Per owner, channel and asset: what they earned and where it is.
public struct OwnerPayoutBalance: Sendable, Hashable {
    public var ownerUserID: Int64
    public var channelID: Int64
    public var asset: String
    public var earned: Decimal
    public var pending: Decimal
    public var inFlight: Decimal
    public var paidOut: Decimal
    /// Taken by a conversion that has not ended.
    public var converting: Decimal = 0
    /// Converted into another asset (the settlement asset a finished conversion took).
    public var converted: Decimal = 0
    /// Obtained by conversion (USDT).
    public var received: Decimal = 0

    public init(ownerUserID: Int64, channelID: Int64, asset: String, earned: Decimal, pending: Decimal, inFlight: Decimal, paidOut: Decimal) {
        self.ownerUserID = ownerUserID
        self.channelID = channelID
        self.asset = asset
        self.earned = earned
        self.pending = pending
        self.inFlight = inFlight
        self.paidOut = paidOut
    }
}

/// The `payouts` and `owner_balances` tables: every query about payouts lives here.
enum PayoutStore {
    static let columns = """
        id, owner_user_id, channel_id, asset, amount::text, route, currency_code, network_code, wallet_address, wallet_memo, state, \
        failure, exchange_intent_id, estimated_to::text, amount_to::text, payout_hash, owner_fixable, created_at, updated_at, value_usd::text
        """
    typealias Row = (
        Int64, Int64, Int64, String, String, String, String, String, String, String?, String,
        String?, Int64?, String?, String?, String?, Bool, Date, Date, String?
    )

    static func payout(_ row: Row) throws -> Payout {
        let (
            id, owner, channel, asset, amount, route, currency, network, wallet, memo, state, failure, intent, estimated, amountTo, hash, fixable,
            created, updated, value
        ) = row
        guard let state = PayoutState(rawValue: state) else { throw PayoutError.unknownState(state) }
        guard let route = PayoutRoute(rawValue: route) else { throw PayoutError.unknownRoute(route) }
        return Payout(
            id: id, ownerUserID: owner, channelID: channel, asset: asset, amount: try DecimalText.require(amount, "payout amount"), route: route,
            currency: currency, network: network, walletAddress: wallet, walletMemo: memo, state: state, failure: failure, exchangeIntentID: intent,
            estimatedTo: try estimated.map { try DecimalText.require($0, "estimate") },
            amountTo: try amountTo.map { try DecimalText.require($0, "amount to") },
            payoutHash: hash, ownerFixable: fixable, createdAt: created, updatedAt: updated,
            valueUSD: try value.map { try DecimalText.require($0, "payout value") }
        )
    }

    /// Channels paying `strategy` whose owner has something pending in `asset`, with no payout open, and not
    /// stopped by a failed payout: the channel's latest payout failed, nobody released it, and (when the
    /// failure was the owner's to fix) the owner has not changed the wallet since.
    static func plannable(asset: String, rule: PayoutPlanning, limit: Int, on connection: PostgresConnection, logger: Logger) async throws
        -> [PlannableBalance]
    {
        let everyThreshold: Bool
        let unitsPerUSD: Decimal
        switch rule {
        case .instant:
            (everyThreshold, unitsPerUSD) = (false, 0)
        case .converted(let units):
            (everyThreshold, unitsPerUSD) = (true, units)
        }
        return try await connection.all(
            """
            SELECT b.owner_user_id, b.channel_id, b.pending::text, s.currency_code, s.network_code, s.wallet_address, s.wallet_memo
            FROM owner_balances b
            JOIN channel_payout_settings s ON s.channel_id = b.channel_id
            WHERE b.asset = \(asset) AND b.pending > 0
              AND (s.strategy = \(PayoutStrategy.instant.rawValue)
                   OR (\(everyThreshold) AND s.strategy = \(PayoutStrategy.threshold.rawValue) AND b.pending >= s.threshold_usd * \(DecimalText.plain(unitsPerUSD))::numeric))
              AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.channel_id = b.channel_id AND p.asset = b.asset
                              AND p.state = ANY(\(PayoutState.open.map(\.rawValue))))
              AND NOT EXISTS (
                  SELECT 1 FROM (SELECT * FROM payouts q WHERE q.channel_id = b.channel_id AND q.asset = b.asset ORDER BY q.id DESC LIMIT 1) p
                  WHERE p.state = \(PayoutState.failed.rawValue) AND p.released_at IS NULL
                    AND (NOT p.owner_fixable OR (p.wallet_address = s.wallet_address AND p.currency_code = s.currency_code
                                                 AND p.network_code = s.network_code AND p.wallet_memo IS NOT DISTINCT FROM s.wallet_memo)))
            ORDER BY b.updated_at, b.channel_id
            LIMIT \(Int32(limit))
            """,
            as: (Int64, Int64, String, String, String, String, String?).self, logger: logger
        ).map { owner, channel, pending, currency, network, wallet, memo in
            PlannableBalance(
                ownerUserID: owner, channelID: channel, pending: try DecimalText.require(pending, "pending"),
                currency: currency, network: network, wallet: wallet, memo: memo
            )
        }
    }

    /// Locks the channel's balance row and returns what is pending now and its USD value (the planner re-reads
    /// them under the lock).
    static func lockPending(
        ownerUserID: Int64, channelID: Int64, asset: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> (units: Decimal, valueUSD: Decimal) {
        guard
            let (units, value) = try await connection.first(
                """
                SELECT pending::text, pending_usd::text FROM owner_balances
                WHERE owner_user_id = \(ownerUserID) AND channel_id = \(channelID) AND asset = \(asset) FOR UPDATE
                """,
                as: (String, String).self, logger: logger
            )
        else { return (0, 0) }
        return (try DecimalText.require(units, "pending"), try DecimalText.require(value, "pending value"))
    }

    /// The USD value of `amount` taken from `pending` worth `pendingUSD`: all of it for all of pending, else its
    /// share rounded to the cent.
    static func value(of amount: Decimal, pending: Decimal, pendingUSD: Decimal) -> Decimal {
        guard pending > 0, amount < pending else { return max(pendingUSD, 0) }
        return max(DecimalText.rounded(pendingUSD * amount / pending, scale: 2, .plain), 0)
    }

    /// Records a planned payout unless the channel already has an open one.
    static func insert(
        _ balance: PlannableBalance, amount: Decimal, valueUSD: Decimal, asset: String, route: PayoutRoute, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Payout? {
        try await connection.first(
            """
            INSERT INTO payouts (owner_user_id, channel_id, asset, amount, route, currency_code, network_code, wallet_address, wallet_memo, state, value_usd)
            SELECT \(balance.ownerUserID), \(balance.channelID), \(asset), \(DecimalText.plain(amount))::numeric, \(route.rawValue),
                   \(balance.currency), \(balance.network), \(balance.wallet), \(balance.memo), \(PayoutState.planned.rawValue), \(DecimalText.plain(valueUSD))::numeric
            WHERE NOT EXISTS (SELECT 1 FROM payouts WHERE channel_id = \(balance.channelID) AND asset = \(asset)
                              AND state = ANY(\(PayoutState.open.map(\.rawValue))))
            RETURNING \(unescaped: columns)
            """,
            as: Row.self, logger: logger
        ).map(payout)
    }

    static func inState(_ state: PayoutState, asset: String, limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [Payout] {
        try await connection.all(
            "SELECT \(unescaped: columns) FROM payouts WHERE state = \(state.rawValue) AND asset = \(asset) ORDER BY id LIMIT \(Int32(limit))",
            as: Row.self, logger: logger
        ).map(payout)
    }

    static func find(_ id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Payout? {
        try await connection.first("SELECT \(unescaped: columns) FROM payouts WHERE id = \(id)", as: Row.self, logger: logger).map(payout)
    }

    /// Moves a payout from `from` to `to`; returns whether it was in `from` (so two workers cannot both move it).
    static func move(
        _ id: Int64, from: PayoutState, to: PayoutState, failure: String? = nil, gas: Decimal? = nil, ownerFixable: Bool = false,
        released: Bool = false, refund: Decimal? = nil, on connection: PostgresConnection, logger: Logger
    ) async throws -> Bool {
        try await connection.run(
            """
            UPDATE payouts SET state = \(to.rawValue), failure = coalesce(\(failure.map { String($0.prefix(2000)) }), failure),
                gas_units = coalesce(\(gas.map(DecimalText.plain))::numeric, gas_units),
                refund_units = coalesce(\(refund.map(DecimalText.plain))::numeric, refund_units),
                owner_fixable = \(ownerFixable),
                released_at = CASE WHEN \(released) THEN now() END,
                paid_at = CASE WHEN \(to == .paid) THEN now() END
            WHERE id = \(id) AND state = \(from.rawValue)
            RETURNING 1
            """,
            logger: logger
        ) == 1
    }

    static func setIntent(_ id: Int64, intentID: Int64, estimatedTo: Decimal?, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE payouts SET exchange_intent_id = \(intentID), estimated_to = coalesce(\(estimatedTo.map(DecimalText.plain))::numeric, estimated_to)
            WHERE id = \(id) AND (exchange_intent_id IS NULL OR exchange_intent_id = \(intentID))
            """,
            logger: logger
        )
    }

    static func recordArrival(_ id: Int64, amountTo: Decimal?, payoutHash: String?, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE payouts SET amount_to = coalesce(\(amountTo.map(DecimalText.plain))::numeric, amount_to),
                payout_hash = coalesce(\(payoutHash.map { String($0.prefix(200)) }), payout_hash)
            WHERE id = \(id)
            """,
            logger: logger
        )
    }

    /// Adds a payout that reached its owner to their paid-out total (in the transaction that books it).
    static func addPaidOut(_ payout: Payout, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE owner_balances SET paid_out = paid_out + \(DecimalText.plain(payout.amount))::numeric, updated_at = now()
            WHERE owner_user_id = \(payout.ownerUserID) AND channel_id = \(payout.channelID) AND asset = \(payout.asset)
            """,
            logger: logger
        )
    }

    /// Lets the channel's next payout be planned after failed payout `id`, when it is the channel's latest and
    /// not released yet. Returns whether it was released.
    static func release(_ id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.run(
            """
            UPDATE payouts p SET released_at = now()
            WHERE p.id = \(id) AND p.state = \(PayoutState.failed.rawValue) AND p.released_at IS NULL
              AND p.id = (SELECT max(q.id) FROM payouts q WHERE q.channel_id = p.channel_id AND q.asset = p.asset)
            RETURNING 1
            """,
            logger: logger
        ) == 1
    }

    static func balances(ownerUserID: Int64?, limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [OwnerPayoutBalance] {
        try await connection.all(
            """
            SELECT owner_user_id, channel_id, asset, earned::text, pending::text, in_flight::text, paid_out::text,
                   converting::text, converted::text, received::text FROM owner_balances
            WHERE \(ownerUserID)::bigint IS NULL OR owner_user_id = \(ownerUserID)::bigint
            ORDER BY owner_user_id, channel_id, asset LIMIT \(Int32(limit))
            """,
            as: (Int64, Int64, String, String, String, String, String, String, String, String).self, logger: logger
        ).map { owner, channel, asset, earned, pending, inFlight, paidOut, converting, converted, received in
            var balance = OwnerPayoutBalance(
                ownerUserID: owner, channelID: channel, asset: asset, earned: try DecimalText.require(earned, "earned"),
                pending: try DecimalText.require(pending, "pending"), inFlight: try DecimalText.require(inFlight, "in flight"),
                paidOut: try DecimalText.require(paidOut, "paid out")
            )
            balance.converting = try DecimalText.require(converting, "converting")
            balance.converted = try DecimalText.require(converted, "converted")
            balance.received = try DecimalText.require(received, "received")
            return balance
        }
    }

    /// Payouts for the operator's list: open ones, then the latest failed and paid, `limit` of each.
    static func recent(_ states: [PayoutState], limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [Payout] {
        try await connection.all(
            "SELECT \(unescaped: columns) FROM payouts WHERE state = ANY(\(states.map(\.rawValue))) ORDER BY id DESC LIMIT \(Int32(limit))",
            as: Row.self, logger: logger
        ).map(payout)
    }

    /// Open payouts per state with the oldest one's age in seconds, for metrics.
    static func openCounts(on connection: PostgresConnection, logger: Logger) async throws -> [(PayoutState, Int, Double)] {
        try await connection.all(
            """
            SELECT state, count(*)::int, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 FROM payouts
            WHERE state = ANY(\(PayoutState.open.map(\.rawValue))) GROUP BY state
            """,
            as: (String, Int32, Double).self, logger: logger
        ).compactMap { state, count, age in PayoutState(rawValue: state).map { ($0, Int(count), age) } }
    }
}

/// The payouts table holds something the code does not know.
public enum PayoutError: Error, Sendable, Hashable, CustomStringConvertible {
    case unknownState(String)
    case unknownRoute(String)

    public var description: String {
        switch self {
        case .unknownState(let state): return "unknown payout state '\(state)'"
        case .unknownRoute(let route): return "unknown payout route '\(route)'"
        }
    }
}
