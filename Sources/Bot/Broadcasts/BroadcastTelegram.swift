import Broadcasts
import Foundation
import Localization
import Logging
import Storage
import TelegramBotAPI

/// Sends broadcast messages through the shared limiter at bulk priority, so a person pressing a button
/// during a broadcast is answered first. A user who blocked the bot is marked, so later audiences skip them.
public struct TelegramBroadcastDelivery: BroadcastDelivery {
    public let client: TelegramClient
    public let database: Database
    public let logger: Logger

    public init(client: TelegramClient, database: Database, logger: Logger) {
        self.client = client.with(priority: .bulk)
        self.database = database
        self.logger = logger
    }

    public func deliver(_ text: String, to userID: Int64) async -> DeliveryOutcome {
        let message = SendMessage(chatId: .id(userID), text: text, parseMode: "HTML")
        switch await Result.telegram({ () async throws(TelegramError) -> Message in try await client.send(message) }) {
        case .success:
            return .sent
        case .failure(let error):
            return await outcome(of: error, userID: userID)
        }
    }

    func outcome(of error: TelegramError, userID: Int64) async -> DeliveryOutcome {
        switch error {
        case .blocked:
            do {
                try await TelegramUserStore.setBlocked(true, userID: userID, on: database)
            } catch {
                logger.warning(
                    "could not mark a user who blocked the bot", metadata: ["user_id": "\(userID)", "error": "\(String(reflecting: error))"])
            }
            return .blocked
        case .retryAfter(let seconds):
            return .retry(after: .seconds(max(seconds, 1)), reason: error.description)
        case .server, .network, .invalidResponse:
            return .retry(after: .seconds(1), reason: error.description)
        default:
            return .failed(reason: error.description)
        }
    }
}

/// Draws the author's progress message: counts, time left and the controls that fit the status.
public struct BroadcastProgressView: Sendable {
    public let localizer: Localizer

    public init(localizer: Localizer) {
        self.localizer = localizer
    }

    public func render(_ progress: BroadcastProgress) -> (text: String, keyboard: InlineKeyboardMarkup?) {
        let broadcast = progress.broadcast
        let language = broadcast.authorLanguage
        func text(_ key: String, _ arguments: [String: String] = [:]) -> String {
            localizer.text(key, language: language, arguments)
        }
        let counts = progress.counts
        var lines = [
            text("broadcast.progress.\(broadcast.status.rawValue)", ["id": String(broadcast.id)]),
            text(
                L10n.broadcastProgressCounts,
                [
                    "sent": String(counts.sent), "blocked": String(counts.blocked), "failed": String(counts.failed),
                    "left": String(counts.left), "total": String(counts.total),
                ]),
        ]
        if broadcast.status == .running {
            lines.append(
                progress.remaining.map { text(L10n.broadcastProgressEta, ["time": Self.duration($0)]) } ?? text(L10n.broadcastProgressEtaUnknown))
        }
        if broadcast.resentAfterRestart > 0 {
            lines.append(text(L10n.broadcastProgressResent, ["count": String(broadcast.resentAfterRestart)]))
        }
        let button = { (key: String, action: BroadcastAction) in
            InlineKeyboardButton(text: text(key), action: .callbackData(CallbackData.broadcast(action, broadcast.id).encoded))
        }
        let keyboard: InlineKeyboardMarkup? =
            switch broadcast.status {
            case .running:
                InlineKeyboardMarkup(inlineKeyboard: [[button(L10n.broadcastButtonPause, .pause), button(L10n.broadcastButtonCancel, .cancel)]])
            case .paused:
                InlineKeyboardMarkup(inlineKeyboard: [[button(L10n.broadcastButtonResume, .resume), button(L10n.broadcastButtonCancel, .cancel)]])
            default: nil
            }
        return (lines.joined(separator: "\n"), keyboard)
    }

    /// `42 s`, `3:05`, `1:02:03`.
    static func duration(_ duration: Duration) -> String {
        let total = max(0, Int(duration.components.seconds))
        let (hours, minutes, seconds) = (total / 3600, total % 3600 / 60, total % 60)
        if hours > 0 { return String(format: "%d:%02d:%02d", hours, minutes, seconds) }
        if minutes > 0 { return String(format: "%d:%02d", minutes, seconds) }
        return "\(seconds) s"
    }
}

/// Edits the author's progress message in place (interactive priority: it is someone's screen).
public struct TelegramBroadcastProgress: BroadcastProgressDisplay {
    public let client: TelegramClient
    public let view: BroadcastProgressView
    public let logger: Logger

    public init(client: TelegramClient, localizer: Localizer, logger: Logger) {
        self.client = client
        self.view = BroadcastProgressView(localizer: localizer)
        self.logger = logger
    }

    public func show(_ progress: BroadcastProgress) async {
        guard let messageID = progress.broadcast.progressMessageID else { return }
        let (text, keyboard) = view.render(progress)
        let edit = EditMessageText(
            chatId: .id(progress.broadcast.progressChatID), messageId: messageID, text: text, parseMode: "HTML", replyMarkup: keyboard)
        switch await Result.telegram({ () async throws(TelegramError) -> MessageOrTrue? in try await client.edit(edit) }) {
        case .success:
            break
        case .failure(let error):
            logger.info(
                "could not update a broadcast's progress message",
                metadata: [
                    "broadcast_id": "\(progress.broadcast.id)", "error": "\(error)",
                ])
        }
    }
}
