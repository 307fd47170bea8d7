import Broadcasts
import Foundation
import TelegramBotAPI

/// The owner's statistics for one channel, from the channel card.
extension BroadcastCommands {
    func showChannelStats(_ channel: Int64, context: UpdateContext) async throws {
        guard let user = context.user?.id, let chat = context.chatID else { return }
        let database = context.services.database
        let store = BroadcastStore(database: database, logger: context.logger)
        guard try await store.isOwner(user, of: channel) else {
            context.logger.warning("refused channel statistics to someone who does not own the channel", metadata: ["channel_id": "\(channel)", "user_id": "\(user)"])
            try await context.answerCallback(text: context.text("channels.not_yours"))
            return
        }
        let statsStore = ChannelStatsStore(logger: context.logger)
        let stats = try await database.withConnection { try await statsStore.read(channelID: channel, on: $0) }
        try await context.answerCallback()
        try await context.services.client.send(SendMessage(
            chatId: .id(chat), text: Self.render(stats, context: context), parseMode: "HTML", linkPreviewOptions: LinkPreviewOptions(isDisabled: true),
            replyMarkup: .inlineKeyboard(InlineKeyboardMarkup(inlineKeyboard: [[
                InlineKeyboardButton(text: context.text("broadcast.button.back"), action: .callbackData(CallbackData.channelOpen(channel).encoded)),
            ]]))
        ))
    }

    /// Each line is localized with its values escaped; the lines are joined without escaping them again.
    static func render(_ stats: ChannelStats, context: UpdateContext) -> String {
        var lines = [context.text("stats.channel.active", ["count": String(stats.activeSubscribers)]), context.text("stats.channel.weeks")]
        for week in stats.weeks {
            lines.append(context.text(week.weeksAgo == 0 ? "stats.channel.this_week" : "stats.channel.week", [
                "ago": String(week.weeksAgo), "started": String(week.started), "ended": String(week.ended),
            ]))
        }
        lines.append(context.text("stats.channel.revenue"))
        if stats.tiers.isEmpty { lines.append("—") }
        for tier in stats.tiers {
            lines.append(context.text("stats.channel.tier", [
                "tier": String(tier.position), "orders": String(tier.orders), "week": "\(tier.lastWeek)", "month": "\(tier.lastMonth)",
                "all": "\(tier.allTime)",
            ]))
        }
        return lines.joined(separator: "\n")
    }
}
