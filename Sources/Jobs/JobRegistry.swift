import Foundation

/// The job kinds a worker pool runs, each with its handler.
public struct JobRegistry: Sendable {
    struct Entry: Sendable {
        var kind: String
        var options: JobKindOptions
        /// Decodes the payload and runs the handler; a payload that does not decode is a permanent failure.
        var run: @Sendable (_ payload: String, _ context: JobContext) async throws -> Void
        var classify: @Sendable (any Error) -> JobErrorClass
    }

    private(set) var entries: [String: Entry] = [:]

    public init() {}

    /// Adds a handler; a second handler for the same kind, or an invalid kind name, is a programming error.
    public mutating func register<Handler: JobHandler>(_ handler: Handler) {
        let kind = Handler.Payload.kind
        precondition(JobKindName.isValid(kind), "\(JobQueueError.invalidKind(kind))")
        precondition(entries[kind] == nil, "job kind '\(kind)' is registered twice")
        // One decoder per kind, not per job: decoding does not mutate it, and making one is not free.
        let decoder = JSONDecoder()
        entries[kind] = Entry(
            kind: kind,
            options: handler.options,
            run: { text, context in
                let payload: Handler.Payload
                do {
                    payload = try decoder.decode(Handler.Payload.self, from: Data(text.utf8))
                } catch {
                    throw JobFailure.permanent("payload does not decode as \(Handler.Payload.self): \(error)")
                }
                try await handler.run(payload, context: context)
            },
            classify: { error in
                if let failure = error as? JobFailure, case .permanent = failure { return .permanent }
                return handler.classify(error)
            }
        )
    }

    public var kinds: [String] { entries.keys.sorted() }

    func entry(_ kind: String) -> Entry? {
        entries[kind]
    }
}
