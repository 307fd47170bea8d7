import BigInt
import Ethereum
import Foundation
import HotWallet
import Money

/// Payouts through the hot-wallet sender: one ETH transfer per payout key, paid at most once whatever
/// crashes and retries happen (the sender records the transfer before it signs and never re-signs a nonce).
/// Gas comes from the mined transaction's receipt.
public struct HotWalletPayouts: PayoutWallet {
    let sender: TransferSender
    let rpc: any EthereumRPC

    public init(sender: TransferSender, rpc: any EthereumRPC) {
        self.sender = sender
        self.rpc = rpc
    }

    public func submit(key: String, recipient: String, units: Decimal) async throws {
        guard let amount = BigUInt(DecimalText.plain(units)) else { throw HotWalletPayoutError.notWholeUnits(units) }
        _ = try await sender.submit(TransferRequest(idempotencyKey: key, asset: .ether, recipient: try Address(parsing: recipient), amount: amount))
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
        let wei = BigUInt(receipt.gasUsed) * receipt.effectiveGasPrice
        guard let gas = DecimalText.parse(wei.description) else { throw HotWalletPayoutError.notWholeUnits(0) }
        return gas
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
