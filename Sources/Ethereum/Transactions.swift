import BigInt

/// An EIP-1559 (type 2) transaction. The access list is always empty: TelePay sends plain
/// transfers and token calls, which an access list does not make cheaper.
public struct EIP1559Transaction: Hashable, Sendable {
    public var chainId: UInt64
    public var nonce: UInt64
    public var maxPriorityFeePerGas: BigUInt
    public var maxFeePerGas: BigUInt
    public var gasLimit: UInt64
    public var to: Address
    public var value: BigUInt
    public var data: [UInt8]

    public init(
        chainId: UInt64, nonce: UInt64, maxPriorityFeePerGas: BigUInt, maxFeePerGas: BigUInt,
        gasLimit: UInt64, to: Address, value: BigUInt, data: [UInt8] = []
    ) {
        self.chainId = chainId
        self.nonce = nonce
        self.maxPriorityFeePerGas = maxPriorityFeePerGas
        self.maxFeePerGas = maxFeePerGas
        self.gasLimit = gasLimit
        self.to = to
        self.value = value
        self.data = data
    }

    static let typeByte: UInt8 = 0x02

    private var unsignedFields: [RLPItem] {
        [
            .uint(chainId), .uint(nonce), .uint(maxPriorityFeePerGas), .uint(maxFeePerGas),
            .uint(gasLimit), .bytes(to.bytes), .uint(value), .bytes(data), .list([]),
        ]
    }

    /// `0x02 || rlp(fields without signature)`, the exact bytes whose hash is signed.
    public var signingPayload: [UInt8] {
        [Self.typeByte] + RLP.encode(.list(unsignedFields))
    }

    public var signingHash: [UInt8] {
        Keccak256.hash(signingPayload)
    }

    public func sign(with key: PrivateKey) throws(Secp256k1Error) -> SignedTransaction {
        let hash = signingHash
        let signature = try key.sign(hash: hash)
        let signatureFields: [RLPItem] = [
            .uint(UInt64(signature.recoveryId)), .uint(BigUInt(signature.r)), .uint(BigUInt(signature.s)),
        ]
        let raw = [Self.typeByte] + RLP.encode(.list(unsignedFields + signatureFields))
        return SignedTransaction(rawTransaction: raw, signingHash: hash, signature: signature)
    }
}

/// A pre-EIP-2718 transaction with EIP-155 replay protection, which binds it to one chain.
public struct LegacyTransaction: Hashable, Sendable {
    public var nonce: UInt64
    public var gasPrice: BigUInt
    public var gasLimit: UInt64
    public var to: Address
    public var value: BigUInt
    public var data: [UInt8]
    public var chainId: UInt64

    public init(
        nonce: UInt64, gasPrice: BigUInt, gasLimit: UInt64, to: Address, value: BigUInt,
        data: [UInt8] = [], chainId: UInt64
    ) {
        self.nonce = nonce
        self.gasPrice = gasPrice
        self.gasLimit = gasLimit
        self.to = to
        self.value = value
        self.data = data
        self.chainId = chainId
    }

    private var unsignedFields: [RLPItem] {
        [.uint(nonce), .uint(gasPrice), .uint(gasLimit), .bytes(to.bytes), .uint(value), .bytes(data)]
    }

    /// `rlp([nonce, gasPrice, gas, to, value, data, chainId, 0, 0])`: the trailing chain id is
    /// what EIP-155 adds so that a signature is valid on one chain only.
    public var signingPayload: [UInt8] {
        RLP.encode(.list(unsignedFields + [.uint(chainId), .uint(0 as UInt64), .uint(0 as UInt64)]))
    }

    public var signingHash: [UInt8] {
        Keccak256.hash(signingPayload)
    }

    public func sign(with key: PrivateKey) throws(Secp256k1Error) -> SignedTransaction {
        let hash = signingHash
        let signature = try key.sign(hash: hash)
        let v = BigUInt(chainId) * 2 + 35 + BigUInt(signature.recoveryId)
        let signatureFields: [RLPItem] = [.uint(v), .uint(BigUInt(signature.r)), .uint(BigUInt(signature.s))]
        let raw = RLP.encode(.list(unsignedFields + signatureFields))
        return SignedTransaction(rawTransaction: raw, signingHash: hash, signature: signature)
    }
}

/// A signed transaction: the bytes for `eth_sendRawTransaction` and the hash a node will report.
public struct SignedTransaction: Hashable, Sendable {
    public let rawTransaction: [UInt8]
    public let signingHash: [UInt8]
    public let signature: RecoverableSignature

    /// Keccak-256 of the raw bytes, type byte included for typed transactions.
    public var hash: [UInt8] {
        Keccak256.hash(rawTransaction)
    }

    /// Recovers the signer, which lets a caller confirm the right key signed before broadcasting.
    public func sender() throws(Secp256k1Error) -> Address {
        try PublicKey.recover(from: signature, hash: signingHash).address
    }
}
