import BigInt
import CSecp256k1

/// Why a key, hash or signature was refused by the secp256k1 layer.
public enum Secp256k1Error: Error, Equatable, Sendable {
    case invalidPrivateKey
    case invalidHashLength(Int)
    case invalidSignatureLength
    case signatureOutOfRange
    case highS
    case invalidRecoveryId(UInt8)
    case signingFailed
    case recoveryFailed
}

/// A secp256k1 secret scalar in `1..<n`; its descriptions are redacted so it never reaches a log.
public struct PrivateKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    private let secret: [UInt8]
    public let publicKey: PublicKey

    public init(bytes: [UInt8]) throws(Secp256k1Error) {
        guard bytes.count == 32,
            secp256k1_ec_seckey_verify(Secp256k1Context.shared.pointer, bytes) == 1
        else { throw .invalidPrivateKey }
        var point = secp256k1_pubkey()
        guard secp256k1_ec_pubkey_create(Secp256k1Context.shared.pointer, &point, bytes) == 1 else {
            throw .invalidPrivateKey
        }
        secret = bytes
        publicKey = PublicKey(point)
    }

    public var address: Address { publicKey.address }

    public var description: String { "PrivateKey(<redacted>)" }
    public var debugDescription: String { description }

    /// Deterministic (RFC 6979) and low-s, because libsecp256k1 always normalises `s`.
    public func sign(hash: [UInt8]) throws(Secp256k1Error) -> RecoverableSignature {
        guard hash.count == 32 else { throw .invalidHashLength(hash.count) }
        var signature = secp256k1_ecdsa_recoverable_signature()
        guard
            secp256k1_ecdsa_sign_recoverable(
                Secp256k1Context.shared.pointer, &signature, hash, secret, nil, nil
            ) == 1
        else { throw .signingFailed }
        var compact = [UInt8](repeating: 0, count: 64)
        var recoveryId: Int32 = 0
        secp256k1_ecdsa_recoverable_signature_serialize_compact(
            Secp256k1Context.shared.pointer, &compact, &recoveryId, &signature
        )
        return try RecoverableSignature(
            r: Array(compact[0..<32]), s: Array(compact[32..<64]), recoveryId: UInt8(recoveryId)
        )
    }
}

/// A secp256k1 public key, held in its 65-byte uncompressed SEC1 form (`0x04 || x || y`).
public struct PublicKey: Hashable, Sendable {
    public let uncompressed: [UInt8]

    fileprivate init(_ point: secp256k1_pubkey) {
        var point = point
        var output = [UInt8](repeating: 0, count: 65)
        var length = output.count
        secp256k1_ec_pubkey_serialize(
            Secp256k1Context.shared.pointer, &output, &length, &point, UInt32(SECP256K1_EC_UNCOMPRESSED)
        )
        uncompressed = output
    }

    /// The last 20 bytes of the Keccak-256 of `x || y`; the `0x04` marker is not hashed.
    public var address: Address {
        let digest = Keccak256.hash(Array(uncompressed.dropFirst()))
        return Address(validatedBytes: Array(digest.suffix(20)))
    }

    /// The key that produced `signature` over `hash`; this is how a transaction's sender is known.
    public static func recover(
        from signature: RecoverableSignature, hash: [UInt8]
    ) throws(Secp256k1Error) -> PublicKey {
        guard hash.count == 32 else { throw .invalidHashLength(hash.count) }
        let context = Secp256k1Context.shared.pointer
        var parsed = secp256k1_ecdsa_recoverable_signature()
        guard
            secp256k1_ecdsa_recoverable_signature_parse_compact(
                context, &parsed, signature.r + signature.s, Int32(signature.recoveryId)
            ) == 1
        else { throw .signatureOutOfRange }
        var point = secp256k1_pubkey()
        guard secp256k1_ecdsa_recover(context, &point, &parsed, hash) == 1 else { throw .recoveryFailed }
        return PublicKey(point)
    }
}

/// An ECDSA signature with the recovery id Ethereum needs to name the signer without a public key.
public struct RecoverableSignature: Hashable, Sendable {
    public let r: [UInt8]
    public let s: [UInt8]
    /// Ethereum's `y_parity`: 0 or 1.
    public let recoveryId: UInt8

    /// Enforces EIP-2: a high `s` is a malleated copy of a valid signature, which Ethereum refuses.
    public init(r: [UInt8], s: [UInt8], recoveryId: UInt8) throws(Secp256k1Error) {
        guard r.count == 32, s.count == 32 else { throw .invalidSignatureLength }
        guard recoveryId <= 1 else { throw .invalidRecoveryId(recoveryId) }
        let rValue = BigUInt(r)
        let sValue = BigUInt(s)
        guard rValue > 0, rValue < Self.curveOrder, sValue > 0 else { throw .signatureOutOfRange }
        guard sValue <= Self.curveOrder >> 1 else { throw .highS }
        self.r = r
        self.s = s
        self.recoveryId = recoveryId
    }

    private static let curveOrder = BigUInt("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", radix: 16)!
}

/// libsecp256k1 permits concurrent use of a context that is no longer mutated; creation and
/// randomisation are its only mutations and both finish before the context is published.
final class Secp256k1Context: @unchecked Sendable {
    static let shared = Secp256k1Context()

    let pointer: OpaquePointer

    private init() {
        guard let context = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE)) else {
            preconditionFailure("libsecp256k1 could not allocate a context")
        }
        // Blinding with a random seed hardens signing against timing and power side channels.
        var generator = SystemRandomNumberGenerator()
        let seed = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        precondition(secp256k1_context_randomize(context, seed) == 1, "libsecp256k1 rejected its blinding seed")
        pointer = context
    }
}
