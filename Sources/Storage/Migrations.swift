import Crypto
import Foundation
import Logging
import PostgresNIO

/// One forward-only schema change, read from `Migrations/NNNN_name.sql`.
public struct Migration: Sendable, Hashable {
    public var version: Int
    public var name: String
    public var fileName: String
    public var checksum: String
    public var statements: [SQLStatement]

    /// Parses a migration file's text; `fileName` must look like `0001_initial_schema.sql`.
    public init(fileName: String, contents: String) throws(MigrationError) {
        guard let (version, name) = Self.parseFileName(fileName) else { throw .invalidFileName(fileName) }
        self.version = version
        self.name = name
        self.fileName = fileName
        self.checksum = SHA256.hash(data: Data(contents.utf8)).map { String(format: "%02x", $0) }.joined()
        do {
            self.statements = try SQLScript.split(contents)
        } catch {
            throw .unparsable(file: fileName, reason: error)
        }
    }

    static func parseFileName(_ fileName: String) -> (Int, String)? {
        guard fileName.hasSuffix(".sql") else { return nil }
        let stem = fileName.dropLast(4)
        guard let underscore = stem.firstIndex(of: "_") else { return nil }
        let digits = stem[..<underscore]
        let name = stem[stem.index(after: underscore)...]
        guard digits.count == 4, digits.allSatisfy(\.isASCII), let version = Int(digits), version > 0,
            !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") })
        else { return nil }
        return (version, String(name))
    }

    /// Loads every `*.sql` file of a folder, ordered by version; other files are ignored.
    public static func load(directory: String) throws(MigrationError) -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw .directoryUnreadable(directory)
        }
        var migrations: [Migration] = []
        for fileName in names.sorted() where fileName.hasSuffix(".sql") {
            guard let contents = try? String(contentsOfFile: directory + "/" + fileName, encoding: .utf8) else {
                throw .directoryUnreadable(directory + "/" + fileName)
            }
            migrations.append(try Migration(fileName: fileName, contents: contents))
        }
        let byVersion = Dictionary(grouping: migrations, by: \.version)
        if let clash = byVersion.values.first(where: { $0.count > 1 }) {
            throw .duplicateVersion(clash.map(\.fileName).sorted())
        }
        return migrations.sorted { $0.version < $1.version }
    }
}

/// What went wrong with the migration files or the database's record of them.
public enum MigrationError: Error, Sendable, CustomStringConvertible {
    case directoryUnreadable(String)
    case invalidFileName(String)
    case duplicateVersion([String])
    case unparsable(file: String, reason: SQLScriptError)
    case appliedFileMissing(version: Int, name: String)
    case appliedFileRenamed(version: Int, appliedName: String, fileName: String)
    case checksumChanged(file: String)
    case notAPrefix(file: String, lastApplied: Int)
    case statementFailed(file: String, line: Int, message: String)

    public var description: String {
        switch self {
        case .directoryUnreadable(let path):
            return "cannot read migrations at \(path)"
        case .invalidFileName(let name):
            return "migration file \(name) is not named NNNN_lowercase_name.sql"
        case .duplicateVersion(let files):
            return "migration files share a version: \(files.joined(separator: ", "))"
        case .unparsable(let file, let reason):
            return "migration \(file): \(reason)"
        case .appliedFileMissing(let version, let name):
            return "migration \(String(format: "%04d", version))_\(name).sql was applied to this database but its file is missing; "
                + "migrations are forward-only, restore the file"
        case .appliedFileRenamed(let version, let appliedName, let fileName):
            return "migration \(fileName) has version \(version), but the database applied it as '\(appliedName)'; restore the original file"
        case .checksumChanged(let file):
            return "migration \(file) was edited after it was applied (checksum differs); migrations are forward-only, "
                + "restore the file and put the change in a new migration"
        case .notAPrefix(let file, let lastApplied):
            return "migration \(file) is older than the last applied migration (\(String(format: "%04d", lastApplied))) but was never applied; "
                + "give it a version after \(String(format: "%04d", lastApplied))"
        case .statementFailed(let file, let line, let message):
            return "migration \(file), statement at line \(line): \(message)"
        }
    }
}

/// A migration the database has recorded as applied.
public struct AppliedMigration: Sendable, Hashable {
    public var version: Int
    public var name: String
    public var checksum: String
    public var appliedAt: Date
}

/// The database's migration state compared with the files.
public struct MigrationStatus: Sendable {
    public var applied: [AppliedMigration]
    public var pending: [Migration]

    public var isUpToDate: Bool { pending.isEmpty }
}

/// Applies migrations in one transaction under an advisory lock and records them in `schema_migrations`.
///
/// The applied list must be a prefix of the files with matching checksums; anything else stops start-up with
/// a message naming the file, because a schema that silently drifted from the code is how the original lost payments.
public struct MigrationRunner: Sendable {
    /// Advisory lock key ("TELEPAYM" in ASCII) that serialises concurrent runners across processes.
    public static let advisoryLockKey: Int64 = 0x5445_4C45_5041_594D

    public var migrations: [Migration]
    public var logger: Logger

    public init(migrations: [Migration], logger: Logger) {
        self.migrations = migrations
        self.logger = logger
    }

    /// Reads the state without changing anything (no lock, no table creation).
    public func status(on database: Database) async throws -> MigrationStatus {
        try await database.withConnection { connection in
            let applied = try await readApplied(on: connection, createTable: false)
            return MigrationStatus(applied: applied, pending: try pending(given: applied))
        }
    }

    /// Applies every pending migration; returns those applied by this call (empty when up to date).
    @discardableResult
    public func apply(on database: Database) async throws -> [Migration] {
        try await database.withTransaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.advisoryLockKey))", logger: logger)
            let applied = try await readApplied(on: connection, createTable: true)
            let pending = try pending(given: applied)
            for migration in pending {
                let started = ContinuousClock.now
                for statement in migration.statements {
                    do {
                        try await connection.query(PostgresQuery(unsafeSQL: statement.text), logger: logger)
                    } catch let error as PSQLError {
                        throw MigrationError.statementFailed(
                            file: migration.fileName,
                            line: statement.line,
                            message: error.serverInfo?[.message] ?? String(reflecting: error)
                        )
                    }
                }
                let elapsed = ContinuousClock.now - started
                let milliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
                try await connection.query(
                    """
                    INSERT INTO schema_migrations (version, name, checksum, execution_ms)
                    VALUES (\(migration.version), \(migration.name), \(migration.checksum), \(milliseconds))
                    """,
                    logger: logger
                )
                logger.info("migration applied", metadata: ["file": "\(migration.fileName)", "ms": "\(milliseconds)"])
            }
            return pending
        }
    }

    func pending(given applied: [AppliedMigration]) throws(MigrationError) -> [Migration] {
        let files = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for record in applied {
            guard let file = files[record.version] else {
                throw .appliedFileMissing(version: record.version, name: record.name)
            }
            guard file.name == record.name else {
                throw .appliedFileRenamed(version: record.version, appliedName: record.name, fileName: file.fileName)
            }
            guard file.checksum == record.checksum else { throw .checksumChanged(file: file.fileName) }
        }
        let lastApplied = applied.map(\.version).max() ?? 0
        let appliedVersions = Set(applied.map(\.version))
        let pending = migrations.filter { !appliedVersions.contains($0.version) }
        if let early = pending.first(where: { $0.version < lastApplied }) {
            throw .notAPrefix(file: early.fileName, lastApplied: lastApplied)
        }
        return pending
    }

    private func readApplied(on connection: PostgresConnection, createTable: Bool) async throws -> [AppliedMigration] {
        if createTable {
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version      INTEGER PRIMARY KEY CHECK (version > 0),
                    name         TEXT NOT NULL,
                    checksum     TEXT NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
                    execution_ms INTEGER NOT NULL,
                    applied_at   TIMESTAMPTZ NOT NULL DEFAULT now()
                )
                """,
                logger: logger
            )
        } else {
            let exists = try await connection.first("SELECT to_regclass('schema_migrations') IS NOT NULL", as: Bool.self, logger: logger)
            if exists != true { return [] }
        }
        return try await connection.all(
            "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version", as: (Int, String, String, Date).self,
            logger: logger
        ).map { version, name, checksum, appliedAt in AppliedMigration(version: version, name: name, checksum: checksum, appliedAt: appliedAt) }
    }
}
