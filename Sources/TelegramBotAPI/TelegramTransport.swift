import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// A raw HTTP answer from a Bot API server.
public struct TelegramHTTPResponse: Sendable {
    public var status: Int
    public var body: [UInt8]

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// Carries one JSON-encoded method call to a Bot API server. The production transport speaks HTTP;
/// tests swap in counting or scripted transports without touching the client.
public protocol TelegramTransport: Sendable {
    /// Posts `body` as JSON to `<base>/bot<token>/<method>`. Throws only `TelegramError.network`.
    func post(method: String, body: [UInt8], timeout: Duration) async throws(TelegramError) -> TelegramHTTPResponse
    /// Posts a multipart/form-data body (a file upload) to `<base>/bot<token>/<method>`. Throws only
    /// `TelegramError.network`.
    func upload(method: String, body: MultipartUpload, timeout: Duration) async throws(TelegramError) -> TelegramHTTPResponse
}

extension TelegramTransport {
    /// Transports that only carry JSON (counting or scripted ones in tests) refuse uploads rather than
    /// pretend to send them.
    public func upload(method: String, body: MultipartUpload, timeout: Duration) async throws(TelegramError) -> TelegramHTTPResponse {
        throw .network(description: "\(type(of: self)) cannot upload files")
    }
}

/// The production transport on AsyncHTTPClient. The token lives only inside the request URL; anything
/// logged shows the URL with the token replaced.
public struct HTTPTelegramTransport: TelegramTransport {
    public let baseURL: String
    private let token: String
    private let client: HTTPClient
    private let logger: Logger

    public init(baseURL: String, token: String, client: HTTPClient = .shared, logger: Logger) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.token = token
        self.client = client
        self.logger = logger
    }

    /// What logs may show of a method's URL.
    public func redactedURL(method: String) -> String {
        "\(baseURL)/bot<redacted>/\(method)"
    }

    public func post(method: String, body: [UInt8], timeout: Duration) async throws(TelegramError) -> TelegramHTTPResponse {
        var request = HTTPClientRequest(url: "\(baseURL)/bot\(token)/\(method)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(
                request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
            let bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
            return TelegramHTTPResponse(status: Int(response.status.code), body: Array(bytes.readableBytesView))
        } catch {
            // AsyncHTTPClient errors can embed the request URL; describe them without it.
            let reason = Self.describe(error)
            logger.debug("Bot API request failed", metadata: ["url": "\(redactedURL(method: method))", "reason": "\(reason)"])
            throw .network(description: reason)
        }
    }

    public func upload(method: String, body: MultipartUpload, timeout: Duration) async throws(TelegramError) -> TelegramHTTPResponse {
        var request = HTTPClientRequest(url: "\(baseURL)/bot\(token)/\(method)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: body.contentType)
        request.body = .stream(body.chunks(), length: .known(body.contentLength))
        do {
            let response = try await client.execute(
                request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
            let bytes = try await response.body.collect(upTo: 1024 * 1024)
            return TelegramHTTPResponse(status: Int(response.status.code), body: Array(bytes.readableBytesView))
        } catch {
            let reason = Self.describe(error)
            logger.debug("Bot API upload failed", metadata: ["url": "\(redactedURL(method: method))", "reason": "\(reason)"])
            throw .network(description: reason)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let clientError = error as? HTTPClientError {
            return String(describing: clientError)
        }
        return String(describing: type(of: error))
    }
}
