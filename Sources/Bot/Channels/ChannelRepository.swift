import Foundation
import Jobs
import Logging
import Money
import PostgresNIO
import Subscriptions
import Wallets

/// A channel pair as the owner's list shows it.
public struct ChannelSummary: Sendable, Hashable {
    public var id: Int64
    public var ownerUserID: Int64
    public var openChatID: Int64
    public var closedChatID: Int64
    public var openTitle: String
    public var closedTitle: String
    public var status: String
    public var pausedReason: String?
    public var enabledTiers: Int
    /// The deep-link payload of the channel's offer (`t.me/<bot>?start=<token>`).
    public var offerToken: String
    /// Whether the owner wrote a donation message (without one there is no donation post).
    public var hasDonationMessage: Bool = false
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

/// The SQL behind the owner's channel screens and form. Every function runs on the caller's connection
/// (usually inside the step's transaction), and every function that names a channel also names its owner.
public enum ChannelRepository {
    public static func summaries(ownerUserID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> [ChannelSummary] {
        try await select(where: "c.owner_user_id = $1", [ownerUserID], on: connection, logger: logger)
    }

    /// The channel, only when `ownerUserID` owns it.
    public static func summary(id: Int64, ownerUserID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> ChannelSummary? {
        try await select(where: "c.id = $1 AND c.owner_user_id = $2", [id, ownerUserID], on: connection, logger: logger).first
    }

    /// The channel whose open or closed chat is `chatID`.
    public static func summary(chatID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> (ChannelSummary, role: String)? {
        let rows = try await connection.query(
            "SELECT channel_id, role FROM channel_chat_claims WHERE chat_id = \(chatID)", logger: logger
        )
        var found: (Int64, String)?
        for try await (id, role) in rows.decode((Int64, String).self) { found = (id, role) }
        guard let (id, role) = found else { return nil }
        guard let summary = try await select(where: "c.id = $1", [id], on: connection, logger: logger).first else { return nil }
        return (summary, role)
    }

    /// `condition` is fixed SQL text; every value in it is a bind parameter from `values`.
    static func select(where condition: String, _ values: [Int64], on connection: PostgresConnection, logger: Logger) async throws -> [ChannelSummary] {
        var bindings = PostgresBindings()
        for value in values { bindings.append(value) }
        let query = PostgresQuery(unsafeSQL: """
            SELECT c.id, c.owner_user_id, c.open_chat_id, c.closed_chat_id, c.open_title, c.closed_title, c.status, c.paused_reason,
                   (SELECT count(*) FROM channel_tiers t WHERE t.channel_id = c.id AND t.enabled)::int, c.offer_token,
                   c.donation_message IS NOT NULL
            FROM channels c WHERE c.deleted_at IS NULL AND \(condition) ORDER BY c.id
            """, binds: bindings)
        let rows = try await connection.query(query, logger: logger)
        var result: [ChannelSummary] = []
        for try await (id, owner, open, closed, openTitle, closedTitle, status, reason, tiers, token, donation) in rows.decode((Int64, Int64, Int64, Int64, String, String, String, String?, Int, String, Bool).self) {
            result.append(ChannelSummary(
                id: id, ownerUserID: owner, openChatID: open, closedChatID: closed, openTitle: openTitle, closedTitle: closedTitle,
                status: status, pausedReason: reason, enabledTiers: tiers, offerToken: token, hasDonationMessage: donation
            ))
        }
        return result
    }

    public static func count(ownerUserID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.query("SELECT count(*)::int FROM channels WHERE owner_user_id = \(ownerUserID) AND deleted_at IS NULL", logger: logger)
        var count = 0
        for try await value in rows.decode(Int.self) { count = value }
        return count
    }

    /// Whether a chat already belongs to a channel pair (as open or closed channel).
    public static func isClaimed(chatID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.query("SELECT 1 FROM channel_chat_claims WHERE chat_id = \(chatID)", logger: logger)
        for try await _ in rows { return true }
        return false
    }

    // MARK: - Form values

    /// The stored channel as the form's field values.
    public static func formValues(id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> [String: String] {
        var values: [String: String] = [:]
        let channels = try await connection.query(
            """
            SELECT closed_chat_id, open_chat_id, closed_title, closed_description, open_title, open_description, donation_message, post_language,
                   donation_min_usd::text, donation_max_usd::text
            FROM channels WHERE id = \(id)
            """,
            logger: logger
        )
        for try await (closed, open, closedTitle, closedDescription, openTitle, openDescription, donation, language, minimum, maximum) in channels.decode((Int64, Int64, String, String, String, String, String?, String, String, String).self) {
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
        let tiers = try await connection.query(
            "SELECT position::int, price_usd::text, duration_days, enabled FROM channel_tiers WHERE channel_id = \(id)", logger: logger
        )
        for try await (position, price, days, enabled) in tiers.decode((Int, String, Int, Bool).self) {
            values["tier\(position)_enabled"] = enabled ? "true" : "false"
            values["tier\(position)_price"] = price
            values["tier\(position)_days"] = String(days)
        }
        let payout = try await connection.query(
            """
            SELECT network_code, currency_code, wallet_address, wallet_memo, strategy, threshold_usd::text, notifications_enabled, notification_user_id
            FROM channel_payout_settings WHERE channel_id = \(id)
            """,
            logger: logger
        )
        for try await (network, currency, wallet, memo, strategy, threshold, notify, recipient) in payout.decode((String, String, String, String?, String, String?, Bool, Int64?).self) {
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
        guard let (strategy, threshold, currency, network) = try await connection.first(
            "SELECT strategy, threshold_usd::text, currency_code, network_code FROM channel_payout_settings WHERE channel_id = \(channelID)",
            as: (String, String?, String, String).self, logger: logger
        ) else { return nil }
        return (strategy, threshold.flatMap(DecimalText.parse), currency, network)
    }

    /// Writes the whole form (channel, tiers, payout settings) for a new channel (`id == nil`) or one the
    /// owner has. Runs inside a savepoint, so a refused write leaves the caller's transaction usable.
    public static func save(
        _ values: [String: String], id: Int64?, ownerUserID: Int64, maximumChannels: Int,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64 {
        _ = try await connection.query("SAVEPOINT channel_save", logger: logger)
        do {
            let saved = try await write(values, id: id, ownerUserID: ownerUserID, maximumChannels: maximumChannels, on: connection, logger: logger)
            _ = try await connection.query("RELEASE SAVEPOINT channel_save", logger: logger)
            return saved
        } catch {
            _ = try await connection.query("ROLLBACK TO SAVEPOINT channel_save", logger: logger)
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

    static func write(_ values: [String: String], id: Int64?, ownerUserID: Int64, maximumChannels: Int, on connection: PostgresConnection, logger: Logger) async throws -> Int64 {
        func text(_ key: String) -> String { values[key] ?? "" }
        // The owner row is the lock that keeps two concurrent adds from both passing the limit.
        _ = try await connection.query("INSERT INTO owners (user_id) VALUES (\(ownerUserID)) ON CONFLICT (user_id) DO NOTHING", logger: logger)
        _ = try await connection.query("SELECT 1 FROM owners WHERE user_id = \(ownerUserID) FOR UPDATE", logger: logger)
        let channelID: Int64
        let donation: String? = values["donation_message"].flatMap { $0.isEmpty ? nil : $0 }
        let language = values["post_language"].flatMap { $0.isEmpty ? nil : $0 } ?? "en"
        let donationMin = values["donation_min"].flatMap { $0.isEmpty ? nil : $0 } ?? "4.99"
        let donationMax = values["donation_max"].flatMap { $0.isEmpty ? nil : $0 } ?? "9999.99"
        if let id {
            let rows = try await connection.query(
                """
                UPDATE channels SET closed_title = \(text("closed_title")), closed_description = \(text("closed_description")),
                    open_title = \(text("open_title")), open_description = \(text("open_description")), donation_message = \(donation),
                    post_language = \(language), donation_min_usd = \(donationMin)::numeric, donation_max_usd = \(donationMax)::numeric
                WHERE id = \(id) AND owner_user_id = \(ownerUserID) AND deleted_at IS NULL RETURNING id
                """,
                logger: logger
            )
            var updated: Int64?
            for try await value in rows.decode(Int64.self) { updated = value }
            guard let updated else { throw ChannelSaveError.notOwner }
            channelID = updated
        } else {
            guard try await count(ownerUserID: ownerUserID, on: connection, logger: logger) < maximumChannels else {
                throw ChannelSaveError.limitReached(maximumChannels)
            }
            guard let closed = Int64(text("closed_chat")), let open = Int64(text("open_chat")) else { throw ChannelSaveError.chatTaken }
            let rows = try await connection.query(
                """
                INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, closed_description, open_chat_id, open_title, open_description, donation_message, post_language, status,
                                      donation_min_usd, donation_max_usd)
                VALUES (\(ownerUserID), \(closed), \(text("closed_title")), \(text("closed_description")), \(open), \(text("open_title")),
                        \(text("open_description")), \(donation), \(language), \(ChannelStatus.active.rawValue), \(donationMin)::numeric, \(donationMax)::numeric)
                RETURNING id
                """,
                logger: logger
            )
            var inserted: Int64 = 0
            for try await value in rows.decode(Int64.self) { inserted = value }
            channelID = inserted
        }
        for position in 1...3 {
            let enabled = values["tier\(position)_enabled"] == "true"
            let price = values["tier\(position)_price"] ?? ""
            let days = Int(values["tier\(position)_days"] ?? "")
            if let days, !price.isEmpty {
                _ = try await connection.query(
                    """
                    INSERT INTO channel_tiers (channel_id, position, price_usd, duration_days, enabled)
                    VALUES (\(channelID), \(Int16(position)), \(price)::numeric, \(days), \(enabled))
                    ON CONFLICT (channel_id, position) DO UPDATE SET
                        price_usd = EXCLUDED.price_usd, duration_days = EXCLUDED.duration_days, enabled = EXCLUDED.enabled
                    """,
                    logger: logger
                )
            } else {
                _ = try await connection.query(
                    "DELETE FROM channel_tiers WHERE channel_id = \(channelID) AND position = \(Int16(position))", logger: logger
                )
            }
        }
        let threshold: String? = values["payout_strategy"] == "threshold" ? values["payout_threshold"] : nil
        let notify = values["notifications_enabled"] == "true"
        let recipient: Int64? = notify ? (values["notification_recipient"].flatMap(Int64.init) ?? ownerUserID) : nil
        let memo: String? = values["wallet_memo"].flatMap { $0.isEmpty ? nil : $0 }
        _ = try await connection.query(
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

    /// Pauses sales; `reason` is `owner`, `bot_removed` or `bot_rights`. Open orders are cancelled in the
    /// same transaction (their buyers told through `jobs`). Returns whether anything changed.
    @discardableResult
    public static func pause(id: Int64, reason: String, jobs: JobQueue?, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await SalesClosure.lockChannel(id, on: connection, logger: logger)
        let rows = try await connection.query(
            """
            UPDATE channels SET status = \(ChannelStatus.paused.rawValue), paused_reason = \(reason)
            WHERE id = \(id) AND (status <> \(ChannelStatus.paused.rawValue) OR paused_reason IS DISTINCT FROM \(reason))
                AND (paused_reason IS DISTINCT FROM \(Self.adminPause) OR \(reason) = \(Self.adminPause)) RETURNING 1
            """,
            logger: logger
        )
        var changed = false
        for try await _ in rows { changed = true }
        if changed {
            try await SalesClosure.cancelOpenOrders(channelID: id, reason: "paused: \(reason)", queue: jobs, on: connection, logger: logger)
            try await OfferPostRequests.afterClosing(channelID: id, jobs: jobs, on: connection, logger: logger)
        }
        return changed
    }

    /// Takes the channel's sales lock and its row until the transaction ends, so no payment is granted for it
    /// meanwhile (payment processing holds the sales lock shared while it grants).
    public static func lockForClosing(id: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await SalesClosure.lockChannel(id, on: connection, logger: logger)
    }

    /// The `paused_reason` of sales an admin paused: only an admin resumes them.
    public static let adminPause = "admin"

    public static func resume(id: Int64, ownerUserID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        _ = try await connection.query(
            """
            UPDATE channels SET status = \(ChannelStatus.active.rawValue), paused_reason = NULL
            WHERE id = \(id) AND owner_user_id = \(ownerUserID) AND paused_reason IS DISTINCT FROM \(Self.adminPause)
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
        guard let match = try await connection.first(
            """
            SELECT id FROM channels WHERE deleted_at IS NULL
                AND (id = \(id) OR (\(id) = 0 AND (lower(closed_title) = lower(\(title)) OR lower(open_title) = lower(\(title)))))
            ORDER BY id LIMIT 1
            """,
            as: Int64.self, logger: logger
        ) else { return nil }
        return try await select(where: "c.id = $1", [match], on: connection, logger: logger).first
    }

    /// Deletes a pair: outright when nobody ever ordered it, otherwise by marking it deleted (its orders,
    /// subscriptions and ledger entries keep pointing at it) with its open orders cancelled. Either way its
    /// chats are free again. The caller holds the row's lock (`lockForClosing`).
    public static func delete(id: Int64, ownerUserID: Int64, jobs: JobQueue?, on connection: PostgresConnection, logger: Logger) async throws {
        try await SalesClosure.cancelOpenOrders(channelID: id, reason: "deleted", queue: jobs, on: connection, logger: logger)
        try await OfferPostRequests.afterClosing(channelID: id, jobs: jobs, on: connection, logger: logger)
        _ = try await connection.query(
            """
            DELETE FROM channels c WHERE c.id = \(id) AND c.owner_user_id = \(ownerUserID)
                AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.channel_id = c.id)
            """,
            logger: logger
        )
        _ = try await connection.query(
            """
            UPDATE channels SET deleted_at = now(), status = \(ChannelStatus.paused.rawValue), paused_reason = 'owner'
            WHERE id = \(id) AND owner_user_id = \(ownerUserID) AND deleted_at IS NULL
            """,
            logger: logger
        )
    }

    /// Subscriptions of the channel that still give access (not yet expired and swept).
    public static func activeSubscriptions(channelID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.query(
            "SELECT count(*)::int FROM subscriptions WHERE channel_id = \(channelID) AND status = \(SubscriptionStatus.active.rawValue)", logger: logger
        )
        var count = 0
        for try await value in rows.decode(Int.self) { count = value }
        return count
    }

    // MARK: - Catalogue

    /// Networks that carry at least one enabled currency.
    public static func networks(on connection: PostgresConnection, logger: Logger) async throws -> [(code: String, name: String)] {
        let rows = try await connection.query(
            """
            SELECT n.code, n.name FROM payout_networks n
            WHERE EXISTS (SELECT 1 FROM payout_options o WHERE o.network_code = n.code AND o.enabled)
            ORDER BY n.code
            """,
            logger: logger
        )
        var result: [(String, String)] = []
        for try await (code, name) in rows.decode((String, String).self) { result.append((code, name)) }
        return result
    }

    /// The currencies paid out on `network`.
    public static func currencies(network: String, on connection: PostgresConnection, logger: Logger) async throws -> [(code: String, name: String)] {
        let rows = try await connection.query(
            """
            SELECT c.code, c.name FROM payout_options o JOIN payout_currencies c ON c.code = o.currency_code
            WHERE o.network_code = \(network) AND o.enabled ORDER BY c.code
            """,
            logger: logger
        )
        var result: [(String, String)] = []
        for try await (code, name) in rows.decode((String, String).self) { result.append((code, name)) }
        return result
    }

    public static func addressFormat(network: String, on connection: PostgresConnection, logger: Logger) async throws -> WalletAddressFormat? {
        let rows = try await connection.query("SELECT address_format FROM payout_networks WHERE code = \(network)", logger: logger)
        for try await format in rows.decode(String.self) { return WalletAddressFormat(rawValue: format) }
        return nil
    }
}
