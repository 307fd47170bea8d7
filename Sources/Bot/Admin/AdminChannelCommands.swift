import Channels
import Foundation
import Jobs
import Localization
import Logging
import PostgresNIO
import Storage
import Subscriptions
import TelegramBotAPI

/// What an admin can do to any channel.
public enum AdminChannelAction: String, Sendable, Hashable, CaseIterable {
    case pause, resume
}

/// `/admin channel <id or title>` shows any channel with **Pause sales** or **Resume sales**; the admin then
/// types the reason (3–500 characters). The change and its audit row are written in one transaction and the
/// owner is told the reason. Sales an admin paused can be resumed only by an admin.
extension AdminAccessCommands {
    func showChannel(_ query: String, context: UpdateContext) async throws {
        guard !query.isEmpty else {
            try await context.reply(L10n.adminChannelUsage)
            return
        }
        guard
            let channel = try await context.services.database.withConnection({
                try await ChannelStore.find(query, on: $0, logger: context.logger)
            })
        else {
            try await context.reply(L10n.adminChannelNotFound, ["query": query])
            return
        }
        let action: AdminChannelAction = channel.status == .paused ? .resume : .pause
        try await context.reply(
            L10n.adminChannelCard,
            [
                "id": String(channel.id), "closed_title": channel.closedTitle, "open_title": channel.openTitle,
                "owner": String(channel.ownerUserID), "status": ChannelCommands.statusText(channel, context),
            ],
            markup: .inlineKeyboard(
                InlineKeyboardMarkup(inlineKeyboard: [
                    [
                        InlineKeyboardButton(
                            text: context.text("admin.channel.button.\(action.rawValue)"),
                            action: .callbackData(CallbackData.adminChannel(action, channel.id).encoded)
                        )
                    ]
                ]))
        )
    }

    func beginChannel(_ action: AdminChannelAction, channel: Int64, context: UpdateContext) async throws {
        guard isAdmin(context), let admin = context.user?.id else {
            context.logger.warning(
                "refused an admin action from someone who is not an admin",
                metadata: [
                    "user_id": "\(context.user?.id ?? 0)", "action": "channel \(action.rawValue)", "channel_id": "\(channel)",
                ])
            try await context.answerCallback(text: context.text(L10n.adminNotAllowed))
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
            try await context.reply(L10n.adminChannelNotFound, ["query": String(channel)])
            return
        }
        try await context.reply("admin.channel.reason_prompt.\(action.rawValue)", ["title": title])
    }

    /// The admin's next text after pressing pause or resume is the reason; the change is made then.
    func receiveChannelReason(_ context: UpdateContext) async throws -> Bool {
        guard isAdmin(context), let admin = context.user?.id,
            let reason = context.update.message?.text?.trimmingCharacters(in: .whitespacesAndNewlines),
            let jobs = context.services.jobs
        else { return false }
        let store = AdminChannelStore(logger: context.logger)
        let logger = context.logger
        enum Outcome: Sendable { case none, invalid, unchanged(String), done(AdminChannelAction, String) }
        let outcome = try await context.services.database.withTransaction { connection -> Outcome in
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
        switch outcome {
        case .none:
            return false
        case .invalid:
            try await context.reply(L10n.adminAccessReasonInvalid)
        case .unchanged(let title):
            try await context.reply(L10n.adminChannelUnchanged, ["title": title])
        case .done(let action, let title):
            context.logger.notice(
                "an admin changed a channel's sales", metadata: ["admin": "\(admin)", "action": "\(action.rawValue)", "title": "\(title)"])
            try await context.reply("admin.channel.\(action.rawValue)d", ["title": title])
        }
        return true
    }
}
