import Foundation
import Jobs
import Localization
import Logging
import Storage
import TelegramBotAPI

/// An owner's CSV export of one channel, as a durable job: a restart or a Telegram outage while the file is
/// written or uploaded delays it instead of losing it. One export per owner, channel and kind waits at a
/// time (a second press while one waits is the same job).
public struct ChannelExportJob: JobPayload {
    public static let kind = "channels.export"
    public static let maxAttempts = 6

    public var channelID: Int64
    public var ownerUserID: Int64
    /// Where the file goes: the owner's private chat with the bot.
    public var chatID: Int64
    /// `ChannelExportKind`'s raw value.
    public var export: String
    public var language: String

    public init(channelID: Int64, ownerUserID: Int64, chatID: Int64, export: ChannelExportKind, language: String) {
        self.channelID = channelID
        self.ownerUserID = ownerUserID
        self.chatID = chatID
        self.export = export.rawValue
        self.language = language
    }

    /// Presses of the same export while one waits or runs become that one.
    public var uniqueKey: String { "\(Self.kind):\(channelID):\(export):\(ownerUserID)" }
}

/// Runs `ChannelExportJob`s: checks the presser still owns the channel, writes the CSV into a temporary file
/// (in batches, so memory stays flat), uploads it with `sendDocument`, and removes the file. A file over
/// Telegram's 50 MB limit is not sent and the owner is told; so is an upload Telegram refuses, or one that
/// still fails at the last attempt. Flood control, server and network errors are retried with the job
/// backoff. Delivery is at least once: a crash after the upload but before the job completed sends it again.
public struct ChannelExporter: JobHandler {
    let client: TelegramClient
    let database: Database
    let localizer: Localizer

    public init(client: TelegramClient, database: Database, localizer: Localizer) {
        self.client = client
        self.database = database
        self.localizer = localizer
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 2) }

    public func run(_ payload: ChannelExportJob, context: JobContext) async throws {
        try await deliver(payload, lastAttempt: context.attempt >= context.maxAttempts, logger: context.logger)
    }

    public func classify(_ error: any Error) -> JobErrorClass {
        guard let telegram = error as? TelegramError else { return .retryable }
        return telegram.isTransient ? .retryable : .permanent
    }

    /// One attempt at the export; also run directly when there is no job queue.
    public func deliver(_ payload: ChannelExportJob, lastAttempt: Bool, logger: Logger) async throws {
        let kind = try ChannelExportKind(storedValue: payload.export)
        let desk = ChannelDesk(database: database, jobs: nil, logger: logger)
        let metadata: Logger.Metadata = ["channel_id": "\(payload.channelID)", "kind": "\(kind.rawValue)"]
        guard let channel = try await desk.owned(payload.channelID, by: payload.ownerUserID) else {
            logger.info("a channel export was dropped: the channel is gone or has another owner", metadata: metadata)
            return
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("telepay-export-\(UUID().uuidString).csv")
        defer { try? FileManager.default.removeItem(at: file) }
        let rows = try await desk.export(kind, channelID: payload.channelID, to: file)
        let size = ((try? FileManager.default.attributesOfItem(atPath: file.path))?[.size] as? NSNumber)?.int64Value ?? 0
        guard size <= SendDocument.maximumFileBytes else {
            logger.warning("a channel export is over Telegram's upload limit", metadata: metadata.merging(["bytes": "\(size)"]) { $1 })
            try await tell(payload, L10n.exportTooBig, ["megabytes": String(SendDocument.maximumFileBytes / 1_048_576)])
            return
        }
        let document = SendDocument(
            chatId: .id(payload.chatID), file: file, fileName: kind.fileName(title: channel.closedTitle, date: Date()), mimeType: "text/csv",
            caption: localizer.text(
                kind == .subscribers ? L10n.exportCaptionSubscribers : L10n.exportCaptionPayments, language: payload.language,
                ["title": channel.closedTitle, "rows": String(rows)]),
            parseMode: "HTML"
        )
        do {
            try await client.send(document)
            logger.info("a channel export was sent", metadata: metadata.merging(["rows": "\(rows)", "bytes": "\(size)"]) { $1 })
        } catch {
            // A refused upload, or the last try: the owner is told. Anything else is retried.
            let transient = error.isTransient
            guard !transient || lastAttempt else { throw error }
            logger.warning("a channel export could not be sent", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            try? await tell(payload, L10n.exportFailed, [:])
            if transient { throw error }
        }
    }

    private func tell(_ payload: ChannelExportJob, _ key: String, _ arguments: [String: String]) async throws {
        try await client.send(
            SendMessage(chatId: .id(payload.chatID), text: localizer.text(key, language: payload.language, arguments), parseMode: "HTML"))
    }
}
