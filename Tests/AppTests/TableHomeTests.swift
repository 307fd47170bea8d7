import Foundation
import TestSupport
import Testing

/// The code base's storage rules, checked on the source text: every table has one home (the one store that
/// writes it, as the README's table says), SQL lives only in stores, and no status is spelled as a literal
/// in SQL.
@Suite("Table homes")
struct TableHomeTests {
    /// Files that talk to PostgreSQL about PostgreSQL itself (the migration runner, the embedded server).
    static let infrastructure: Set<String> = ["Storage/Migrations.swift", "Storage/EmbeddedPostgres.swift"]

    /// Single-quoted words in SQL that are not statuses: JSON keys, `date_trunc` units, settings.
    static let nonStatusWords: Set<String> = ["at", "attempt", "error", "retry_at", "day", "_", "synchronous_commit", "off"]

    static var write: Regex<AnyRegexOutput> { try! Regex(#"\b(?:INSERT INTO|UPDATE|DELETE FROM)\s+([a-z_]+)\b"#) }
    static var query: Regex<AnyRegexOutput> {
        try! Regex(
            #"\bSELECT\b[\s\S]{0,600}?\bFROM\b|\bSELECT (?:pg_|set_config|count)|\bINSERT INTO\b|\bUPDATE [a-z_]+(?: [a-z]+)? SET\b|\bDELETE FROM\b"#)
    }
    static var quoted: Regex<AnyRegexOutput> { try! Regex(#"'([a-z_]+)'"#) }

    /// Every Swift file under `Sources`, by its path below `Sources/`, with comment lines removed.
    static func sources() throws -> [String: String] {
        let root = RepositoryPaths.root + "/Sources"
        var files: [String: String] = [:]
        let enumerator = try #require(FileManager.default.enumerator(atPath: root))
        for case let path as String in enumerator where path.hasSuffix(".swift") {
            let text = try String(contentsOfFile: root + "/" + path, encoding: .utf8)
            files[path] = text.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }
                .joined(separator: "\n")
        }
        return files
    }

    /// The README's table of homes: table name → the file below `Sources/` that writes it, or `nil` for
    /// reference data only migrations write.
    static func documentedHomes() throws -> [String: String?] {
        let readme = try String(contentsOfFile: RepositoryPaths.root + "/README.md", encoding: .utf8)
        let start = try #require(readme.range(of: "<!-- table-homes:start -->"))
        let end = try #require(readme.range(of: "<!-- table-homes:end -->"))
        var homes: [String: String?] = [:]
        for row in readme[start.upperBound..<end.lowerBound].split(separator: "\n") where row.hasPrefix("| `") {
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            let home = cells[1].hasPrefix("`Sources/") ? String(cells[1].dropFirst("`Sources/".count).dropLast()) : nil
            for table in cells[0].split(separator: ",") {
                homes[table.trimmingCharacters(in: CharacterSet(charactersIn: " `"))] = home
            }
        }
        return homes
    }

    @Test("the README names a home for every table the migrations create, and only for those")
    func everyTableHasAHome() throws {
        let migrations = RepositoryPaths.root + "/Migrations"
        var tables: Set<String> = []
        for file in try FileManager.default.contentsOfDirectory(atPath: migrations) where file.hasSuffix(".sql") {
            let sql = try String(contentsOfFile: migrations + "/" + file, encoding: .utf8)
            for match in sql.matches(of: try Regex(#"(?i)CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+)"#)) {
                tables.insert(String(try #require(match.output[1].substring)))
            }
            for match in sql.matches(of: try Regex(#"(?i)DROP TABLE (?:IF EXISTS )?([a-z_]+)"#)) {
                tables.remove(String(try #require(match.output[1].substring)))
            }
        }
        let homes = try Self.documentedHomes()
        #expect(Set(homes.keys) == tables)
        let files = try Self.sources()
        for case let (table, home?) in homes {
            #expect(files[home] != nil, "\(table)'s home \(home) does not exist")
        }
    }

    @Test("SQL is written only in stores (files named …Store.swift)")
    func sqlOnlyInStores() throws {
        for (path, text) in try Self.sources() where !Self.infrastructure.contains(path) && !path.hasSuffix("Store.swift") {
            let runsSQL = text.firstMatch(of: Self.query) != nil
            #expect(!runsSQL, "\(path) runs SQL outside a store")
        }
    }

    /// Bot files that may hold the database: its services value, the form engine and the update loops, the
    /// job runners, stores and desks (the services handlers are given).
    static let botInfrastructure: Set<String> = [
        "Bot/Dispatcher.swift", "Bot/Forms/FormEngine.swift", "Bot/Forms/FormPresenter.swift", "Bot/LongPolling.swift",
        "Bot/WebhookProcessor.swift", "Bot/Channels/OfferPostPublisher.swift", "Bot/OwnerNotifier.swift", "Bot/UserNotifier.swift",
        "Bot/Broadcasts/BroadcastTelegram.swift", "Bot/Admin/ChannelExporter.swift",
    ]
    static var databaseUse: Regex<AnyRegexOutput> { try! Regex(#"\bdatabase\.with|services\.database|\bDatabase\b"#) }

    @Test("bot handlers reach storage through services (desks and stores), never the database itself")
    func handlersGetServices() throws {
        let sources = try Self.sources()
        let handlers = sources.filter { path, _ in
            path.hasPrefix("Bot/") && !Self.botInfrastructure.contains(path) && !path.hasSuffix("Store.swift") && !path.hasSuffix("Desk.swift")
        }
        #expect(handlers.count > 20)
        for (path, text) in handlers {
            #expect(!text.contains(Self.databaseUse), "\(path) uses the database; give it a service instead")
        }
        for path in Self.botInfrastructure { #expect(sources[path] != nil, "\(path) is listed but does not exist") }
    }

    @Test("rows are read with connection.first/all/run (Storage/Rows.swift), not hand-written decode loops")
    func oneRowHelper() throws {
        // The job workers' LISTEN loop reads a stream of notifications, not rows.
        let allowed: Set<String> = ["Storage/Rows.swift", "Jobs/JobWorkerPool.swift"]
        for (path, text) in try Self.sources() where !allowed.contains(path) && !path.contains("/Generated/") {
            #expect(text.firstMatch(of: try Regex(#"for try await [^\n]*\bin \w+\.decode\("#)) == nil, "\(path) decodes rows by hand")
            #expect(text.firstMatch(of: try Regex(#"for try await _ in \w+ \{"#)) == nil, "\(path) counts rows by hand (use connection.run)")
        }
    }

    @Test("no status, state or kind is compared with a string literal in Swift: the code compares enum cases")
    func noStatusLiteralsInSwift() throws {
        // The sandbox reads the simulated Telegram's member statuses, which are Telegram's own strings.
        let allowed: Set<String> = ["Sandbox/SandboxRoutes.swift"]
        let comparison = try Regex(#"\b(?:status|state|strategy|kind|role|action)\s*(?:==|!=)\s*"[a-z_]+""#)
        for (path, text) in try Self.sources() where !allowed.contains(path) && !path.contains("/Generated/") {
            #expect(!text.contains(comparison), "\(path) compares a status with a string literal")
        }
    }

    @Test("each table is written by its home and by no other file")
    func writesOnlyFromTheHome() throws {
        let homes = try Self.documentedHomes()
        for (path, text) in try Self.sources() where !Self.infrastructure.contains(path) {
            for match in text.matches(of: Self.write) {
                let table = String(try #require(match.output[1].substring))
                guard homes.keys.contains(table) else { continue }
                #expect(homes[table] == path, "\(path) writes \(table), whose home is \(String(describing: homes[table] ?? nil))")
            }
        }
    }

    @Test("no status or kind is spelled as a quoted literal in SQL: enums are bound as parameters")
    func noStatusLiterals() throws {
        for (path, text) in try Self.sources() where path.hasSuffix("Store.swift") {
            for match in text.matches(of: Self.quoted) {
                let word = String(try #require(match.output[1].substring))
                #expect(Self.nonStatusWords.contains(word), "\(path) spells '\(word)' in SQL")
            }
        }
    }
}
