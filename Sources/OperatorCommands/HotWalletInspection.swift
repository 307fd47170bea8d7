import App
import BigInt
import Ethereum
import Exchange
import Foundation
import HotWallet
import Logging
import Money
import Storage

extension HotWalletConfiguration {
    /// Wei as whole ETH, for the operator's eyes.
    static func ether(_ wei: BigUInt) -> String {
        TokenUnits.decimalString(fromBaseUnits: wei, decimals: 18) + " ETH"
    }
}

extension Doctor {
    /// The node's chain id against `TELEPAY_ETH_CHAIN_ID`, and the wallet's balance. Skipped without a key.
    public static func checkEthereum(_ configuration: Configuration) async -> DoctorCheck {
        let key: PrivateKey
        do {
            guard let configured = try HotWalletConfiguration.key(configuration) else {
                return DoctorCheck(
                    name: "ethereum", outcome: .skipped, detail: "TELEPAY_ETH_PRIVATE_KEY is unset: no hot wallet, payouts cannot be funded")
            }
            key = configured
        } catch {
            return DoctorCheck(name: "ethereum", outcome: .failed, detail: "\(error)")
        }
        let rpc = HotWalletConfiguration.rpc(configuration)
        do {
            let chain = try await rpc.chainId()
            guard chain == configuration.ethereumChainId else {
                return DoctorCheck(
                    name: "ethereum", outcome: .failed,
                    detail:
                        "the RPC node serves chain \(chain) but TELEPAY_ETH_CHAIN_ID is \(configuration.ethereumChainId); the sender refuses to start"
                )
            }
            let balance = try await rpc.balance(of: key.address, at: .latest)
            let detail = "chain \(chain), wallet \(key.address) holds \(HotWalletConfiguration.ether(balance))"
            return DoctorCheck(
                name: "ethereum", outcome: balance == 0 ? .warning : .ok, detail: balance == 0 ? detail + ": fund it before paying out" : detail)
        } catch {
            // The URL may carry an API key, so only the variable is named, never the value.
            return DoctorCheck(name: "ethereum", outcome: .failed, detail: "cannot use the node at TELEPAY_ETH_RPC_URL: \(error)")
        }
    }

    /// An authenticated ChangeNOW call (the ETH→BTC minimum) to prove the key works. Skipped without a key.
    public static func checkChangeNow(_ configuration: Configuration) async -> DoctorCheck {
        guard let apiKey = configuration.changeNowAPIKey else {
            return DoctorCheck(name: "changenow", outcome: .skipped, detail: "TELEPAY_CHANGENOW_API_KEY is unset: payouts cannot be exchanged")
        }
        let client = ChangeNowClient(baseURL: configuration.changeNowAPIURL.absoluteString, apiKey: apiKey.value, timeout: .seconds(10))
        let pair = ExchangePair(from: ExchangeLeg(currency: "eth", network: "eth"), to: ExchangeLeg(currency: "btc", network: "btc"))
        do {
            let minimum = try await client.minimumAmount(pair: pair, flow: .standard)
            return DoctorCheck(
                name: "changenow", outcome: .ok,
                detail:
                    "key accepted at \(configuration.changeNowAPIURL.absoluteString) (ETH→BTC minimum \(DecimalText.plain(minimum.minAmount)) ETH)")
        } catch .rejected(let status, let code, let message) where status == 401 || status == 403 || code == .unauthorized || code == .forbidden {
            return DoctorCheck(name: "changenow", outcome: .failed, detail: "ChangeNOW refused TELEPAY_CHANGENOW_API_KEY (\(code): \(message))")
        } catch {
            return DoctorCheck(name: "changenow", outcome: .failed, detail: "\(error)")
        }
    }
}

extension Doctor {
    /// One page of ChangeNOW's exchange list with the private key, which `telepay exchange reconcile` needs.
    public static func checkChangeNowListing(_ configuration: Configuration) async -> DoctorCheck {
        guard let key = configuration.changeNowPrivateAPIKey else {
            let outcome: DoctorCheck.Outcome = configuration.changeNowAPIKey == nil ? .skipped : .warning
            return DoctorCheck(
                name: "changenow-list", outcome: outcome,
                detail: "TELEPAY_CHANGENOW_PRIVATE_API_KEY is unset: `telepay exchange reconcile` cannot list exchanges at ChangeNOW"
            )
        }
        let client = ChangeNowClient(baseURL: configuration.changeNowAPIURL.absoluteString, apiKey: key.value, timeout: .seconds(10))
        do {
            _ = try await client.listExchanges(ExchangeListQuery(limit: 1))
            return DoctorCheck(name: "changenow-list", outcome: .ok, detail: "the private key may list exchanges")
        } catch  where error.cannotList {
            return DoctorCheck(
                name: "changenow-list", outcome: .failed, detail: "ChangeNOW refused TELEPAY_CHANGENOW_PRIVATE_API_KEY for listing (\(error))")
        } catch {
            return DoctorCheck(name: "changenow-list", outcome: .failed, detail: "\(error)")
        }
    }
}

/// What `telepay wallet` prints: the hot wallet's address, balances, nonces and open transfers.
public enum WalletReport {
    public static func build(configuration: Configuration, tokens: [String], logger: Logger) async throws -> [String] {
        guard let key = try HotWalletConfiguration.key(configuration) else { throw HotWalletInspectionError.notConfigured }
        var tokenAddresses: [Address] = []
        for text in tokens {
            guard let address = try? Address(parsing: text) else { throw HotWalletInspectionError.invalidToken(text) }
            tokenAddresses.append(address)
        }
        let rpc = HotWalletConfiguration.rpc(configuration)
        var lines = ["address       \(key.address)"]
        let chain = try await rpc.chainId()
        lines.append(
            "chain         \(chain)"
                + (chain == configuration.ethereumChainId
                    ? "" : "  (TELEPAY_ETH_CHAIN_ID is \(configuration.ethereumChainId): the sender refuses this node)"))
        lines.append("balance       \(HotWalletConfiguration.ether(try await rpc.balance(of: key.address, at: .latest)))")
        for token in tokenAddresses {
            let decimals = try await rpc.tokenDecimals(token: token)
            let balance = try await rpc.tokenBalance(token: token, owner: key.address)
            lines.append(
                "token         \(token): \(TokenUnits.decimalString(fromBaseUnits: balance, decimals: decimals)) (\(balance) base units, \(decimals) decimals)"
            )
        }
        let latest = try await rpc.transactionCount(of: key.address, at: .latest)
        let pending = try await rpc.transactionCount(of: key.address, at: .pending)
        lines.append("node nonce    \(latest) mined, \(pending) with pending")
        lines += try await storedState(configuration: configuration, key: key, rpc: rpc, logger: logger)
        return lines
    }

    /// The database side: the stored next nonce and every transfer not yet final.
    private static func storedState(configuration: Configuration, key: PrivateKey, rpc: HTTPEthereumRPC, logger: Logger) async throws -> [String] {
        let migrations = try loadMigrations(configuration: configuration, logger: logger)
        let handle = try await DatabaseHandle.open(configuration: configuration, telemetry: Telemetry(), logger: logger)
        let result: Result<[String], any Error> = await withTaskGroup(of: Void.self) { group in
            group.addTask { await handle.database.run() }
            defer { group.cancelAll() }
            do {
                guard try await migrations.status(on: handle.database).isUpToDate else {
                    return .success(["stored        the database schema is not up to date; run `telepay migrate`"])
                }
                let sender = TransferSender(
                    key: key, chainId: configuration.ethereumChainId, rpc: rpc, database: handle.database,
                    alerts: LoggingWalletAlerts(logger: logger), logger: logger
                )
                var lines: [String] = []
                let next = (try? await sender.storedNextNonce()).map(String.init) ?? "none (no transfer sent yet)"
                lines.append("stored nonce  \(next) next")
                let open = try await sender.transfers(in: [.queued, .signed, .broadcast, .mined])
                lines.append("pending       \(open.count) transfer(s)")
                for transfer in open {
                    let amount: String =
                        switch transfer.asset {
                        case .ether: HotWalletConfiguration.ether(transfer.amount)
                        case .token(let contract): "\(transfer.amount) base units of \(contract)"
                        }
                    let nonce = transfer.nonce.map { "nonce \($0)" } ?? "no nonce"
                    let problem = transfer.lastError.map { "  last error: \($0)" } ?? ""
                    lines.append(
                        "  \(transfer.state.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(transfer.idempotencyKey)  \(amount) → \(transfer.recipient)  \(nonce)\(problem)"
                    )
                }
                return .success(lines)
            } catch {
                return .failure(error)
            }
        }
        try await handle.embedded?.stop()
        return try result.get()
    }
}
