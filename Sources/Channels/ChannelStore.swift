import Foundation
import Logging
import Money
import PayoutAddresses
import PostgresNIO
import Storage

/// Whether a channel pair is on sale (the `channels.status` column).
public enum ChannelStatus: String, Sendable, Hashable, CaseIterable, Codable {
    /// The schema's default for a row written outside the owner's form; not on sale.
    case setup
    case active, paused
}

/// Why a channel's sales are paused (the `channels.paused_reason` column). Only an admin resumes what an admin
/// paused; the bot's own membership problems pause with the problem as the reason.
public enum ChannelPauseReason: String, Sendable, Hashable, CaseIterable, Codable {
    case owner
    case admin
    /// The bot is not in the chat any more, or the chat is gone.
    case botRemoved = "bot_removed"
    /// The bot is there but lacks an administrator right it needs.
    case botRights = "bot_rights"
}

/// The two roles of a channel pair (the `channel_chat_claims.role` column); the bot's rights in each are in `Bot`.
public enum ChannelRole: String, Sendable, Hashable, CaseIterable, Codable {
    /// The private channel buyers are let into: the bot makes invite links and removes expired members.
    case closed
    /// The public channel where the offer is posted: the bot posts, edits and deletes its posts.
    case open
}

/// A channel pair as the owner's list shows it.
public struct ChannelSummary: Sendable, Hashable {
    public var id: Int64
    public var ownerUserID: Int64
    public var openChatID: Int64
    public var closedChatID: Int64
    public var openTitle: String
    public var closedTitle: String
    public var status: ChannelStatus
    public var pausedReason: ChannelPauseReason?
    public var enabledTiers: Int
    /// The deep-link payload of the channel's offer (`t.me/<bot>?start=<token>`).
    public var offerToken: String
    /// Whether the owner wrote a donation message (without one there is no donation post).
    public var hasDonationMessage: Bool

    public init(
        id: Int64, ownerUserID: Int64, openChatID: Int64, closedChatID: Int64, openTitle: String, closedTitle: String,
        status: ChannelStatus, pausedReason: ChannelPauseReason?, enabledTiers: Int, offerToken: String, hasDonationMessage: Bool = false
    ) {
        self.id = id
        self.ownerUserID = ownerUserID
        self.openChatID = openChatID
        self.closedChatID = closedChatID
        self.openTitle = openTitle
        self.closedTitle = closedTitle
        self.status = status
        self.pausedReason = pausedReason
        self.enabledTiers = enabledTiers
        self.offerToken = offerToken
        self.hasDonationMessage = hasDonationMessage
    }
}

/// Why a save was refused by the database's rules.
public enum ChannelSaveError: Error, Sendable, Hashable {
    case limitReached(Int)
    case chatTaken
    case notOwner
    /// A database rule refused a value: `field` is the form field its constraint guards, when one does.
    /// The form checks the same rules first, so this is for texts stored before a rule tightened.
    case valueRefused(field: String?, constraint: String)
}

/// A row of `channels` or `channel_chat_claims` held a value no enum here knows: the schema and the code disagree.
public enum ChannelStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    case unknownStatus(String)
    case unknownPauseReason(String)
    case unknownRole(String)

    public var description: String {
        switch self {
        case .unknownStatus(let value): "channels.status holds an unknown value '\(value)'"
        case .unknownPauseReason(let value): "channels.paused_reason holds an unknown value '\(value)'"
        case .unknownRole(let value): "channel_chat_claims.role holds an unknown value '\(value)'"
        }
    }
}

/// The home of `owners`, `channels`, `channel_tiers`, `channel_payout_settings` and `channel_chat_claims`, and the
/// reader of the payout catalogue (`payout_networks`, `payout_currencies`, `payout_options`). Every function runs
/// on the caller's connection (usually inside a step's transaction), and every function that acts for an owner
/// also names the owner.
public enum ChannelStore {
    public static func summaries(ownerUserID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> [ChannelSummary] {
        try await summaries(where: "c.owner_user_id = $1", [ownerUserID], on: connection, logger: logger)
    }

    /// The channel, only when `ownerUserID` owns it.
    public static func summary(id: Int64, ownerUserID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> ChannelSummary? {
        try await summaries(where: "c.id = $1 AND c.owner_user_id = $2", [id, ownerUserID], on: connection, logger: logger).first
    }

    /// Any channel that is not deleted, whoever owns it (for admins and for the bot's own membership updates).
    public static func summary(id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> ChannelSummary? {
        try await summaries(where: "c.id = $1", [id], on: connection, logger: logger).first
    }

    /// The channel whose open or closed chat is `chatID`, and which of the two it is.
    public static func summary(chatID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> (ChannelSummary, role: ChannelRole)?
    {
        guard
            let (id, roleName) = try await connection.first(
                "SELECT channel_id, role FROM channel_chat_claims WHERE chat_id = \(chatID)", as: (Int64, String).self, logger: logger
            )
        else { return nil }
        guard let role = ChannelRole(rawValue: roleName) else { throw ChannelStoreError.unknownRole(roleName) }
        guard let summary = try await summary(id: id, on: connection, logger: logger) else { return nil }
        return (summary, role)
    }

    /// `condition` is fixed SQL text from this file; every value in it is a bind parameter from `values`.
    private static func summaries(where condition: String, _ values: [Int64], on connection: PostgresConnection, logger: Logger) async throws
        -> [ChannelSummary]
    {
        var bindings = PostgresBindings()
        for value in values { bindings.append(value) }
        let query = PostgresQuery(
            unsafeSQL: """
                SELECT c.id, c.owner_user_id, c.open_chat_id, c.closed_chat_id, c.open_title, c.closed_title, c.status, c.paused_reason,
                       (SELECT count(*) FROM channel_tiers t WHERE t.channel_id = c.id AND t.enabled)::int, c.offer_token,
                       c.donation_message IS NOT NULL
                FROM channels c WHERE c.deleted_at IS NULL AND \(condition) ORDER BY c.id
                """, binds: bindings)
        return try await connection.all(
            query, as: (Int64, Int64, Int64, Int64, String, String, String, String?, Int, String, Bool).self, logger: logger
        ).map { id, owner, open, closed, openTitle, closedTitle, statusName, reasonName, tiers, token, donation in
            guard let status = ChannelStatus(rawValue: statusName) else { throw ChannelStoreError.unknownStatus(statusName) }
            let reason = try reasonName.map { name in
                guard let reason = ChannelPauseReason(rawValue: name) else { throw ChannelStoreError.unknownPauseReason(name) }
                return reason
            }
            return ChannelSummary(
                id: id, ownerUserID: owner, openChatID: open, closedChatID: closed, openTitle: openTitle, closedTitle: closedTitle,
                status: status, pausedReason: reason, enabledTiers: tiers, offerToken: token, hasDonationMessage: donation
            )
        }
    }

    public static func count(ownerUserID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        try await connection.first(
            "SELECT count(*)::int FROM channels WHERE owner_user_id = \(ownerUserID) AND deleted_at IS NULL", as: Int.self, logger: logger
        ) ?? 0
    }

    /// Whether a chat already belongs to a channel pair (as open or closed channel).
    public static func isClaimed(chatID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.run("SELECT 1 FROM channel_chat_claims WHERE chat_id = \(chatID)", logger: logger) > 0
    }

    /// Whether an offer token names a channel on sale (a `/start` deep link).
    public static func isOnSale(offerToken: String, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.run(
            "SELECT 1 FROM channels WHERE offer_token = \(offerToken) AND status = \(ChannelStatus.active.rawValue) LIMIT 1", logger: logger
        ) > 0
    }

    // MARK: - Form values

    /// The stored channel as the form's field values.
    public static func formValues(id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> [String: String] {
        var values: [String: String] = [:]
        if let (closed, open, closedTitle, closedDescription, openTitle, openDescription, donation, language, minimum, maximum) =
            try await connection.first(
                """
                SELECT closed_chat_id, open_chat_id, closed_title, closed_description, open_title, open_description, donation_message, post_language,
                       donation_min_usd::text, donation_max_usd::text
                FROM channels WHERE id = \(id)
                """,
                as: (Int64, Int64, String, String, String, String, String?, String, String, String).self, logger: logger
            )
        {
            values["donation_min"] = minimum
            values["donation_max"] = maximum
            values["post_language"] = language
            values["closed_chat"] = String(closed)
            values["open_chat"] = String(open)
            values["closed_title"] = closedTitle
            values["closed_description"] = closedDescription
            values["open_title"] = openTitle
            values["open_description"] = openDescription
            values["donation_message"] = donation
        }
        for (position, price, days, enabled) in try await connection.all(
            "SELECT position::int, price_usd::text, duration_days, enabled FROM channel_tiers WHERE channel_id = \(id)",
            as: (Int, String, Int, Bool).self, logger: logger
        ) {
            values["tier\(position)_enabled"] = enabled ? "true" : "false"
            values["tier\(position)_price"] = price
            values["tier\(position)_days"] = String(days)
        }
        if let (network, currency, wallet, memo, strategy, threshold, notify, recipient) = try await connection.first(
            """
            SELECT network_code, currency_code, wallet_address, wallet_memo, strategy, threshold_usd::text, notifications_enabled, notification_user_id
            FROM channel_payout_settings WHERE channel_id = \(id)
            """,
            as: (String, String, String, String?, String, String?, Bool, Int64?).self, logger: logger
        ) {
            values["payout_network"] = network
            values["payout_currency"] = currency
            values["wallet_address"] = wallet
            values["wallet_memo"] = memo
            values["payout_strategy"] = strategy
            values["payout_threshold"] = threshold
            values["notifications_enabled"] = notify ? "true" : "false"
            values["notification_recipient"] = recipient.map(String.init)
        }
        for key in Array(values.keys) where values[key] == "" { values[key] = nil }
        return values
    }

    /// How the channel's owner is paid: strategy, threshold (threshold strategy), coin and network; `nil`
    /// before the payout settings are saved.
    public static func payoutSettings(
        channelID: Int64, on connection: PostgresConnection, logger: Logger
    ) async throws -> (strategy: String, thresholdUSD: Decimal?, currency: String, network: String)? {
        guard
            let (strategy, threshold, currency, network) = try await connection.first(
                "SELECT strategy, threshold_usd::text, currency_code, network_code FROM channel_payout_settings WHERE channel_id = \(channelID)",
                as: (String, String?, String, String).self, logger: logger
            )
        else { return nil }
        return (strategy, threshold.flatMap(DecimalText.parse), currency, network)
    }

    /// Writes the whole form (channel, tiers, payout settings) for a new channel (`id == nil`) or one the
    /// owner has. Runs inside a savepoint, so a refused write leaves the caller's transaction usable.
    public static func save(
        _ values: [String: String], id: Int64?, ownerUserID: Int64, maximumChannels: Int,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64 {
        try await connection.run("SAVEPOINT channel_save", logger: logger)
        do {
            let saved = try await write(values, id: id, ownerUserID: ownerUserID, maximumChannels: maximumChannels, on: connection, logger: logger)
            try await connection.run("RELEASE SAVEPOINT channel_save", logger: logger)
            return saved
        } catch {
            try await connection.run("ROLLBACK TO SAVEPOINT channel_save", logger: logger)
            if let psql = error as? PSQLError {
                switch psql.serverInfo?[.sqlState] {
                case "23505": throw ChannelSaveError.chatTaken
                case "23514":
                    let constraint = psql.serverInfo?[.constraintName] ?? ""
                    throw ChannelSaveError.valueRefused(field: fieldGuarded[constraint], constraint: constraint)
                default: break
                }
            }
            throw error
        }
    }

    /// The form field each named check of `channels` guards (Migrations/0040).
    static let fieldGuarded: [String: String] = [
        "channels_closed_title_length": "closed_title", "channels_open_title_length": "open_title",
        "channels_closed_description_length": "closed_description", "channels_open_description_length": "open_description",
        "channels_donation_message_length": "donation_message", "channels_donation_range": "donation_max",
    ]

    static func write(
        _ values: [String: String], id: Int64?, ownerUserID: Int64, maximumChannels: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64 {
        func text(_ key: String) -> String { values[key] ?? "" }
        // The owner row is the lock that keeps two concurrent adds from both passing the limit.
        try await connection.run("INSERT INTO owners (user_id) VALUES (\(ownerUserID)) ON CONFLICT (user_id) DO NOTHING", logger: logger)
        try await connection.run("SELECT 1 FROM owners WHERE user_id = \(ownerUserID) FOR UPDATE", logger: logger)
        let channelID: Int64
        let donation: String? = values["donation_message"].flatMap { $0.isEmpty ? nil : $0 }
        let language = values["post_language"].flatMap { $0.isEmpty ? nil : $0 } ?? "en"
        let donationMin = values["donation_min"].flatMap { $0.isEmpty ? nil : $0 } ?? "4.99"
        let donationMax = values["donation_max"].flatMap { $0.isEmpty ? nil : $0 } ?? "9999.99"
        if let id {
            guard
                let updated = try await connection.first(
                    """
                    UPDATE channels SET closed_title = \(text("closed_title")), closed_description = \(text("closed_description")),
                        open_title = \(text("open_title")), open_description = \(text("open_description")), donation_message = \(donation),
                        post_language = \(language), donation_min_usd = \(donationMin)::numeric, donation_max_usd = \(donationMax)::numeric
                    WHERE id = \(id) AND owner_user_id = \(ownerUserID) AND deleted_at IS NULL RETURNING id
                    """,
                    as: Int64.self, logger: logger
                )
            else { throw ChannelSaveError.notOwner }
            channelID = updated
        } else {
            guard try await count(ownerUserID: ownerUserID, on: connection, logger: logger) < maximumChannels else {
                throw ChannelSaveError.limitReached(maximumChannels)
            }
            guard let closed = Int64(text("closed_chat")), let open = Int64(text("open_chat")) else { throw ChannelSaveError.chatTaken }
            guard
                let inserted = try await connection.first(
                    """
                    INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, closed_description, open_chat_id, open_title, open_description, donation_message, post_language, status,
                                          donation_min_usd, donation_max_usd)
                    VALUES (\(ownerUserID), \(closed), \(text("closed_title")), \(text("closed_description")), \(open), \(text("open_title")),
                            \(text("open_description")), \(donation), \(language), \(ChannelStatus.active.rawValue), \(donationMin)::numeric, \(donationMax)::numeric)
                    RETURNING id
                    """,
                    as: Int64.self, logger: logger
                )
            else { preconditionFailure("an insert returns its row") }
            channelID = inserted
        }
        for position in 1...3 {
            let enabled = values["tier\(position)_enabled"] == "true"
            let price = values["tier\(position)_price"] ?? ""
            let days = Int(values["tier\(position)_days"] ?? "")
            if let days, !price.isEmpty {
                try await connection.run(
                    """
                    INSERT INTO channel_tiers (channel_id, position, price_usd, duration_days, enabled)
                    VALUES (\(channelID), \(Int16(position)), \(price)::numeric, \(days), \(enabled))
                    ON CONFLICT (channel_id, position) DO UPDATE SET
                        price_usd = EXCLUDED.price_usd, duration_days = EXCLUDED.duration_days, enabled = EXCLUDED.enabled
                    """,
                    logger: logger
                )
            } else {
                try await connection.run(
                    "DELETE FROM channel_tiers WHERE channel_id = \(channelID) AND position = \(Int16(position))", logger: logger
                )
            }
        }
        let threshold: String? = values["payout_strategy"] == "threshold" ? values["payout_threshold"] : nil
        let notify = values["notifications_enabled"] == "true"
        let recipient: Int64? = notify ? (values["notification_recipient"].flatMap(Int64.init) ?? ownerUserID) : nil
        let memo: String? = values["wallet_memo"].flatMap { $0.isEmpty ? nil : $0 }
        try await connection.run(
            """
            INSERT INTO channel_payout_settings (channel_id, currency_code, network_code, wallet_address, wallet_memo, strategy, threshold_usd, notifications_enabled, notification_user_id)
            VALUES (\(channelID), \(text("payout_currency")), \(text("payout_network")), \(text("wallet_address")), \(memo),
                    \(text("payout_strategy")), \(threshold)::numeric, \(notify), \(recipient))
            ON CONFLICT (channel_id) DO UPDATE SET
                currency_code = EXCLUDED.currency_code, network_code = EXCLUDED.network_code, wallet_address = EXCLUDED.wallet_address,
                wallet_memo = EXCLUDED.wallet_memo, strategy = EXCLUDED.strategy, threshold_usd = EXCLUDED.threshold_usd,
                notifications_enabled = EXCLUDED.notifications_enabled, notification_user_id = EXCLUDED.notification_user_id
            """,
            logger: logger
        )
        return channelID
    }

    // MARK: - Status

    /// Pauses sales for `reason`; returns whether anything changed. A channel already paused for the same
    /// reason is left alone, and only an admin's pause replaces an admin's. The caller holds the channel's sales
    /// lock and closes what selling left open (`ChannelLifecycle` in the bot, `AccessService`).
    public static func pause(id: Int64, reason: ChannelPauseReason, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let paused = ChannelStatus.paused.rawValue
        let admin = ChannelPauseReason.admin.rawValue
        return try await connection.run(
            """
            UPDATE channels SET status = \(paused), paused_reason = \(reason.rawValue)
            WHERE id = \(id) AND (status <> \(paused) OR paused_reason IS DISTINCT FROM \(reason.rawValue))
                AND (paused_reason IS DISTINCT FROM \(admin) OR \(reason.rawValue) = \(admin)) RETURNING 1
            """,
            logger: logger
        ) > 0
    }

    /// The owner's resume: anything but an admin's pause.
    public static func resume(id: Int64, ownerUserID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE channels SET status = \(ChannelStatus.active.rawValue), paused_reason = NULL
            WHERE id = \(id) AND owner_user_id = \(ownerUserID) AND paused_reason IS DISTINCT FROM \(ChannelPauseReason.admin.rawValue)
            """,
            logger: logger
        )
    }

    /// An admin's resume of any channel that is not deleted, whatever paused it. Returns whether it changed.
    public static func resumeByAdmin(id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.run(
            """
            UPDATE channels SET status = \(ChannelStatus.active.rawValue), paused_reason = NULL
            WHERE id = \(id) AND deleted_at IS NULL AND status = \(ChannelStatus.paused.rawValue) RETURNING 1
            """,
            logger: logger
        ) > 0
    }

    /// Any channel that is not deleted, for an admin: by id, or by its private or public channel's title.
    public static func find(_ query: String, on connection: PostgresConnection, logger: Logger) async throws -> ChannelSummary? {
        let id = Int64(query.trimmingCharacters(in: .whitespaces)) ?? 0
        let title = query.trimmingCharacters(in: .whitespaces)
        guard
            let match = try await connection.first(
                """
                SELECT id FROM channels WHERE deleted_at IS NULL
                    AND (id = \(id) OR (\(id) = 0 AND (lower(closed_title) = lower(\(title)) OR lower(open_title) = lower(\(title)))))
                ORDER BY id LIMIT 1
                """,
                as: Int64.self, logger: logger
            )
        else { return nil }
        return try await summary(id: match, on: connection, logger: logger)
    }

    /// Deletes a pair: outright when nobody ever ordered it, otherwise by marking it deleted (its orders,
    /// subscriptions and ledger entries keep pointing at it). Either way its chats are free again. The caller
    /// holds the row's lock and has closed its sales (`ChannelLifecycle.delete`).
    public static func delete(id: Int64, ownerUserID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            DELETE FROM channels c WHERE c.id = \(id) AND c.owner_user_id = \(ownerUserID)
                AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.channel_id = c.id)
            """,
            logger: logger
        )
        try await connection.run(
            """
            UPDATE channels SET deleted_at = now(), status = \(ChannelStatus.paused.rawValue), paused_reason = \(ChannelPauseReason.owner.rawValue)
            WHERE id = \(id) AND owner_user_id = \(ownerUserID) AND deleted_at IS NULL
            """,
            logger: logger
        )
    }

    // MARK: - Catalogue

    /// Networks that carry at least one enabled currency.
    public static func networks(on connection: PostgresConnection, logger: Logger) async throws -> [(code: String, name: String)] {
        try await connection.all(
            """
            SELECT n.code, n.name FROM payout_networks n
            WHERE EXISTS (SELECT 1 FROM payout_options o WHERE o.network_code = n.code AND o.enabled)
            ORDER BY n.code
            """,
            as: (String, String).self, logger: logger
        ).map { (code: $0.0, name: $0.1) }
    }

    /// The currencies paid out on `network`.
    public static func currencies(network: String, on connection: PostgresConnection, logger: Logger) async throws -> [(code: String, name: String)] {
        try await connection.all(
            """
            SELECT c.code, c.name FROM payout_options o JOIN payout_currencies c ON c.code = o.currency_code
            WHERE o.network_code = \(network) AND o.enabled ORDER BY c.code
            """,
            as: (String, String).self, logger: logger
        ).map { (code: $0.0, name: $0.1) }
    }

    public static func addressFormat(network: String, on connection: PostgresConnection, logger: Logger) async throws -> WalletAddressFormat? {
        try await connection.first(
            "SELECT address_format FROM payout_networks WHERE code = \(network)", as: String.self, logger: logger
        ).flatMap(WalletAddressFormat.init(rawValue:))
    }
}
