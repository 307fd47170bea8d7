import Bot
import ExchangeOrders
import Foundation
import HotWallet
import Jobs
import Logging
import PostgresNIO
import Subscriptions

/// One alert as it goes to admins: a key that names the event (the same event raised twice has the same
/// key) and a short plain-text description. The text names ids and states, never error bodies or URLs,
/// which may carry secrets; the details are in the log and in `telepay jobs` / `telepay wallet`.
public struct AdminAlertMessage: Sendable, Hashable {
    public var key: String
    public var text: String

    init(key: String, text: String) {
        // The key column holds 200 characters; idempotency keys alone may be that long.
        self.key = String(key.prefix(200))
        self.text = text
    }

    public static func failedJob(_ job: FailedJob) -> AdminAlertMessage {
        let why =
            switch job.reason {
            case .permanentError: "a permanent error"
            case .attemptsExhausted: "every attempt failed"
            case .leaseExpiredOnFinalAttempt: "its worker stopped on the final attempt"
            }
        return AdminAlertMessage(
            key: "job-failed:\(job.id):\(job.attempt)",
            text: "TelePay alert: job #\(job.id) (\(job.kind)) failed after attempt \(job.attempt) of \(job.maxAttempts): \(why). "
                + "See `telepay jobs`; retry with `telepay jobs retry \(job.id)`."
        )
    }

    public static func wallet(_ alert: WalletAlert) -> AdminAlertMessage {
        switch alert {
        case .transferReverted(let transfer, _):
            return AdminAlertMessage(
                key: "wallet-reverted:\(transfer.idempotencyKey)",
                text:
                    "TelePay alert: hot-wallet transfer \(transfer.idempotencyKey) to \(transfer.recipient) reverted on chain; the value did not move. See `telepay wallet` and the log."
            )
        case .transferFailed(let transfer, _):
            return AdminAlertMessage(
                key: "wallet-failed:\(transfer.idempotencyKey)",
                text:
                    "TelePay alert: hot-wallet transfer \(transfer.idempotencyKey) to \(transfer.recipient) failed and was not sent. See `telepay wallet` and the log."
            )
        case .externalNonceUse(let wallet, let stored, let chain):
            return AdminAlertMessage(
                key: "wallet-external-nonce:\(wallet):\(chain)",
                text: "TelePay alert: the hot wallet \(wallet) signs outside TelePay: the chain's next nonce is \(chain), TelePay's is \(stored)."
            )
        case .feeCeilingReached(let transfer, _):
            return AdminAlertMessage(
                key: "wallet-fee-ceiling:\(transfer.idempotencyKey)",
                text:
                    "TelePay alert: hot-wallet transfer \(transfer.idempotencyKey) is stuck and needs fees above the configured ceiling; it is left as it is."
            )
        }
    }

    public static func exchange(_ alert: ExchangeAlert) -> AdminAlertMessage {
        switch alert {
        case .exchangeFailed(let subject):
            return AdminAlertMessage(
                key: "exchange-failed:\(subject.exchangeId)",
                text: "TelePay alert: ChangeNOW exchange \(subject.exchangeId) (intent \(subject.idempotencyKey)) failed."
            )
        case .exchangeRefunded(let subject, let hash):
            return AdminAlertMessage(
                key: "exchange-refunded:\(subject.exchangeId)",
                text: "TelePay alert: ChangeNOW exchange \(subject.exchangeId) (intent \(subject.idempotencyKey)) was refunded to the hot wallet"
                    + (hash.map { " (refund transaction \($0))" } ?? "") + "."
            )
        case .verifyingTooLong(let subject, let since):
            return AdminAlertMessage(
                key: "exchange-verifying:\(subject.exchangeId):\(Int64(since.timeIntervalSince1970))",
                text: "TelePay alert: ChangeNOW exchange \(subject.exchangeId) (intent \(subject.idempotencyKey)) has been held in verifying since "
                    + "\(since.formatted(.iso8601)); ChangeNOW support may need to be contacted."
            )
        }
    }
}

/// Logs every alert and, when admins are configured, sends each of them a Telegram message through a
/// durable `SendTelegramMessageJob`. The message is enqueued once per alert key and admin (the
/// `admin_alerts` table), so an alert raised again — by a retry, a second instance, a re-run pass — is
/// not sent again. A failed alert message is logged, never alerted about, so a blocked bot cannot loop.
public struct AdminAlerts: JobAlertHook, WalletAlertSink, ExchangeAlertSink, SubscriptionAlertSink {
    let queue: JobQueue
    public let adminChatIDs: [Int64]
    let logger: Logger

    public init(queue: JobQueue, adminChatIDs: [Int64], logger: Logger) {
        self.queue = queue
        self.adminChatIDs = adminChatIDs
        self.logger = logger
    }

    public func jobFailed(_ job: FailedJob) async {
        await LoggingJobAlertHook(logger: logger).jobFailed(job)
        guard !adminChatIDs.isEmpty else { return }
        if job.kind == SendTelegramMessageJob.kind {
            do {
                if try await isAlertDelivery(job.id) {
                    logger.error("an alert could not be delivered to an admin in Telegram", metadata: ["job_id": "\(job.id)"])
                    return
                }
            } catch {
                logger.error(
                    "cannot tell whether a failed Telegram job was an admin alert; not alerting about it",
                    metadata: ["job_id": "\(job.id)", "error": "\(error)"])
                return
            }
        }
        await deliver(.failedJob(job))
    }

    public func raise(_ alert: WalletAlert) async {
        await LoggingWalletAlerts(logger: logger).raise(alert)
        await deliver(.wallet(alert))
    }

    public func raise(_ alert: ExchangeAlert) async {
        await LoggingExchangeAlerts(logger: logger).raise(alert)
        await deliver(.exchange(alert))
    }

    public func raise(_ alert: SubscriptionAlert) async {
        await LoggingSubscriptionAlerts(logger: logger).raise(alert)
        await deliver(AdminAlertMessage(key: alert.key, text: alert.text))
    }

    /// Enqueues the message for every admin not yet told about this key; returns the jobs enqueued.
    @discardableResult
    public func deliver(_ message: AdminAlertMessage) async -> [JobID] {
        guard !adminChatIDs.isEmpty else { return [] }
        do {
            return try await queue.transaction { transaction in
                var jobs: [JobID] = []
                for chat in adminChatIDs {
                    guard try await AdminAlertStore.claim(key: message.key, chatID: chat, on: transaction.connection, logger: logger) else {
                        continue
                    }
                    let result = try await transaction.enqueue(SendTelegramMessageJob(chatID: chat, text: message.text, parseMode: nil))
                    guard let id = result.enqueuedID else { continue }
                    try await AdminAlertStore.record(job: id, key: message.key, chatID: chat, on: transaction.connection, logger: logger)
                    jobs.append(id)
                }
                return jobs
            }
        } catch {
            logger.error(
                "cannot enqueue an admin alert for Telegram", metadata: ["alert": "\(message.key)", "error": "\(String(reflecting: error))"])
            return []
        }
    }

    private func isAlertDelivery(_ job: JobID) async throws -> Bool {
        try await queue.database.withConnection { connection in
            try await AdminAlertStore.isDelivery(job, on: connection, logger: logger)
        }
    }
}
