import Broadcasts
import Foundation
import Localization
import TelegramBotAPI

/// "Expired in the last N days" for any N from 1 to 365: the owner presses the button, is asked for N, and
/// types it; a wrong answer is explained and the question stays open (10 minutes).
extension BroadcastCommands {
    func askAudienceDays(_ channel: Int64, context: UpdateContext) async throws {
        guard let user = context.user?.id, let service = service(context) else { return }
        guard try await owns(channel, user: user, service: service, context: context) else { return }
        try await context.services.audiencePrompts.ask(user: user, channel: channel)
        try await context.answerCallback()
        try await context.reply(
            L10n.broadcastAudienceAskDays,
            [
                "min": String(AudiencePromptStore.days.lowerBound), "max": String(AudiencePromptStore.days.upperBound),
            ])
    }

    /// The owner's answer to "how many days?", while the question is open.
    func receiveAudienceDays(_ context: UpdateContext) async throws -> Bool {
        guard let chat = context.chatID, chat > 0, let user = context.user?.id, let text = context.update.message?.text else { return false }
        let prompts = context.services.audiencePrompts
        guard let channel = try await prompts.open(user: user) else { return false }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.count <= 3, trimmed.allSatisfy({ $0.isASCII && $0.isNumber }), let days = Int(trimmed), AudiencePromptStore.days.contains(days)
        else {
            try await context.reply(
                L10n.broadcastAudienceDaysInvalid,
                [
                    "min": String(AudiencePromptStore.days.lowerBound), "max": String(AudiencePromptStore.days.upperBound),
                ])
            return true
        }
        try await compose(.channelExpired(channelID: channel, days: days), context: context)
        return true
    }
}
