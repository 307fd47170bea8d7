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
            let channel = try await context.services.admin.findChannel(query)
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
        let title = try await context.services.admin.beginChannelChange(action, admin: admin, channelID: channel)
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
        let outcome = try await context.services.admin.completeChannelChange(admin: admin, reason: reason, jobs: jobs)
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
