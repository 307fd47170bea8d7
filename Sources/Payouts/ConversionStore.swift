import Foundation
import Logging
import Money
import PostgresNIO
import Storage

/// Where a batch conversion is (the `conversions.state` column; migration 0070 defines each).
public enum ConversionState: String, Sendable, Hashable, CaseIterable, Codable {
    case planned, sending, exchanging, held, converted, failed

    /// Not finished: the active one and any held for the admins.
    public static let open: [ConversionState] = [.planned, .sending, .exchanging, .held]
    /// At most one conversion is in these at a time (migration 0071); a held one does not count.
    public static let active: [ConversionState] = [.planned, .sending, .exchanging]
}

/// A batch conversion as stored.
public struct Conversion: Sendable, Hashable {
    public var id: Int64
    public var state: ConversionState
    public var fromAsset: String
    /// Smallest units of `fromAsset` (wei).
    public var fromUnits: Decimal
    public var toAsset: String
    /// What the shares were worth in USD at payment time.
    public var valueUSD: Decimal
    public var exchangeIntentID: Int64?
    /// Smallest units of `toAsset` the estimate promised, ChangeNOW reported sending, and the hot wallet got.
    public var estimatedUnits: Decimal?
    public var reportedUnits: Decimal?
    public var receivedUnits: Decimal?
    public var payoutHash: String?
    public var failure: String?
    public var createdAt: Date

    public init(
        id: Int64, state: ConversionState, fromAsset: String, fromUnits: Decimal, toAsset: String, valueUSD: Decimal, exchangeIntentID: Int64?,
        estimatedUnits: Decimal?, reportedUnits: Decimal?, receivedUnits: Decimal?, payoutHash: String?, failure: String?, createdAt: Date
    ) {
        self.id = id
        self.state = state
        self.fromAsset = fromAsset
        self.fromUnits = fromUnits
        self.toAsset = toAsset
        self.valueUSD = valueUSD
        self.exchangeIntentID = exchangeIntentID
        self.estimatedUnits = estimatedUnits
        self.reportedUnits = reportedUnits
        self.receivedUnits = receivedUnits
        self.payoutHash = payoutHash
        self.failure = failure
        self.createdAt = createdAt
    }

    /// The hot-wallet transfer that funds its exchange: the intent's own key, so one exchange is funded once.
    public var transferKey: String? { exchangeIntentID.map { "exchange-intent:\($0)" } }
}

/// What one channel put into a conversion and what it got.
public struct ConversionPart: Sendable, Hashable {
    public var conversionID: Int64
    public var ownerUserID: Int64
    public var channelID: Int64
    public var fromUnits: Decimal
    public var valueUSD: Decimal
    public var allocatedUnits: Decimal?
    public var payoutID: Int64?

    public init(
        conversionID: Int64, ownerUserID: Int64, channelID: Int64, fromUnits: Decimal, valueUSD: Decimal, allocatedUnits: Decimal?, payoutID: Int64?
    ) {
        self.conversionID = conversionID
        self.ownerUserID = ownerUserID
        self.channelID = channelID
        self.fromUnits = fromUnits
        self.valueUSD = valueUSD
        self.allocatedUnits = allocatedUnits
        self.payoutID = payoutID
    }
}

/// A threshold channel's pending settlement asset, as the conversion planner sees it.
struct PendingShare: Sendable, Hashable {
    var ownerUserID: Int64
    var channelID: Int64
    var units: Decimal
    var valueUSD: Decimal
}

/// The `conversions` and `conversion_parts` tables.
enum ConversionStore {
    static let columns = """
        id, state, from_asset, from_units::text, to_asset, value_usd::text, exchange_intent_id, estimated_units::text, reported_units::text, \
        received_units::text, payout_hash, failure, created_at
        """
    typealias Row = (Int64, String, String, String, String, String, Int64?, String?, String?, String?, String?, String?, Date)

    static func conversion(_ row: Row) throws -> Conversion {
        let (id, state, fromAsset, fromUnits, toAsset, value, intent, estimated, reported, received, hash, failure, created) = row
        guard let state = ConversionState(rawValue: state) else { throw PayoutError.unknownState(state) }
        func units(_ text: String?, _ what: String) throws -> Decimal? { try text.map { try DecimalText.require($0, what) } }
        return Conversion(
            id: id, state: state, fromAsset: fromAsset, fromUnits: try DecimalText.require(fromUnits, "conversion units"), toAsset: toAsset,
            valueUSD: try DecimalText.require(value, "conversion value"), exchangeIntentID: intent, estimatedUnits: try units(estimated, "estimate"),
            reportedUnits: try units(reported, "reported"), receivedUnits: try units(received, "received"), payoutHash: hash, failure: failure,
            createdAt: created
        )
    }

    /// The open conversion, if any (there is at most one).
    /// The conversion being planned, funded or exchanged, if any (there is at most one).
    static func active(on connection: PostgresConnection, logger: Logger) async throws -> Conversion? {
        try await connection.first(
            "SELECT \(unescaped: columns) FROM conversions WHERE state = ANY(\(ConversionState.active.map(\.rawValue))) ORDER BY id LIMIT 1",
            as: Row.self, logger: logger
        ).map(conversion)
    }

    /// Every conversion not finished, oldest first: the active one and those held.
    static func open(on connection: PostgresConnection, logger: Logger) async throws -> [Conversion] {
        try await connection.all(
            "SELECT \(unescaped: columns) FROM conversions WHERE state = ANY(\(ConversionState.open.map(\.rawValue))) ORDER BY id",
            as: Row.self, logger: logger
        ).map(conversion)
    }

    /// Conversions held for the admins, oldest first.
    static func held(limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [Conversion] {
        try await connection.all(
            "SELECT \(unescaped: columns) FROM conversions WHERE state = \(ConversionState.held.rawValue) ORDER BY id LIMIT \(Int32(limit))",
            as: Row.self, logger: logger
        ).map(conversion)
    }

    static func find(_ id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Conversion? {
        try await connection.first("SELECT \(unescaped: columns) FROM conversions WHERE id = \(id)", as: Row.self, logger: logger).map(conversion)
    }

    static func recent(limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [Conversion] {
        try await connection.all("SELECT \(unescaped: columns) FROM conversions ORDER BY id DESC LIMIT \(Int32(limit))", as: Row.self, logger: logger)
            .map(conversion)
    }

    /// Threshold channels with settlement asset pending. With `lock`, their balance rows are locked (in channel
    /// order, so two planners cannot deadlock) and what is read cannot change until the transaction ends.
    static func pendingShares(asset: String, lock: Bool, on connection: PostgresConnection, logger: Logger) async throws -> [PendingShare] {
        try await connection.all(
            """
            SELECT b.owner_user_id, b.channel_id, b.pending::text, b.pending_usd::text
            FROM owner_balances b JOIN channel_payout_settings s ON s.channel_id = b.channel_id
            WHERE b.asset = \(asset) AND b.pending > 0 AND s.strategy = \(PayoutStrategy.threshold.rawValue)
            ORDER BY b.channel_id, b.owner_user_id
            \(unescaped: lock ? "FOR UPDATE OF b" : "")
            """,
            as: (Int64, Int64, String, String).self, logger: logger
        ).map { owner, channel, units, value in
            PendingShare(
                ownerUserID: owner, channelID: channel, units: try DecimalText.require(units, "pending"),
                valueUSD: try DecimalText.require(value, "pending value"))
        }
    }

    /// Records a planned conversion and its parts; `nil` when another one is open.
    static func insert(
        parts: [PendingShare], fromAsset: String, toAsset: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> Conversion? {
        let units = parts.reduce(Decimal(0)) { $0 + $1.units }
        let value = parts.reduce(Decimal(0)) { $0 + $1.valueUSD }
        guard
            let conversion = try await connection.first(
                """
                INSERT INTO conversions (state, from_asset, from_units, to_asset, value_usd)
                VALUES (\(ConversionState.planned.rawValue), \(fromAsset), \(DecimalText.plain(units))::numeric, \(toAsset), \(DecimalText.plain(value))::numeric)
                ON CONFLICT DO NOTHING
                RETURNING \(unescaped: columns)
                """,
                as: Row.self, logger: logger
            ).map(conversion)
        else { return nil }
        try await connection.run(
            """
            INSERT INTO conversion_parts (conversion_id, owner_user_id, channel_id, from_units, value_usd)
            SELECT \(conversion.id), p.owner, p.channel, p.units::numeric, p.value::numeric
            FROM unnest(\(parts.map(\.ownerUserID))::bigint[], \(parts.map(\.channelID))::bigint[],
                        \(parts.map { DecimalText.plain($0.units) })::text[], \(parts.map { DecimalText.plain($0.valueUSD) })::text[])
                 AS p(owner, channel, units, value)
            """,
            logger: logger
        )
        return conversion
    }

    static func parts(of conversionID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> [ConversionPart] {
        try await connection.all(
            """
            SELECT conversion_id, owner_user_id, channel_id, from_units::text, value_usd::text, allocated_units::text, payout_id
            FROM conversion_parts WHERE conversion_id = \(conversionID) ORDER BY channel_id
            """,
            as: (Int64, Int64, Int64, String, String, String?, Int64?).self, logger: logger
        ).map { conversion, owner, channel, units, value, allocated, payout in
            ConversionPart(
                conversionID: conversion, ownerUserID: owner, channelID: channel, fromUnits: try DecimalText.require(units, "part units"),
                valueUSD: try DecimalText.require(value, "part value"),
                allocatedUnits: try allocated.map { try DecimalText.require($0, "allocated") },
                payoutID: payout
            )
        }
    }

    /// The conversion other than `conversionID` already booked from payout transaction `hash`, if any.
    static func booked(from hash: String, other conversionID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Int64? {
        try await connection.first(
            "SELECT id FROM conversions WHERE lower(payout_hash) = lower(\(hash)) AND id <> \(conversionID)", as: Int64.self, logger: logger
        )
    }

    /// Moves a conversion from `from` to `to`; returns whether it was in `from`.
    static func move(
        _ id: Int64, from: ConversionState, to: ConversionState, failure: String? = nil, gas: Decimal? = nil, refund: Decimal? = nil,
        received: Decimal? = nil, on connection: PostgresConnection, logger: Logger
    ) async throws -> Bool {
        try await connection.run(
            """
            UPDATE conversions SET state = \(to.rawValue), failure = coalesce(\(failure.map { String($0.prefix(2000)) }), failure),
                received_units = coalesce(\(received.map(DecimalText.plain))::numeric, received_units),
                gas_units = coalesce(\(gas.map(DecimalText.plain))::numeric, gas_units),
                refund_units = coalesce(\(refund.map(DecimalText.plain))::numeric, refund_units),
                ended_at = CASE WHEN \(to == .converted || to == .failed) THEN now() END
            WHERE id = \(id) AND state = \(from.rawValue)
            RETURNING 1
            """,
            logger: logger
        ) == 1
    }

    static func setIntent(_ id: Int64, intentID: Int64, estimatedUnits: Decimal?, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE conversions SET exchange_intent_id = \(intentID),
                estimated_units = coalesce(\(estimatedUnits.map(DecimalText.plain))::numeric, estimated_units)
            WHERE id = \(id) AND (exchange_intent_id IS NULL OR exchange_intent_id = \(intentID))
            """,
            logger: logger
        )
    }

    /// Records what arrived and each part's allocation (in the transaction that books them).
    static func recordArrival(
        _ id: Int64, reported: Decimal, received: Decimal, payoutHash: String, allocations: [(channelID: Int64, units: Decimal)],
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        try await connection.run(
            """
            UPDATE conversions SET reported_units = \(DecimalText.plain(reported))::numeric, received_units = \(DecimalText.plain(received))::numeric,
                payout_hash = \(String(payoutHash.prefix(200)))
            WHERE id = \(id)
            """,
            logger: logger
        )
        try await connection.run(
            """
            UPDATE conversion_parts p SET allocated_units = a.units::numeric
            FROM unnest(\(allocations.map(\.channelID))::bigint[], \(allocations.map { DecimalText.plain($0.units) })::text[]) AS a(channel, units)
            WHERE p.conversion_id = \(id) AND p.channel_id = a.channel
            """,
            logger: logger
        )
    }

    /// A payout of `asset` planned for a channel pays the channel's allocated parts not yet paid.
    static func claimParts(channelID: Int64, asset: String, payoutID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE conversion_parts p SET payout_id = \(payoutID)
            FROM conversions c
            WHERE c.id = p.conversion_id AND c.to_asset = \(asset) AND c.state = \(ConversionState.converted.rawValue)
              AND p.channel_id = \(channelID) AND p.payout_id IS NULL
            """,
            logger: logger
        )
    }

    /// A failed payout's parts are unpaid again.
    static func releaseParts(payoutID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("UPDATE conversion_parts SET payout_id = NULL WHERE payout_id = \(payoutID)", logger: logger)
    }
}
