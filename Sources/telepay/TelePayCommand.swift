import App
import ArgumentParser
import Conversations
import Foundation
import Jobs
import Logging
import Money
import OperatorCommands
import Payouts
import Storage
import Subscriptions
import Synchronization
import UnixSignals

@main
struct TelePayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telepay",
        abstract: "Sell paid access to Telegram channels.",
        version: TelePayVersion.current,
        subcommands: [
            Serve.self, Migrate.self, Doctor.self, JobsCommand.self, LedgerCommand.self, PayoutsCommand.self, Wallet.self, ExchangeCommand.self,
            ConversationsCommand.self, SandboxCommand.self,
        ],
        defaultSubcommand: Serve.self
    )
}

/// Options every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Read variables from this .env-style file (the environment wins).")
    var envFile: String?

    /// Loads the configuration and sets up logging; on bad configuration prints every problem and exits 2.
    func load() throws -> (Configuration, Logger) {
        let configuration: Configuration
        do {
            configuration = try Configuration.load(environment: ProcessInfo.processInfo.environment, envFile: envFile)
        } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in KeyValueLogHandler(label: label, level: level) }
        return (configuration, Logger(label: "telepay"))
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run TelePay until SIGINT or SIGTERM (the default command).")

    @OptionGroup var options: GlobalOptions

    /// SIGINT and SIGTERM are honoured from the first moment: during start-up (initdb, pg_ctl, waiting for
    /// an external database) they cancel it, and what was started is stopped; while running, the service
    /// group shuts down in order. Either way a watchdog ends the process if shutting down takes longer than
    /// TELEPAY_SHUTDOWN_TIMEOUT_SECONDS plus ten seconds.
    func run() async throws {
        let (configuration, logger) = try options.load()
        let watchdog = ShutdownWatchdog(logger: logger)
        let shutdownLimit = Duration.seconds(configuration.shutdownTimeoutSeconds + 10)
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let stopRequested = StopRequest()
        let startup = Task { try await TelePayApplication.build(configuration: configuration, logger: logger, watchdog: watchdog) }
        let listener = Task {
            for await signal in signals {
                logger.notice("stop requested", metadata: ["signal": "\(signal)"])
                stopRequested.set()
                startup.cancel()
                watchdog.arm(after: shutdownLimit, reason: "\(signal)")
            }
        }
        defer { listener.cancel() }
        let application: TelePayApplication
        do {
            application = try await startup.value
        } catch {
            if stopRequested.isSet {
                logger.notice("TelePay stopped during start-up")
                return
            }
            logger.critical("TelePay cannot start", metadata: ["error": "\(error)"])
            printError("telepay: \(error)")
            throw ExitCode(App.exitCode(for: error))
        }
        watchdog.guardServer(application.database.embedded)
        if stopRequested.isSet {
            // The signal came between start-up and the service group taking over the signals.
            try? await application.database.embedded?.stop()
            logger.notice("TelePay stopped during start-up")
            return
        }
        do {
            try await application.run()
            logger.info("TelePay stopped")
        } catch {
            logger.critical("TelePay cannot run", metadata: ["error": "\(error)"])
            printError("telepay: \(error)")
            throw ExitCode(App.exitCode(for: error))
        }
    }
}

/// Set once SIGINT or SIGTERM has arrived.
final class StopRequest: Sendable {
    private let requested = Mutex(false)
    var isSet: Bool { requested.withLock { $0 } }
    func set() { requested.withLock { $0 = true } }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations.")

    @OptionGroup var options: GlobalOptions

    @Flag(help: "List applied and pending migrations without changing anything.")
    var status = false

    @Flag(help: "List pending migrations without applying them; exit 1 when any is pending.")
    var dryRun = false

    func run() async throws {
        let (configuration, logger) = try options.load()
        let outcome: Result<Int32, any Error>
        do {
            let migrations = try loadMigrations(configuration: configuration, logger: logger)
            let handle = try await DatabaseHandle.open(configuration: configuration, telemetry: Telemetry(), logger: logger)
            outcome = await withTaskGroup(of: Void.self) { group in
                group.addTask { await handle.database.run() }
                defer { group.cancelAll() }
                do {
                    return .success(try await perform(migrations: migrations, database: handle.database))
                } catch {
                    return .failure(error)
                }
            }
            try await handle.embedded?.stop()
        } catch {
            printError("telepay migrate: \(error)")
            throw ExitCode.failure
        }
        switch outcome {
        case .success(let code):
            if code != 0 { throw ExitCode(code) }
        case .failure(let error):
            printError("telepay migrate: \(error)")
            throw ExitCode.failure
        }
    }

    func perform(migrations: MigrationRunner, database: Database) async throws -> Int32 {
        if status || dryRun {
            let state = try await migrations.status(on: database)
            if status {
                for record in state.applied {
                    print(
                        "applied  \(String(format: "%04d", record.version))_\(record.name).sql  \(ISO8601DateFormatter().string(from: record.appliedAt))"
                    )
                }
            }
            for migration in state.pending {
                print("pending  \(migration.fileName)")
            }
            if state.pending.isEmpty { print("up to date: \(state.applied.count) applied, none pending") }
            return dryRun && !state.pending.isEmpty ? 1 : 0
        }
        let applied = try await migrations.apply(on: database)
        for migration in applied { print("applied  \(migration.fileName)") }
        print(applied.isEmpty ? "up to date: nothing to apply" : "applied \(applied.count) migration(s)")
        return 0
    }
}

struct ConversationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conversations",
        abstract: "Check Conversations/*.yaml and print each conversation's transition graph."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, dot
    }

    @OptionGroup var options: GlobalOptions
    @Option(help: "text (one edge per line) or dot (Graphviz).") var format: Format = .text

    func run() async throws {
        let (configuration, _) = try options.load()
        let definitions: [ConversationDefinition]
        do {
            definitions = try loadConversations(configuration: configuration, localizer: try loadLocalizer(configuration: configuration))
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
        for definition in definitions {
            print(format == .dot ? ConversationGraph.dot(definition) : ConversationGraph.text(definition))
        }
    }
}

struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the configuration and every reachable dependency.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        var logger = Logger(label: "telepay") { label in KeyValueLogHandler(label: label, level: .error) }
        logger.logLevel = .error
        let checks = await OperatorCommands.Doctor.run(environment: ProcessInfo.processInfo.environment, envFile: options.envFile, logger: logger)
        for check in checks { print(check) }
        if checks.contains(where: { $0.outcome == .failed }) {
            throw ExitCode.failure
        }
    }
}

struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Inspect durable jobs and re-queue failed ones.",
        subcommands: [Status.self, Retry.self],
        defaultSubcommand: Status.self
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Counts by kind and state, the oldest waiting job's age and recent failures (the default)."
        )

        @OptionGroup var options: GlobalOptions

        @Option(help: "How many recent failures to list.")
        var failures = 10

        func run() async throws {
            let (configuration, logger) = try options.load()
            let limit = failures
            do {
                let summary = try await withCurrentDatabase(configuration: configuration, logger: logger) { context in
                    try await context.queue.summary(recentFailures: limit)
                }
                print(JobsReport.render(summary))
            } catch {
                printError("telepay jobs: \(error)")
                throw ExitCode.failure
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-queue a failed job to run now.")

        @OptionGroup var options: GlobalOptions

        @Argument(help: "The failed job's id (see `telepay jobs`).")
        var id: Int64

        func run() async throws {
            let (configuration, logger) = try options.load()
            let jobID = JobID(id)
            do {
                let job = try await withCurrentDatabase(configuration: configuration, logger: logger) { context in
                    try await context.queue.retry(jobID)
                }
                print(
                    "job #\(job.id) (\(job.kind)) re-queued: it runs as soon as a worker is free, as attempt \(job.attempt + 1) of \(job.maxAttempts)"
                )
            } catch {
                printError("telepay jobs retry: \(error)")
                throw ExitCode.failure
            }
        }
    }
}

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Balances by account and asset, owners' pending balances, money owed to buyers, payments held for review."
    )

    @OptionGroup var options: GlobalOptions

    @Option(help: "How many payments held for review to list.")
    var held = 50

    @Flag(help: "Compare the hot wallet on the chain with the ledger, asset by asset; exit 1 on drift.")
    var reconcile = false

    @Option(
        name: .customLong("record-deposit"),
        help: "Book money the operator put into the hot wallet from outside the sales (e.g. 0.5 of gas money), in whole coins of --asset.")
    var deposit: String?

    @Option(help: "The asset of --record-deposit: ETH or USDT.")
    var asset = "ETH"

    @Option(help: "Why the deposit was made (kept in the log).")
    var note = "operator deposit"

    func run() async throws {
        let (configuration, logger) = try options.load()
        let limit = held
        do {
            if let deposit {
                let known = [SettlementAsset.ether, SettlementAsset.usdt]
                guard let kind = known.first(where: { $0.asset == asset.uppercased() }) else {
                    printError("telepay ledger: --asset \(asset) is not ETH or USDT")
                    throw ExitCode(2)
                }
                guard let amount = DecimalText.parse(deposit), amount > 0, kind.units(amount) == amount * kind.unitsPerCoin else {
                    printError(
                        "telepay ledger: --record-deposit \(deposit) is not a positive amount of \(kind.asset) with at most \(kind.decimals) decimals"
                    )
                    throw ExitCode(2)
                }
                let note = self.note
                _ = try await withCurrentDatabase(configuration: configuration, logger: logger) { context in
                    try await Reconciliation.recordDeposit(
                        asset: kind.asset, units: kind.units(amount), note: note, database: context.database, logger: logger)
                }
                logger.notice("operator deposit booked", metadata: ["asset": "\(kind.asset)", "amount": "\(deposit)", "note": "\(note)"])
                print("Booked \(deposit) \(kind.asset) into hot_wallet from operator_capital (\(note)).")
                return
            }
            if reconcile {
                let report = try await withCurrentDatabase(configuration: configuration, logger: logger) { context in
                    try await ReconcileReport.run(configuration: configuration, database: context.database, logger: logger)
                }
                print(ReconcileReport.render(report))
                if !report.isClean { throw ExitCode.failure }
                return
            }
            let summary = try await withCurrentDatabase(configuration: configuration, logger: logger) { context in
                try await context.database.withConnection { try await LedgerStore.summary(heldLimit: limit, on: $0, logger: logger) }
            }
            print(LedgerReport.render(summary))
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("telepay ledger: \(error)")
            throw ExitCode.failure
        }
    }
}

struct PayoutsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payouts",
        abstract: "Owners' payouts: open, failed with reasons, recently paid, and balances per owner; release a failed one.",
        subcommands: [Show.self, Retry.self, SettleConversion.self, WriteOffConversion.self],
        defaultSubcommand: Show.self
    )

    /// Runs an operator's action on a conversion and prints what it did; a refusal exits 1.
    static func conversionAction(
        _ name: String, options: GlobalOptions, _ action: @escaping @Sendable (ConversionService) async throws -> ConversionService.OperatorOutcome
    ) async throws {
        let (configuration, logger) = try options.load()
        let outcome: ConversionService.OperatorOutcome
        do {
            outcome = try await withCurrentDatabase(configuration: configuration, logger: logger) { context in
                try await action(try ConversionOperator.service(configuration: configuration, context: context, logger: logger))
            }
        } catch {
            printError("telepay payouts \(name): \(error)")
            throw ExitCode.failure
        }
        switch outcome {
        case .done(let text):
            print(text)
        case .refused(let reason):
            printError("telepay payouts \(name): refused: \(reason)")
            throw ExitCode.failure
        }
    }

    struct SettleConversion: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "settle-conversion",
            abstract:
                "Book a conversion whose exchange finished but whose USDT TelePay cannot find, from the transaction that paid the hot wallet (read from the chain)."
        )

        @OptionGroup var options: GlobalOptions

        @Argument(help: "The conversion's id (see `telepay payouts`).")
        var id: Int64

        @Option(help: "The transaction (0x…) that paid the hot wallet the conversion's USDT.")
        var tx: String

        func run() async throws {
            let (id, tx) = (self.id, self.tx)
            try await PayoutsCommand.conversionAction("settle-conversion", options: options) {
                try await $0.settle(conversionID: id, transaction: tx)
            }
        }
    }

    struct WriteOffConversion: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "write-off-conversion",
            abstract: "Write off a held conversion whose money is not coming back: the platform bears the loss and every share is pending again."
        )

        @OptionGroup var options: GlobalOptions

        @Argument(help: "The held conversion's id (see `telepay payouts`).")
        var id: Int64

        @Option(help: "Why (kept on the conversion and told to the admins).")
        var reason: String

        func run() async throws {
            let (id, reason) = (self.id, self.reason)
            try await PayoutsCommand.conversionAction("write-off-conversion", options: options) {
                try await $0.writeOff(conversionID: id, reason: reason)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Open, failed and recently paid payouts and balances per owner and channel (the default)."
        )

        @OptionGroup var options: GlobalOptions

        @Option(help: "Only this owner's balances (a Telegram user id).")
        var owner: Int64?

        @Option(help: "How many payouts of each kind (and balances) to list.")
        var limit = 50

        func run() async throws {
            let (configuration, logger) = try options.load()
            let (owner, limit) = (self.owner, self.limit)
            do {
                let overview = try await withCurrentDatabase(configuration: configuration, logger: logger) { context in
                    try await PayoutOverview.read(PayoutDesk(database: context.database, logger: logger), owner: owner, limit: limit)
                }
                print(PayoutReport.render(overview))
            } catch {
                printError("telepay payouts: \(error)")
                throw ExitCode.failure
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Let a channel be paid again after its failed payout. Refused unless the payout failed (it moved no money, or its refund is booked) and is the channel's latest."
        )

        @OptionGroup var options: GlobalOptions

        @Argument(help: "The failed payout's id (see `telepay payouts`).")
        var id: Int64

        func run() async throws {
            let (configuration, logger) = try options.load()
            let payoutID = id
            let outcome: PayoutRelease
            do {
                outcome = try await withCurrentDatabase(configuration: configuration, logger: logger) { context in
                    try await PayoutDesk(database: context.database, logger: logger).release(payoutID: payoutID)
                }
            } catch {
                printError("telepay payouts retry: \(error)")
                throw ExitCode.failure
            }
            switch outcome {
            case .released(let payout):
                print("payout #\(payout.id) released: channel \(payout.channelID)'s pending balance is paid in the next pass")
            case .refused(let reason):
                printError("telepay payouts retry: refused: \(reason)")
                throw ExitCode.failure
            case .notFound:
                printError("telepay payouts retry: no payout #\(payoutID)")
                throw ExitCode.failure
            }
        }
    }
}

struct Wallet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the hot wallet: address, ETH and token balances, next nonce and transfers not yet final."
    )

    @OptionGroup var options: GlobalOptions

    @Option(name: .customLong("token"), help: "An ERC-20 contract whose balance to show (repeatable).")
    var tokens: [String] = []

    func run() async throws {
        let (configuration, logger) = try options.load()
        do {
            for line in try await WalletReport.build(configuration: configuration, tokens: tokens, logger: logger) {
                print(line)
            }
        } catch {
            printError("telepay wallet: \(error)")
            throw ExitCode.failure
        }
    }
}

struct ExchangeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exchange",
        abstract: "ChangeNOW exchanges.",
        subcommands: [Reconcile.self]
    )

    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Compare ChangeNOW's list of exchanges with the exchange intents: orphans at ChangeNOW and recorded exchanges it does not list.",
            discussion:
                "Listing needs ChangeNOW's private API key (TELEPAY_CHANGENOW_PRIVATE_API_KEY). Reads only; exits 1 when the list cannot be read, 0 otherwise."
        )

        @OptionGroup var options: GlobalOptions

        @Option(help: "How many days back to look (exchanges created since then).")
        var days = 7

        func validate() throws {
            guard (1...365).contains(days) else { throw ValidationError("--days must be 1–365") }
        }

        func run() async throws {
            let (configuration, logger) = try options.load()
            let since = Date().addingTimeInterval(-Double(days) * 86_400)
            do {
                let result = try await ExchangeReconcileReport.run(configuration: configuration, since: since, logger: logger)
                for line in result.reportLines { print(line) }
            } catch {
                printError("telepay exchange reconcile: \(error)")
                throw ExitCode.failure
            }
        }
    }
}
