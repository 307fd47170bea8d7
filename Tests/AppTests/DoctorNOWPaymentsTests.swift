import App
import Foundation
import NOWPaymentsFake
import OperatorCommands
import TestSupport
import Testing

@Suite("telepay doctor: NOWPayments")
struct DoctorNOWPaymentsTests {
    func configuration(_ extra: [String: String]) throws -> Configuration {
        try Configuration.load(environment: ["TELEPAY_DATA_DIR": "/tmp/unused"].merging(extra) { $1 })
    }

    @Test("with a key, GET /status answering OK passes; a failing provider fails the check with the cause")
    func statusCheck() async throws {
        let fake = FakeNOWPayments()
        let (baseURL, server) = try await fake.start()
        defer { server.cancel() }
        let configured = try configuration([
            "TELEPAY_NOWPAYMENTS_API_URL": baseURL, "TELEPAY_NOWPAYMENTS_API_KEY": fake.apiKey, "TELEPAY_NOWPAYMENTS_IPN_SECRET": fake.ipnSecret,
        ])
        let healthy = await Doctor.checkNOWPayments(configured, logger: quietLogger)
        #expect(healthy.map(\.outcome) == [.ok, .ok])
        #expect(healthy[0].detail == "\(baseURL) answers GET /status with OK")
        #expect(await fake.requests.map(\.path) == ["status"])

        await fake.setOutage(.serverError(503))
        let down = await Doctor.checkNOWPayments(configured, logger: quietLogger)
        #expect(down[0].outcome == .failed)
        #expect(down[0].detail.contains("provider error 503: Internal server error"))
    }

    @Test("without a key or an IPN secret the checks warn and say what is missing, without calling anyone")
    func unconfigured() async throws {
        let checks = await Doctor.checkNOWPayments(try configuration([:]), logger: quietLogger)
        #expect(checks.map(\.outcome) == [.warning, .warning])
        #expect(checks[0].detail.contains("TELEPAY_NOWPAYMENTS_API_KEY is unset"))
        #expect(checks[1].detail.contains("TELEPAY_NOWPAYMENTS_IPN_SECRET is unset"))
    }
}
