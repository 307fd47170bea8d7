import Logging
import PostgresNIO

extension PostgresConnection {
    /// Every row of `query`, decoded as `columns`.
    public func all<each Column: PostgresDecodable>(
        _ query: PostgresQuery, as columns: (repeat each Column).Type, logger: Logger
    ) async throws -> [(repeat each Column)] {
        let rows = try await self.query(query, logger: logger)
        var result: [(repeat each Column)] = []
        for try await row in rows.decode((repeat each Column).self) { result.append(row) }
        return result
    }

    /// The first row of `query`, decoded as `columns`, or `nil` when there is none.
    public func first<each Column: PostgresDecodable>(
        _ query: PostgresQuery, as columns: (repeat each Column).Type, logger: Logger
    ) async throws -> (repeat each Column)? {
        let rows = try await self.query(query, logger: logger)
        for try await row in rows.decode((repeat each Column).self) { return row }
        return nil
    }

    /// Runs `query` and returns how many rows it returned (e.g. `UPDATE … RETURNING 1`).
    @discardableResult
    public func run(_ query: PostgresQuery, logger: Logger) async throws -> Int {
        let rows = try await self.query(query, logger: logger)
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }
}
