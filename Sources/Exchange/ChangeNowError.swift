/// The `error` codes ChangeNOW documents in its `{"error": …, "message": …}` bodies.
public enum ChangeNowErrorCode: Sendable, Hashable, CustomStringConvertible {
    case notValidParams
    case badParams
    /// The amount is below the minimum or above the maximum for the pair.
    case outOfRange
    case pairIsInactive
    case notFound
    case userNotFound
    /// The key may not do this, e.g. read an exchange created with another key.
    case forbidden
    case unauthorized
    case other(String)

    public init(_ code: String) {
        switch code {
        case "not_valid_params": self = .notValidParams
        case "bad_params": self = .badParams
        case "out_of_range": self = .outOfRange
        case "pair_is_inactive": self = .pairIsInactive
        case "not_found": self = .notFound
        case "user_not_found": self = .userNotFound
        case "forbidden": self = .forbidden
        case "unauthorized": self = .unauthorized
        default: self = .other(code)
        }
    }

    public var description: String {
        switch self {
        case .notValidParams: return "not_valid_params"
        case .badParams: return "bad_params"
        case .outOfRange: return "out_of_range"
        case .pairIsInactive: return "pair_is_inactive"
        case .notFound: return "not_found"
        case .userNotFound: return "user_not_found"
        case .forbidden: return "forbidden"
        case .unauthorized: return "unauthorized"
        case .other(let code): return code
        }
    }
}

/// Why a ChangeNOW call failed.
///
/// `.rejected` means ChangeNOW answered and refused: nothing happened on its side. `.timedOut` and
/// `.transport` mean the outcome is unknown: a create may have succeeded without us hearing of it.
public enum ChangeNowError: Error, Sendable, CustomStringConvertible {
    case rejected(status: Int, code: ChangeNowErrorCode, message: String)
    /// A non-2xx answer without ChangeNOW's error body (a gateway, a proxy, an outage page).
    case httpStatus(code: Int, body: String)
    case timedOut(operation: String)
    case transport(operation: String, cause: any Error)
    case invalidResponse(operation: String, reason: String)
    /// The request was refused locally, before anything was sent.
    case invalidRequest(String)

    /// True when ChangeNOW may have acted on the request even though we got no usable answer: a
    /// timeout, a broken connection, a server error, or a success body we could not read.
    public var outcomeUnknown: Bool {
        switch self {
        case .timedOut, .transport, .invalidResponse: return true
        case .httpStatus(let code, _): return code >= 500
        case .rejected, .invalidRequest: return false
        }
    }

    /// ChangeNOW refused to list exchanges for this key: only the private key issued on request may.
    public var cannotList: Bool {
        if case .rejected(let status, let code, _) = self { return code == .forbidden || code == .unauthorized || status == 401 || status == 403 }
        return false
    }

    public var description: String {
        switch self {
        case .rejected(let status, let code, let message): return "ChangeNOW refused (HTTP \(status), \(code)): \(message)"
        case .httpStatus(let code, let body): return "ChangeNOW answered HTTP \(code): \(body.prefix(200))"
        case .timedOut(let operation): return "ChangeNOW \(operation) timed out"
        case .transport(let operation, let cause): return "ChangeNOW \(operation) failed: \(cause)"
        case .invalidResponse(let operation, let reason): return "unexpected ChangeNOW answer to \(operation): \(reason)"
        case .invalidRequest(let reason): return "not sent to ChangeNOW: \(reason)"
        }
    }
}
