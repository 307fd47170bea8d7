import BigInt
import Ethereum
import Foundation
import Testing

private let curveOrder = BigUInt("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", radix: 16)!

private func integer(_ bigEndian: [UInt8]) -> BigUInt {
    BigUInt(Data(bigEndian))
}

private func scalarBytes(_ value: BigUInt) -> [UInt8] {
    let minimal = Array(value.serialize())
    return [UInt8](repeating: 0, count: 32 - minimal.count) + minimal
}

@Suite("secp256k1 keys and signatures")
struct Secp256k1Tests {
    @Test("key 0x46…46 gives eth-keys' public key and address")
    func exampleKeyDerivation() {
        #expect(
            hex(exampleKey.publicKey.uncompressed)
                == "044bc2a31265153f07e70e0bab08724e6b85e217f8cd628ceb62974247bb493382ce28cab79ad7119ee1ad3ebcdb98a16805211530ecc6cfefa1b88e6dff99232a"
        )
        #expect(exampleKey.address.checksummed == "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F")
    }

    @Test("key 1 gives eth-tester's first account")
    func keyOne() throws {
        let key = try PrivateKey(bytes: scalarBytes(1))
        #expect(key.address.checksummed == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf")
    }

    @Test("zero, the curve order and above, and wrong lengths are not private keys")
    func rejectsInvalidKeys() throws {
        #expect(throws: Secp256k1Error.invalidPrivateKey) { try PrivateKey(bytes: scalarBytes(0)) }
        #expect(throws: Secp256k1Error.invalidPrivateKey) { try PrivateKey(bytes: scalarBytes(curveOrder)) }
        #expect(throws: Secp256k1Error.invalidPrivateKey) { try PrivateKey(bytes: scalarBytes(curveOrder + 1)) }
        #expect(throws: Secp256k1Error.invalidPrivateKey) {
            try PrivateKey(bytes: [UInt8](repeating: 0xff, count: 32))
        }
        #expect(throws: Secp256k1Error.invalidPrivateKey) { try PrivateKey(bytes: [UInt8](repeating: 0x46, count: 31)) }
        #expect(throws: Secp256k1Error.invalidPrivateKey) { try PrivateKey(bytes: [UInt8](repeating: 0x46, count: 33)) }
        _ = try PrivateKey(bytes: scalarBytes(curveOrder - 1))
    }

    @Test("a private key never prints its secret")
    func redactedDescription() {
        #expect(String(describing: exampleKey) == "PrivateKey(<redacted>)")
        #expect(String(reflecting: exampleKey) == "PrivateKey(<redacted>)")
    }

    @Test("signatures are low-s and recover the signer's public key", arguments: 0..<16)
    func signAndRecover(seed: Int) throws {
        let hash = Keccak256.hash("message \(seed)")
        let signature = try exampleKey.sign(hash: hash)
        #expect(integer(signature.s) <= curveOrder >> 1)
        #expect(try PublicKey.recover(from: signature, hash: hash) == exampleKey.publicKey)
    }

    @Test("signing is deterministic (RFC 6979)")
    func deterministic() throws {
        let hash = Keccak256.hash("same message")
        #expect(try exampleKey.sign(hash: hash) == exampleKey.sign(hash: hash))
    }

    @Test("recovering against a different hash names a different signer")
    func recoverWrongHash() throws {
        let signature = try exampleKey.sign(hash: Keccak256.hash("signed"))
        let other = try PublicKey.recover(from: signature, hash: Keccak256.hash("not signed"))
        #expect(other != exampleKey.publicKey)
    }

    @Test("the shared context signs correctly from many tasks at once")
    func concurrentSigning() async throws {
        let hash = Keccak256.hash("concurrent")
        let expected = try exampleKey.sign(hash: hash)
        let results = try await withThrowingTaskGroup(of: RecoverableSignature.self) { group in
            for _ in 0..<32 {
                group.addTask { try exampleKey.sign(hash: hash) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 32)
        #expect(results.allSatisfy { $0 == expected })
    }

    @Test("hashes that are not 32 bytes are refused for signing and recovery")
    func hashLength() throws {
        #expect(throws: Secp256k1Error.invalidHashLength(31)) { try exampleKey.sign(hash: [UInt8](repeating: 1, count: 31)) }
        let signature = try exampleKey.sign(hash: Keccak256.hash("x"))
        #expect(throws: Secp256k1Error.invalidHashLength(33)) {
            try PublicKey.recover(from: signature, hash: [UInt8](repeating: 1, count: 33))
        }
    }

    @Test("high-s, out-of-range, wrongly sized and bad-recovery-id signatures are refused (EIP-2)")
    func signatureValidation() throws {
        let valid = try exampleKey.sign(hash: Keccak256.hash("x"))
        let highS = scalarBytes(curveOrder - integer(valid.s))
        #expect(throws: Secp256k1Error.highS) { try RecoverableSignature(r: valid.r, s: highS, recoveryId: 1 - valid.recoveryId) }
        #expect(throws: Secp256k1Error.signatureOutOfRange) { try RecoverableSignature(r: scalarBytes(0), s: valid.s, recoveryId: 0) }
        #expect(throws: Secp256k1Error.signatureOutOfRange) { try RecoverableSignature(r: scalarBytes(curveOrder), s: valid.s, recoveryId: 0) }
        #expect(throws: Secp256k1Error.signatureOutOfRange) { try RecoverableSignature(r: valid.r, s: scalarBytes(0), recoveryId: 0) }
        #expect(throws: Secp256k1Error.invalidRecoveryId(2)) { try RecoverableSignature(r: valid.r, s: valid.s, recoveryId: 2) }
        #expect(throws: Secp256k1Error.invalidSignatureLength) { try RecoverableSignature(r: Array(valid.r.dropFirst()), s: valid.s, recoveryId: 0) }
        #expect(try RecoverableSignature(r: valid.r, s: valid.s, recoveryId: valid.recoveryId) == valid)
    }
}
