import BigInt
import Ethereum
import Foundation
import HotWallet
import Money

/// Payouts through the hot-wallet sender: one transfer (ETH, or an ERC-20 token such as USDT) per payout key,
/// paid at most once whatever crashes and retries happen (the sender records the transfer before it signs and
/// never re-signs a nonce). Gas, always in ETH, comes from the mined transaction's receipt.
public struct HotWalletPayouts: PayoutWallet {
    let sender: TransferSender
    let rpc: any EthereumRPC
    let asset: TransferAsset

    public init(sender: TransferSender, rpc: any EthereumRPC, asset: TransferAsset = .ether) {
        self.sender = sender
        self.rpc = rpc
        self.asset = asset
    }

    public func submit(key: String, recipient: String, units: Decimal) async throws {
        guard let amount = BigUInt(DecimalText.plain(units)) else { throw HotWalletPayoutError.notWholeUnits(units) }
        _ = try await sender.submit(TransferRequest(idempotencyKey: key, asset: asset, recipient: try Address(parsing: recipient), amount: amount))
    }

    public func outcome(key: String) async throws -> PayoutTransferOutcome? {
        guard let transfer = try await sender.transfer(key: key) else { return nil }
        switch transfer.state {
        case .queued, .signed, .broadcast, .mined:
            return .pending
        case .confirmed:
            return .confirmed(gas: try await gas(of: transfer), hash: transfer.minedTransactionHash.map(Hex.encodeData))
        case .reverted:
            return .failed(reason: transfer.failureReason ?? "reverted on chain", gas: try await gas(of: transfer))
        case .failed:
            return .failed(reason: transfer.failureReason ?? transfer.failure?.rawValue ?? "not sent", gas: 0)
        }
    }

    func gas(of transfer: Transfer) async throws -> Decimal {
        guard let hash = transfer.minedTransactionHash, let receipt = try await rpc.transactionReceipt(hash) else { return 0 }
        let wei = receipt.fee
        guard let gas = DecimalText.parse(wei.description) else { throw HotWalletPayoutError.notWholeUnits(0) }
        return gas
    }
}

/// What a conversion's exchange delivered to the hot wallet, read from the chain, never from the exchange.
public protocol ConversionArrivals: Sendable {
    /// The smallest units of the token the transaction `hash` moved to the hot wallet; `nil` while it is not
    /// mined to the wallet's confirmation depth (or not known to the node yet). A transaction that reverted or
    /// paid someone else delivered 0.
    func received(transaction hash: String) async throws -> Decimal?
}

/// Reads a token's `Transfer` logs to the hot wallet in a transaction's receipt.
public struct ChainConversionArrivals: ConversionArrivals {
    let rpc: any EthereumRPC
    let token: Address
    let wallet: Address
    let confirmations: UInt64

    public init(rpc: any EthereumRPC, token: Address, wallet: Address, confirmations: UInt64) {
        self.rpc = rpc
        self.token = token
        self.wallet = wallet
        self.confirmations = confirmations
    }

    public func received(transaction hash: String) async throws -> Decimal? {
        guard let bytes = try? Hex.decodeData(hash), bytes.count == 32 else { return 0 }
        guard let receipt = try await rpc.transactionReceipt(bytes) else { return nil }
        let latest = try await rpc.blockNumber()
        guard receipt.confirmations(latestBlock: latest) >= max(confirmations, 1) else { return nil }
        guard receipt.succeeded else { return 0 }
        let units = ERC20.received(by: wallet, token: token, in: receipt.logs)
        guard let amount = DecimalText.parse(units.description) else { throw HotWalletPayoutError.notWholeUnits(0) }
        return amount
    }
}

/// A payout amount the hot wallet cannot express.
public enum HotWalletPayoutError: Error, Sendable, Hashable, CustomStringConvertible {
    case notWholeUnits(Decimal)

    public var description: String {
        switch self {
        case .notWholeUnits(let units): return "\(units) is not a whole number of wei"
        }
    }
}
