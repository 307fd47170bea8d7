import Foundation
import Jobs
import Logging
import PostgresNIO
import Storage
import Subscriptions
import TelegramBotAPI

/// What an admin can do to any channel.
public enum AdminChannelAction: String, Sendable, Hashable, CaseIterable {
    case pause, resume
}

/// Every query of `admin_channel_actions` (Migrations/0052).
public struct AdminChannelStore: Sendable {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func cancelWaiting(admin: Int64, on connection: PostgresConnection) async throws {
        try await connection.run("""
            UPDATE admin_channel_actions SET status = \(AdminAccessActionStatus.cancelled.rawValue)
            WHERE admin_user_id = \(admin) AND status = \(AdminAccessActionStatus.awaitingReason.rawValue)
            """, logger: logger)
    }

    /// Starts an action awaiting the admin's reason; `nil` when the channel is unknown or deleted.
    public func begin(_ action: AdminChannelAction, admin: Int64, channelID: Int64, on connection: PostgresConnection) async throws -> Int64? {
        try await cancelWaiting(admin: admin, on: connection)
        return try await connection.first(
            """
            INSERT INTO admin_channel_actions (admin_user_id, action, channel_id)
            SELECT \(admin), \(action.rawValue), id FROM channels WHERE id = \(channelID) AND deleted_at IS NULL
            RETURNING id
            """,
            as: Int64.self, logger: logger
        )
    }

    /// The admin's action waiting for a reason, begun within the last hour, locked for the transaction.
    public func waiting(admin: Int64, on connection: PostgresConnection) async throws -> (id: Int64, action: AdminChannelAction, channelID: Int64)? {
        guard let row = try await connection.first(
            """
            SELECT id, action, channel_id FROM admin_channel_actions
            WHERE admin_user_id = \(admin) AND status = \(AdminAccessActionStatus.awaitingReason.rawValue) AND created_at > now() - interval '1 hour'
            ORDER BY id DESC LIMIT 1 FOR UPDATE
            """,
            as: (Int64, String, Int64).self, logger: logger
        ), let action = AdminChannelAction(rawValue: row.1) else { return nil }
        return (row.0, action, row.2)
    }

    public func complete(_ id: Int64, reason: String, on connection: PostgresConnection) async throws {
        try await connection.run("""
            UPDATE admin_channel_actions SET status = \(AdminAccessActionStatus.done.rawValue), reason = \(reason), done_at = now() WHERE id = \(id)
            """, logger: logger)
    }

    public func cancel(_ id: Int64, on connection: PostgresConnection) async throws {
        try await connection.run(
            "UPDATE admin_channel_actions SET status = \(AdminAccessActionStatus.cancelled.rawValue) WHERE id = \(id)", logger: logger
        )
    }
}

/// `/admin channel <id or title>` shows any channel with **Pause sales** or **Resume sales**; the admin then
/// types the reason (3–500 characters). The change and its audit row are written in one transaction and the
/// owner is told the reason. Sales an admin paused can be resumed only by an admin.
extension AdminAccessCommands {
    func showChannel(_ query: String, context: UpdateContext) async throws {
        guard !query.isEmpty else {
            try await context.reply("admin.channel.usage")
            return
        }
        guard let channel = try await context.services.database.withConnection({
            try await ChannelRepository.find(query, on: $0, logger: context.logger)
        }) else {
            try await context.reply("admin.channel.not_found", ["query": query])
            return
        }
        let action: AdminChannelAction = channel.status == ChannelStatus.paused.rawValue ? .resume : .pause
        try await context.reply(
            "admin.channel.card",
            [
                "id": String(channel.id), "closed_title": channel.closedTitle, "open_title": channel.openTitle,
                "owner": String(channel.ownerUserID), "status": ChannelCommands.statusText(channel, context),
            ],
            markup: .inlineKeyboard(InlineKeyboardMarkup(inlineKeyboard: [[
                InlineKeyboardButton(
                    text: context.text("admin.channel.button.\(action.rawValue)"),
                    action: .callbackData(CallbackData.adminChannel(action, channel.id).encoded)
                ),
            ]]))
        )
    }

    func beginChannel(_ action: AdminChannelAction, channel: Int64, context: UpdateContext) async throws {
        guard isAdmin(context), let admin = context.user?.id else {
            context.logger.warning("refused an admin action from someone who is not an admin", metadata: [
                "user_id": "\(context.user?.id ?? 0)", "action": "channel \(action.rawValue)", "channel_id": "\(channel)",
            ])
            try await context.answerCallback(text: context.text("admin.not_allowed"))
            return
        }
        let store = AdminChannelStore(logger: context.logger)
        let access = AdminAccessStore(logger: context.logger)
        let title = try await context.services.database.withTransaction { connection -> String? in
            try await access.cancelWaiting(admin: admin, on: connection)
            guard try await store.begin(action, admin: admin, channelID: channel, on: connection) != nil else { return nil }
            return try await access.channelTitle(channelID: channel, on: connection)
        }
        try await context.answerCallback()
        guard let title else {
            try await context.reply("admin.channel.not_found", ["query": String(channel)])
            return
        }
        try await context.reply("admin.channel.reason_prompt.\(action.rawValue)", ["title": title])
    }

    /// The admin's next text after pressing pause or resume is the reason; the change is made then.
    func receiveChannelReason(_ context: UpdateContext) async throws -> Bool {
        guard isAdmin(context), let admin = context.user?.id, let reason = context.update.message?.text?.trimmingCharacters(in: .whitespacesAndNewlines),
              let jobs = context.services.jobs
        else { return false }
        let store = AdminChannelStore(logger: context.logger)
        let logger = context.logger
        enum Outcome: Sendable { case none, invalid, unchanged(String), done(AdminChannelAction, String) }
        let outcome = try await context.services.database.withTransaction { connection -> Outcome in
            guard let waiting = try await store.waiting(admin: admin, on: connection) else { return .none }
            guard (3...500).contains(reason.count) else { return .invalid }
            guard let channel = try await ChannelRepository.select(where: "c.id = $1", [waiting.channelID], on: connection, logger: logger).first else {
                try await store.cancel(waiting.id, on: connection)
                return .unchanged("")
            }
            let changed: Bool
            switch waiting.action {
            case .pause:
                changed = try await ChannelRepository.pause(id: channel.id, reason: ChannelRepository.adminPause, jobs: jobs, on: connection, logger: logger)
            case .resume:
                changed = try await ChannelRepository.resumeByAdmin(id: channel.id, on: connection, logger: logger)
                if changed {
                    try await OfferPostRequests.afterResume(channelID: channel.id, at: Date(), jobs: jobs, on: connection, logger: logger)
                }
            }
            guard changed else {
                try await store.cancel(waiting.id, on: connection)
                return .unchanged(channel.closedTitle)
            }
            try await store.complete(waiting.id, reason: reason, on: connection)
            try await jobs.enqueue(NotifyUserJob(
                userID: channel.ownerUserID, key: "channel.admin_\(waiting.action.rawValue)d",
                arguments: ["title": channel.closedTitle, "reason": reason]
            ), on: connection)
            return .done(waiting.action, channel.closedTitle)
        }
        switch outcome {
        case .none:
            return false
        case .invalid:
            try await context.reply("admin.access.reason_invalid")
        case .unchanged(let title):
            try await context.reply("admin.channel.unchanged", ["title": title])
        case .done(let action, let title):
            context.logger.notice("an admin changed a channel's sales", metadata: ["admin": "\(admin)", "action": "\(action.rawValue)", "title": "\(title)"])
            try await context.reply("admin.channel.\(action.rawValue)d", ["title": title])
        }
        return true
    }
}
