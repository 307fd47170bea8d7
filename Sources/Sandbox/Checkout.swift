import Foundation
import Money
import NOWPaymentsFake

struct CheckoutRequest: Decodable, Sendable {
    var invoice: String
    /// `full`, `part`, `expire`, `fail` or `refund`.
    var action: String
    var coin: String?
}

struct CheckoutResult: Encodable, Sendable {
    struct Delivery: Encodable, Sendable {
        var paymentID: Int64
        var status: String
        var answer: Int
    }

    var deliveries: [Delivery]
}

/// The sandbox's stand-in for NOWPayments' payment page: each button moves a payment of the invoice through the
/// statuses NOWPayments would, and posts each signed IPN to TelePay's real callback route.
struct Checkout {
    let world: SandboxWorldState

    static let coins = ["eth", "btc", "ltc", "usdttrc20", "usdc"]

    /// What one coin is worth in USD in the sandbox: the fake's settlement rate (in ETH) at 2,500 USD per ETH.
    static func usdPerCoin(_ coin: String) -> Decimal? {
        FakeNOWPayments.settlementRates[coin].map { $0 * 2500 }
    }

    /// The price of `price` USD in `coin`, rounded up to 8 decimals (NOWPayments asks for at least the price).
    static func amount(_ price: String, in coin: String) -> Decimal? {
        guard let usd = DecimalText.parse(price), let rate = usdPerCoin(coin), rate > 0 else { return nil }
        var exact = usd / rate
        var rounded = Decimal()
        NSDecimalRound(&rounded, &exact, 8, .up)
        return rounded
    }

    func perform(_ request: CheckoutRequest) async throws -> CheckoutResult {
        let payments = world.payments
        guard let invoice = await payments.invoices[request.invoice] else { throw SandboxActionError.invalid("no such invoice") }
        guard let port = world.port else { throw SandboxActionError.invalid("TelePay is not listening yet") }
        let coin = request.coin ?? "eth"
        let statuses: [String]
        var paymentID: Int64
        switch request.action {
        case "refund":
            guard
                let paid = await payments.payments.values.filter({ $0.invoiceID == invoice.id && ["finished", "partially_paid"].contains($0.status) })
                    .max(by: { $0.id < $1.id })
            else { throw SandboxActionError.invalid("nothing was paid on this invoice, so nothing can be refunded") }
            paymentID = paid.id
            statuses = ["refunded"]
        case "full", "part", "expire", "fail":
            guard Self.coins.contains(coin), let amount = Self.amount(invoice.priceAmount, in: coin) else {
                throw SandboxActionError.invalid("pay with one of \(Self.coins.joined(separator: ", "))")
            }
            do {
                paymentID = try await payments.startPayment(invoiceID: invoice.id, payCurrency: coin, payAmount: amount)
            } catch {
                throw SandboxActionError.invalid("NOWPayments refuses the payment: \(error)")
            }
            statuses =
                switch request.action {
                case "full": ["waiting", "confirming", "finished"]
                case "part": ["waiting", "partially_paid"]
                case "expire": ["waiting", "expired"]
                default: ["waiting", "failed"]
                }
        default:
            throw SandboxActionError.invalid("unknown checkout action \(request.action): full, part, expire, fail or refund")
        }
        var deliveries: [CheckoutResult.Delivery] = []
        for status in statuses {
            do {
                let ipn = try await payments.setStatus(paymentID, status)
                // Posted to this process whatever port it got; the signed body is the one NOWPayments would send.
                let local = FakeNOWPayments.IPN(
                    url: "http://127.0.0.1:\(port)/payments/nowpayments/ipn", paymentID: ipn.paymentID, status: ipn.status,
                    body: ipn.body, signature: ipn.signature
                )
                deliveries.append(.init(paymentID: paymentID, status: status, answer: try await payments.deliver(local)))
            } catch {
                throw SandboxActionError.invalid("the \(status) callback could not be delivered: \(error)")
            }
        }
        return CheckoutResult(deliveries: deliveries)
    }
}
