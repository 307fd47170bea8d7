import Foundation
import Metrics
import PostgresNIO
import Storage
import TestSupport
import Testing

@Suite("Migrations")
struct MigrationTests {
    /// Writes migration files into a new folder and loads them.
    func migrations(_ files: [String: String]) throws -> (folder: String, runner: MigrationRunner) {
        let folder = try RepositoryPaths.makeTemporaryDirectory("telepay-migrations")
        for (name, contents) in files {
            try contents.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8)
        }
        return (folder, MigrationRunner(migrations: try Migration.load(directory: folder), logger: quietLogger))
    }

    func count(_ sql: String, on database: Database) async throws -> Int {
        try await database.withConnection { connection in
            var result = 0
            for try await (value) in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: quietLogger).decode(Int.self) {
                result = value
            }
            return result
        }
    }

    @Test("all repository migrations apply to an empty database, and a second run applies nothing")
    func appliesAllThenIdempotent() async throws {
        try await withTestDatabase { database in
            let runner = MigrationRunner(migrations: try Migration.load(directory: RepositoryPaths.migrations), logger: quietLogger)
            let first = try await runner.apply(on: database)
            #expect(first.count == runner.migrations.count)
            #expect(first.first?.fileName == "0001_initial_schema.sql")
            let second = try await runner.apply(on: database)
            #expect(second.isEmpty)
            let status = try await runner.status(on: database)
            #expect(status.isUpToDate)
            #expect(status.applied.map(\.version) == runner.migrations.map(\.version))
        }
    }

    @Test("a file with several statements, a function body and a DO block applies as psql would")
    func multiStatementFile() async throws {
        let (_, runner) = try migrations([
            "0001_setup.sql": """
            -- comment; with a semicolon
            CREATE TABLE counters (name text PRIMARY KEY, value int NOT NULL);
            CREATE FUNCTION bump(n text) RETURNS int LANGUAGE plpgsql AS $$
            DECLARE result int;
            BEGIN
                INSERT INTO counters VALUES (n, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1
                RETURNING value INTO result;
                RETURN result;
            END;
            $$;
            DO $$ BEGIN PERFORM bump('a;b'); PERFORM bump('a;b'); END $$;
            INSERT INTO counters VALUES ('quote''s;', 7);
            """
        ])
        try await withTestDatabase { database in
            try await runner.apply(on: database)
            #expect(try await count("SELECT value FROM counters WHERE name = 'a;b'", on: database) == 2)
            #expect(try await count("SELECT value FROM counters WHERE name = 'quote''s;'", on: database) == 7)
        }
    }

    @Test("a failing statement rolls back the whole run and names the file and line")
    func failureRollsBack() async throws {
        let (_, runner) = try migrations([
            "0001_good.sql": "CREATE TABLE kept (id int);",
            "0002_bad.sql": "CREATE TABLE also (id int);\nINSERT INTO missing VALUES (1);",
        ])
        try await withTestDatabase { database in
            let error = await #expect(throws: MigrationError.self) { try await runner.apply(on: database) }
            let message = try #require(error).description
            #expect(message.contains("0002_bad.sql"))
            #expect(message.contains("line 2"))
            #expect(message.contains("missing"))
            // Nothing of the run survives, not even the bookkeeping table it created.
            #expect(try await count("SELECT count(*) FROM pg_tables WHERE tablename IN ('kept', 'also', 'schema_migrations')", on: database) == 0)
        }
    }

    @Test("an applied file that was edited afterwards stops the runner, naming the file")
    func refusesEditedFile() async throws {
        let (folder, runner) = try migrations(["0001_first.sql": "CREATE TABLE a (id int);"])
        try await withTestDatabase { database in
            try await runner.apply(on: database)
            try "CREATE TABLE a (id bigint);".write(toFile: folder + "/0001_first.sql", atomically: true, encoding: .utf8)
            let edited = MigrationRunner(migrations: try Migration.load(directory: folder), logger: quietLogger)
            let error = await #expect(throws: MigrationError.self) { try await edited.apply(on: database) }
            #expect(try #require(error).description.contains("0001_first.sql was edited"))
            await #expect(throws: MigrationError.self) { try await edited.status(on: database) }
        }
    }

    @Test("an applied file that disappeared, or a new file older than the last applied one, stops the runner")
    func refusesMissingAndOutOfOrder() async throws {
        let (folder, runner) = try migrations([
            "0001_first.sql": "CREATE TABLE a (id int);",
            "0003_third.sql": "CREATE TABLE c (id int);",
        ])
        try await withTestDatabase { database in
            try await runner.apply(on: database)

            try FileManager.default.removeItem(atPath: folder + "/0001_first.sql")
            let missing = MigrationRunner(migrations: try Migration.load(directory: folder), logger: quietLogger)
            let missingError = await #expect(throws: MigrationError.self) { try await missing.apply(on: database) }
            #expect(try #require(missingError).description.contains("0001_first.sql was applied to this database but its file is missing"))

            try "CREATE TABLE a (id int);".write(toFile: folder + "/0001_first.sql", atomically: true, encoding: .utf8)
            try "CREATE TABLE b (id int);".write(toFile: folder + "/0002_second.sql", atomically: true, encoding: .utf8)
            let outOfOrder = MigrationRunner(migrations: try Migration.load(directory: folder), logger: quietLogger)
            let orderError = await #expect(throws: MigrationError.self) { try await outOfOrder.apply(on: database) }
            #expect(try #require(orderError).description.contains("0002_second.sql"))
        }
    }

    @Test("badly named or duplicate-version files are rejected when loading")
    func rejectsBadFileNames() throws {
        #expect(throws: MigrationError.self) { try migrations(["1_short.sql": "SELECT 1;"]) }
        #expect(throws: MigrationError.self) { try migrations(["0001_Upper.sql": "SELECT 1;"]) }
        #expect(throws: MigrationError.self) { try migrations(["0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 2;"]) }
    }

    @Test("two runners racing on one database apply each migration exactly once")
    func concurrentRunnersApplyOnce() async throws {
        let (_, runner) = try migrations([
            "0001_log.sql": "CREATE TABLE runs (id serial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp());",
            "0002_slow.sql": "SELECT pg_sleep(0.3);\nINSERT INTO runs DEFAULT VALUES;",
        ])
        let configuration = try await TestPostgres.shared.makeDatabase()
        let first = Database(configuration: configuration, poolSize: 2, logger: quietLogger, metrics: NOOPMetricsHandler.instance)
        let second = Database(configuration: configuration, poolSize: 2, logger: quietLogger, metrics: NOOPMetricsHandler.instance)
        try await withThrowingTaskGroup(of: Void.self) { pools in
            pools.addTask { await first.run() }
            pools.addTask { await second.run() }
            defer { pools.cancelAll() }
            async let a = runner.apply(on: first)
            async let b = runner.apply(on: second)
            let (appliedByA, appliedByB) = try await (a, b)
            #expect(appliedByA.count + appliedByB.count == 2)
            #expect(appliedByA.isEmpty || appliedByB.isEmpty)
            #expect(try await count("SELECT count(*) FROM runs", on: first) == 1)
            #expect(try await count("SELECT count(*) FROM schema_migrations", on: first) == 2)
        }
    }
}
