import Exchange
import ExchangeOrders

/// ChangeNOW: the exchange orders payouts and conversions place, and the tracking that polls their status.
struct ExchangeFeature {
    let client: ChangeNowClient
    let orders: ExchangeOrderService

    init(key: Secret, context: AssemblyContext) {
        client = ChangeNowClient(baseURL: context.configuration.changeNowAPIURL.absoluteString, apiKey: key.value)
        orders = ExchangeOrderService(database: context.database, api: client, alerts: context.alerts, logger: context.logger)
    }

    func contribution(_ context: AssemblyContext) throws -> FeatureContribution {
        let tracker = ExchangeTracker(orders: orders, logger: context.logger)
        return FeatureContribution(
            registerJobs: { $0.register(ExchangeStatusPoller(tracker: tracker)) },
            periodicTasks: [try ExchangeStatusPoller.periodicTask(every: context.configuration.exchangePollInterval)]
        )
    }
}
