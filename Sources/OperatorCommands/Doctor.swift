import App
import Foundation
import Logging
import Payments
import Storage
import Subscriptions
import TelegramBotAPI

/// One line of `telepay doctor`: what was checked, whether it passed, and what to do if not.
public struct DoctorCheck: Sendable, CustomStringConvertible {
    public enum Outcome: String, Sendable {
        case ok = "ok"
        case warning = "warn"
        case failed = "FAIL"
        case skipped = "skip"
    }

    public var name: String
    public var outcome: Outcome
    public var detail: String

    public var description: String {
        "\(outcome.rawValue.padding(toLength: 4, withPad: " ", startingAt: 0))  \(name.padding(toLength: 14, withPad: " ", startingAt: 0))  \(detail)"
    }
}

/// Checks the configuration and every dependency TelePay can reach, without changing anything
/// (it starts the embedded server only for the check, and stops it again).
public enum Doctor {
    public static func run(environment: [String: String], envFile: String?, logger: Logger) async -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        let configuration: Configuration
        do {
            configuration = try Configuration.load(environment: environment, envFile: envFile)
            checks.append(DoctorCheck(name: "configuration", outcome: .ok, detail: "all variables valid"))
        } catch {
            for problem in error.problems {
                checks.append(DoctorCheck(name: "configuration", outcome: .failed, detail: "\(problem)"))
            }
            checks.append(DoctorCheck(name: "database", outcome: .skipped, detail: "fix the configuration first"))
            return checks
        }

        let migrations: MigrationRunner
        do {
            migrations = try loadMigrations(configuration: configuration, logger: logger)
            checks.append(DoctorCheck(name: "migrations", outcome: .ok, detail: "\(migrations.migrations.count) migration file(s) readable"))
        } catch {
            checks.append(DoctorCheck(name: "migrations", outcome: .failed, detail: "\(error)"))
            return checks
        }

        checks += await checkDatabase(configuration: configuration, migrations: migrations, logger: logger)
        checks.append(checkPublicURL(configuration))
        checks.append(await checkTelegram(configuration, logger: logger))
        checks.append(await checkEthereum(configuration))
        checks.append(await checkChangeNow(configuration))
        checks.append(await checkChangeNowListing(configuration))
        checks += await checkNOWPayments(configuration, logger: logger)
        return checks
    }

    /// With an API key: `GET /status` must answer "OK" (it proves the base URL, not the key, which the first
    /// invoice proves). Also says whether callbacks are accepted.
    public static func checkNOWPayments(_ configuration: Configuration, logger: Logger) async -> [DoctorCheck] {
        let base = configuration.nowPaymentsAPIURL.absoluteString
        var checks: [DoctorCheck] = []
        if let key = configuration.nowPaymentsAPIKey {
            let client = NOWPaymentsClient(
                configuration: .init(baseURL: configuration.nowPaymentsAPIURL, apiKey: key.value, requestTimeout: .seconds(10), retry: .none),
                logger: logger
            )
            do {
                let message = try await client.status()
                checks.append(
                    message == "OK"
                        ? DoctorCheck(name: "nowpayments", outcome: .ok, detail: "\(base) answers GET /status with OK")
                        : DoctorCheck(
                            name: "nowpayments", outcome: .warning, detail: "\(base) answers GET /status with '\(message.prefix(100))', not OK"))
            } catch {
                checks.append(
                    DoctorCheck(
                        name: "nowpayments", outcome: .failed,
                        detail: "GET \(base)/status failed: \(error); check TELEPAY_NOWPAYMENTS_API_URL and the network"
                    ))
            }
        } else {
            checks.append(
                DoctorCheck(name: "nowpayments", outcome: .warning, detail: "TELEPAY_NOWPAYMENTS_API_KEY is unset: invoices cannot be created"))
        }
        if configuration.nowPaymentsIPNSecret == nil {
            checks.append(
                DoctorCheck(
                    name: "ipn-callbacks", outcome: .warning, detail: "TELEPAY_NOWPAYMENTS_IPN_SECRET is unset: payment callbacks are not accepted"))
        } else if configuration.nowPaymentsAPIKey == nil {
            checks.append(DoctorCheck(name: "ipn-callbacks", outcome: .failed, detail: "\(StartupError.ipnSecretWithoutAPIKey)"))
        } else {
            checks.append(
                DoctorCheck(
                    name: "ipn-callbacks", outcome: .ok, detail: "callbacks accepted at POST /\(SubscriptionSettings.ipnPath) (signature checked)"))
        }
        return checks
    }

    /// Calls `getMe` (and `getWebhookInfo`, to spot a mode mismatch) with the configured token.
    static func checkTelegram(_ configuration: Configuration, logger: Logger) async -> DoctorCheck {
        guard let token = configuration.telegramBotToken else {
            return DoctorCheck(
                name: "telegram", outcome: .warning,
                detail: "TELEGRAM_BOT_TOKEN is unset: the bot cannot run until it is set (get a token from @BotFather)")
        }
        let client = TelegramClient(
            transport: HTTPTelegramTransport(baseURL: configuration.telegramAPIURL.absoluteString, token: token.value, logger: logger),
            limiter: nil, retry: .none, requestTimeout: .seconds(10), logger: logger
        )
        do {
            let me = try await client.send(GetMe())
            let webhook = try await client.send(GetWebhookInfo())
            let name = "@\(me.username ?? String(me.id))"
            switch (configuration.telegramMode, webhook.url.isEmpty) {
            case (.polling, false):
                return DoctorCheck(
                    name: "telegram", outcome: .failed,
                    detail:
                        "\(name): a webhook is set (\(webhook.url)), so polling would get 409; set TELEPAY_TELEGRAM_MODE=webhook or delete the webhook"
                )
            case (.webhook, _):
                return DoctorCheck(
                    name: "telegram", outcome: .ok,
                    detail:
                        "\(name) reachable; webhook \(webhook.url.isEmpty ? "not yet registered (serve registers it)" : webhook.url), \(webhook.pendingUpdateCount) pending"
                )
            case (.polling, true):
                return DoctorCheck(
                    name: "telegram", outcome: .ok, detail: "\(name) reachable; long polling, \(webhook.pendingUpdateCount) update(s) waiting")
            }
        } catch .unauthorized {
            return DoctorCheck(name: "telegram", outcome: .failed, detail: "Telegram rejected the token (401): check TELEGRAM_BOT_TOKEN")
        } catch {
            return DoctorCheck(
                name: "telegram", outcome: .failed,
                detail: "cannot reach \(configuration.telegramAPIURL.absoluteString): \(error); check TELEPAY_TELEGRAM_API_URL and the network")
        }
    }

    static func checkDatabase(configuration: Configuration, migrations: MigrationRunner, logger: Logger) async -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        let handle: DatabaseHandle
        do {
            // A few seconds tell a refusal (wrong credentials, no such database) from an outage.
            handle = try await DatabaseHandle.open(configuration: configuration, telemetry: Telemetry(), connectTimeout: .seconds(3), logger: logger)
        } catch {
            let fix: String
            switch (configuration.database, error) {
            case (.embedded, _), (_, is DatabaseStartupError): fix = "\(error)"
            case (.external(let url, _), _): fix = "cannot open \(url.redacted): \(error); check DATABASE_URL and that the server is up"
            }
            return [DoctorCheck(name: "database", outcome: .failed, detail: fix)]
        }
        let location: String
        switch configuration.database {
        case .embedded: location = "embedded at \(configuration.dataDirectory)/postgres"
        case .external(let url, _): location = url.redacted
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await handle.database.run() }
            do {
                let database = handle.database
                guard
                    let pinged = await firstResult(
                        within: .seconds(10),
                        { () -> Result<String, any Error> in
                            do { return .success(try await database.ping()) } catch { return .failure(error) }
                        })
                else {
                    checks.append(DoctorCheck(name: "database", outcome: .failed, detail: "\(location) did not answer a query within 10 s"))
                    group.cancelAll()
                    return
                }
                let version = try pinged.get()
                checks.append(DoctorCheck(name: "database", outcome: .ok, detail: "PostgreSQL \(version), \(location)"))
                let status = try await migrations.status(on: handle.database)
                if status.isUpToDate {
                    checks.append(DoctorCheck(name: "schema", outcome: .ok, detail: "\(status.applied.count) migration(s) applied, none pending"))
                } else {
                    checks.append(
                        DoctorCheck(
                            name: "schema", outcome: .warning,
                            detail:
                                "\(status.pending.count) pending (\(status.pending.map(\.fileName).joined(separator: ", "))); `telepay migrate` or `telepay serve` applies them"
                        ))
                }
            } catch let error as MigrationError {
                checks.append(DoctorCheck(name: "schema", outcome: .failed, detail: "\(error)"))
            } catch {
                checks.append(DoctorCheck(name: "database", outcome: .failed, detail: "cannot query \(location): \(String(reflecting: error))"))
            }
            group.cancelAll()
        }
        if let embedded = handle.embedded {
            do {
                try await embedded.stop()
            } catch {
                checks.append(DoctorCheck(name: "database", outcome: .warning, detail: "could not stop the embedded server: \(error)"))
            }
        }
        return checks
    }

    static func checkPublicURL(_ configuration: Configuration) -> DoctorCheck {
        guard let url = configuration.publicURL else {
            return DoctorCheck(
                name: "public-url", outcome: .warning, detail: "TELEPAY_PUBLIC_URL is unset: payment callbacks will have no address to reach us")
        }
        if url.scheme == "http" {
            return DoctorCheck(name: "public-url", outcome: .warning, detail: "\(url.absoluteString) is plain http; payment providers expect https")
        }
        return DoctorCheck(name: "public-url", outcome: .ok, detail: url.absoluteString)
    }
}
