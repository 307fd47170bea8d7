import Crypto
import Foundation

/// The ways a NOWPayments IPN body has been re-serialised before signing (NOWPayments' own code samples disagree). The
/// provider does not document which one it uses, so a signature is accepted if it matches any of them,
/// tried in this order.
public enum IPNSignatureVariant: String, Sendable, Hashable, CaseIterable {
    /// The current Node example: `JSON.stringify(sortObject(params))`. Keys sorted recursively by UTF-16
    /// code units and emitted in JavaScript property order; arrays become index-keyed objects.
    case recursive
    /// As `recursive`, but arrays stay arrays (a port of the recipe that sorts objects only).
    case recursiveArraysKept = "recursive-arrays-kept"
    /// The older Node wording: `JSON.stringify(params, Object.keys(params).sort())`. The replacer array
    /// is an allow-list at every depth, so nested keys that are not top-level keys disappear.
    case legacyReplacer = "legacy-replacer"
    /// The Python example: `json.dumps(params, separators=(',', ':'), sort_keys=True)`.
    case python
}

/// Why an IPN's signature was not accepted.
public enum IPNSignatureError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No `x-nowpayments-sig` header, or an empty one.
    case missing
    /// The header is not 128 hexadecimal digits (an HMAC-SHA512).
    case malformed(length: Int)
    /// Well-formed, but no variant of the body produces it under our secret.
    case mismatch

    public var description: String {
        switch self {
        case .missing: return "missing x-nowpayments-sig header"
        case .malformed(let length): return "x-nowpayments-sig is not a hex HMAC-SHA512 (\(length) characters)"
        case .mismatch: return "x-nowpayments-sig does not match the body"
        }
    }
}

/// Signs and verifies NOWPayments IPN bodies: HMAC-SHA512, keyed with the IPN secret (whitespace-trimmed,
/// as the PHP example does), over the body re-serialised as the chosen variant; lower-case hex.
public struct IPNSignatureVerifier: Sendable {
    private let key: SymmetricKey

    public init(secret: String) {
        key = SymmetricKey(data: Array(secret.trimmingCharacters(in: .whitespacesAndNewlines).utf8))
    }

    /// Checks `signature` against every variant of `body`; returns the variant that matched. Each
    /// comparison is constant-time.
    public func verify(body: ExactJSON, signature: String?) throws(IPNSignatureError) -> IPNSignatureVariant {
        let presented = (signature ?? "").trimmingCharacters(in: .whitespaces)
        guard !presented.isEmpty else { throw .missing }
        guard presented.utf8.count == 128, let code = Self.decodeHex(presented) else { throw .malformed(length: presented.utf8.count) }
        var tried: Set<[UInt8]> = []
        for variant in IPNSignatureVariant.allCases {
            let text = Self.canonicalText(of: body, variant: variant)
            // Variants often coincide (no arrays, no nested keys); one HMAC per distinct text is enough.
            guard tried.insert(text).inserted else { continue }
            if HMAC<SHA512>.isValidAuthenticationCode(code, authenticating: text, using: key) {
                return variant
            }
        }
        throw .mismatch
    }

    /// The signature NOWPayments would send for `body` (used by the fake provider and by tests).
    public func sign(_ body: ExactJSON, variant: IPNSignatureVariant = .recursive) -> String {
        let code = HMAC<SHA512>.authenticationCode(for: Self.canonicalText(of: body, variant: variant), using: key)
        return code.map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined()
    }

    /// The exact bytes that are signed under `variant`.
    public static func canonicalText(of body: ExactJSON, variant: IPNSignatureVariant) -> [UInt8] {
        var output: [UInt8] = []
        switch variant {
        case .recursive:
            JavaScriptWriter.write(JavaScriptSort.sortObject(body, arraysBecomeObjects: true), into: &output)
        case .recursiveArraysKept:
            JavaScriptWriter.write(JavaScriptSort.sortObject(body, arraysBecomeObjects: false), into: &output)
        case .legacyReplacer:
            LegacyReplacer.write(body, into: &output)
        case .python:
            PythonWriter.write(body, into: &output)
        }
        return output
    }

    static func decodeHex(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count / 2)
        var high: UInt8?
        for character in text.utf8 {
            let nibble: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = character - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let pending = high {
                bytes.append(pending << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return high == nil ? bytes : nil
    }
}

/// What `sortObject` from the Node example builds, in the order `JSON.stringify` then walks it.
enum JavaScriptSort {
    /// `Object.keys(obj).sort().reduce((r, k) => { r[k] = (obj[k] && typeof obj[k] === 'object') ? sortObject(obj[k]) : obj[k]; return r }, {})`
    static func sortObject(_ value: ExactJSON, arraysBecomeObjects: Bool) -> ExactJSON {
        switch value {
        case .object(let members):
            // `r["__proto__"] = …` sets the new object's prototype instead of adding a key, so the key
            // never reaches the output.
            let kept = members.filter { $0.key.utf16 != protoKey }
            let sorted = kept.sorted { $0.key.utf16.lexicographicallyPrecedes($1.key.utf16) }
                .map { ExactJSON.Member(key: $0.key, value: sortObject($0.value, arraysBecomeObjects: arraysBecomeObjects)) }
            return .object(inPropertyOrder(sorted))
        case .array(let elements):
            let sortedElements = elements.map { sortObject($0, arraysBecomeObjects: arraysBecomeObjects) }
            guard arraysBecomeObjects else { return .array(sortedElements) }
            // `typeof [] === 'object'`, so an array is rebuilt as an object keyed "0", "1", …
            return .object(sortedElements.enumerated().map { ExactJSON.Member(String($0.offset), $0.element) })
        default:
            return value
        }
    }

    static let protoKey = Array("__proto__".utf16)

    /// A JavaScript object lists its array-index keys ("0" … "4294967294") first, in numeric order, then
    /// its other keys in insertion order (ECMA-262 OrdinaryOwnPropertyKeys).
    static func inPropertyOrder(_ members: [ExactJSON.Member]) -> [ExactJSON.Member] {
        var indexed: [(UInt32, ExactJSON.Member)] = []
        var named: [ExactJSON.Member] = []
        for member in members {
            if let index = arrayIndex(member.key.utf16) {
                indexed.append((index, member))
            } else {
                named.append(member)
            }
        }
        guard !indexed.isEmpty else { return members }
        return indexed.sorted { $0.0 < $1.0 }.map(\.1) + named
    }

    /// The value of a canonical array-index key: decimal digits without a leading zero, below 2³² − 1.
    static func arrayIndex(_ key: [UInt16]) -> UInt32? {
        guard !key.isEmpty, key.count <= 10, key.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        guard key.count == 1 || key.first != 0x30 else { return nil }
        let value = key.reduce(UInt64(0)) { $0 * 10 + UInt64($1 - 0x30) }
        return value < 4_294_967_295 ? UInt32(value) : nil
    }
}

/// `JSON.stringify(params, Object.keys(params).sort())`: the sorted top-level keys are the property list
/// for every object at every depth, in that list's order; arrays keep all their elements.
enum LegacyReplacer {
    static func write(_ body: ExactJSON, into output: inout [UInt8]) {
        guard case .object(let members) = body else {
            JavaScriptWriter.write(body, into: &output)
            return
        }
        // `Object.keys(params).sort()` sorts the keys as strings, so here "10" comes before "9".
        let keys = members.map(\.key.utf16).sorted { $0.lexicographicallyPrecedes($1) }
        var rank: [[UInt16]: Int] = [:]
        for (position, key) in keys.enumerated() { rank[key] = position }
        write(body, rank: rank, into: &output)
    }

    /// Writes the members whose keys are in the list, in the list's order. Walking each object's own
    /// members (not the whole list) keeps a hostile body with many keys from costing keys × objects.
    ///
    /// `JSON.stringify` reads each listed key with a property lookup, so inherited properties count too.
    /// Those of `Object.prototype` are functions (skipped by `JSON.stringify`) except `__proto__`, which
    /// yields `Object.prototype` itself and serialises as `{"__proto__":null}`.
    static func write(_ value: ExactJSON, rank: [[UInt16]: Int], into output: inout [UInt8]) {
        switch value {
        case .object(let members):
            var listed = members.compactMap { member in rank[member.key.utf16].map { ($0, member) } }
            if let protoRank = rank[JavaScriptSort.protoKey], !members.contains(where: { $0.key.utf16 == JavaScriptSort.protoKey }) {
                listed.append((protoRank, ExactJSON.Member("__proto__", .object([.init("__proto__", .null)]))))
            }
            listed.sort { $0.0 < $1.0 }
            output.append(UInt8(ascii: "{"))
            for (index, (_, member)) in listed.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                JavaScriptWriter.quote(member.key.utf16, into: &output)
                output.append(UInt8(ascii: ":"))
                write(member.value, rank: rank, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(element, rank: rank, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        default:
            JavaScriptWriter.write(value, into: &output)
        }
    }
}
