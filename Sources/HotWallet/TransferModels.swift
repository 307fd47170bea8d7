import BigInt
import Ethereum

/// What a transfer moves: ether, or an ERC-20 token at a contract address.
public enum TransferAsset: Sendable, Hashable, CustomStringConvertible {
    case ether
    case token(Address)

    public var description: String {
        switch self {
        case .ether: return "ETH"
        case .token(let contract): return "ERC-20 \(contract)"
        }
    }
}

/// A payment the caller wants made once, whatever crashes and retries happen on the way.
public struct TransferRequest: Sendable, Hashable {
    /// The caller's business id (e.g. `exchange-intent:42`); a second request with it returns the first.
    public var idempotencyKey: String
    public var asset: TransferAsset
    public var recipient: Address
    /// Wei for ether, base units for a token.
    public var amount: BigUInt

    public init(idempotencyKey: String, asset: TransferAsset, recipient: Address, amount: BigUInt) {
        self.idempotencyKey = idempotencyKey
        self.asset = asset
        self.recipient = recipient
        self.amount = amount
    }
}

/// Where a transfer is; the migration's comment on `wallet_transfers` defines each state.
public enum TransferState: String, Sendable, Hashable, CaseIterable {
    case queued, signed, broadcast, mined, confirmed, reverted, failed

    /// Nothing further will happen to the transfer.
    public var isFinal: Bool { self == .confirmed || self == .reverted || self == .failed }
}

/// Why a transfer ended without paying.
public enum TransferFailure: String, Sendable, Hashable {
    /// Checked before signing: the wallet cannot cover amount plus fees. Nothing was sent.
    case insufficientFunds = "insufficient_funds"
    /// `eth_estimateGas` says the call would revert (e.g. a token balance too low). Nothing was sent.
    case wouldRevert = "would_revert"
    /// The node refused the signed bytes for good and the nonce was released. Nothing was sent.
    case rejectedByNode = "rejected_by_node"
    /// The chain used this nonce for a transaction that is none of ours: the key is used elsewhere.
    case nonceTakenElsewhere = "nonce_taken_elsewhere"
    /// Mined with status 0; the fee was spent, the value did not move.
    case reverted
}

/// A transfer as stored.
public struct Transfer: Sendable, Hashable {
    public var id: Int64
    public var idempotencyKey: String
    public var asset: TransferAsset
    public var recipient: Address
    public var amount: BigUInt
    public var state: TransferState
    public var nonce: UInt64?
    /// The attempt that made it into a block, once one has.
    public var minedTransactionHash: [UInt8]?
    public var blockNumber: UInt64?
    public var failure: TransferFailure?
    public var failureReason: String?
    /// The latest transient problem (a node timeout, a refused replacement); cleared on progress.
    public var lastError: String?
}

/// One signed version of a transfer.
public struct TransferAttempt: Sendable, Hashable {
    public var id: Int64
    public var nonce: UInt64
    public var maxFeePerGas: BigUInt
    public var maxPriorityFeePerGas: BigUInt
    public var gasLimit: UInt64
    public var hash: [UInt8]
    public var rawTransaction: [UInt8]
    public var acknowledged: Bool
    /// A broadcast of these bytes got no answer (timed out, the connection dropped): a node may hold them.
    public var unanswered: Bool
}

/// How the sender trades speed against safety.
public struct SenderPolicy: Sendable, Hashable {
    /// Blocks (counting the transaction's own) before a receipt is final: 1 settles on inclusion.
    public var confirmations: UInt64
    /// How long the newest attempt may wait for a receipt before it is replaced at the same nonce.
    public var stuckAfter: Duration
    /// The sender never signs a fee cap above this, so a fee spike cannot drain the wallet.
    public var maxFeePerGasCeiling: BigUInt
    /// Safety margin on `eth_estimateGas` for contract calls; plain transfers use exactly 21 000.
    public var gasLimitMarginPercent: UInt64
    /// Transfers handled per pass, so one pass stays short.
    public var batchSize: Int

    public init(
        confirmations: UInt64 = 12, stuckAfter: Duration = .seconds(180),
        maxFeePerGasCeiling: BigUInt = BigUInt(500) * BigUInt(1_000_000_000), gasLimitMarginPercent: UInt64 = 20,
        batchSize: Int = 20
    ) {
        self.confirmations = max(1, confirmations)
        self.stuckAfter = stuckAfter
        self.maxFeePerGasCeiling = maxFeePerGasCeiling
        self.gasLimitMarginPercent = gasLimitMarginPercent
        self.batchSize = max(1, batchSize)
    }
}

/// Something an operator must look at; the sender carries on after raising it.
public enum WalletAlert: Sendable, Hashable {
    case transferReverted(Transfer, reason: String)
    case transferFailed(Transfer, reason: String)
    /// The chain's nonce for the wallet is ahead of what TelePay assigned: the key signs elsewhere too.
    case externalNonceUse(wallet: Address, storedNextNonce: UInt64, chainPendingNonce: UInt64)
    /// A stuck transfer needs fees above the configured ceiling; it is left as it is.
    case feeCeilingReached(Transfer, neededMaxFeePerGas: BigUInt)
}

/// Receives alerts: a pager, a chat message to the admins, a log line.
public protocol WalletAlertSink: Sendable {
    func raise(_ alert: WalletAlert) async
}

/// Points in a transfer's life, reported to a `SenderProbe` as they are passed.
public enum SenderStep: String, Sendable, Hashable, CaseIterable {
    /// Signed bytes, hash and nonce are committed; nothing has been broadcast.
    case attemptStored
    /// A node accepted (or already had) the bytes; that is not recorded yet.
    case broadcastAccepted
    case broadcastRecorded
    /// A same-nonce replacement with higher fees is committed; not broadcast yet.
    case replacementStored
    /// A node accepted the replacement; that is not recorded yet.
    case replacementAccepted
    case receiptRecorded
    case settled
}

/// Observes the sender's progress (metrics, logs, and crash tests that stop the process at a step).
public protocol SenderProbe: Sendable {
    func reached(_ step: SenderStep, transferID: Int64) async
}

/// Why the sender refused or could not do something.
public enum TransferError: Error, Sendable, CustomStringConvertible {
    /// The node serves another chain than the one configured; nothing is signed for it.
    case chainIdMismatch(configured: UInt64, node: UInt64)
    /// The wallet's stored state belongs to another chain.
    case walletBoundToOtherChain(wallet: Address, stored: UInt64, configured: UInt64)
    /// The key was used before for a different transfer.
    case idempotencyKeyReused(String)
    case zeroAmount
    /// The wallet cannot cover amount plus fees; the transfer is recorded as failed and nothing was sent.
    case insufficientFunds(asset: TransferAsset, required: BigUInt, available: BigUInt)
    case transferFailed(Transfer)
    case transferNotFound(String)
    case rpc(EthereumRPCError)
    case database(any Error)

    public var description: String {
        switch self {
        case .chainIdMismatch(let configured, let node):
            return "the Ethereum node serves chain \(node), but chain \(configured) is configured; refusing to sign"
        case .walletBoundToOtherChain(let wallet, let stored, let configured):
            return "wallet \(wallet) has state for chain \(stored) in the database, but chain \(configured) is configured"
        case .idempotencyKeyReused(let key): return "idempotency key '\(key)' already names a different transfer"
        case .zeroAmount: return "a transfer must move a positive amount"
        case .insufficientFunds(let asset, let required, let available):
            return "insufficient \(asset) in the hot wallet: needs \(required) (amount plus fees, in base units), has \(available)"
        case .transferFailed(let transfer):
            return "transfer \(transfer.idempotencyKey) failed: \(transfer.failureReason ?? "unknown reason")"
        case .transferNotFound(let key): return "no transfer '\(key)'"
        case .rpc(let error): return "Ethereum node: \(error)"
        case .database(let error): return "database: \(String(reflecting: error))"
        }
    }
}
