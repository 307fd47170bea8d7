/// A failed Bot API call, classified by what the caller should do about it.
///
/// Classification uses the error code plus the description's prefix, as the Bot API advises: codes alone
/// are "subject to change".
public enum TelegramError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Flood control (429): wait this many seconds before sending again.
    case retryAfter(seconds: Int)
    /// The user blocked the bot (403 "Forbidden: bot was blocked by the user").
    case blocked
    /// Any other 403: the bot lacks access (not a member, kicked, no rights).
    case forbidden(description: String)
    /// 400 "Bad Request: chat not found".
    case chatNotFound
    /// 400 "Bad Request: message is not modified"; edits treat it as success.
    case notModified
    /// 400 with `migrate_to_chat_id`: the group became a supergroup with this id.
    case migrateToChat(id: Int64)
    /// Any other 400.
    case badRequest(description: String)
    /// 401: the token is wrong or revoked.
    case unauthorized
    /// 409: another getUpdates poller or a webhook is active.
    case conflict(description: String)
    /// 5xx, or an error code we do not know.
    case server(status: Int, description: String)
    /// The request did not complete (connection, timeout, TLS).
    case network(description: String)
    /// The response was not the documented envelope or did not decode as the method's result.
    case invalidResponse(description: String)

    /// Maps an error envelope to its case.
    public static func classify(status: Int, description: String, parameters: ResponseParameters?) -> TelegramError {
        if let seconds = parameters?.retryAfter, status == 429 {
            return .retryAfter(seconds: Int(seconds))
        }
        if let chat = parameters?.migrateToChatId {
            return .migrateToChat(id: chat)
        }
        let lowered = description.lowercased()
        switch status {
        case 429:
            let digits = description.split(separator: " ").last.flatMap { Int($0) } ?? 1
            return .retryAfter(seconds: digits)
        case 401:
            return .unauthorized
        case 403:
            return lowered.hasPrefix("forbidden: bot was blocked by the user") ? .blocked : .forbidden(description: description)
        case 409:
            return .conflict(description: description)
        case 400:
            if lowered.hasPrefix("bad request: message is not modified") { return .notModified }
            if lowered.hasPrefix("bad request: chat not found") { return .chatNotFound }
            return .badRequest(description: description)
        case 500...599:
            return .server(status: status, description: description)
        default:
            return status >= 400 && status < 500 ? .badRequest(description: description) : .server(status: status, description: description)
        }
    }

    /// Whether repeating the same call later can succeed without changing it.
    public var isTransient: Bool {
        switch self {
        case .retryAfter, .server, .network: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .retryAfter(let seconds): return "flood control: retry after \(seconds) s"
        case .blocked: return "the user blocked the bot"
        case .forbidden(let text): return text
        case .chatNotFound: return "chat not found"
        case .notModified: return "message is not modified"
        case .migrateToChat(let id): return "group migrated to supergroup \(id)"
        case .badRequest(let text): return text
        case .unauthorized: return "unauthorized: the bot token is wrong or revoked"
        case .conflict(let text): return text
        case .server(let status, let text): return "server error \(status): \(text)"
        case .network(let text): return "network error: \(text)"
        case .invalidResponse(let text): return "invalid response: \(text)"
        }
    }
}
