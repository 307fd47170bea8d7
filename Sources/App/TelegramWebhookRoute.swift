import Bot
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Storage
import TelegramBotAPI

/// `POST /telegram/webhook`: checks Telegram's secret header in constant time, stores the update durably,
/// wakes the processor and answers at once; handling happens after the answer.
struct TelegramWebhookRoute: Sendable {
    static let path = "telegram/webhook"

    let secret: Secret
    let database: Database
    let wakeUps: WakeUpSignal
    let maxBodyBytes: Int
    let logger: Logger

    func register(on router: Router<TelePayRequestContext>) {
        router.post(RouterPath(Self.path)) { request, _ -> Response in
            try await handle(request)
        }
    }

    func handle(_ request: Request) async throws -> Response {
        let presented = request.headers[HTTPField.Name("X-Telegram-Bot-Api-Secret-Token")!] ?? ""
        guard Self.constantTimeEquals(Array(presented.utf8), Array(secret.value.utf8)) else {
            logger.warning("rejected webhook call with a wrong secret token", metadata: ["presented_length": "\(presented.utf8.count)"])
            throw HTTPError(.unauthorized, message: "secret token mismatch")
        }
        var request = request
        let body = try await request.collectBody(upTo: maxBodyBytes)
        let data = Data(body.readableBytesView)
        let update: Update
        do {
            update = try JSONDecoder().decode(Update.self, from: data)
        } catch {
            logger.warning("webhook body is not an update", metadata: ["error": "\(error)"])
            throw HTTPError(.badRequest, message: "body is not a Telegram update")
        }
        let stored = try await WebhookUpdateStore.store(updateID: update.updateId, payload: String(decoding: data, as: UTF8.self), on: database)
        if stored { wakeUps.signal() }
        return HTTPRoutes.jsonResponse(.ok, ["ok": true])
    }

    /// Compares without an early exit, so the time taken does not reveal how much of the secret matched.
    static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        var difference = UInt8(lhs.count == rhs.count ? 0 : 1)
        for index in 0..<max(lhs.count, rhs.count) {
            difference |= (index < lhs.count ? lhs[index] : 0) ^ (index < rhs.count ? rhs[index] : 0)
        }
        return difference == 0
    }
}
