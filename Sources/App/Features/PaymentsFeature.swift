import Payments
import Subscriptions

/// NOWPayments: invoices (the provider), processing of payments, their periodic re-check, and the signed
/// callbacks when their secret is set.
struct PaymentsFeature {
    let provider: NOWPaymentsClient
    let processor: PaymentProcessor
    /// Serves `POST /payments/nowpayments/ipn`; nil without TELEPAY_NOWPAYMENTS_IPN_SECRET.
    let callbacks: NOWPaymentsIPNReceiver?

    init(key: Secret, callbackSecret: Secret?, context: AssemblyContext) {
        let configuration = context.configuration
        provider = NOWPaymentsClient(
            configuration: .init(baseURL: configuration.nowPaymentsAPIURL, apiKey: key.value, account: configuration.nowPaymentsAccount),
            logger: context.logger
        )
        processor = PaymentProcessor(
            database: context.database, queue: context.queue, provider: provider, clock: context.clock, settings: configuration.subscriptions,
            logger: context.logger
        )
        callbacks = callbackSecret.map { secret in
            NOWPaymentsIPNReceiver.processing(secret: secret.value, database: context.database, queue: context.queue, logger: context.logger)
        }
    }

    func contribution() throws -> FeatureContribution {
        let processor = processor
        return FeatureContribution(
            registerJobs: { registry in
                registry.register(processor)
                registry.register(PaymentRechecker(processor: processor))
            },
            periodicTasks: [try PaymentRechecker.periodicTask(every: processor.settings.paymentRecheckInterval)]
        )
    }
}
