import Foundation
import Jobs
import Payments
import PostgresNIO
import Subscriptions
import TestSupport
import Testing

@Suite("A stored callback enqueues its processing in the same statement")
struct InboxEnqueueTests {
    @Test("the trigger writes exactly the job row JobQueue writes for ProcessPaymentJob, once per inbox row")
    func triggerMatchesJobQueue() async throws {
        try await withMigratedDatabase { database in
            let notification = PaymentNotification(
                provider: "nowpayments", paymentID: "5077125051", status: .finished, orderID: "tp-abcdefghijklmnopqrstuv",
                invoiceID: nil, signatureVariant: "recursive", payload: "{}"
            )
            let inboxID = try #require(
                try await database.withConnection { connection in
                    try await PaymentInboxStore.record(notification, on: connection, logger: quietLogger)
                })
            let duplicate = try await database.withConnection { connection in
                try await PaymentInboxStore.record(notification, on: connection, logger: quietLogger)
            }
            #expect(duplicate == nil)
            let expected = ProcessPaymentJob(inboxID: inboxID)
            let swiftPayload = String(decoding: try JSONEncoder().encode(expected), as: UTF8.self)
            let rows = try await database.withConnection { connection in
                let rows = try await connection.query(
                    """
                    SELECT kind, max_attempts, unique_key, payload = \(swiftPayload)::jsonb, payload::text, state
                    FROM jobs ORDER BY id
                    """,
                    logger: quietLogger
                )
                var all: [(String, Int, String?, Bool, String, String)] = []
                for try await row in rows.decode((String, Int, String?, Bool, String, String).self) { all.append(row) }
                return all
            }
            #expect(rows.count == 1, "one job for one stored callback; the duplicate stored nothing")
            let job = try #require(rows.first)
            #expect(job.0 == ProcessPaymentJob.kind)
            #expect(job.1 == ProcessPaymentJob.maxAttempts)
            #expect(job.2 == expected.uniqueKey)
            #expect(job.3, "payload \(job.4) equals the encoded job \(swiftPayload)")
            #expect(try JSONDecoder().decode(ProcessPaymentJob.self, from: Data(job.4.utf8)).inboxID == inboxID)
            #expect(job.5 == "available")
        }
    }
}
