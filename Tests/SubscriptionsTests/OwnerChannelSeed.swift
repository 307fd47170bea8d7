import PostgresNIO
import Storage
import TestSupport

/// Seeds `count` owners, each with one active channel pair: channel ids 1…count, owner ids `userBase + n`,
/// chat ids below `chatBase` (two per channel). Payout settings are the caller's.
func seedOwnerChannels(count: Int, userBase: Int64, chatBase: Int64, on connection: PostgresConnection) async throws {
    let count = Int32(count)
    try await connection.run(
        "INSERT INTO telegram_users (id, first_name, telegram_language) SELECT \(userBase) + g, 'Owner', 'en' FROM generate_series(1, \(count)) AS g",
        logger: quietLogger
    )
    try await connection.run("INSERT INTO owners (user_id) SELECT \(userBase) + g FROM generate_series(1, \(count)) AS g", logger: quietLogger)
    try await connection.run(
        """
        INSERT INTO channels (id, owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title, status) OVERRIDING SYSTEM VALUE
        SELECT g, \(userBase) + g, \(chatBase) - 2 * g, 'Closed', \(chatBase - 1) - 2 * g, 'Open', 'active' FROM generate_series(1, \(count)) AS g
        """,
        logger: quietLogger
    )
}
