import Foundation
import Jobs
import Localization
import Payouts
import TelegramBotAPI

/// Failed work in the admin menu: the latest failed jobs with their last error, each with a button that
/// re-queues it as `telepay jobs retry` does (handlers are idempotent, so a retry cannot do the work twice);
/// then the latest failed payouts with their reason, each with a button that releases the channel's next
/// payout as `telepay payouts retry` does (`PayoutDesk.release` refuses unless that is safe).
extension BroadcastCommands {
    static let failedJobsShown = 10
    static let failedPayoutsShown = 10

    func showFailedJobs(_ context: UpdateContext) async throws {
        guard let jobs = context.services.jobs, let chat = context.chatID else { return }
        let failures = try await jobs.summary(recentFailures: Self.failedJobsShown).recentFailures
        try await context.answerCallback()
        try await showFailedPayouts(context)
        guard !failures.isEmpty else {
            try await context.reply(L10n.adminJobsNone)
            return
        }
        let lines = failures.map { job in
            context.text(
                L10n.adminJobsLine,
                [
                    "id": job.id.description, "kind": job.kind, "attempt": String(job.attempt), "max": String(job.maxAttempts),
                    "error": String((job.lastError ?? "—").prefix(200)),
                ])
        }
        let buttons = failures.map { job in
            [
                InlineKeyboardButton(
                    text: context.text(L10n.adminButtonRetryJob, ["id": job.id.description]),
                    action: .callbackData(CallbackData.adminRetryJob(job.id.rawValue).encoded))
            ]
        }
        // Each line is localized with its values escaped; joined without escaping them again.
        try await context.services.client.send(
            SendMessage(
                chatId: .id(chat), text: ([context.text(L10n.adminJobsTitle)] + lines).joined(separator: "\n\n"), parseMode: "HTML",
                linkPreviewOptions: LinkPreviewOptions(isDisabled: true), replyMarkup: .inlineKeyboard(InlineKeyboardMarkup(inlineKeyboard: buttons))
            ))
    }

    func retryJob(_ id: Int64, context: UpdateContext) async throws {
        guard let jobs = context.services.jobs else { return }
        do {
            let job = try await jobs.retry(JobID(id))
            context.logger.notice(
                "an admin re-queued a failed job", metadata: ["job_id": "\(id)", "kind": "\(job.kind)", "admin": "\(context.user?.id ?? 0)"])
            try await context.answerCallback(text: context.text(L10n.adminJobsRetried, ["id": String(id)]))
        } catch let error as JobQueueError {
            context.logger.info("an admin's job retry was refused", metadata: ["job_id": "\(id)", "error": "\(error)"])
            try await context.answerCallback(text: context.text(L10n.adminJobsNotRetryable, ["id": String(id)]))
        }
    }
}

extension BroadcastCommands {
    func showFailedPayouts(_ context: UpdateContext) async throws {
        guard let chat = context.chatID else { return }
        let payouts = try await context.services.payouts.payouts(
            in: [.failed], limit: Self.failedPayoutsShown)
        guard !payouts.isEmpty else {
            try await context.reply(L10n.adminPayoutsNone)
            return
        }
        let lines = payouts.map { payout in
            context.text(
                L10n.adminPayoutsLine,
                [
                    "id": String(payout.id), "channel": String(payout.channelID), "owner": String(payout.ownerUserID),
                    "amount": "\(payout.amount)", "asset": payout.asset, "currency": payout.currency, "network": payout.network,
                    "reason": String((payout.failure ?? "—").prefix(200)),
                    "fixable": context.text(payout.ownerFixable ? L10n.adminPayoutsOwnerFixable : L10n.adminPayoutsNotOwnerFixable),
                ])
        }
        let buttons = payouts.map { payout in
            [
                InlineKeyboardButton(
                    text: context.text(L10n.adminButtonReleasePayout, ["id": String(payout.id)]),
                    action: .callbackData(CallbackData.adminReleasePayout(payout.id).encoded)
                )
            ]
        }
        // Each line is localized with its values escaped; joined without escaping them again.
        try await context.services.client.send(
            SendMessage(
                chatId: .id(chat), text: ([context.text(L10n.adminPayoutsTitle)] + lines).joined(separator: "\n\n"), parseMode: "HTML",
                linkPreviewOptions: LinkPreviewOptions(isDisabled: true), replyMarkup: .inlineKeyboard(InlineKeyboardMarkup(inlineKeyboard: buttons))
            ))
    }

    func releasePayout(_ id: Int64, context: UpdateContext) async throws {
        let outcome = try await context.services.payouts.release(payoutID: id)
        switch outcome {
        case .released:
            context.logger.notice("an admin released a failed payout", metadata: ["payout_id": "\(id)", "admin": "\(context.user?.id ?? 0)"])
            try await context.answerCallback(text: context.text(L10n.adminPayoutsReleased, ["id": String(id)]))
        case .refused(let why):
            context.logger.info("an admin's payout release was refused", metadata: ["payout_id": "\(id)", "reason": "\(why)"])
            try await context.answerCallback(text: context.text(L10n.adminPayoutsNotReleased, ["id": String(id)]))
        case .notFound:
            try await context.answerCallback(text: context.text(L10n.adminPayoutsNotReleased, ["id": String(id)]))
        }
    }
}
