import Foundation
import Jobs
import Localization
import Logging
import PostgresNIO
import Storage
import Subscriptions
import TelegramBotAPI

/// Sends `NotifyUserJob`s: localizes the message in the recipient's language and draws its buttons.
/// Flood control, server and network errors are retried; a blocked user or a rejected message fail at once.
public struct UserNotifier: JobHandler {
    public let client: TelegramClient
    public let database: Database
    public let localizer: Localizer

    public init(client: TelegramClient, database: Database, localizer: Localizer) {
        self.client = client
        self.database = database
        self.localizer = localizer
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 8) }

    public func run(_ payload: NotifyUserJob, context: JobContext) async throws {
        let logger = context.logger
        let language = try await database.withConnection { connection in
            try await TelegramUserStore.language(of: payload.userID, localizer: localizer, on: connection, logger: logger)
        }
        let message = Self.render(payload, language: language, localizer: localizer)
        try await client.send(message)
    }

    /// The message as Telegram gets it.
    public static func render(_ payload: NotifyUserJob, language: String, localizer: Localizer) -> SendMessage {
        var arguments = payload.arguments
        for (name, days) in payload.dayArguments {
            arguments[name] = localizer.text(L10n.daysCount, language: language, count: days)
        }
        let rows: [[InlineKeyboardButton]] = payload.buttons.map { button in
            switch button {
            case .url(let labelKey, let url):
                return [InlineKeyboardButton(text: localizer.text(labelKey, language: language), action: .url(url))]
            case .renew(let channel):
                return [
                    InlineKeyboardButton(
                        text: localizer.text(L10n.buttonRenew, language: language),
                        action: .callbackData(CallbackData.renew(channelID: channel).encoded))
                ]
            case .retryInvoice(let order):
                return [
                    InlineKeyboardButton(
                        text: localizer.text(L10n.purchaseRetryButton, language: language),
                        action: .callbackData(CallbackData.retryInvoice(orderID: order).encoded))
                ]
            }
        }
        return SendMessage(
            chatId: .id(payload.userID), text: localizer.text(payload.key, language: language, arguments), parseMode: "HTML",
            linkPreviewOptions: LinkPreviewOptions(isDisabled: true),
            replyMarkup: rows.isEmpty ? nil : .inlineKeyboard(InlineKeyboardMarkup(inlineKeyboard: rows))
        )
    }

    public func classify(_ error: any Error) -> JobErrorClass {
        guard let telegram = error as? TelegramError else { return .retryable }
        return telegram.isTransient ? .retryable : .permanent
    }
}
