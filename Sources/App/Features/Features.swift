import Ethereum
import Logging
import Storage

/// Which optional parts of TelePay this configuration turns on, decided once at start-up. A part that is off,
/// or on but unable to do all of its work, says why in `log(_:to:)`, the one place those lines are written.
struct Features: Sendable {
    /// TELEGRAM_BOT_TOKEN: the bot, channel access, notifications, offer posts and broadcasts.
    let telegram: Secret?
    /// TELEPAY_NOWPAYMENTS_API_KEY: invoices and payment processing.
    let payments: Secret?
    /// TELEPAY_NOWPAYMENTS_IPN_SECRET: signed payment callbacks (only with `payments`).
    let paymentCallbacks: Secret?
    /// TELEPAY_ETH_PRIVATE_KEY: the hot wallet, owners' payouts and reconciliation.
    let hotWallet: PrivateKey?
    /// TELEPAY_CHANGENOW_API_KEY: exchanges (payouts in other coins, conversions to USDT) and their tracking.
    let exchange: Secret?
    /// The USDT contract, when threshold payouts can run: they need the hot wallet, ChangeNOW and a contract.
    let thresholdPayouts: Address?
    /// Admins who get alerts in Telegram: only when there is a bot to send them.
    let adminChatIDs: [Int64]

    /// Throws when the configuration asks for something that cannot work: callbacks without the key that
    /// processes them, or a hot-wallet key that is not a key.
    init(_ configuration: Configuration) throws {
        if configuration.nowPaymentsIPNSecret != nil && configuration.nowPaymentsAPIKey == nil {
            throw StartupError.ipnSecretWithoutAPIKey
        }
        telegram = configuration.telegramBotToken
        payments = configuration.nowPaymentsAPIKey
        paymentCallbacks = configuration.nowPaymentsIPNSecret
        hotWallet = try HotWalletConfiguration.key(configuration)
        exchange = configuration.changeNowAPIKey
        thresholdPayouts = hotWallet != nil && exchange != nil ? configuration.thresholdPayouts.usdtContract : nil
        adminChatIDs = telegram == nil ? [] : configuration.adminTelegramIDs
    }

    func log(_ configuration: Configuration, to logger: Logger) {
        if payments == nil {
            logger.notice("subscriber purchases are off: TELEPAY_NOWPAYMENTS_API_KEY is unset")
        } else if configuration.nowPaymentsAccount == nil {
            logger.warning(
                "an order whose every callback is lost cannot be found: set TELEPAY_NOWPAYMENTS_EMAIL and TELEPAY_NOWPAYMENTS_PASSWORD to let TelePay list an invoice's payments"
            )
        }
        if paymentCallbacks == nil {
            logger.notice("NOWPayments callbacks are not accepted: TELEPAY_NOWPAYMENTS_IPN_SECRET is unset")
            if payments != nil {
                logger.warning("invoices will be created but no payment can complete: set TELEPAY_NOWPAYMENTS_IPN_SECRET")
            }
        }
        if payments != nil && configuration.subscriptions.publicURL == nil {
            logger.warning("invoices carry no callback or return URL: set TELEPAY_PUBLIC_URL (NOWPayments then uses the dashboard's IPN URL)")
        }
        if telegram == nil {
            logger.notice("Telegram is not configured (TELEGRAM_BOT_TOKEN is unset): serving health and metrics only")
        }
        if !adminChatIDs.isEmpty {
            logger.info("alerts go to admins in Telegram", metadata: ["admins": "\(adminChatIDs.count)"])
        }
        if let hotWallet {
            logger.info("hot wallet configured", metadata: ["wallet": "\(hotWallet.address)", "chain_id": "\(configuration.ethereumChainId)"])
            if exchange == nil {
                logger.warning("owners paid in coins other than ETH on Ethereum are not paid: set TELEPAY_CHANGENOW_API_KEY")
            }
            if thresholdPayouts == nil {
                logger.warning(
                    "owners on the threshold strategy are not paid: threshold payouts need TELEPAY_CHANGENOW_API_KEY and a USDT contract (TELEPAY_USDT_CONTRACT off mainnet)"
                )
            }
        }
    }
}
