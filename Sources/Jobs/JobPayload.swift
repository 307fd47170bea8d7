import Foundation

/// The payload of one kind of durable job. Each kind is its own Swift type, stored as JSON in `jobs.payload`.
///
/// Renaming `kind` orphans every job already stored under the old name, so treat it like a table name.
public protocol JobPayload: Codable, Sendable {
    /// The stable name stored in `jobs.kind`: lowercase letters, digits, `.`, `_` and `-`, at most 64 characters.
    static var kind: String { get }
    /// How many times a job of this kind runs before it moves to `failed` (each run is one attempt).
    static var maxAttempts: Int { get }
}

extension JobPayload {
    public static var maxAttempts: Int { 20 }
}

/// The id of a job row.
public struct JobID: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public var rawValue: Int64

    public init(rawValue: Int64) {
        self.rawValue = rawValue
    }

    public init(_ rawValue: Int64) {
        self.rawValue = rawValue
    }

    public var description: String { String(rawValue) }

    public static func < (lhs: JobID, rhs: JobID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Per-enqueue settings; the defaults come from the payload type.
public struct JobOptions: Sendable, Hashable {
    /// Earliest time the job may start; `nil` means as soon as the enqueueing transaction commits.
    public var runAt: Date?
    /// While a job with this key is waiting or running, enqueueing another with the same key is a no-op.
    public var uniqueKey: String?
    /// Overrides the kind's `maxAttempts` for this job.
    public var maxAttempts: Int?

    public init(runAt: Date? = nil, uniqueKey: String? = nil, maxAttempts: Int? = nil) {
        self.runAt = runAt
        self.uniqueKey = uniqueKey
        self.maxAttempts = maxAttempts
    }
}

/// What an enqueue did.
public enum EnqueueResult: Sendable, Hashable {
    /// A new job row was written.
    case enqueued(JobID)
    /// A job with the same unique key is already waiting or running, so nothing was written. The id is that job's,
    /// or `nil` when it finished between the conflict and the look-up.
    case duplicate(existing: JobID?)

    /// The new job's id, or `nil` for a duplicate.
    public var enqueuedID: JobID? {
        if case .enqueued(let id) = self { return id }
        return nil
    }

    public var isDuplicate: Bool {
        if case .duplicate = self { return true }
        return false
    }
}

/// The states a job row moves through. `available` covers both "ready now" and "scheduled for later" (`run_at`).
public enum JobState: String, Sendable, Hashable, CaseIterable, Codable {
    case available
    case running
    case completed
    case failed
}

enum JobKindName {
    /// Mirrors the CHECK constraint on `jobs.kind`, so a bad name fails at registration, not at the first insert.
    static func isValid(_ kind: String) -> Bool {
        guard let first = kind.first, first.isASCII, first.isLowercase, kind.utf8.count <= 64 else { return false }
        return kind.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
    }
}
