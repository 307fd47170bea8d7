import Foundation
import PostgresNIO

/// Reads and writes `conversation_states`. Every call but `recordMenu` (and the unlocked read that skips
/// people in no conversation) takes the connection of the caller's transaction, which already holds the
/// person's conversation lock.
enum ConversationStore {
    /// Serialises everything one person does in one chat across instances; taken before the state is read
    /// and held until the transaction ends.
    static func lock(chatID: Int64, userID: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        let key = "conversation:\(chatID):\(userID)"
        _ = try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(key), 0))", logger: logger)
    }

    /// The person's conversation in this chat (there is at most one) and whether it has expired.
    static func load(chatID: Int64, userID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> (
        state: ConversationState, expired: Bool
    )? {
        guard
            let (conversation, step, draftText, version, menu, revision, expiresAt, expired) = try await connection.first(
                """
                SELECT conversation, step, draft::text, definition_version, menu_message_id, revision, expires_at, expires_at <= now()
                FROM conversation_states WHERE chat_id = \(chatID) AND user_id = \(userID)
                ORDER BY updated_at DESC LIMIT 1
                """,
                as: (String, String, String, String, Int64?, Int64, Date, Bool).self, logger: logger
            )
        else { return nil }
        let draft = try JSONDecoder().decode(ConversationState.Draft.self, from: Data(draftText.utf8))
        let state = ConversationState(
            chatID: chatID, userID: userID, conversation: conversation,
            step: ConversationState.Step(stored: step) ?? .screen(""), values: draft.values, pending: draft.pending,
            returnScreen: draft.returnScreen, context: draft.context, revision: UInt32(truncatingIfNeeded: revision),
            menuMessageID: menu, definitionVersion: version, expiresAt: expiresAt
        )
        return (state, expired)
    }

    /// Saves `state` as the person's only conversation in this chat.
    static func save(_ state: ConversationState, ttl: Duration, on connection: PostgresConnection, logger: Logger) async throws {
        let draft = ConversationState.Draft(values: state.values, pending: state.pending, returnScreen: state.returnScreen, context: state.context)
        let json = String(decoding: try JSONEncoder().encode(draft), as: UTF8.self)
        let seconds = Double(ttl.components.seconds)
        // One statement: the person's other conversations in this chat go, this one is written.
        _ = try await connection.query(
            """
            WITH others AS (
                DELETE FROM conversation_states
                WHERE chat_id = \(state.chatID) AND user_id = \(state.userID) AND conversation <> \(state.conversation)
            )
            INSERT INTO conversation_states (chat_id, user_id, conversation, step, draft, definition_version, menu_message_id, revision, expires_at)
            VALUES (\(state.chatID), \(state.userID), \(state.conversation), \(state.step.stored), \(json)::jsonb,
                    \(state.definitionVersion), \(state.menuMessageID), \(Int64(state.revision)), now() + make_interval(secs => \(seconds)))
            ON CONFLICT (chat_id, user_id, conversation) DO UPDATE SET
                step = EXCLUDED.step, draft = EXCLUDED.draft, definition_version = EXCLUDED.definition_version,
                menu_message_id = EXCLUDED.menu_message_id, revision = EXCLUDED.revision, expires_at = EXCLUDED.expires_at
            """,
            logger: logger
        )
    }

    /// Records the message a menu was sent as, once it is sent (after the step committed). Fenced by the
    /// revision the menu was drawn at: when a later step has moved the conversation on, its menu stands.
    ///
    /// Committed without waiting for the WAL flush (`synchronous_commit` off for this statement's transaction):
    /// a menu id lost in a crash only means the next step sends a new menu instead of editing this one, and
    /// it saves every form step a second disk flush.
    static func recordMenu(_ messageID: Int64, of state: ConversationState, on connection: PostgresConnection, logger: Logger) async throws {
        _ = try await connection.query(
            """
            UPDATE conversation_states SET menu_message_id = \(messageID)
            WHERE chat_id = \(state.chatID) AND user_id = \(state.userID) AND conversation = \(state.conversation)
              AND revision = \(Int64(state.revision)) AND set_config('synchronous_commit', 'off', true) IS NOT NULL
            """,
            logger: logger
        )
    }

    /// Ends the person's conversations in this chat; returns how many there were.
    @discardableResult
    static func delete(chatID: Int64, userID: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        try await connection.run(
            "DELETE FROM conversation_states WHERE chat_id = \(chatID) AND user_id = \(userID) RETURNING 1", logger: logger
        )
    }
}
