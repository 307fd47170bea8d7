import App
import Bot
import Ethereum
import ExchangeOrders
import Foundation
import Jobs
import PostgresNIO
import Storage
import Subscriptions
import TestSupport
import Testing

private let botToken = "123456:ABCdefGhIJKlmnOPQrsTUVwxyz0123456789"

/// The Telegram send jobs waiting in the queue: chat id, text and parse mode.
private func telegramJobs(_ database: Database) async throws -> [(chat: Int64, text: String, parseMode: String?)] {
    try await database.withConnection { connection in
        let rows = try await connection.query(
            "SELECT payload::text FROM jobs WHERE kind = \(SendTelegramMessageJob.kind) ORDER BY id", logger: quietLogger
        )
        var jobs: [(Int64, String, String?)] = []
        for try await payload in rows.decode(String.self) {
            let job = try JSONDecoder().decode(SendTelegramMessageJob.self, from: Data(payload.utf8))
            jobs.append((job.chatID, job.text, job.parseMode))
        }
        return jobs
    }
}

@Suite("Alerts to admins in Telegram")
struct AdminAlertsTests {
    @Test("admin ids are comma-separated positive whole numbers, deduplicated, and need a bot token")
    func configuration() throws {
        let base = ["TELEGRAM_BOT_TOKEN": botToken]
        #expect(try Configuration.load(environment: base.merging(["TELEPAY_ADMIN_TELEGRAM_IDS": " 42, 7,42 "]) { $1 }).adminTelegramIDs == [42, 7])
        #expect(try Configuration.load(environment: base).adminTelegramIDs.isEmpty)
        for bad in ["0", "-5", "abc", "1,,2", "+3", "9223372036854775808"] {
            #expect(throws: ConfigurationError.self, "\(bad)") {
                _ = try Configuration.load(environment: base.merging(["TELEPAY_ADMIN_TELEGRAM_IDS": bad]) { $1 })
            }
        }
        #expect {
            _ = try Configuration.load(environment: ["TELEPAY_ADMIN_TELEGRAM_IDS": "42"])
        } throws: { error in
            "\(error)".contains("TELEPAY_ADMIN_TELEGRAM_IDS") && "\(error)".contains("TELEGRAM_BOT_TOKEN")
        }
    }

    @Test("an alert is enqueued once per admin as a plain-text Telegram job, however often it is raised")
    func deduplicatedPerAlert() async throws {
        try await withMigratedDatabase { database in
            let alerts = AdminAlerts(queue: JobQueue(database: database, logger: quietLogger), adminChatIDs: [42, 7], logger: quietLogger)
            let subject = ExchangeAlertSubject(intentId: 3, idempotencyKey: "payout:3", exchangeId: "abc123")
            await alerts.raise(.exchangeFailed(subject))
            await alerts.raise(.exchangeFailed(subject))
            var jobs = try await telegramJobs(database)
            #expect(jobs.map(\.chat) == [42, 7])
            #expect(
                jobs.allSatisfy { $0.parseMode == nil && $0.text.contains("abc123") && $0.text.contains("payout:3") && $0.text.contains("failed") })

            await alerts.raise(.exchangeRefunded(subject, refundHash: "0xfeed"))
            jobs = try await telegramJobs(database)
            #expect(jobs.count == 4, "a different event about the same exchange is a new alert")
            #expect(jobs.last?.text.contains("0xfeed") == true)
        }
    }

    @Test("a failed job is described without its error text; a failed alert message is only logged, so a blocked bot cannot loop")
    func failedJobs() async throws {
        try await withMigratedDatabase { database in
            let alerts = AdminAlerts(queue: JobQueue(database: database, logger: quietLogger), adminChatIDs: [42], logger: quietLogger)
            let failure = FailedJob(
                id: JobID(99), kind: "payouts.send", attempt: 20, maxAttempts: 20,
                error: "transport to https://rpc.example/SECRET-KEY failed", reason: .attemptsExhausted
            )
            await alerts.jobFailed(failure)
            await alerts.jobFailed(failure)
            let jobs = try await telegramJobs(database)
            #expect(jobs.count == 1)
            let text = try #require(jobs.first?.text)
            #expect(text.contains("#99") && text.contains("payouts.send") && text.contains("telepay jobs retry 99"))
            #expect(!text.contains("SECRET"), "error text can carry secrets and stays in the log")

            let alertJob = try await database.withConnection { connection in
                let rows = try await connection.query("SELECT job_id FROM admin_alerts", logger: quietLogger)
                var ids: [Int64] = []
                for try await id in rows.decode(Int64.self) { ids.append(id) }
                return ids
            }
            let deliveryID = try #require(alertJob.first)
            await alerts.jobFailed(
                FailedJob(
                    id: JobID(deliveryID), kind: SendTelegramMessageJob.kind, attempt: 12, maxAttempts: 12,
                    error: "Forbidden: bot was blocked by the user", reason: .permanentError
                ))
            #expect(try await telegramJobs(database).count == 1, "the failed alert message raised no new message")

            await alerts.jobFailed(
                FailedJob(
                    id: JobID(deliveryID + 1000), kind: SendTelegramMessageJob.kind, attempt: 12, maxAttempts: 12, error: "chat not found",
                    reason: .permanentError
                ))
            #expect(try await telegramJobs(database).count == 2, "another Telegram job (an invite, a notice) failing is alerted")
        }
    }

    @Test("wallet alerts name the transfer or wallet; nothing is enqueued without admins")
    func walletAlertsAndNoAdmins() async throws {
        try await withMigratedDatabase { database in
            let wallet = try Address(parsing: "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F")
            let message = AdminAlertMessage.wallet(.externalNonceUse(wallet: wallet, storedNextNonce: 4, chainPendingNonce: 6))
            #expect(message.text.contains("\(wallet)") && message.text.contains("6") && message.text.contains("4"))

            let silent = AdminAlerts(queue: JobQueue(database: database, logger: quietLogger), adminChatIDs: [], logger: quietLogger)
            await silent.raise(.externalNonceUse(wallet: wallet, storedNextNonce: 4, chainPendingNonce: 6))
            #expect(try await telegramJobs(database).isEmpty)

            let alerts = AdminAlerts(queue: JobQueue(database: database, logger: quietLogger), adminChatIDs: [5], logger: quietLogger)
            await alerts.raise(.externalNonceUse(wallet: wallet, storedNextNonce: 4, chainPendingNonce: 6))
            #expect(try await telegramJobs(database).map(\.text) == [message.text])
        }
    }

    @Test("a channel paused by the expiry sweep reaches the admins once, naming the pair and why")
    func accessAlerts() async throws {
        try await withMigratedDatabase { database in
            let alerts = AdminAlerts(queue: JobQueue(database: database, logger: quietLogger), adminChatIDs: [5], logger: quietLogger)
            let paused = SubscriptionAlert.channelPaused(
                channelID: 12, title: "Secret Club", problem: .botRights, expiredWithoutRemoval: 3,
                pausedAt: Date(timeIntervalSince1970: 1_800_000_000)
            )
            await alerts.raise(paused)
            await alerts.raise(paused)
            let texts = try await telegramJobs(database).map(\.text)
            #expect(texts.count == 1)
            #expect(texts.first?.contains("#12") == true && texts.first?.contains("Secret Club") == true && texts.first?.contains("rights") == true)
            #expect(texts.first?.contains("3 ended") == true)
        }
    }
}
