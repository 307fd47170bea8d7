import Foundation
import Jobs
import TelegramBotAPI

/// Failed work in the admin menu: the latest failed jobs with their last error, each with a button that
/// re-queues it as `telepay jobs retry` does (handlers are idempotent, so a retry cannot do the work twice).
extension BroadcastCommands {
    static let failedJobsShown = 10

    func showFailedJobs(_ context: UpdateContext) async throws {
        guard let jobs = context.services.jobs, let chat = context.chatID else { return }
        let failures = try await jobs.summary(recentFailures: Self.failedJobsShown).recentFailures
        try await context.answerCallback()
        guard !failures.isEmpty else {
            try await context.reply("admin.jobs.none")
            return
        }
        let lines = failures.map { job in
            context.text("admin.jobs.line", [
                "id": job.id.description, "kind": job.kind, "attempt": String(job.attempt), "max": String(job.maxAttempts),
                "error": String((job.lastError ?? "—").prefix(200)),
            ])
        }
        let buttons = failures.map { job in
            [InlineKeyboardButton(text: context.text("admin.button.retry_job", ["id": job.id.description]), action: .callbackData(CallbackData.adminRetryJob(job.id.rawValue).encoded))]
        }
        // Each line is localized with its values escaped; joined without escaping them again.
        try await context.services.client.send(SendMessage(
            chatId: .id(chat), text: ([context.text("admin.jobs.title")] + lines).joined(separator: "\n\n"), parseMode: "HTML",
            linkPreviewOptions: LinkPreviewOptions(isDisabled: true), replyMarkup: .inlineKeyboard(InlineKeyboardMarkup(inlineKeyboard: buttons))
        ))
    }

    func retryJob(_ id: Int64, context: UpdateContext) async throws {
        guard let jobs = context.services.jobs else { return }
        do {
            let job = try await jobs.retry(JobID(id))
            context.logger.notice("an admin re-queued a failed job", metadata: ["job_id": "\(id)", "kind": "\(job.kind)", "admin": "\(context.user?.id ?? 0)"])
            try await context.answerCallback(text: context.text("admin.jobs.retried", ["id": String(id)]))
        } catch let error as JobQueueError {
            context.logger.info("an admin's job retry was refused", metadata: ["job_id": "\(id)", "error": "\(error)"])
            try await context.answerCallback(text: context.text("admin.jobs.not_retryable", ["id": String(id)]))
        }
    }
}
