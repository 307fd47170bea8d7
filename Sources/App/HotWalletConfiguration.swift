import Ethereum
import HotWallet
import Logging

/// Why the hot wallet cannot be used or inspected.
public enum HotWalletInspectionError: Error, CustomStringConvertible {
    case notConfigured
    case invalidKey
    case invalidToken(String)

    public var description: String {
        switch self {
        case .notConfigured: return "TELEPAY_ETH_PRIVATE_KEY is unset: there is no hot wallet to show"
        case .invalidKey: return "TELEPAY_ETH_PRIVATE_KEY is not a valid secp256k1 key (zero or above the curve order)"
        case .invalidToken(let text): return "--token \(text) is not an address"
        }
    }
}

/// The configured hot wallet's pieces: its key and an RPC client for the configured node.
package enum HotWalletConfiguration {
    package static func key(_ configuration: Configuration) throws -> PrivateKey? {
        guard let secret = configuration.ethereumPrivateKey?.value else { return nil }
        let digits = secret.hasPrefix("0x") ? secret : "0x" + secret
        guard let bytes = try? Hex.decodeData(digits), let key = try? PrivateKey(bytes: bytes) else {
            throw HotWalletInspectionError.invalidKey
        }
        return key
    }

    package static func rpc(_ configuration: Configuration, timeout: Duration = .seconds(10)) -> HTTPEthereumRPC {
        HTTPEthereumRPC(url: configuration.ethereumRPCURL.value, timeout: timeout)
    }
}

/// Sends wallet alerts to the log at error level, the default sink until an operator channel exists.
public struct LoggingWalletAlerts: WalletAlertSink {
    public let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func raise(_ alert: WalletAlert) async {
        switch alert {
        case .transferReverted(let transfer, let reason):
            logger.error("hot-wallet transfer reverted", metadata: ["transfer": "\(transfer.idempotencyKey)", "reason": "\(reason)"])
        case .transferFailed(let transfer, let reason):
            logger.error("hot-wallet transfer failed", metadata: ["transfer": "\(transfer.idempotencyKey)", "reason": "\(reason)"])
        case .externalNonceUse(let wallet, let stored, let chain):
            logger.error(
                "hot-wallet key used outside TelePay",
                metadata: ["wallet": "\(wallet)", "stored_next_nonce": "\(stored)", "chain_pending_nonce": "\(chain)"])
        case .feeCeilingReached(let transfer, let needed):
            logger.error(
                "stuck hot-wallet transfer needs fees above the ceiling",
                metadata: ["transfer": "\(transfer.idempotencyKey)", "needed_max_fee_per_gas": "\(needed)"])
        }
    }
}
