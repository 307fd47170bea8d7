import Foundation
import Logging
import Resilience

/// A method that posts into one chat, so the per-chat limit applies to it.
public protocol PostsIntoChat {
    var targetChat: ChatID? { get }
}

extension SendMessage: PostsIntoChat { public var targetChat: ChatID? { chatId } }
extension CopyMessage: PostsIntoChat { public var targetChat: ChatID? { chatId } }
extension EditMessageText: PostsIntoChat { public var targetChat: ChatID? { chatId } }
extension EditMessageReplyMarkup: PostsIntoChat { public var targetChat: ChatID? { chatId } }

/// How the client retries calls that failed for a passing reason.
public struct RetryPolicy: Sendable {
    /// Total tries, including the first.
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// The longest `retry_after` worth waiting for inside one call; longer ones are reported to the caller.
    public var maxRetryAfter: Duration

    public static let standard = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(500), maxDelay: .seconds(30), maxRetryAfter: .seconds(60))
    public static let none = RetryPolicy(maxAttempts: 1, baseDelay: .zero, maxDelay: .zero, maxRetryAfter: .zero)

    public init(maxAttempts: Int, baseDelay: Duration, maxDelay: Duration, maxRetryAfter: Duration) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    /// A random delay between half and all of base × 2^(attempt−1), capped at `maxDelay`.
    func delay(afterAttempt attempt: Int) -> Duration {
        Backoff(initial: baseDelay, maximum: max(baseDelay, maxDelay), jitter: .upperHalf).delay(afterAttempt: attempt)
    }
}

/// Calls Bot API methods: limiter, then automatic retry, then the transport.
public struct TelegramClient: Sendable {
    public let transport: any TelegramTransport
    public let limiter: OutboundLimiter?
    public let retry: RetryPolicy
    public let requestTimeout: Duration
    /// How this client's calls queue at the limiter; broadcasts use `.bulk` so replies are never starved.
    public private(set) var priority: OutboundLimiter.Priority = .interactive
    private let logger: Logger

    public init(
        transport: any TelegramTransport,
        limiter: OutboundLimiter? = OutboundLimiter(),
        retry: RetryPolicy = .standard,
        requestTimeout: Duration = .seconds(30),
        logger: Logger
    ) {
        self.transport = transport
        self.limiter = limiter
        self.retry = retry
        self.requestTimeout = requestTimeout
        self.logger = logger
    }

    /// The same client, sharing the limiter, whose calls queue with `priority`.
    public func with(priority: OutboundLimiter.Priority) -> TelegramClient {
        var copy = self
        copy.priority = priority
        return copy
    }

    /// Sends `method`, retrying flood control, server and network errors within the policy's bounds.
    @discardableResult
    public func send<Method: TelegramMethod>(_ method: Method) async throws(TelegramError) -> Method.Result {
        let body: [UInt8]
        do {
            body = Array(try JSONEncoder().encode(method))
        } catch {
            throw .badRequest(description: "cannot encode \(Method.name): \(error)")
        }
        let transport = self.transport, timeout = requestTimeout
        return try await perform(
            method: Method.name, chat: (method as? any PostsIntoChat)?.targetChat,
            { () async throws(TelegramError) -> TelegramHTTPResponse in try await transport.post(method: Method.name, body: body, timeout: timeout) },
            decode: { (response) throws(TelegramError) -> Method.Result in
                try Self.decodeEnvelope(Method.Result.self, status: response.status, body: response.body)
            }
        )
    }

    /// Runs one request per attempt through the limiter (a slot for `chat` too, when it posts into one),
    /// retrying flood control, server and network errors within the policy's bounds. The permit goes back as
    /// soon as the answer has arrived, before it is decoded: the limiter times its windows from a call's
    /// end, so time spent decoding while holding the permit would only stretch every slot.
    func perform<Result: Sendable>(
        method name: String, chat: ChatID?, _ request: () async throws(TelegramError) -> TelegramHTTPResponse,
        decode: (TelegramHTTPResponse) throws(TelegramError) -> Result
    ) async throws(TelegramError) -> Result {
        var attempt = 0
        while true {
            attempt += 1
            var permit: OutboundLimiter.Permit?
            if let limiter {
                do {
                    permit = try await limiter.acquire(chat: chat, priority: priority)
                } catch {
                    throw .network(description: "cancelled while waiting for a send slot")
                }
            }
            let outcome: Swift.Result<TelegramHTTPResponse, TelegramError>
            do {
                outcome = .success(try await request())
            } catch {
                outcome = .failure(error)
            }
            if let limiter, let permit { await limiter.release(permit) }
            let decoded: Swift.Result<Result, TelegramError>
            switch outcome {
            case .success(let response):
                do {
                    decoded = .success(try decode(response))
                } catch {
                    decoded = .failure(error)
                }
            case .failure(let error):
                decoded = .failure(error)
            }
            switch decoded {
            case .success(let result):
                return result
            case .failure(let error):
                guard error.isTransient, attempt < retry.maxAttempts else {
                    if error.isTransient {
                        logger.warning("Bot API call gave up", metadata: ["method": "\(name)", "attempts": "\(attempt)", "error": "\(error)"])
                    }
                    throw error
                }
                let wait: Duration
                if case .retryAfter(let seconds) = error {
                    wait = .seconds(seconds)
                    guard wait <= retry.maxRetryAfter else { throw error }
                    await limiter?.pause(for: wait)
                    logger.warning("Bot API flood control; all sending paused", metadata: ["method": "\(name)", "retry_after": "\(seconds)"])
                } else {
                    wait = retry.delay(afterAttempt: attempt)
                    logger.info("Bot API call failed; retrying", metadata: ["method": "\(name)", "attempt": "\(attempt)", "error": "\(error)"])
                }
                do {
                    try await Task.sleep(for: wait)
                } catch {
                    throw .network(description: "cancelled while waiting to retry")
                }
            }
        }
    }

    /// Sends an edit; "message is not modified" counts as success and returns `nil`.
    public func edit<Method: TelegramMethod>(_ method: Method) async throws(TelegramError) -> Method.Result? {
        do {
            return try await send(method)
        } catch .notModified {
            return nil
        }
    }

    /// One attempt: encode, post, decode the envelope. No limiter, no retry.
    @discardableResult
    public func call<Method: TelegramMethod>(_ method: Method, timeout: Duration) async throws(TelegramError) -> Method.Result {
        let body: [UInt8]
        do {
            body = Array(try JSONEncoder().encode(method))
        } catch {
            throw .badRequest(description: "cannot encode \(Method.name): \(error)")
        }
        let response = try await transport.post(method: Method.name, body: body, timeout: timeout)
        return try Self.decodeEnvelope(Method.Result.self, status: response.status, body: response.body)
    }

    /// Decodes `{"ok":true,"result":…}` or maps `{"ok":false,"error_code":…,"description":…}` to its error.
    public static func decodeEnvelope<Result: Decodable>(_ type: Result.Type, status: Int, body: [UInt8]) throws(TelegramError) -> Result {
        let decoder = JSONDecoder()
        let header: EnvelopeHeader
        do {
            header = try decoder.decode(EnvelopeHeader.self, from: Data(body))
        } catch {
            throw .invalidResponse(description: "HTTP \(status) with a body that is not a Bot API envelope")
        }
        guard header.ok else {
            throw TelegramError.classify(
                status: header.errorCode ?? status,
                description: header.description ?? "HTTP \(status)",
                parameters: header.parameters
            )
        }
        do {
            return try decoder.decode(ResultEnvelope<Result>.self, from: Data(body)).result
        } catch {
            throw .invalidResponse(description: "result does not decode as \(Result.self): \(error)")
        }
    }
}

struct EnvelopeHeader: Decodable {
    var ok: Bool
    var errorCode: Int?
    var description: String?
    var parameters: ResponseParameters?

    enum CodingKeys: String, CodingKey {
        case ok, description, parameters
        case errorCode = "error_code"
    }
}

struct ResultEnvelope<Result: Decodable>: Decodable {
    var result: Result
}
