import Channels
import Foundation
import Jobs
import Localization
import Logging
import PostgresNIO
import Storage
import Subscriptions

/// What the admin commands read and change: a person's record, access granted, extended or revoked, and any
/// channel's sales paused or resumed. Each change and its audit row are written in one transaction, with
/// the jobs that tell the people concerned; the handler answers the admin after it committed.
public struct AdminDesk: Sendable {
    let database: Database
    let logger: Logger
    var access: AdminAccessStore { AdminAccessStore(logger: logger) }
    var channels: AdminChannelStore { AdminChannelStore(logger: logger) }

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// The person with this id or @username, with their subscriptions and latest orders.
    public func lookUp(_ query: String) async throws -> UserRecord? {
        try await database.withConnection { try await access.lookUp(query, on: $0) }
    }

    /// Any channel that is not deleted, by id or title.
    public func findChannel(_ query: String) async throws -> ChannelSummary? {
        try await database.withConnection { try await ChannelStore.find(query, on: $0, logger: logger) }
    }

    /// Starts a grant awaiting the admin's reason; the channel's title, or `nil` when the person or the
    /// channel is unknown.
    public func beginGrant(admin: Int64, user: String, channelID: Int64, days: Int) async throws -> String? {
        try await database.withTransaction { connection -> String? in
            guard let userID = try await access.userID(for: user, on: connection) else { return nil }
            try await channels.cancelWaiting(admin: admin, on: connection)
            guard try await access.beginGrant(admin: admin, userID: userID, channelID: channelID, days: days, on: connection) != nil else {
                return nil
            }
            return try await access.channelTitle(channelID: channelID, on: connection)
        }
    }

    /// Starts an extend or revoke awaiting the admin's reason; the channel's title, or `nil` when the
    /// subscription is unknown.
    public func begin(_ action: AdminAccessAction, admin: Int64, subscriptionID: Int64, days: Int?) async throws -> String? {
        try await database.withTransaction { connection -> String? in
            try await channels.cancelWaiting(admin: admin, on: connection)
            guard try await access.begin(action, admin: admin, subscriptionID: subscriptionID, days: days, on: connection) != nil else { return nil }
            return try await access.channelTitle(subscriptionID: subscriptionID, on: connection)
        }
    }

    public enum AccessOutcome: Sendable {
        /// The admin has no access change waiting: the text is not a reason.
        case none
        case invalid, notPossible
        case extended(String, Date), revoked(String), granted(String, Date)
    }

    /// The admin's reason for the access change they left waiting: the change, its audit row and the
    /// person's notice (and invite, when access starts again) in one transaction.
    public func completeAccess(admin: Int64, reason: String, jobs: JobQueue) async throws -> AccessOutcome {
        let store = access, logger = logger
        return try await database.withTransaction { connection -> AccessOutcome in
            guard let waiting = try await store.waiting(admin: admin, on: connection) else { return .none }
            guard (3...500).contains(reason.count) else { return .invalid }
            let now = Date()
            /// The change made: its audit row completed, the person told (with the new end date unless access
            /// ended), and an invite sent when access starts again.
            func done(subscriptionID: Int64, before: Date?, after: Date, notice: String, title: String, invite: Bool, ended: Bool = false)
                async throws
            {
                try await store.complete(waiting.id, reason: reason, subscriptionID: subscriptionID, before: before, after: after, on: connection)
                var arguments = ["title": title, "reason": reason]
                if !ended { arguments["date"] = AccessService.format(after) }
                try await jobs.enqueue(NotifyUserJob(userID: waiting.userID, key: notice, arguments: arguments), on: connection)
                if invite { try await jobs.enqueue(DeliverInviteJob(subscriptionID: subscriptionID, orderID: nil), on: connection) }
            }
            func notPossible() async throws -> AccessOutcome {
                try await store.cancel(waiting.id, on: connection)
                return .notPossible
            }
            if waiting.action == .grant, let channel = waiting.channelID, let days = waiting.days {
                let title = try await store.channelTitle(channelID: channel, on: connection)
                let change = try await SubscriptionStore.grantByAdmin(
                    userID: waiting.userID, channelID: channel, days: days, now: now, on: connection, logger: logger)
                try await done(
                    subscriptionID: change.subscriptionID, before: change.before, after: change.after, notice: L10n.subscriptionAdminGranted,
                    title: title, invite: change.activated)
                return .granted(title, change.after)
            }
            guard let subscriptionID = waiting.subscriptionID, waiting.action != .grant else { return try await notPossible() }
            let title = try await store.channelTitle(subscriptionID: subscriptionID, on: connection)
            if waiting.action == .extend {
                guard
                    let change = try await SubscriptionStore.extendByAdmin(
                        subscriptionID: subscriptionID, days: waiting.days ?? AdminAccessCommands.extensionDays, now: now, on: connection,
                        logger: logger)
                else { return try await notPossible() }
                try await done(
                    subscriptionID: subscriptionID, before: change.before, after: change.after, notice: L10n.subscriptionAdminExtended,
                    title: title, invite: change.reactivated)
                return .extended(title, change.after)
            }
            guard let change = try await SubscriptionStore.endByAdmin(subscriptionID: subscriptionID, now: now, on: connection, logger: logger)
            else { return try await notPossible() }
            try await done(
                subscriptionID: subscriptionID, before: change.before, after: change.after, notice: L10n.subscriptionAdminRevoked, title: title,
                invite: false, ended: true)
            return .revoked(title)
        }
    }

    /// Starts an admin's pause or resume of a channel awaiting the reason; the channel's title, or `nil`
    /// when there is no such channel.
    public func beginChannelChange(_ action: AdminChannelAction, admin: Int64, channelID: Int64) async throws -> String? {
        try await database.withTransaction { connection -> String? in
            try await access.cancelWaiting(admin: admin, on: connection)
            guard try await channels.begin(action, admin: admin, channelID: channelID, on: connection) != nil else { return nil }
            return try await access.channelTitle(channelID: channelID, on: connection)
        }
    }

    public enum ChannelOutcome: Sendable {
        /// The admin has no channel change waiting: the text is not a reason.
        case none
        case invalid
        /// Nothing to change (already in that state, or gone); the channel's title.
        case unchanged(String)
        case done(AdminChannelAction, String)
    }

    /// The admin's reason for the channel change they left waiting: the change, its audit row and the
    /// owner's notice in one transaction.
    public func completeChannelChange(admin: Int64, reason: String, jobs: JobQueue) async throws -> ChannelOutcome {
        let store = channels, logger = logger
        return try await database.withTransaction { connection -> ChannelOutcome in
            guard let waiting = try await store.waiting(admin: admin, on: connection) else { return .none }
            guard (3...500).contains(reason.count) else { return .invalid }
            guard let channel = try await ChannelStore.summary(id: waiting.channelID, on: connection, logger: logger) else {
                try await store.cancel(waiting.id, on: connection)
                return .unchanged("")
            }
            let changed: Bool
            switch waiting.action {
            case .pause:
                changed = try await ChannelLifecycle.pause(id: channel.id, reason: .admin, jobs: jobs, on: connection, logger: logger)
            case .resume:
                changed = try await ChannelStore.resumeByAdmin(id: channel.id, on: connection, logger: logger)
                if changed {
                    try await OfferPostRequests.afterResume(channelID: channel.id, at: Date(), jobs: jobs, on: connection, logger: logger)
                }
            }
            guard changed else {
                try await store.cancel(waiting.id, on: connection)
                return .unchanged(channel.closedTitle)
            }
            try await store.complete(waiting.id, reason: reason, on: connection)
            try await jobs.enqueue(
                NotifyUserJob(
                    userID: channel.ownerUserID, key: "channel.admin_\(waiting.action.rawValue)d",
                    arguments: ["title": channel.closedTitle, "reason": reason]
                ), on: connection)
            return .done(waiting.action, channel.closedTitle)

        }
    }
}
