import Storage
import Testing

@Suite("SQL script splitting")
struct SQLScriptTests {
    @Test("semicolons end statements; blank and comment-only tails are dropped")
    func plainStatements() throws {
        let statements = try SQLScript.split("CREATE TABLE a (x int);\n\n-- done\nINSERT INTO a VALUES (1);\n-- trailing comment\n")
        #expect(statements.map(\.text) == ["CREATE TABLE a (x int);", "-- done\nINSERT INTO a VALUES (1);"])
        #expect(statements.map(\.line) == [1, 4])
    }

    @Test("semicolons inside quotes, identifiers and comments do not split")
    func quotedSemicolons() throws {
        let script = """
            INSERT INTO t VALUES ('a;b', 'it''s; fine', E'back\\'; slash', "odd;name");
            /* a; /* nested; */ still comment; */ SELECT 1;
            SELECT 2 -- trailing; comment
            ;
            """
        let statements = try SQLScript.split(script)
        #expect(statements.count == 3)
        #expect(statements[0].text.hasSuffix("\"odd;name\");"))
        #expect(statements[1].text.hasSuffix("SELECT 1;"))
        #expect(statements[2].line == 3)
    }

    @Test("dollar-quoted function bodies and DO blocks stay whole, with or without tags")
    func dollarQuotes() throws {
        let script = """
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM 1; RETURN 2;
            END;
            $$;
            DO $body$ BEGIN RAISE NOTICE 'x; $$ y'; END $body$;
            SELECT $1::int, a$b FROM t;
            """
        let statements = try SQLScript.split(script)
        #expect(statements.count == 3)
        #expect(statements[0].text.contains("RETURN 2;"))
        #expect(statements[1].text.hasPrefix("DO $body$"))
        #expect(statements[2].line == 7)
    }

    @Test("SQL-standard BEGIN ATOMIC bodies and parentheses keep their semicolons, as in psql")
    func atomicBodies() throws {
        let script = """
            CREATE OR REPLACE FUNCTION g(x int) RETURNS int LANGUAGE sql
            BEGIN ATOMIC
                SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;
                SELECT x;
            END;
            CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO log VALUES (1); INSERT INTO log VALUES (2));
            SELECT 3;
            """
        let statements = try SQLScript.split(script)
        #expect(statements.count == 3)
        #expect(statements[0].text.hasSuffix("END;"))
        #expect(statements[1].text.contains("VALUES (2))"))
    }

    @Test("transaction control is refused because each migration already runs in one transaction")
    func refusesTransactionControl() {
        #expect(throws: SQLScriptError.transactionControl(statement: "COMMIT", line: 2)) {
            try SQLScript.split("SELECT 1;\nCOMMIT;")
        }
        #expect(throws: SQLScriptError.transactionControl(statement: "BEGIN", line: 1)) {
            try SQLScript.split("BEGIN; SELECT 1;")
        }
        #expect(throws: SQLScriptError.transactionControl(statement: "START TRANSACTION", line: 1)) {
            try SQLScript.split("START TRANSACTION;")
        }
    }

    @Test("unterminated quotes, comments and bodies are reported with their starting line")
    func unterminated() {
        #expect(throws: SQLScriptError.unterminated(what: "a quoted string", line: 2)) {
            try SQLScript.split("SELECT 1;\nSELECT 'oops;\n")
        }
        #expect(throws: SQLScriptError.unterminated(what: "a /* comment", line: 1)) {
            try SQLScript.split("/* never closed")
        }
        #expect(throws: SQLScriptError.unterminated(what: "a dollar-quoted body", line: 1)) {
            try SQLScript.split("DO $x$ BEGIN END $y$;")
        }
        #expect(throws: SQLScriptError.metaCommand(line: 1)) {
            try SQLScript.split("\\i other.sql")
        }
    }
}
