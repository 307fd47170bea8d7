import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Payments
import Subscriptions

/// `POST /payments/nowpayments/ipn`: NOWPayments' payment callbacks. The receiver verifies the signature
/// and files the callback in the inbox before this answers, so a 200 means it is durably stored (or was
/// already); NOWPayments re-sends on anything else.
struct NOWPaymentsIPNRoute: Sendable {
    static let path = SubscriptionSettings.ipnPath
    static let signatureHeader = HTTPField.Name("x-nowpayments-sig")!

    let receiver: NOWPaymentsIPNReceiver
    let maxBodyBytes: Int

    func register(on router: Router<BasicRequestContext>) {
        router.post(RouterPath(Self.path)) { request, _ -> Response in
            try await handle(request)
        }
    }

    func handle(_ request: Request) async throws -> Response {
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
            case .signature: throw HTTPError(.unauthorized, message: rejection.description)
            case .invalidJSON, .invalidNotification: throw HTTPError(.badRequest, message: rejection.description)
            }
        }
    }
}
