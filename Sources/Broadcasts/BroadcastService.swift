import Foundation
import Jobs
import Logging

/// Who may do what with broadcasts, and the steps from a draft to a running broadcast. Admins broadcast
/// to every user or every owner and may control any broadcast; an owner broadcasts to an audience of their
/// own channel and controls only their own.
public struct BroadcastService: Sendable {
    public let store: BroadcastStore
    public let queue: JobQueue
    public let admins: Set<Int64>
    public let settings: BroadcastSettings

    public init(store: BroadcastStore, queue: JobQueue, admins: Set<Int64>, settings: BroadcastSettings = BroadcastSettings()) {
        self.store = store
        self.queue = queue
        self.admins = admins
        self.settings = settings
    }

    public func isAdmin(_ user: Int64) -> Bool { admins.contains(user) }

    /// Starts a draft for `author`; the next text they send becomes its message.
    public func compose(author: Int64, language: String, audience: BroadcastAudience, chat: Int64) async throws(BroadcastError) -> Int64 {
        do {
            if let channel = audience.channelID {
                guard try await store.isOwner(author, of: channel) else { throw BroadcastError.notAllowed }
            } else {
                guard isAdmin(author) else { throw BroadcastError.notAllowed }
            }
            return try await store.createDraft(author: author, language: language, audience: audience, progressChatID: chat)
        } catch let error as BroadcastError {
            throw error
        } catch {
            throw .database(String(reflecting: error))
        }
    }

    /// The draft waiting for `author`'s text, if any.
    public func draftAwaitingText(of author: Int64) async throws -> Broadcast? {
        guard let draft = try await store.draft(of: author, maximumAge: settings.draftLifetime), draft.status == .composing else { return nil }
        return draft
    }

    /// Checks and stores the draft's text; returns the audience size now, for the confirmation.
    public func setText(_ text: String, draft: Broadcast) async throws -> Result<Int, BroadcastTextProblem> {
        if case .failure(let problem) = BroadcastText.check(text) { return .failure(problem) }
        guard try await store.setText(text, broadcast: draft.id) else { return .success(0) }
        return .success(try await store.audienceSize(draft.audience))
    }

    /// Resolves the audience, starts the broadcast and hands it to the sender; the confirmation message
    /// becomes the progress message. Returns the number of recipients.
    public func start(_ id: Int64, by user: Int64, progressMessageID: Int64) async throws(BroadcastError) -> Int {
        let broadcast = try await authorized(id, by: user)
        guard broadcast.status == .ready else { throw .notReady(broadcast.status) }
        let total = try await store.start(id, progressMessageID: progressMessageID, dailyCap: settings.ownerDailyCap)
        // A lost enqueue is made good by the resume scan within a minute.
        let job = RunBroadcastJob(broadcastID: id)
        _ = try? await queue.enqueue(job, options: JobOptions(uniqueKey: job.uniqueKey))
        return total
    }

    public func pause(_ id: Int64, by user: Int64) async throws(BroadcastError) -> Broadcast {
        try await move(id, by: user, from: [.running], to: .paused)
    }

    public func resume(_ id: Int64, by user: Int64) async throws(BroadcastError) -> Broadcast {
        let broadcast = try await move(id, by: user, from: [.paused], to: .running)
        let job = RunBroadcastJob(broadcastID: id)
        _ = try? await queue.enqueue(job, options: JobOptions(uniqueKey: job.uniqueKey))
        return broadcast
    }

    /// Cancels a draft or a broadcast on its way; recipients not yet sent to are not sent to.
    public func cancel(_ id: Int64, by user: Int64) async throws(BroadcastError) -> Broadcast {
        try await move(id, by: user, from: [.composing, .ready, .running, .paused], to: .cancelled)
    }

    private func move(_ id: Int64, by user: Int64, from: [BroadcastStatus], to: BroadcastStatus) async throws(BroadcastError) -> Broadcast {
        let broadcast = try await authorized(id, by: user)
        do {
            guard try await store.transition(id, from: from, to: to) != nil else { throw BroadcastError.notReady(broadcast.status) }
            guard let moved = try await store.broadcast(id) else { throw BroadcastError.notFound }
            return moved
        } catch let error as BroadcastError {
            throw error
        } catch {
            throw .database(String(reflecting: error))
        }
    }

    /// The broadcast, when `user` is its author or an admin.
    public func authorized(_ id: Int64, by user: Int64) async throws(BroadcastError) -> Broadcast {
        let found: Broadcast?
        do {
            found = try await store.broadcast(id)
        } catch {
            throw .database(String(reflecting: error))
        }
        guard let broadcast = found else { throw .notFound }
        guard broadcast.authorUserID == user || isAdmin(user) else { throw .notAllowed }
        return broadcast
    }
}

/// Limits of broadcasts that come from configuration.
public struct BroadcastSettings: Sendable, Hashable {
    /// Channel broadcasts one owner may start in any 24 hours.
    public var ownerDailyCap: Int
    /// How long a draft waits for its text.
    public var draftLifetime: Duration

    public init(ownerDailyCap: Int = 3, draftLifetime: Duration = .seconds(3600)) {
        self.ownerDailyCap = ownerDailyCap
        self.draftLifetime = draftLifetime
    }
}
