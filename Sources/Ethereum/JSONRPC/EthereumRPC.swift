import BigInt

/// Which state a read looks at. `pending` includes the node's pooled transactions where it has a pool.
public enum BlockTag: Sendable, Hashable, CustomStringConvertible {
    case latest
    case pending
    case earliest
    case safe
    case finalized
    case number(UInt64)

    public var description: String {
        switch self {
        case .latest: return "latest"
        case .pending: return "pending"
        case .earliest: return "earliest"
        case .safe: return "safe"
        case .finalized: return "finalized"
        case .number(let number): return Hex.encodeQuantity(number)
        }
    }
}

/// The message of an `eth_call` or `eth_estimateGas`.
public struct CallRequest: Sendable, Hashable {
    public var from: Address?
    public var to: Address
    public var value: BigUInt?
    public var data: [UInt8]

    public init(from: Address? = nil, to: Address, value: BigUInt? = nil, data: [UInt8] = []) {
        self.from = from
        self.to = to
        self.value = value
        self.data = data
    }
}

/// `eth_feeHistory`: base fees for `count + 1` blocks (the last one is the next block's) and the
/// priority fees paid at the requested percentiles.
public struct FeeHistory: Sendable, Hashable {
    public var oldestBlock: UInt64
    public var baseFeePerGas: [BigUInt]
    public var gasUsedRatio: [Double]
    public var reward: [[BigUInt]]

    public init(oldestBlock: UInt64, baseFeePerGas: [BigUInt], gasUsedRatio: [Double], reward: [[BigUInt]]) {
        self.oldestBlock = oldestBlock
        self.baseFeePerGas = baseFeePerGas
        self.gasUsedRatio = gasUsedRatio
        self.reward = reward
    }

    /// The base fee of the block after the newest one, which is what a transaction sent now pays.
    public var nextBaseFee: BigUInt? { baseFeePerGas.last }
}

/// The parts of a block header TelePay reads.
public struct BlockHeader: Sendable, Hashable {
    public var number: UInt64
    public var hash: [UInt8]
    public var timestamp: UInt64
    public var gasLimit: UInt64
    public var gasUsed: UInt64
    /// `nil` before London.
    public var baseFeePerGas: BigUInt?

    public init(number: UInt64, hash: [UInt8], timestamp: UInt64, gasLimit: UInt64, gasUsed: UInt64, baseFeePerGas: BigUInt?) {
        self.number = number
        self.hash = hash
        self.timestamp = timestamp
        self.gasLimit = gasLimit
        self.gasUsed = gasUsed
        self.baseFeePerGas = baseFeePerGas
    }
}

/// An event log entry of a receipt.
public struct LogEntry: Sendable, Hashable {
    public var address: Address
    public var topics: [[UInt8]]
    public var data: [UInt8]

    public init(address: Address, topics: [[UInt8]], data: [UInt8]) {
        self.address = address
        self.topics = topics
        self.data = data
    }
}

/// A mined transaction's outcome. `succeeded` is false when the EVM reverted it: the nonce and the
/// gas are spent, the value and the call's effects are not.
public struct TransactionReceipt: Sendable, Hashable {
    public var transactionHash: [UInt8]
    public var blockHash: [UInt8]
    public var blockNumber: UInt64
    public var succeeded: Bool
    public var gasUsed: UInt64
    public var effectiveGasPrice: BigUInt
    public var from: Address
    public var to: Address?
    public var contractAddress: Address?
    public var logs: [LogEntry]

    public init(
        transactionHash: [UInt8], blockHash: [UInt8], blockNumber: UInt64, succeeded: Bool, gasUsed: UInt64,
        effectiveGasPrice: BigUInt, from: Address, to: Address?, contractAddress: Address?, logs: [LogEntry]
    ) {
        self.transactionHash = transactionHash
        self.blockHash = blockHash
        self.blockNumber = blockNumber
        self.succeeded = succeeded
        self.gasUsed = gasUsed
        self.effectiveGasPrice = effectiveGasPrice
        self.from = from
        self.to = to
        self.contractAddress = contractAddress
        self.logs = logs
    }

    /// What the transaction cost its sender in wei: gas used at the effective price.
    public var fee: BigUInt { BigUInt(gasUsed) * effectiveGasPrice }

    /// How many blocks include this one, counting its own: `latest − blockNumber + 1`.
    public func confirmations(latestBlock: UInt64) -> UInt64 {
        latestBlock >= blockNumber ? latestBlock - blockNumber + 1 : 0
    }
}

/// A transaction as `eth_getTransactionByHash` reports it; `blockNumber` is `nil` while pooled.
public struct TransactionInfo: Sendable, Hashable {
    public var hash: [UInt8]
    public var nonce: UInt64
    public var from: Address
    public var to: Address?
    public var value: BigUInt
    public var blockNumber: UInt64?

    public init(hash: [UInt8], nonce: UInt64, from: Address, to: Address?, value: BigUInt, blockNumber: UInt64?) {
        self.hash = hash
        self.nonce = nonce
        self.from = from
        self.to = to
        self.value = value
        self.blockNumber = blockNumber
    }
}

/// The Ethereum JSON-RPC methods TelePay uses (shapes per `ethereum/execution-apis`).
///
/// `HTTPEthereumRPC` is the production implementation; tests run it against a real EVM.
public protocol EthereumRPC: Sendable {
    func chainId() async throws(EthereumRPCError) -> UInt64
    func blockNumber() async throws(EthereumRPCError) -> UInt64
    func balance(of address: Address, at block: BlockTag) async throws(EthereumRPCError) -> BigUInt
    /// With `.pending`, geth counts the account's pooled transactions too.
    func transactionCount(of address: Address, at block: BlockTag) async throws(EthereumRPCError) -> UInt64
    func maxPriorityFeePerGas() async throws(EthereumRPCError) -> BigUInt
    func feeHistory(blockCount: UInt64, newest: BlockTag, rewardPercentiles: [Double]) async throws(EthereumRPCError) -> FeeHistory
    func estimateGas(_ call: CallRequest) async throws(EthereumRPCError) -> UInt64
    func call(_ call: CallRequest, at block: BlockTag) async throws(EthereumRPCError) -> [UInt8]
    /// Returns the hash the node computed, which for a well-formed transaction is `keccak256(raw)`.
    func sendRawTransaction(_ raw: [UInt8]) async throws(EthereumRPCError) -> [UInt8]
    /// `nil` until the transaction is mined (and for hashes the node has never seen).
    func transactionReceipt(_ hash: [UInt8]) async throws(EthereumRPCError) -> TransactionReceipt?
    func transaction(_ hash: [UInt8]) async throws(EthereumRPCError) -> TransactionInfo?
    func block(_ block: BlockTag) async throws(EthereumRPCError) -> BlockHeader?
}

extension EthereumRPC {
    /// ERC-20 `balanceOf(owner)`, in the token's base units.
    public func tokenBalance(token: Address, owner: Address, at block: BlockTag = .latest) async throws(EthereumRPCError) -> BigUInt {
        let output = try await call(CallRequest(to: token, data: ERC20.balanceOfCallData(owner: owner)), at: block)
        do {
            return try ERC20.decodeUInt256(output)
        } catch {
            throw .invalidResponse(method: "eth_call", reason: "balanceOf returned \(output.count) bytes, not one word: is \(token) an ERC-20 token?")
        }
    }

    /// ERC-20 `decimals()`: how many of the token's base units make one whole token.
    public func tokenDecimals(token: Address) async throws(EthereumRPCError) -> UInt8 {
        let output = try await call(CallRequest(to: token, data: ERC20.decimalsSelector), at: .latest)
        guard let value = try? ERC20.decodeUInt256(output), value <= 255 else {
            throw .invalidResponse(method: "eth_call", reason: "decimals() returned no small number: is \(token) an ERC-20 token?")
        }
        return UInt8(value)
    }
}
