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

/// A text column held a value its Swift enum does not know (a row written by hand, or by a newer version):
/// an error, never a guessed default.
public struct UnknownStoredValue: Error, CustomStringConvertible {
    public let type: String
    public let value: String

    public init(type: String, value: String) {
        self.type = type
        self.value = value
    }

    public var description: String { "the database holds \(type) \"\(value)\", which this version does not know" }
}

extension RawRepresentable where RawValue == String {
    /// The case stored as `text`, or `UnknownStoredValue`.
    public init(storedValue text: String) throws {
        guard let value = Self(rawValue: text) else { throw UnknownStoredValue(type: String(describing: Self.self), value: text) }
        self = value
    }
}
