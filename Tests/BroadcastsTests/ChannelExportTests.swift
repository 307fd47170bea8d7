import Bot
import Foundation
import PostgresNIO
import Storage
import TelegramBotAPI
import TelegramFake
import TestSupport
import Testing

/// Reads RFC 4180 CSV: quoted fields may hold commas, doubled quotes and line breaks; lines end in CRLF.
enum CSVReader {
    static func parse(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var quoted = false, index = text.unicodeScalars.startIndex
        let scalars = text.unicodeScalars
        while index < scalars.endIndex {
            let c = scalars[index]
            if quoted {
                if c == "\"" {
                    let next = scalars.index(after: index)
                    if next < scalars.endIndex, scalars[next] == "\"" {
                        field.unicodeScalars.append("\"")
                        index = next
                    } else {
                        quoted = false
                    }
                } else {
                    field.unicodeScalars.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                row.append(field)
                field = ""
            } else if c == "\r" {
                // CRLF ends the row at the LF.
            } else if c == "\n" {
                row.append(field)
                rows.append(row)
                row = []
                field = ""
            } else {
                field.unicodeScalars.append(c)
            }
            index = scalars.index(after: index)
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }
}

@Suite("Owners export a channel's subscribers and payments as CSV, sent with sendDocument")
struct ChannelExportTests {
    static let owner: Int64 = 1003
    static let closedChat: Int64 = -1001000000011

    /// Channel "Alpha, VIP" of owner 1003 with three subscribers and four orders (one unpaid, one donation).
    static func fixture(_ database: Database) async throws -> Int64 {
        try await database.withConnection { connection in
            try await connection.query(
                """
                INSERT INTO telegram_users (id, first_name, username) VALUES
                    (\(owner), 'Olga', 'olga'), (2001, 'Ann, "the" first', 'ann'), (2002, '=HYPERLINK("x")', NULL), (2003, 'Иван', 'ivan')
                ON CONFLICT (id) DO UPDATE SET first_name = EXCLUDED.first_name, username = EXCLUDED.username
                """, logger: quietLogger)
            try await connection.query("INSERT INTO owners (user_id) VALUES (\(owner)) ON CONFLICT DO NOTHING", logger: quietLogger)
            let channel = try #require(
                try await connection.first(
                    """
                    INSERT INTO channels (owner_user_id, closed_chat_id, closed_title, open_chat_id, open_title)
                    VALUES (\(owner), \(closedChat), 'Alpha, VIP', -1001000000012, 'Alpha') RETURNING id
                    """, as: Int64.self, logger: quietLogger))
            try await connection.query(
                """
                INSERT INTO orders (public_id, user_id, channel_id, owner_user_id, kind, tier_position, price_usd, duration_days, closed_chat_id, closed_title,
                                    status, paid_at, received_usd, created_at)
                VALUES ('tp-AAAAAAAAAAAAAAAAAAAA01', 2001, \(channel), \(owner), 'subscription', 1, 9.99, 30, \(closedChat), 'Alpha, VIP',
                        'paid', '2026-11-02 10:00:05+00', 9.99, '2026-11-02 09:58:00+00'),
                       ('tp-AAAAAAAAAAAAAAAAAAAA02', 2002, \(channel), \(owner), 'subscription', 2, 25.50, 90, \(closedChat), 'Alpha, VIP',
                        'paid', '2026-11-03 11:30:00+00', 25.50, '2026-11-03 11:20:00+00'),
                       ('tp-AAAAAAAAAAAAAAAAAAAA03', 2003, \(channel), \(owner), 'subscription', 1, 9.99, 30, \(closedChat), 'Alpha, VIP',
                        'awaiting_payment', NULL, 0, '2026-11-04 08:00:00+00'),
                       ('tp-AAAAAAAAAAAAAAAAAAAA04', 2003, \(channel), \(owner), 'donation', NULL, 5.00, NULL, \(closedChat), 'Alpha, VIP',
                        'paid', '2026-11-05 12:00:00+00', 5.00, '2026-11-05 11:59:00+00')
                """, logger: quietLogger)
            try await connection.query(
                """
                INSERT INTO subscriptions (user_id, channel_id, status, started_at, expires_at, last_order_id) VALUES
                    (2001, \(channel), 'active', '2026-11-02 10:00:05+00', '2026-12-02 10:00:05+00', NULL),
                    (2002, \(channel), 'expired', '2026-08-03 11:30:00+00', '2026-11-01 11:30:00+00', NULL),
                    (2003, \(channel), 'active', '2026-11-20 00:00:00+00', '2027-01-19 00:00:00+00', NULL)
                """, logger: quietLogger)
            return channel
        }
    }

    @Test("the subscribers and payments files parse with the header row and every row of a hand-checked fixture")
    func handChecked() async throws {
        try await BroadcastBot.run { bot in
            await bot.fake.addUser(id: Self.owner, firstName: "Olga", languageCode: "en")
            let channel = try await Self.fixture(bot.database)
            await bot.fake.userSendsCallback(Self.owner, data: CallbackData.channelStats(channel).encoded, onMessage: 1)
            let label = bot.text("stats.button.export_subscribers")
            await bot.eventually("the stats with export buttons") {
                await bot.fake.lastMessage(to: Self.owner)?.keyboard?.inlineKeyboard.joined().contains { $0.text == label } == true
            }
            try await bot.fake.userTapsButton(Self.owner, label: label)
            await bot.eventually("the subscribers file") { await bot.fake.sentDocuments(to: Self.owner).count == 1 }
            try await bot.fake.userTapsButton(Self.owner, label: bot.text("stats.button.export_payments"))
            await bot.eventually("the payments file") { await bot.fake.sentDocuments(to: Self.owner).count == 2 }

            let documents = await bot.fake.sentDocuments(to: Self.owner)
            let subscribers = documents[0], payments = documents[1]
            #expect(subscribers.fileName.hasPrefix("alpha-vip-subscribers-") && subscribers.fileName.hasSuffix(".csv"))
            #expect(subscribers.mimeType == "text/csv")
            #expect(subscribers.caption == bot.text("export.caption.subscribers", ["title": "Alpha, VIP", "rows": "3"]))
            #expect(
                CSVReader.parse(String(decoding: subscribers.data, as: UTF8.self)) == [
                    ["user_id", "username", "first_name", "status", "started_at", "expires_at"],
                    ["2001", "ann", "Ann, \"the\" first", "active", "2026-11-02T10:00:05Z", "2026-12-02T10:00:05Z"],
                    ["2002", "", "'=HYPERLINK(\"x\")", "expired", "2026-08-03T11:30:00Z", "2026-11-01T11:30:00Z"],
                    ["2003", "ivan", "Иван", "active", "2026-11-20T00:00:00Z", "2027-01-19T00:00:00Z"],
                ])
            #expect(String(decoding: subscribers.data, as: UTF8.self).hasSuffix("\r\n"))
            #expect(payments.fileName.hasPrefix("alpha-vip-payments-"))
            #expect(
                CSVReader.parse(String(decoding: payments.data, as: UTF8.self)) == [
                    ["order", "kind", "tier", "price_usd", "received_usd", "status", "user_id", "username", "created_at", "paid_at"],
                    [
                        "tp-AAAAAAAAAAAAAAAAAAAA01", "subscription", "1", "9.99", "9.99", "paid", "2001", "ann", "2026-11-02T09:58:00Z",
                        "2026-11-02T10:00:05Z",
                    ],
                    [
                        "tp-AAAAAAAAAAAAAAAAAAAA02", "subscription", "2", "25.50", "25.50", "paid", "2002", "", "2026-11-03T11:20:00Z",
                        "2026-11-03T11:30:00Z",
                    ],
                    [
                        "tp-AAAAAAAAAAAAAAAAAAAA04", "donation", "", "5.00", "5.00", "paid", "2003", "ivan", "2026-11-05T11:59:00Z",
                        "2026-11-05T12:00:00Z",
                    ],
                ])
        }
    }

    /// The attempt at which the export job completed, once its completion is written.
    static func completedExportAttempt(_ database: Database) async throws -> Int? {
        try await database.withConnection { connection in
            try await connection.first(
                "SELECT attempt FROM jobs WHERE kind = \(ChannelExportJob.kind) AND state = 'completed'", as: Int.self, logger: quietLogger)
        }
    }

    @Test("the export is a durable job: an upload failing through the client's own retries is retried by the job and arrives once")
    func retriedByTheJob() async throws {
        try await BroadcastBot.run { bot in
            await bot.fake.addUser(id: Self.owner, firstName: "Olga", languageCode: "en")
            let channel = try await Self.fixture(bot.database)
            // More failures than the client's five tries: the first attempt fails, the job's retry sends it.
            await bot.fake.failCalls("sendDocument", chat: Self.owner, times: 6, code: 502, description: "Bad Gateway")
            await bot.fake.userSendsCallback(Self.owner, data: CallbackData.channelExport(channel, .subscribers).encoded, onMessage: 1)
            await bot.eventually("the file, after a retry") { await bot.fake.sentDocuments(to: Self.owner).count == 1 }
            // The completion is written a moment after the upload (the pool batches outcomes).
            try await bot.eventually("the job completed at its second attempt") {
                try await Self.completedExportAttempt(bot.database) == 2
            }
            #expect(await bot.fake.sentDocuments(to: Self.owner).count == 1)
            #expect(!(await bot.fake.sentMessages(to: Self.owner).contains { $0.text == bot.text("export.failed") }))
        }
    }

    @Test("an upload Telegram refuses is not retried: the owner is told it failed")
    func refusedUpload() async throws {
        try await BroadcastBot.run { bot in
            await bot.fake.addUser(id: Self.owner, firstName: "Olga", languageCode: "en")
            let channel = try await Self.fixture(bot.database)
            await bot.fake.failCalls("sendDocument", chat: Self.owner, times: 1, code: 400, description: "Bad Request: file must be non-empty")
            await bot.fake.userSendsCallback(Self.owner, data: CallbackData.channelExport(channel, .payments).encoded, onMessage: 1)
            await bot.eventually("the failure notice") { await bot.fake.lastMessage(to: Self.owner)?.text == bot.text("export.failed") }
            #expect(await bot.fake.sentDocuments(to: Self.owner).isEmpty)
            try await bot.eventually("the job completed at its first attempt") {
                try await Self.completedExportAttempt(bot.database) == 1
            }
        }
    }

    @Test("someone else's crafted export press is refused and sends nothing")
    func notTheOwner() async throws {
        try await BroadcastBot.run { bot in
            let channel = try await Self.fixture(bot.database)
            await bot.fake.userSendsCallback(BroadcastBot.stranger, data: CallbackData.channelExport(channel, .subscribers).encoded, onMessage: 1)
            await bot.eventually("the refusal") { await bot.fake.answeredCallbacks.values.contains(bot.text("channels.not_yours")) }
            #expect(await bot.fake.sentDocuments(to: BroadcastBot.stranger).isEmpty)
        }
    }

    @Test("100,000 subscribers: written in batches, uploaded, and the file parses to the header and 100,000 rows")
    func hundredThousand() async throws {
        try await BroadcastBot.run { bot in
            await bot.fake.addUser(id: Self.owner, firstName: "Olga", languageCode: "en")
            let channel = try await Self.fixture(bot.database)
            try await bot.database.withConnection { connection in
                try await connection.query(
                    """
                    INSERT INTO telegram_users (id, first_name, username) SELECT 10000000 + n, 'Person ' || n, 'p' || n FROM generate_series(1, 99997) AS n
                    """, logger: quietLogger)
                try await connection.query(
                    """
                    INSERT INTO subscriptions (user_id, channel_id, status, started_at, expires_at)
                    SELECT 10000000 + n, \(channel), 'active', '2026-11-01 00:00:00+00', '2026-12-01 00:00:00+00' FROM generate_series(1, 99997) AS n
                    """, logger: quietLogger)
            }
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("export-test-\(UUID().uuidString).csv")
            defer { try? FileManager.default.removeItem(at: file) }
            let rows = try await ChannelExportStore(database: bot.database, logger: quietLogger, batchSize: 5_000)
                .write(.subscribers, channelID: channel, to: file)
            #expect(rows == 100_000)
            try await bot.client.send(SendDocument(chatId: .id(Self.owner), file: file, fileName: "all.csv", mimeType: "text/csv"))
            let uploaded = try #require(await bot.fake.sentDocuments(to: Self.owner).last)
            #expect(uploaded.data == (try Data(contentsOf: file)))
            let parsed = CSVReader.parse(String(decoding: uploaded.data, as: UTF8.self))
            #expect(parsed.count == 100_001)
            #expect(parsed.first == ChannelExportKind.subscribers.header)
            #expect(parsed.dropFirst().allSatisfy { $0.count == 6 })
            #expect(Set(parsed.dropFirst().map { $0[0] }).count == 100_000)
            #expect(parsed.last == ["10099997", "p99997", "Person 99997", "active", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"])
        }
    }
}

@Suite("The fake Bot API takes sendDocument uploads and refuses what Telegram refuses")
struct DocumentUploadTests {
    static func file(bytes: Int) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("upload-test-\(UUID().uuidString).bin")
        FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        let chunk = Data(repeating: UInt8(ascii: "x"), count: 1 << 20)
        var left = bytes
        while left > 0 {
            let part = min(left, chunk.count)
            try handle.write(contentsOf: chunk.prefix(part))
            left -= part
        }
        return url
    }

    static func error(_ body: () async throws(TelegramError) -> Void) async -> TelegramError? {
        do {
            try await body()
            return nil
        } catch {
            return error
        }
    }

    @Test("a file over 50 MB is refused by the client before sending and by the server (413) when sent anyway")
    func tooBig() async throws {
        try await BroadcastBot.run { bot in
            let big = try Self.file(bytes: Int(SendDocument.maximumFileBytes) + 1)
            defer { try? FileManager.default.removeItem(at: big) }
            let refused = await Self.error { () async throws(TelegramError) in
                try await bot.client.send(SendDocument(chatId: .id(BroadcastBot.admin), file: big, fileName: "big.bin"))
            }
            #expect(refused == .badRequest(description: "file is too big"))
            #expect(await bot.fake.calls.contains("sendDocument") == false)

            let transport = bot.client.transport
            let upload = SendDocument(chatId: .id(BroadcastBot.admin), file: big, fileName: "big.bin")
                .multipart(fileSize: SendDocument.maximumFileBytes + 1)
            let response = try await transport.upload(method: "sendDocument", body: upload, timeout: .seconds(60))
            #expect(response.status == 413)
            #expect(String(decoding: response.body, as: UTF8.self).contains("Request Entity Too Large"))
            #expect(await bot.fake.sentDocuments(to: BroadcastBot.admin).isEmpty)

            let exact = try Self.file(bytes: Int(SendDocument.maximumFileBytes))
            defer { try? FileManager.default.removeItem(at: exact) }
            try await bot.client.send(SendDocument(chatId: .id(BroadcastBot.admin), file: exact, fileName: "exact.bin"))
            #expect(await bot.fake.sentDocuments(to: BroadcastBot.admin).first?.data.count == Int(SendDocument.maximumFileBytes))
        }
    }

    @Test("missing or unknown chat, no document part, an empty file and a blocked user get Telegram's errors")
    func refusals() async throws {
        try await BroadcastBot.run { bot in
            let file = try Self.file(bytes: 10)
            defer { try? FileManager.default.removeItem(at: file) }
            let transport = bot.client.transport
            func post(_ upload: MultipartUpload) async throws -> String {
                let response = try await transport.upload(method: "sendDocument", body: upload, timeout: .seconds(10))
                return String(decoding: response.body, as: UTF8.self)
            }
            let boundary = MultipartUpload.randomBoundary()
            #expect(
                try await post(
                    MultipartUpload(
                        fields: [], fileField: "document", fileName: "a.csv", fileContentType: "text/csv", file: file, fileSize: 10,
                        boundary: boundary
                    )
                ).contains("Bad Request: chat_id is empty"))
            #expect(
                try await post(
                    MultipartUpload(
                        fields: [("chat_id", "424242")], fileField: "document", fileName: "a.csv", fileContentType: "text/csv", file: file,
                        fileSize: 10, boundary: boundary
                    )
                ).contains("Bad Request: chat not found"))
            #expect(
                try await post(
                    MultipartUpload(
                        fields: [("chat_id", String(BroadcastBot.admin))], fileField: "photo", fileName: "a.csv", fileContentType: "text/csv",
                        file: file,
                        fileSize: 10, boundary: boundary
                    )
                ).contains("Bad Request: there is no document in the request"))

            let empty = try Self.file(bytes: 0)
            defer { try? FileManager.default.removeItem(at: empty) }
            #expect(
                try await post(
                    MultipartUpload(
                        fields: [("chat_id", String(BroadcastBot.admin))], fileField: "document", fileName: "a.csv", fileContentType: "text/csv",
                        file: empty,
                        fileSize: 0, boundary: boundary
                    )
                ).contains("Bad Request: file must be non-empty"))
            let refused = await Self.error { () async throws(TelegramError) in
                try await bot.client.send(SendDocument(chatId: .id(BroadcastBot.admin), file: empty, fileName: "empty.csv"))
            }
            #expect(refused == .badRequest(description: "file must be non-empty"))

            await bot.fake.userBlocksBot(BroadcastBot.stranger)
            let blocked = await Self.error { () async throws(TelegramError) in
                try await bot.client.send(SendDocument(chatId: .id(BroadcastBot.stranger), file: file, fileName: "a.csv"))
            }
            #expect(blocked != nil)
            #expect(await bot.fake.sentDocuments(to: BroadcastBot.admin).isEmpty)

            try await bot.client.send(
                SendDocument(chatId: .id(BroadcastBot.admin), file: file, fileName: "ok \"1\".csv", caption: "<b>ten</b> bytes", parseMode: "HTML"))
            let sent = try #require(await bot.fake.sentDocuments(to: BroadcastBot.admin).first)
            #expect(sent.fileName == "ok _1_.csv")
            #expect(sent.caption == "<b>ten</b> bytes")
            #expect(sent.data == Data(repeating: UInt8(ascii: "x"), count: 10))
        }
    }
}
