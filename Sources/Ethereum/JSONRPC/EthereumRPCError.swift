import BigInt
import Foundation

/// Why a JSON-RPC call failed: a transaction the node refused (geth's texts mapped to cases), a
/// reverted call, a JSON-RPC error of another kind, or a transport problem.
///
/// Refusals are matched on geth's message prefixes (`core/txpool/errors.go`, `core/error.go`), which
/// other clients mostly copy; anything unrecognised stays available as `.server(code:message:)`.
public enum EthereumRPCError: Error, Sendable, CustomStringConvertible {
    /// The account already used this nonce; the message names the node's next nonce.
    case nonceTooLow(message: String)
    /// This exact transaction is already in the node's pool.
    case alreadyKnown
    /// A different transaction at the same nonce is pooled and this one does not raise both fees enough.
    case replacementUnderpriced
    /// Below the pool's minimum tip.
    case transactionUnderpriced(message: String)
    /// The sender cannot pay `value + gas × maxFeePerGas`.
    case insufficientFunds(message: String)
    case intrinsicGasTooLow(message: String)
    case feeCapBelowBaseFee(message: String)
    case tipAboveFeeCap(message: String)
    case exceedsBlockGasLimit(message: String)
    /// A nonce gap, from pools that refuse to queue future nonces.
    case nonceTooHigh(message: String)
    /// The signature does not recover on this chain, usually a chain-id mismatch.
    case invalidSender(message: String)
    /// The EVM reverted a call or gas estimate; `reason` is decoded from `Error(string)` or `Panic(uint256)`.
    case executionReverted(reason: String?, data: [UInt8])
    case methodNotFound(method: String)
    /// Any other JSON-RPC error object.
    case server(code: Int, message: String)
    /// The endpoint answered with a non-200 HTTP status (gateways, rate limits, bad API keys).
    case httpStatus(code: Int, body: String)
    case timedOut(method: String)
    case transport(method: String, cause: any Error)
    /// The answer was not JSON-RPC, or its result was not the expected shape.
    case invalidResponse(method: String, reason: String)

    public var description: String {
        switch self {
        case .nonceTooLow(let message), .transactionUnderpriced(let message), .insufficientFunds(let message),
            .intrinsicGasTooLow(let message), .feeCapBelowBaseFee(let message), .tipAboveFeeCap(let message),
            .exceedsBlockGasLimit(let message), .nonceTooHigh(let message), .invalidSender(let message):
            return message
        case .alreadyKnown: return "already known"
        case .replacementUnderpriced: return "replacement transaction underpriced"
        case .executionReverted(let reason, _): return reason.map { "execution reverted: \($0)" } ?? "execution reverted"
        case .methodNotFound(let method): return "the node does not offer \(method)"
        case .server(let code, let message): return "JSON-RPC error \(code): \(message)"
        case .httpStatus(let code, let body): return "HTTP \(code) from the RPC endpoint: \(body.prefix(200))"
        case .timedOut(let method): return "\(method) timed out"
        case .transport(let method, let cause): return "\(method) failed: \(cause)"
        case .invalidResponse(let method, let reason): return "unexpected answer to \(method): \(reason)"
        }
    }

    /// Maps a JSON-RPC error object to a case. `data` is the error's `data` member, which geth fills
    /// with the revert data of a reverted call (code 3).
    public static func classify(code: Int, message: String, data: JSONValue?, method: String) -> EthereumRPCError {
        let text = message.lowercased()
        if code == 3 || text.hasPrefix("execution reverted") {
            let bytes = data?.stringValue.flatMap { try? Hex.decodeData($0) } ?? []
            var reason = RevertReason.decode(bytes)
            if reason == nil, let colon = message.range(of: "execution reverted: ") {
                reason = String(message[colon.upperBound...])
            }
            return .executionReverted(reason: reason, data: bytes)
        }
        if code == -32601 { return .methodNotFound(method: method) }
        // Order matters: "replacement transaction underpriced" also ends in "underpriced".
        if text.hasPrefix("nonce too low") { return .nonceTooLow(message: message) }
        if text.hasPrefix("already known") || text.hasPrefix("known transaction") { return .alreadyKnown }
        if text.hasPrefix("replacement transaction underpriced") { return .replacementUnderpriced }
        if text.hasPrefix("transaction underpriced") { return .transactionUnderpriced(message: message) }
        if text.hasPrefix("insufficient funds") { return .insufficientFunds(message: message) }
        if text.hasPrefix("intrinsic gas too low") { return .intrinsicGasTooLow(message: message) }
        if text.hasPrefix("max fee per gas less than block base fee") { return .feeCapBelowBaseFee(message: message) }
        if text.hasPrefix("max priority fee per gas higher than max fee per gas") { return .tipAboveFeeCap(message: message) }
        if text.hasPrefix("exceeds block gas limit") { return .exceedsBlockGasLimit(message: message) }
        if text.hasPrefix("nonce too high") { return .nonceTooHigh(message: message) }
        if text.hasPrefix("invalid sender") { return .invalidSender(message: message) }
        return .server(code: code, message: message)
    }
}

/// Solidity's revert payloads: `Error(string)` from `require`/`revert("…")`, `Panic(uint256)` from
/// failed assertions and checked arithmetic.
public enum RevertReason {
    static let errorSelector: [UInt8] = [0x08, 0xc3, 0x79, 0xa0]
    static let panicSelector: [UInt8] = [0x4e, 0x48, 0x7b, 0x71]

    /// The human-readable reason, or `nil` for empty or custom-error payloads.
    public static func decode(_ data: [UInt8]) -> String? {
        guard data.count >= 4 else { return nil }
        let selector = Array(data.prefix(4))
        let body = Array(data.dropFirst(4))
        if selector == panicSelector, body.count == 32 {
            return "panic 0x" + String(BigUInt(Data(body)), radix: 16)
        }
        guard selector == errorSelector, body.count >= 64 else { return nil }
        let offset = BigUInt(Data(body[0..<32]))
        guard offset <= BigUInt(body.count - 32) else { return nil }
        let start = Int(offset)
        let length = BigUInt(Data(body[start..<start + 32]))
        guard length <= BigUInt(body.count - start - 32) else { return nil }
        let textStart = start + 32
        return String(decoding: body[textStart..<textStart + Int(length)], as: UTF8.self)
    }
}
