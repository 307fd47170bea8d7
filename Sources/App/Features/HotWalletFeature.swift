import Ethereum
import Exchange
import HotWallet
import Payouts
import ServiceLifecycle
import Subscriptions

/// The hot wallet: its sender (a service of its own), owners' payouts from it and the hourly reconciliation
/// of the chain with the ledger. Owners who take the settlement asset itself are paid straight from the
/// wallet; owners of other coins through ChangeNOW (when its key is set), funded by the wallet, refunds to
/// the wallet. Threshold owners (with ChangeNOW and a USDT contract) have their shares converted to USDT in
/// batches, paid to the wallet itself, and are paid in USDT once the converted balance reaches the threshold.
struct HotWalletFeature {
    let sender: TransferSender
    let payouts: PayoutRunner
    let reconciliation: ReconciliationRunner

    init(key: PrivateKey, thresholdUSDT: Address?, exchange: ExchangeFeature?, context: AssemblyContext) {
        let (configuration, database, queue, logger) = (context.configuration, context.database, context.queue, context.logger)
        let settlement = configuration.subscriptions.settlement
        let rpc = HotWalletConfiguration.rpc(configuration, timeout: .seconds(30))
        let sender = TransferSender(
            key: key, chainId: configuration.ethereumChainId, rpc: rpc,
            database: database, policy: SenderPolicy(confirmations: configuration.ethereumConfirmations),
            alerts: context.alerts, logger: logger
        )
        let refundAddress = sender.wallet.checksummed
        func exchanging(_ exchange: ExchangeFeature) -> PayoutExchange {
            PayoutExchange(
                orders: exchange.orders, api: exchange.client, refundAddress: refundAddress,
                verifyingAlertAfter: configuration.exchangeVerifyingAlertAfter
            )
        }
        // Owners get a link to their transaction on mainnet and Sepolia; on another chain, the bare hash.
        let explorer = [1: "https://etherscan.io/tx/", 11_155_111: "https://sepolia.etherscan.io/tx/"][configuration.ethereumChainId] ?? ""
        let direct = PayoutService(
            database: database, queue: queue, wallet: HotWalletPayouts(sender: sender, rpc: rpc), settlement: settlement,
            exchange: exchange.map { exchanging($0) }, explorer: explorer, logger: logger
        )
        var threshold: (conversions: ConversionService, payouts: PayoutService)?
        if let usdt = thresholdUSDT, let exchange {
            let settings = configuration.thresholdPayouts
            let conversions = ConversionService(
                database: database, queue: queue, wallet: HotWalletPayouts(sender: sender, rpc: rpc),
                arrivals: ChainConversionArrivals(rpc: rpc, token: usdt, wallet: sender.wallet, confirmations: configuration.ethereumConfirmations),
                settlement: settlement, exchange: exchanging(exchange), hotWallet: refundAddress,
                settings: ConversionSettings(minimumUSD: settings.conversionMinimumUSD, interval: settings.conversionInterval),
                logger: logger
            )
            var fromUSDT = exchanging(exchange)
            fromUSDT.from = ExchangeLeg(currency: "usdt", network: "eth")
            let payouts = PayoutService(
                database: database, queue: queue, wallet: HotWalletPayouts(sender: sender, rpc: rpc, asset: .token(usdt)),
                settlement: .usdt, exchange: fromUSDT,
                explorer: explorer, planning: .converted(unitsPerUSD: SettlementAsset.usdt.unitsPerCoin), planInterval: settings.payoutInterval,
                logger: logger
            )
            threshold = (conversions, payouts)
        }
        self.sender = sender
        payouts = PayoutRunner(
            services: [direct] + (threshold.map { [$0.payouts] } ?? []), conversions: threshold?.conversions, metrics: context.telemetry.factory
        )
        reconciliation = ReconciliationRunner(
            reconciliation: Reconciliation(
                database: database, sender: sender, rpc: rpc,
                tokens: configuration.thresholdPayouts.usdtContract.map { [SettlementAsset.usdt.asset: $0] } ?? [:], orders: exchange?.orders,
                lister: configuration.changeNowPrivateAPIKey.map {
                    ChangeNowClient(baseURL: configuration.changeNowAPIURL.absoluteString, apiKey: $0.value)
                },
                logger: logger
            ),
            queue: queue, metrics: context.telemetry.factory
        )
    }

    func contribution(_ context: AssemblyContext) throws -> FeatureContribution {
        let (payouts, reconciliation) = (payouts, reconciliation)
        return FeatureContribution(
            registerJobs: { registry in
                registry.register(payouts)
                registry.register(reconciliation)
            },
            periodicTasks: [try PayoutRunner.periodicTask(every: .seconds(15)), try ReconciliationRunner.periodicTask(every: .seconds(3600))],
            services: [
                .init(
                    service: AfterMigrations(gate: context.schemaReady, inner: HotWalletService(sender: sender)),
                    failureTerminationBehavior: .gracefullyShutdownGroup,
                    serviceName: "hot-wallet"
                )
            ]
        )
    }
}
