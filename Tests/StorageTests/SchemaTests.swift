import Foundation
import PostgresNIO
import Storage
import TestSupport
import Testing

/// The constraints of the first schema, proven with real inserts. Each case is what an owner form must
/// also refuse, so the database is the last line of defence rather than the place errors are discovered.
@Suite("Schema constraints")
struct SchemaTests {
    static let owner: Int64 = 1001
    static let closed: Int64 = -1_001_234_567_890
    static let open: Int64 = -1_009_876_543_210

    func execute(_ sql: String, on database: Database) async throws {
        _ = try await database.withConnection { connection in
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: quietLogger)
        }
    }

    func scalar(_ sql: String, on database: Database) async throws -> Int {
        try await database.withConnection { connection in
            var result = 0
            for try await (value) in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: quietLogger).decode(Int.self) {
                result = value
            }
            return result
        }
    }

    /// Inserts an owner and one channel pair; returns the channel id.
    func seedChannel(on database: Database, owner: Int64 = owner, closed: Int64 = closed, open: Int64 = open) async throws -> Int {
        try await execute("INSERT INTO telegram_users (id, first_name) VALUES (\(owner), 'Owner') ON CONFLICT DO NOTHING", on: database)
        try await execute("INSERT INTO owners (user_id) VALUES (\(owner)) ON CONFLICT DO NOTHING", on: database)
        return try await scalar(
            """
            INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title)
            VALUES (\(owner), \(closed), 'Private', \(open), 'Public') RETURNING id
            """,
            on: database
        )
    }

    func rejects(_ sql: String, on database: Database, constraint: String) async throws {
        let error = await #expect(throws: PSQLError.self) { try await execute(sql, on: database) }
        let server = try #require(error?.serverInfo)
        let named = server[.constraintName] ?? server[.message] ?? ""
        #expect(named.contains(constraint), "expected \(constraint), got \(named)")
    }

    @Test("tier prices must be positive and durations at least one day")
    func tierBounds() async throws {
        try await withMigratedDatabase { database in
            let channel = try await seedChannel(on: database)
            try await execute(
                "INSERT INTO channel_tiers (channel_id, position, price_usd, duration_days) VALUES (\(channel), 1, 9.99, 30)", on: database)
            try await rejects("INSERT INTO channel_tiers VALUES (\(channel), 2, 0, 30)", on: database, constraint: "channel_tiers_price_usd_check")
            try await rejects("INSERT INTO channel_tiers VALUES (\(channel), 2, -5, 30)", on: database, constraint: "channel_tiers_price_usd_check")
            try await rejects(
                "INSERT INTO channel_tiers VALUES (\(channel), 2, 10000, 30)", on: database, constraint: "channel_tiers_price_usd_check")
            try await rejects("INSERT INTO channel_tiers VALUES (\(channel), 2, 5, 0)", on: database, constraint: "channel_tiers_duration_days_check")
            try await rejects(
                "INSERT INTO channel_tiers VALUES (\(channel), 2, 5, -1)", on: database, constraint: "channel_tiers_duration_days_check")
            #expect(try await scalar("SELECT count(*) FROM channel_tiers", on: database) == 1)
        }
    }

    @Test("a channel has at most three tiers")
    func fourthTier() async throws {
        try await withMigratedDatabase { database in
            let channel = try await seedChannel(on: database)
            for position in 1...3 {
                try await execute(
                    "INSERT INTO channel_tiers (channel_id, position, price_usd, duration_days) VALUES (\(channel), \(position), 5, 30)", on: database
                )
            }
            try await rejects(
                "INSERT INTO channel_tiers (channel_id, position, price_usd, duration_days) VALUES (\(channel), 4, 5, 30)", on: database,
                constraint: "channel_tiers_position_check")
            try await rejects(
                "INSERT INTO channel_tiers (channel_id, position, price_usd, duration_days) VALUES (\(channel), 3, 7, 30)", on: database,
                constraint: "channel_tiers_pkey")
        }
    }

    @Test("payout settings accept only currency/network pairs from the catalogue")
    func payoutCatalogue() async throws {
        try await withMigratedDatabase { database in
            #expect(try await scalar("SELECT count(*) FROM payout_options", on: database) == 87)
            let channel = try await seedChannel(on: database)
            let wallet = "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"
            try await rejects(
                "INSERT INTO channel_payout_settings (channel_id, currency_code, network_code, wallet_address) VALUES (\(channel), 'BTC', 'ETH', '\(wallet)')",
                on: database, constraint: "channel_payout_settings_currency_code_network_code_fkey"
            )
            try await rejects(
                "INSERT INTO channel_payout_settings (channel_id, currency_code, network_code, wallet_address) VALUES (\(channel), 'FOO', 'BAR', '\(wallet)')",
                on: database, constraint: "channel_payout_settings_currency_code_network_code_fkey"
            )
            try await rejects(
                "INSERT INTO channel_payout_settings (channel_id, currency_code, network_code, wallet_address, strategy) VALUES (\(channel), 'USDT', 'ETH', '\(wallet)', 'threshold')",
                on: database, constraint: "channel_payout_settings_check"
            )
            try await rejects(
                "INSERT INTO channel_payout_settings (channel_id, currency_code, network_code, wallet_address, notifications_enabled) VALUES (\(channel), 'USDT', 'ETH', '\(wallet)', true)",
                on: database, constraint: "channel_payout_settings_check1"
            )
            try await execute(
                "INSERT INTO channel_payout_settings (channel_id, currency_code, network_code, wallet_address, strategy, threshold_usd) VALUES (\(channel), 'SHIB', 'ETH', '\(wallet)', 'threshold', 50)",
                on: database
            )
        }
    }

    @Test("a Telegram chat belongs to at most one channel pair, in either role")
    func duplicateOwnership() async throws {
        try await withMigratedDatabase { database in
            _ = try await seedChannel(on: database)
            // Another owner registering the same private channel.
            try await rejects(
                "INSERT INTO telegram_users (id) VALUES (2002); INSERT INTO owners VALUES (2002);",
                on: database, constraint: "cannot insert multiple commands"
            )
            try await execute("INSERT INTO telegram_users (id) VALUES (2002)", on: database)
            try await execute("INSERT INTO owners (user_id) VALUES (2002)", on: database)
            try await rejects(
                "INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title) VALUES (2002, \(Self.closed), 'X', -1005555555555, 'Y')",
                on: database, constraint: "channels_live_closed_chat_idx"
            )
            // Someone else's public channel used as this pair's private one.
            try await rejects(
                "INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title) VALUES (2002, \(Self.open), 'X', -1005555555555, 'Y')",
                on: database, constraint: "channel_chat_claims_pkey"
            )
            // A pair whose two sides are the same chat.
            try await rejects(
                "INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title) VALUES (2002, -1005555555555, 'X', -1005555555555, 'Y')",
                on: database, constraint: "channels_check"
            )
            // A display title longer than the offer posts allow.
            try await rejects(
                "INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title) VALUES (2002, -1005555555551, '\(String(repeating: "x", count: 31))', -1005555555552, 'Y')",
                on: database, constraint: "channels_closed_title_length"
            )
            // Not a channel id at all.
            try await rejects(
                "INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title) VALUES (2002, 12345, 'X', -1005555555555, 'Y')",
                on: database, constraint: "channels_closed_chat_id_check"
            )
            #expect(try await scalar("SELECT count(*) FROM channels", on: database) == 1)
            #expect(try await scalar("SELECT count(*) FROM channel_chat_claims", on: database) == 2)
        }
    }

    @Test("swapping a pair's roles and deleting a pair keep the chat claims in step")
    func claimsFollowUpdates() async throws {
        try await withMigratedDatabase { database in
            let channel = try await seedChannel(on: database)
            try await execute("UPDATE channels SET open_chat_id = \(Self.closed), closed_chat_id = \(Self.open) WHERE id = \(channel)", on: database)
            #expect(try await scalar("SELECT count(*) FROM channel_chat_claims WHERE chat_id = \(Self.open) AND role = 'closed'", on: database) == 1)
            try await execute("DELETE FROM channels WHERE id = \(channel)", on: database)
            #expect(try await scalar("SELECT count(*) FROM channel_chat_claims", on: database) == 0)
            _ = try await seedChannel(on: database, owner: 3003)
        }
    }

    @Test("offer tokens are generated, unique and fit a /start payload")
    func offerTokens() async throws {
        try await withMigratedDatabase { database in
            _ = try await seedChannel(on: database)
            _ = try await seedChannel(on: database, closed: -1_001_111_111_111, open: -1_002_222_222_222)
            let tokens = try await database.withConnection { connection in
                var tokens: [String] = []
                for try await (token) in try await connection.query("SELECT offer_token FROM channels", logger: quietLogger).decode(String.self) {
                    tokens.append(token)
                }
                return tokens
            }
            #expect(Set(tokens).count == 2)
            for token in tokens {
                #expect(token.count == 22)
                #expect(token.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            }
        }
    }
}
