import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Payments
import Subscriptions

/// `POST /payments/nowpayments/ipn`: NOWPayments' payment callbacks. The receiver verifies the signature
/// and files the callback in the inbox before this answers, so a 200 means it is durably stored (or was
/// already); NOWPayments re-sends on anything else.
///
/// Anyone can post here, so what a request costs before its signature is known stays small: the body is
/// read only up to the route's own limit (callbacks are a few kB), the receiver refuses bodies shaped
/// unlike any callback before re-serialising them, and a client whose signatures keep failing is answered
/// 429 without its body being read at all.
struct NOWPaymentsIPNRoute: Sendable {
    static let path = SubscriptionSettings.ipnPath
    static let signatureHeader = HTTPField.Name("x-nowpayments-sig")!

    let receiver: NOWPaymentsIPNReceiver
    let maxBodyBytes: Int
    let throttle: FailedSignatureThrottle
    let logger: Logger

    func register(on router: Router<TelePayRequestContext>) {
        router.post(RouterPath(Self.path)) { request, context -> Response in
            try await handle(request, client: context.clientKey)
        }
    }

    func handle(_ request: Request, client: String) async throws -> Response {
        if let wait = throttle.retryAfter(client) {
            let seconds = max(1, wait.components.seconds + (wait.components.attoseconds > 0 ? 1 : 0))
            logger.debug("throttled NOWPayments IPN from a client whose signatures keep failing", metadata: ["peer": "\(client)"])
            throw HTTPError(
                .tooManyRequests, headers: [.retryAfter: String(seconds)],
                message: "too many callbacks with a wrong signature from this address; try again in \(seconds) s"
            )
        }
        var request = request
        let body = try await request.collectBody(upTo: maxBodyBytes)
        do {
            let receipt = try await receiver.receive(body: Array(body.readableBytesView), signature: request.headers[Self.signatureHeader])
            switch receipt {
            case .stored: return HTTPRoutes.jsonResponse(.ok, ["status": "stored"])
            case .duplicate: return HTTPRoutes.jsonResponse(.ok, ["status": "duplicate"])
            }
        } catch let rejection as IPNRejection {
            switch rejection {
            case .signature:
                throttle.recordFailure(client)
                throw HTTPError(.unauthorized, message: rejection.description)
            case .invalidJSON, .invalidNotification, .unlikeAnyCallback:
                // Unsigned junk counts against the client as a failed signature would.
                if case .invalidNotification = rejection {} else { throttle.recordFailure(client) }
                throw HTTPError(.badRequest, message: rejection.description)
            }
        }
    }
}
