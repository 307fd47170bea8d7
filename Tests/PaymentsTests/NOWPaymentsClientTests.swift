import Foundation
import NOWPaymentsFake
import Payments
import TestSupport
import Testing

@Suite("NOWPayments client against the fake API")
struct NOWPaymentsClientTests {
    /// Runs `body` with a started fake and a client pointed at it; retries are fast so tests stay quick.
    func withClient(
        apiKey: String? = nil, timeout: Duration = .seconds(5), attempts: Int = 3,
        _ body: @Sendable (FakeNOWPayments, NOWPaymentsClient) async throws -> Void
    ) async throws {
        let fake = FakeNOWPayments()
        let (baseURL, server) = try await fake.start()
        defer { server.cancel() }
        let client = NOWPaymentsClient(
            configuration: .init(
                baseURL: URL(string: baseURL)!, apiKey: apiKey ?? fake.apiKey, requestTimeout: timeout,
                retry: .init(maxAttempts: attempts, baseDelay: .milliseconds(1), maxDelay: .milliseconds(5))
            ),
            logger: quietLogger
        )
        try await body(fake, client)
    }

    static let request = InvoiceRequest(
        priceAmount: Decimal(string: "9.99")!, priceCurrency: "usd", orderID: "ord-7Hq2", orderDescription: "Channel “Alpha” — 30 days",
        ipnCallbackURL: URL(string: "https://telepay.example.com/payments/nowpayments/ipn"),
        successURL: URL(string: "https://t.me/telepay_test_bot"), cancelURL: URL(string: "https://t.me/telepay_test_bot"),
        isFixedRate: false
    )

    @Test("an invoice is created with the api key and exactly the documented fields, the amount exact")
    func createInvoice() async throws {
        try await withClient { fake, client in
            let invoice = try await client.createInvoice(Self.request)
            #expect(invoice.priceAmount == Decimal(string: "9.99"))
            #expect(invoice.priceCurrency == "usd")
            #expect(invoice.orderID == "ord-7Hq2")
            #expect(invoice.invoiceURL.absoluteString == "https://nowpayments.io/payment/?iid=\(invoice.id)")
            let stored = try #require(await fake.invoices[invoice.id])
            #expect(stored.priceAmount == "9.99")
            #expect(stored.orderDescription == "Channel “Alpha” — 30 days")
            #expect(stored.ipnCallbackURL == "https://telepay.example.com/payments/nowpayments/ipn")
            let sent = try #require(await fake.requests.last)
            #expect(sent.method == "POST" && sent.path == "invoice" && sent.apiKey == fake.apiKey)
            #expect(sent.body.hasPrefix(#"{"price_amount":9.99,"price_currency":"usd","order_id":"ord-7Hq2""#))
        }
    }

    @Test("a payment is read with every amount exact and ids given as numbers become the same digits")
    func getPayment() async throws {
        try await withClient { fake, client in
            let invoice = try await client.createInvoice(Self.request)
            let id = try await fake.startPayment(invoiceID: invoice.id, payAmount: Decimal(string: "0.00414231")!)
            _ = try await fake.setStatus(id, "partially_paid", actuallyPaid: Decimal(string: "0.00400001")!)
            let payment = try await client.payment(id: String(id))
            #expect(payment.id == String(id))
            #expect(payment.invoiceID == invoice.id)
            #expect(payment.status == .partiallyPaid)
            #expect(payment.orderID == "ord-7Hq2")
            #expect(payment.priceAmount == Decimal(string: "9.99"))
            #expect(payment.payAmount == Decimal(string: "0.00414231"))
            #expect(payment.actuallyPaid == Decimal(string: "0.00400001"))
            #expect(payment.outcomeAmount == Decimal(string: "0.0039600099"))
            #expect(payment.payCurrency == "eth")
        }
    }

    @Test("the documented GET /payment example decodes, including string amounts and null fields")
    func documentedPaymentExample() throws {
        let json = try ExactJSON.parse(
            Array(
                #"""
                {"payment_id":6249365965,"invoice_id":null,"payment_status":"finished","pay_address":"address","payin_extra_id":null,
                 "price_amount":1,"price_currency":"usd","pay_amount":11.8,"actually_paid":12,"pay_currency":"trx","order_id":null,
                 "order_description":null,"purchase_id":5312822613,"outcome_amount":11.8405,"outcome_currency":"trx","payout_hash":"hash",
                 "payin_hash":"hash","created_at":"2023-07-28T15:06:09.932Z","updated_at":"2023-07-28T15:09:40.535Z",
                 "burning_percent":"null","type":"crypto2crypto","payment_extra_ids":[5513339153]}
                """#.utf8))
        let payment = try NOWPaymentsClient.decodePayment(json)
        #expect(
            payment
                == Payment(
                    id: "6249365965", status: .finished, priceAmount: 1, priceCurrency: "usd", payAmount: Decimal(string: "11.8")!,
                    actuallyPaid: 12, payCurrency: "trx", outcomeAmount: Decimal(string: "11.8405")!, outcomeCurrency: "trx",
                    updatedAt: "2023-07-28T15:09:40.535Z"
                ))
        #expect(throws: PaymentProviderError.invalidResponse(description: #"payment field "payment_id" is not an id (a string or a whole number)"#)) {
            try NOWPaymentsClient.decodePayment(try ExactJSON.parse(Array(#"{"payment_id":1.5,"payment_status":"waiting"}"#.utf8)))
        }
        #expect(throws: PaymentProviderError.invalidResponse(description: #"payment field "pay_amount" is not an amount"#)) {
            try NOWPaymentsClient.decodePayment(try ExactJSON.parse(Array(#"{"payment_id":1,"payment_status":"waiting","pay_amount":true}"#.utf8)))
        }
    }

    @Test("the API's refusals come back typed with NOWPayments' code and message")
    func validationErrors() async throws {
        try await withClient { fake, client in
            var cheap = Self.request
            cheap.priceAmount = Decimal(string: "0.5")!
            await #expect(throws: PaymentProviderError.rejected(status: 400, code: "AMOUNT_MINIMAL_ERROR", message: "amountTo is too small")) {
                try await client.createInvoice(cheap)
            }
            var unknownCurrency = Self.request
            unknownCurrency.priceCurrency = "xyz"
            await #expect(throws: PaymentProviderError.rejected(status: 400, code: "CURRENCY_UNAVAILABLE", message: "Currency xyz is unavailable")) {
                try await client.createInvoice(unknownCurrency)
            }
            var badURL = Self.request
            badURL.ipnCallbackURL = URL(string: "ftp://telepay.example.com/ipn")
            await #expect(
                throws: PaymentProviderError.rejected(
                    status: 400, code: "INVALID_REQUEST_PARAMS",
                    message: #""ipn_callback_url" must be a valid uri with a scheme matching the http|https pattern"#
                )
            ) {
                try await client.createInvoice(badURL)
            }
            await #expect(throws: PaymentProviderError.notFound(code: "PAYMENT_NOT_FOUND", message: "Payment 123 not found")) {
                try await client.payment(id: "123")
            }
            await #expect(throws: PaymentProviderError.invalidRequest(reason: "payment id '../status' is not of letters, digits, '-' or '_'")) {
                try await client.payment(id: "../status")
            }
            #expect(await fake.invoices.isEmpty)
            #expect(await fake.requests.count == 4, "the malformed id never left the client")
        }
    }

    @Test("a wrong api key is unauthorized for both calls")
    func wrongKey() async throws {
        try await withClient(apiKey: "not-the-key") { fake, client in
            await #expect(throws: PaymentProviderError.unauthorized(code: "INVALID_API_KEY", message: "Invalid api key")) {
                try await client.createInvoice(Self.request)
            }
            await #expect(throws: PaymentProviderError.unauthorized(code: "INVALID_API_KEY", message: "Invalid api key")) {
                try await client.payment(id: "5077125051")
            }
            #expect(await fake.requests.count == 2, "401 is not retried")
        }
    }

    @Test("reads are retried through 5xx and proxy errors, then give up with the last error")
    func readRetries() async throws {
        try await withClient(attempts: 3) { fake, client in
            let invoice = try await client.createInvoice(Self.request)
            let id = try await fake.startPayment(invoiceID: invoice.id, payAmount: 1)
            await fake.failNext([.serverError(500), .gatewayError(502)])
            #expect(try await client.payment(id: String(id)).status == .waiting)
            #expect(await fake.requests.count == 4)

            await fake.setOutage(.serverError(503))
            await #expect(throws: PaymentProviderError.server(status: 503, message: "Internal server error")) {
                try await client.payment(id: String(id))
            }
            #expect(await fake.requests.count == 7, "three attempts, no more")
            await fake.setOutage(.gatewayError(502))
            await #expect(throws: PaymentProviderError.server(status: 502, message: "<html><body><h1>502 Bad Gateway</h1></body></html>")) {
                try await client.status()
            }
        }
    }

    @Test("creating an invoice is never retried: one 5xx is one request and a typed error")
    func invoiceNotRetried() async throws {
        try await withClient(attempts: 5) { fake, client in
            await fake.failNext([.serverError(500)])
            await #expect(throws: PaymentProviderError.server(status: 500, message: "Internal server error")) {
                try await client.createInvoice(Self.request)
            }
            #expect(await fake.requests.count == 1)
            #expect(await fake.invoices.isEmpty)
        }
    }

    @Test("a slow provider times out; for an invoice the outcome is unknown and it is not sent again")
    func timeouts() async throws {
        // The deadline is generous so a loaded machine still answers the retried read in time; the stalled
        // answer comes far later still.
        try await withClient(timeout: .seconds(2), attempts: 2) { fake, client in
            await fake.failNext([.slow(.seconds(6))])
            await #expect(throws: PaymentProviderError.timedOut(after: .seconds(2))) {
                try await client.createInvoice(Self.request)
            }
            #expect(await fake.requests.count == 1)
            // The fake, like the real service, went on to create it: that is why the caller must look
            // before trying again rather than blindly re-send.
            #expect(await fake.invoices.count == 1)

            await fake.failNext([.slow(.seconds(6))])
            let message = try await client.status()
            #expect(message == "OK", "a read is retried after its timeout")
            #expect(await fake.requests.count == 3)
        }
    }

    @Test("an unreachable provider is a transient error: the request deadline ends AsyncHTTPClient's connect retries")
    func unreachable() async throws {
        // Port 1 on loopback has no listener; AsyncHTTPClient keeps re-trying the connection until the deadline.
        let client = NOWPaymentsClient(
            configuration: .init(baseURL: URL(string: "http://127.0.0.1:1/v1")!, apiKey: "k", requestTimeout: .milliseconds(300), retry: .none),
            logger: quietLogger
        )
        await #expect {
            try await client.createInvoice(Self.request)
        } throws: { error in
            return (error as? PaymentProviderError)?.isTransient == true
        }
    }

    @Test("GET /status answers OK and needs no key; the sandbox is just another base URL")
    func status() async throws {
        try await withClient(apiKey: "") { _, client in
            let message = try await client.status()
            #expect(message == "OK")
        }
        let sandbox = NOWPaymentsClient(
            configuration: .init(baseURL: URL(string: "https://api-sandbox.nowpayments.io/v1/")!, apiKey: "k"), logger: quietLogger
        )
        #expect(sandbox.configuration.baseURL.absoluteString == "https://api-sandbox.nowpayments.io/v1")
    }
}
