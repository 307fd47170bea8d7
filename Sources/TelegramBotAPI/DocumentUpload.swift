import Foundation
import NIOCore

/// `sendDocument` with a new file from disk, uploaded as multipart/form-data (Bot API "Sending files": a
/// bot may upload files of up to 50 MB). The file is streamed from disk in chunks, never read whole.
public struct SendDocument: Sendable {
    public static let name = "sendDocument"
    /// The Bot API's upload limit for bots on the public server.
    public static let maximumFileBytes: Int64 = 50 * 1024 * 1024
    /// Captions are 0–1024 characters after entity parsing.
    public static let maximumCaptionLength = 1024

    public var chatId: ChatID
    /// The file to upload.
    public var file: URL
    /// The name recipients see.
    public var fileName: String
    public var mimeType: String
    public var caption: String?
    public var parseMode: String?

    public init(
        chatId: ChatID, file: URL, fileName: String, mimeType: String = "application/octet-stream", caption: String? = nil, parseMode: String? = nil
    ) {
        self.chatId = chatId
        self.file = file
        self.fileName = fileName
        self.mimeType = mimeType
        self.caption = caption
        self.parseMode = parseMode
    }

    /// The multipart body: the text fields, then the file under `document`.
    public func multipart(fileSize: Int64, boundary: String = MultipartUpload.randomBoundary()) -> MultipartUpload {
        var fields = [("chat_id", chatId.description)]
        if let caption { fields.append(("caption", caption)) }
        if let parseMode { fields.append(("parse_mode", parseMode)) }
        return MultipartUpload(
            fields: fields, fileField: "document", fileName: fileName, fileContentType: mimeType, file: file, fileSize: fileSize, boundary: boundary
        )
    }
}

/// A multipart/form-data request body (RFC 7578): text fields, then one file part whose bytes come from disk
/// when the body is sent. `head` and `tail` are the bytes around the file's.
public struct MultipartUpload: Sendable {
    public let boundary: String
    public let head: [UInt8]
    public let tail: [UInt8]
    public let file: URL
    public let fileSize: Int64

    public init(
        fields: [(String, String)], fileField: String, fileName: String, fileContentType: String, file: URL, fileSize: Int64, boundary: String
    ) {
        self.boundary = boundary
        self.file = file
        self.fileSize = fileSize
        var head = ""
        for (name, value) in fields {
            head += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(Self.quoted(name))\"\r\n\r\n\(value)\r\n"
        }
        head += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(Self.quoted(fileField))\"; filename=\"\(Self.quoted(fileName))\"\r\n"
        head += "Content-Type: \(fileContentType)\r\n\r\n"
        self.head = Array(head.utf8)
        self.tail = Array("\r\n--\(boundary)--\r\n".utf8)
    }

    public var contentType: String { "multipart/form-data; boundary=\(boundary)" }
    public var contentLength: Int64 { Int64(head.count) + fileSize + Int64(tail.count) }

    /// 32 random letters and digits: a boundary no CSV line or caption will contain by chance.
    public static func randomBoundary() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return "telepay-" + String((0..<32).map { _ in alphabet.randomElement()! })
    }

    /// Quotes, backslashes and line breaks cannot appear inside a quoted header parameter.
    static func quoted(_ text: String) -> String {
        String(text.map { "\"\\\r\n".contains($0) ? "_" : $0 })
    }

    /// The body in chunks of at most `chunkSize` bytes, read from the file as they are asked for.
    public func chunks(chunkSize: Int = 64 * 1024) -> Chunks {
        Chunks(upload: self, chunkSize: chunkSize)
    }

    /// The body as an async sequence of buffers; each iteration opens the file afresh, so a retry re-sends it.
    public struct Chunks: AsyncSequence, Sendable {
        public typealias Element = ByteBuffer
        let upload: MultipartUpload
        let chunkSize: Int

        public func makeAsyncIterator() -> Iterator {
            Iterator(upload: upload, chunkSize: chunkSize)
        }

        public struct Iterator: AsyncIteratorProtocol {
            enum Stage { case head, file, tail, done }
            let upload: MultipartUpload
            let chunkSize: Int
            var stage = Stage.head
            var handle: FileHandle?
            var remaining: Int64

            init(upload: MultipartUpload, chunkSize: Int) {
                self.upload = upload
                self.chunkSize = chunkSize
                self.remaining = upload.fileSize
            }

            public mutating func next() async throws -> ByteBuffer? {
                switch stage {
                case .head:
                    stage = .file
                    handle = try FileHandle(forReadingFrom: upload.file)
                    return ByteBuffer(bytes: upload.head)
                case .file:
                    if remaining > 0, let handle {
                        let data = try handle.read(upToCount: Int(Swift.min(Int64(chunkSize), remaining))) ?? Data()
                        guard !data.isEmpty else { throw MultipartUploadError.fileShrank(upload.file.path) }
                        remaining -= Int64(data.count)
                        return ByteBuffer(bytes: data)
                    }
                    try handle?.close()
                    handle = nil
                    stage = .tail
                    return ByteBuffer(bytes: upload.tail)
                case .tail:
                    stage = .done
                    return nil
                case .done:
                    return nil
                }
            }
        }
    }
}

/// The file changed while it was being sent.
public enum MultipartUploadError: Error, Sendable, Hashable {
    case fileShrank(String)
}

extension TelegramClient {
    /// Uploads a document: refused before any request when the file is empty or over the 50 MB limit;
    /// otherwise through the limiter (it posts into a chat) with the same retries as `send`.
    @discardableResult
    public func send(_ document: SendDocument) async throws(TelegramError) -> Message {
        let size: Int64
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: document.file.path)
            size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
        } catch {
            throw .badRequest(description: "cannot read the file to upload: \(error)")
        }
        guard size > 0 else { throw .badRequest(description: "file must be non-empty") }
        guard size <= SendDocument.maximumFileBytes else { throw .badRequest(description: "file is too big") }
        let body = document.multipart(fileSize: size)
        let transport = self.transport
        let timeout = self.requestTimeout
        return try await perform(
            method: SendDocument.name, chat: document.chatId,
            { () async throws(TelegramError) -> TelegramHTTPResponse in
                try await transport.upload(method: SendDocument.name, body: body, timeout: timeout)
            },
            decode: { (response) throws(TelegramError) -> Message in
                try Self.decodeEnvelope(Message.self, status: response.status, body: response.body)
            }
        )
    }
}
