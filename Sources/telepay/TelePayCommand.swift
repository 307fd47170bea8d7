import App
import ArgumentParser
import Foundation
import Logging
import Storage

@main
struct TelePayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telepay",
        abstract: "Sell paid access to Telegram channels.",
        version: TelePayVersion.current,
        subcommands: [Serve.self, Migrate.self, Doctor.self, Wallet.self],
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

    func run() async throws {
        let (configuration, logger) = try options.load()
        do {
            let application = try await TelePayApplication.build(configuration: configuration, logger: logger)
            try await application.run()
            logger.info("TelePay stopped")
        } catch {
            logger.critical("TelePay cannot run", metadata: ["error": "\(error)"])
            printError("telepay: \(error)")
            throw ExitCode.failure
        }
    }
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
                    print("applied  \(String(format: "%04d", record.version))_\(record.name).sql  \(ISO8601DateFormatter().string(from: record.appliedAt))")
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

struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the configuration and every reachable dependency.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        var logger = Logger(label: "telepay") { label in KeyValueLogHandler(label: label, level: .error) }
        logger.logLevel = .error
        let checks = await App.Doctor.run(environment: ProcessInfo.processInfo.environment, envFile: options.envFile, logger: logger)
        for check in checks { print(check) }
        if checks.contains(where: { $0.outcome == .failed }) {
            throw ExitCode.failure
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
