import Broadcasts
import Channels
import Foundation
import Jobs
import Localization
import Payouts
import TelegramBotAPI

/// The owner's statistics for one channel, from the channel card, and its CSV exports.
extension BroadcastCommands {
    func showChannelStats(_ channel: Int64, context: UpdateContext) async throws {
        guard let user = context.user?.id, let chat = context.chatID else { return }
        guard case .done(let stats) = try await context.services.channels.stats(channel, by: user) else {
            context.logger.warning(
                "refused channel statistics to someone who does not own the channel", metadata: ["channel_id": "\(channel)", "user_id": "\(user)"])
            try await context.answerCallback(text: context.text(L10n.channelsNotYours))
            return
        }
        try await context.answerCallback()
        let export = { (kind: ChannelExportKind) in
            InlineKeyboardButton(
                text: context.text("stats.button.export_\(kind == .subscribers ? "subscribers" : "payments")"),
                action: .callbackData(CallbackData.channelExport(channel, kind).encoded))
        }
        try await context.services.client.send(
            SendMessage(
                chatId: .id(chat), text: Self.render(stats, context: context), parseMode: "HTML",
                linkPreviewOptions: LinkPreviewOptions(isDisabled: true),
                replyMarkup: .inlineKeyboard(
                    InlineKeyboardMarkup(inlineKeyboard: [
                        [export(.subscribers), export(.payments)],
                        [
                            InlineKeyboardButton(
                                text: context.text(L10n.broadcastButtonBack), action: .callbackData(CallbackData.channelOpen(channel).encoded))
                        ],
                    ]))
            ))
    }

    /// Each line is localized with its values escaped; the lines are joined without escaping them again.
    static func render(_ stats: ChannelStats, context: UpdateContext) -> String {
        var lines = [context.text(L10n.statsChannelActive, ["count": String(stats.activeSubscribers)]), context.text(L10n.statsChannelWeeks)]
        for week in stats.weeks {
            lines.append(
                context.text(
                    week.weeksAgo == 0 ? L10n.statsChannelThisWeek : L10n.statsChannelWeek,
                    [
                        "ago": String(week.weeksAgo), "started": String(week.started), "ended": String(week.ended),
                    ]))
        }
        lines.append(context.text(L10n.statsChannelRevenue))
        if stats.tiers.isEmpty { lines.append("—") }
        for tier in stats.tiers {
            lines.append(
                context.text(
                    L10n.statsChannelTier,
                    [
                        "tier": String(tier.position), "orders": String(tier.orders), "week": "\(tier.lastWeek)", "month": "\(tier.lastMonth)",
                        "all": "\(tier.allTime)",
                    ]))
        }
        lines.append(
            context.text(
                L10n.statsChannelDonations,
                [
                    "count": String(stats.donations.count), "week": "\(stats.donations.lastWeek)", "month": "\(stats.donations.lastMonth)",
                    "all": "\(stats.donations.allTime)",
                ]))
        lines.append(context.text(L10n.statsChannelBalances))
        if stats.balances.isEmpty { lines.append("—") }
        for balance in stats.balances {
            lines.append(
                context.text(
                    L10n.statsChannelBalance,
                    [
                        "asset": balance.asset, "earned": "\(balance.earned)", "pending": "\(balance.pending)", "converting": "\(balance.converting)",
                        "in_flight": "\(balance.inFlight)", "paid": "\(balance.paidOut)",
                    ]))
        }
        return lines.joined(separator: "\n")
    }

    /// Queues the export as a durable job (`ChannelExporter` writes and uploads it); without a job queue it
    /// runs at once.
    func export(_ kind: ChannelExportKind, channel: Int64, context: UpdateContext) async throws {
        guard let user = context.user?.id, let chat = context.chatID else { return }
        guard try await context.services.channels.owned(channel, by: user) != nil else {
            context.logger.warning(
                "refused a channel export to someone who does not own the channel", metadata: ["channel_id": "\(channel)", "user_id": "\(user)"])
            try await context.answerCallback(text: context.text(L10n.channelsNotYours))
            return
        }
        try await context.answerCallback(text: context.text(L10n.exportPreparing))
        let job = ChannelExportJob(channelID: channel, ownerUserID: user, chatID: chat, export: kind, language: context.language)
        if let jobs = context.services.jobs {
            let queued = try await jobs.enqueue(job, options: JobOptions(uniqueKey: job.uniqueKey))
            context.logger.info(
                queued.enqueuedID != nil ? "a channel export was queued" : "a channel export is already queued",
                metadata: ["channel_id": "\(channel)", "kind": "\(kind.rawValue)"])
        } else {
            try await context.services.exporter.deliver(job, lastAttempt: true, logger: context.logger)
        }
    }
}
