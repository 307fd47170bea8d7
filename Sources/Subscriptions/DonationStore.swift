import Channels
import Foundation
import Logging
import Money
import PostgresNIO
import Storage

/// The `donation_keypads` table (Migrations/0042).
enum DonationStore {
    struct Keypad {
        var view: DonationKeypadView
        var messageID: Int64?
    }

    static func open(token: String, userID: Int64, chatID: Int64, on connection: PostgresConnection, logger: Logger) async throws
        -> DonationKeypadView?
    {
        guard
            let (channel, title, minimum, maximum) = try await connection.first(
                """
                INSERT INTO donation_keypads (user_id, channel_id, chat_id)
                SELECT \(userID), c.id, \(chatID) FROM channels c
                WHERE c.offer_token = \(token) AND c.status = \(ChannelStatus.active.rawValue) AND c.deleted_at IS NULL
                ON CONFLICT (user_id) DO UPDATE SET channel_id = EXCLUDED.channel_id, chat_id = EXCLUDED.chat_id, message_id = NULL,
                    amount = '', updated_at = now()
                RETURNING channel_id, (SELECT closed_title FROM channels WHERE id = channel_id),
                    (SELECT donation_min_usd::text FROM channels WHERE id = channel_id), (SELECT donation_max_usd::text FROM channels WHERE id = channel_id)
                """,
                as: (Int64, String, String, String).self, logger: logger
            )
        else { return nil }
        return DonationKeypadView(
            channelID: channel, title: title, amount: "",
            range: DonationRange(
                minimum: try DecimalText.require(minimum, "donation minimum"), maximum: try DecimalText.require(maximum, "donation maximum"))
        )
    }

    static func attach(userID: Int64, messageID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("UPDATE donation_keypads SET message_id = \(messageID) WHERE user_id = \(userID)", logger: logger)
    }

    /// The donor's keypad, locked for the press, with its channel's current title and range.
    static func lock(userID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Keypad? {
        guard
            let (channel, message, amount, title, minimum, maximum) = try await connection.first(
                """
                SELECT k.channel_id, k.message_id, k.amount, c.closed_title, c.donation_min_usd::text, c.donation_max_usd::text
                FROM donation_keypads k JOIN channels c ON c.id = k.channel_id WHERE k.user_id = \(userID) FOR UPDATE OF k
                """,
                as: (Int64, Int64?, String, String, String, String).self, logger: logger
            )
        else { return nil }
        let range = DonationRange(
            minimum: try DecimalText.require(minimum, "donation minimum"), maximum: try DecimalText.require(maximum, "donation maximum"))
        return Keypad(view: DonationKeypadView(channelID: channel, title: title, amount: amount, range: range), messageID: message)
    }

    static func setAmount(_ amount: String, userID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("UPDATE donation_keypads SET amount = \(amount), updated_at = now() WHERE user_id = \(userID)", logger: logger)
    }

    static func close(userID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("DELETE FROM donation_keypads WHERE user_id = \(userID)", logger: logger)
    }
}
