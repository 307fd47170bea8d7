import App
import Exchange
import ExchangeOrders
import Foundation
import Logging
import Storage

/// Why `telepay exchange reconcile` cannot run.
public enum ExchangeCommandError: Error, CustomStringConvertible {
    case notConfigured

    public var description: String {
        "neither TELEPAY_CHANGENOW_PRIVATE_API_KEY nor TELEPAY_CHANGENOW_API_KEY is set: there is no ChangeNOW account to reconcile"
    }
}

/// What `telepay exchange reconcile` prints: ChangeNOW's list of exchanges against the intents.
public enum ExchangeReconcileReport {
    /// Lists with the private key when one is configured, else tries the standard key (which ChangeNOW
    /// refuses with a clear message).
    public static func run(configuration: Configuration, since: Date, logger: Logger) async throws -> ExchangeReconciliation {
        guard let key = configuration.changeNowPrivateAPIKey ?? configuration.changeNowAPIKey else { throw ExchangeCommandError.notConfigured }
        let lister = ChangeNowClient(baseURL: configuration.changeNowAPIURL.absoluteString, apiKey: key.value)
        return try await withCurrentDatabase(configuration: configuration, logger: logger) { context in
            // Reconciliation only reads, so the orders' own client is never called.
            try await ExchangeOrderService(database: context.database, api: lister, logger: logger).reconcile(lister: lister, since: since)
        }
    }
}
