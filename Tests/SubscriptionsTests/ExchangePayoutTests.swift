import BigInt
import Ethereum
import Exchange
import ExchangeOrders
import Foundation
import HotWallet
import Money
import Payouts
import PostgresNIO
import Storage
import Subscriptions
import Synchronization
import TestPeers
import TestSupport
import Testing

/// Exchange alerts a test reads.
final class RecordedExchangeAlerts: ExchangeAlertSink {
    private let alerts = Mutex<[ExchangeAlert]>([])
    var all: [ExchangeAlert] { alerts.withLock { $0 } }
    func raise(_ alert: ExchangeAlert) async { alerts.withLock { $0.append(alert) } }
}

/// Payout events a test reads.
final class RecordedPayoutEvents: PayoutEvents {
    private let events = Mutex<[String]>([])
    var all: [String] { events.withLock { $0 } }
    func payoutSent(_ payout: Payout) async { events.withLock { $0.append("sent \(payout.id)") } }
    func payoutArrived(_ payout: Payout) async {
        events.withLock { $0.append("arrived \(payout.id) \(payout.amountTo.map(DecimalText.plain) ?? "-")") }
    }
    func payoutFailed(_ payout: Payout, reason: String) async { events.withLock { $0.append("failed \(payout.id) fixable=\(payout.ownerFixable)") } }
}

/// An owner paid in USDC on Ethereum: NOWPayments settles ETH into the hot wallet on the local EVM, the fake
/// ChangeNOW watches that chain for deposits and pays USDC (a token on the same chain) to the owner.
struct ExchangePayoutWorld {
    let world: SubscriptionWorld
    let chain: LocalChain
    let sender: TransferSender
    let payouts: PayoutService
    let exchange: FakeChangeNow
    let exchangeAlerts: RecordedExchangeAlerts
    let events: RecordedPayoutEvents
    let hotWallet: Address
    let ownerWallet: Address
    let usdc: Address
    /// The ETH the test put in the hot wallet for gas, beyond what the ledger knows.
    let gasMoney: BigUInt

    static let usdcPerEth = Decimal(string: "2499.5")!

    static func with<R: Sendable>(
        _ world: SubscriptionWorld, verifyingAlertAfter: Duration = .seconds(3600), shortDepositPatience: Int = 3, timeout: Duration = .seconds(10),
        _ body: @Sendable (ExchangePayoutWorld) async throws -> R
    ) async throws -> R {
        let chain = try await EthereumTestNode.shared.chain()
        let key = try LocalChain.randomKey()
        let gasMoney = LocalChain.ether
        try await chain.fund(key.address, wei: gasMoney)
        await world.provider.settleOnChain { amount in
            try await chain.fund(key.address, wei: try TokenUnits.baseUnits(fromDecimal: DecimalText.plain(amount), decimals: 18))
        }
        let treasury = try await chain.fundedWallet(ether: 10)
        let usdc = try await chain.deployToken(name: "USD Coin", symbol: "USDC", decimals: 6, supply: BigUInt(10).power(15), holder: treasury.address)
        let fake = FakeChangeNow()
        await fake.settle(
            on: .init(rpc: chain.rpc, chainId: chain.chainId, treasury: treasury, tokens: ["usdc/eth": .init(address: usdc, decimals: 6)]),
            shortDepositPatience: shortDepositPatience
        )
        let ownerWallet = LocalChain.randomAddress()
        try await world.database.withConnection { connection in
            try await connection.run(
                """
                UPDATE channel_payout_settings SET currency_code = 'USDC', network_code = 'ETH', wallet_address = \(ownerWallet.checksummed),
                    strategy = \(PayoutStrategy.instant.rawValue)
                """,
                logger: quietLogger
            )
        }
        let sender = TransferSender(
            key: key, chainId: chain.chainId, rpc: chain.rpc, database: world.database, policy: SenderPolicy(confirmations: 1),
            alerts: IgnoredWalletAlerts(), logger: quietLogger
        )
        try await sender.start()
        return try await fake.serve { url in
            let api = ChangeNowClient(baseURL: url, apiKey: "test-api-key", timeout: timeout)
            let alerts = RecordedExchangeAlerts()
            let events = RecordedPayoutEvents()
            let orders = ExchangeOrderService(database: world.database, api: api, alerts: alerts, logger: quietLogger)
            let payouts = PayoutService(
                database: world.database, queue: world.queue, wallet: HotWalletPayouts(sender: sender, rpc: chain.rpc), settlement: .ether,
                exchange: PayoutExchange(
                    orders: orders, api: api, refundAddress: key.address.checksummed, verifyingAlertAfter: verifyingAlertAfter, minimumLifetime: .zero
                ),
                events: events, logger: quietLogger
            )
            return try await body(
                ExchangePayoutWorld(
                    world: world, chain: chain, sender: sender, payouts: payouts, exchange: fake, exchangeAlerts: alerts, events: events,
                    hotWallet: key.address, ownerWallet: ownerWallet, usdc: usdc, gasMoney: gasMoney
                ))
        }
    }

    /// A paid order of Anna's, settled.
    func sale() async throws {
        let invoice = try await world.order(SubscriptionWorld.anna)
        try await world.pay(invoice, through: ["finished"])
        try await world.waitForOrder(invoice.orderID!, "paid")
        try await world.settled()
    }

    /// Runs payout and hot-wallet passes until `done`, at most `passes` times.
    func drive(_ what: String, passes: Int = 25, until done: @Sendable () async throws -> Bool) async throws {
        for _ in 0..<passes {
            try await payouts.runPass()
            try await sender.runPass()
            if try await done() { return }
        }
        Issue.record("not reached after \(passes) passes: \(what)")
        throw SubscriptionWorld.WorldError.timedOut(what)
    }

    func payoutStates() async throws -> [String] {
        try await world.strings("SELECT state FROM payouts ORDER BY id")
    }

    func ledger(_ account: LedgerAccount) async throws -> Decimal {
        let text = try await world.strings(
            "SELECT coalesce(sum(amount), 0)::text FROM ledger_entries WHERE asset = 'ETH' AND account = \(account.rawValue)")
        return Decimal(string: text.first ?? "0") ?? -1
    }

    /// The ledger's promises: each transaction sums to zero per asset; per owner and channel, earned =
    /// pending + in flight + paid out, and the balances table equals the entries; the hot wallet on the chain
    /// holds what the ledger says plus the test's gas money.
    func expectBooksMatch(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let unbalanced = try await world.strings(
            "SELECT transaction_id::text FROM ledger_entries GROUP BY transaction_id, asset HAVING sum(amount) <> 0")
        #expect(unbalanced.isEmpty, sourceLocation: sourceLocation)
        let broken = try await world.strings(
            """
            SELECT b.channel_id::text FROM owner_balances b
            LEFT JOIN (SELECT owner_user_id, channel_id, asset,
                              -coalesce(sum(amount) FILTER (WHERE account = 'owner_payable'), 0) AS pending,
                              -coalesce(sum(amount) FILTER (WHERE account = 'owner_in_flight'), 0) AS in_flight
                       FROM ledger_entries WHERE channel_id IS NOT NULL GROUP BY 1, 2, 3) e
              ON e.owner_user_id = b.owner_user_id AND e.channel_id = b.channel_id AND e.asset = b.asset
            WHERE b.earned <> b.pending + b.in_flight + b.paid_out OR b.pending <> e.pending OR b.in_flight <> e.in_flight
               OR b.paid_out <> (SELECT coalesce(sum(amount), 0) FROM payouts p WHERE p.state = 'paid' AND p.channel_id = b.channel_id AND p.asset = b.asset)
            """
        )
        #expect(broken.isEmpty, "owner balances disagree with the ledger", sourceLocation: sourceLocation)
        let onChain = try await chain.rpc.balance(of: hotWallet, at: .latest)
        let expected = try await ledger(.hotWallet) + (Decimal(string: gasMoney.description) ?? 0)
        #expect(
            onChain.description == DecimalText.plain(expected), "chain \(onChain), ledger + gas money \(expected)", sourceLocation: sourceLocation)
    }
}

@Suite("Instant payouts through ChangeNOW, funded by the hot wallet")
struct ExchangePayoutTests {
    /// The owner's share of one $10 sale settled as 0.0040590 ETH with the 3 % fee: 0.00393723 ETH.
    static let share = Decimal(string: "3937230000000000")!

    @Test(
        "a share below ChangeNOW's minimum is carried over; three sales are paid as one exchange funded with exactly its amount, the owner's wallet gets USDC on the chain, gas is booked and the books match the chain"
    )
    func paidThroughTheExchange() async throws {
        try await withSubscriptionWorld { world in
            try await ExchangePayoutWorld.with(world) { payout in
                try await payout.sale()
                let first = try await payout.payouts.runPass()
                #expect(first.carried == 1 && first.planned == 0, "0.00393723 ETH is below the pair's 0.01 minimum")
                #expect(try await payout.ledger(.ownerPayable) == -Self.share, "the share stays pending, not failed")
                try await payout.sale()
                try await payout.sale()
                try await payout.drive("paid") { try await payout.payoutStates() == ["paid"] }

                let exchanges = await payout.exchange.exchanges()
                #expect(exchanges.count == 1, "one exchange, created once")
                let exchange = try #require(exchanges.first)
                #expect(exchange.expectedAmountFrom == Decimal(string: "0.01181169")!)
                #expect(exchange.amountFrom == exchange.expectedAmountFrom, "the hot wallet sent exactly the exchange's amount")
                #expect(exchange.payoutAddress == payout.ownerWallet.checksummed && exchange.refundAddress == payout.hotWallet.checksummed)
                let amountTo = try #require(exchange.amountTo)
                let received = try await payout.chain.rpc.tokenBalance(token: payout.usdc, owner: payout.ownerWallet)
                #expect(
                    received == (try TokenUnits.baseUnits(fromDecimal: "\(amountTo)", decimals: 6)),
                    "the owner's wallet holds the exchange's amountTo")
                #expect(
                    try await world.strings(
                        "SELECT amount_to::text || ' ' || (payout_hash = \(exchange.payoutHash)) || ' ' || (gas_units > 0) FROM payouts")
                        == ["\(DecimalText.plain(amountTo)) true true"])
                #expect(try await payout.ledger(.ownerInFlight) == 0)
                #expect(try await payout.ledger(.ownerPayable) == 0)
                #expect(try await payout.ledger(.exchangeClearing) == 0)
                #expect(try await payout.ledger(.networkFees) > 0, "the funding transfer's gas is the platform's network fee")
                #expect(
                    try await world.strings("SELECT earned::text || '=' || paid_out::text FROM owner_balances WHERE asset = 'ETH'")
                        == ["11811690000000000=11811690000000000"])
                #expect(payout.events.all.count == 2 && payout.events.all.last?.hasPrefix("arrived") == true)
                try await payout.expectBooksMatch()
                // The owner hears both, in their coin, with a link to the transaction that paid them.
                try await world.eventually("the owner hears the payout was sent and arrived") {
                    let sent = await world.ownerHeard("Payout sent")
                    let arrived = await world.ownerHeard("Payout arrived")
                    return sent && arrived
                }
                let arrived = await world.messages(to: SubscriptionWorld.owner, containing: "Payout arrived")
                #expect(arrived.count == 1)
                #expect(arrived.first?.contains("\(DecimalText.plain(amountTo)) USDC") == true, "\(arrived)")
                #expect(arrived.first?.contains("https://etherscan.io/tx/\(exchange.payoutHash ?? "-")") == true, "\(arrived)")
            }
        }
    }

    @Test(
        "a refunded exchange: the deposit returns to the hot wallet on the chain, the amount is pending again, admins are alerted, nothing is re-planned until an operator releases it, and then it is paid"
    )
    func refundedExchange() async throws {
        try await withSubscriptionWorld { world in
            try await ExchangePayoutWorld.with(world) { payout in
                await payout.exchange.script(next: .refund)
                for _ in 0..<3 { try await payout.sale() }
                try await payout.drive("refunded") { try await payout.payoutStates() == ["failed"] }
                let refunded = try await world.strings("SELECT refund_units::text FROM payouts")
                #expect(refunded.count == 1 && refunded[0] != "0")
                #expect(try await payout.ledger(.ownerPayable) == -3 * Self.share, "the whole amount is pending again")
                #expect(try await payout.ledger(.exchangeClearing) == 0)
                try await payout.expectBooksMatch()
                try await world.eventually("the admins are alerted") {
                    world.alerts.all.contains { if case .payoutFailed = $0 { true } else { false } }
                }
                #expect(payout.exchangeAlerts.all.contains { if case .exchangeRefunded = $0 { true } else { false } })
                #expect(try await payout.payouts.runPass().planned == 0, "not planned again on its own")

                let id = try #require(Int64(try await world.strings("SELECT id::text FROM payouts").first ?? ""))
                guard case .released = try await payout.payouts.desk.release(payoutID: id) else {
                    throw SubscriptionWorld.WorldError.timedOut("release")
                }
                guard case .refused = try await payout.payouts.desk.release(payoutID: id) else {
                    throw SubscriptionWorld.WorldError.timedOut("a second release is refused")
                }
                try await payout.drive("paid after release") { try await payout.payoutStates() == ["failed", "paid"] }
                #expect(await payout.exchange.exchanges().count == 2)
                try await payout.expectBooksMatch()
            }
        }
    }

    @Test("an exchange that fails after it was funded holds the payout (the money is at ChangeNOW) and alerts; a release is refused")
    func failedAfterFunding() async throws {
        try await withSubscriptionWorld { world in
            try await ExchangePayoutWorld.with(world) { payout in
                await payout.exchange.script(next: .fail)
                for _ in 0..<3 { try await payout.sale() }
                try await payout.drive("held") { try await payout.payoutStates() == ["held"] }
                #expect(try await payout.ledger(.ownerInFlight) == -3 * Self.share, "still in flight: not pending, not paid")
                #expect(try await payout.ledger(.exchangeClearing) == 3 * Self.share, "the money is at the exchange")
                try await world.eventually("the admins are alerted") {
                    world.alerts.all.contains { if case .payoutFailed = $0 { true } else { false } }
                }
                let id = try #require(Int64(try await world.strings("SELECT id::text FROM payouts").first ?? ""))
                guard case .refused = try await payout.payouts.desk.release(payoutID: id) else {
                    throw SubscriptionWorld.WorldError.timedOut("refused")
                }
                #expect(try await payout.payouts.runPass().planned == 0)
                try await payout.expectBooksMatch()
            }
        }
    }

    @Test("a wallet ChangeNOW rejects fails the payout before anything is created, as the owner's to fix; a new wallet is paid")
    func rejectedWallet() async throws {
        try await withSubscriptionWorld { world in
            try await ExchangePayoutWorld.with(world) { payout in
                try await world.database.withConnection { connection in
                    try await connection.run("UPDATE channel_payout_settings SET wallet_address = '0xNOTANADDRESS0000000000'", logger: quietLogger)
                }
                for _ in 0..<3 { try await payout.sale() }
                try await payout.drive("failed") { try await payout.payoutStates() == ["failed"] }
                #expect(await payout.exchange.exchanges().isEmpty, "nothing was created at ChangeNOW")
                #expect(try await world.strings("SELECT owner_fixable::text FROM payouts") == ["true"])
                #expect(payout.events.all.contains { $0.hasSuffix("fixable=true") })
                try await world.eventually("the owner is told to fix the wallet") {
                    await world.ownerHeard(world.text("owner.notice.payout_fix.invalid_wallet"))
                }
                #expect(try await payout.payouts.runPass().planned == 0, "the same wallet is not tried again")
                try await world.database.withConnection { connection in
                    try await connection.run(
                        "UPDATE channel_payout_settings SET wallet_address = \(payout.ownerWallet.checksummed)", logger: quietLogger)
                }
                try await payout.drive("paid to the new wallet") { try await payout.payoutStates() == ["failed", "paid"] }
                #expect(try await payout.chain.rpc.tokenBalance(token: payout.usdc, owner: payout.ownerWallet) > 0)
                try await payout.expectBooksMatch()
            }
        }
    }

    @Test(
        "429s, gateway errors and timeouts on every call and a create whose answer was lost: retried until paid, and only one exchange is ever funded"
    )
    func flakyExchange() async throws {
        try await withSubscriptionWorld { world in
            try await ExchangePayoutWorld.with(world, timeout: .seconds(2)) { payout in
                for path in [
                    "/v2/exchange/min-amount", "/v2/validate/address", "/v2/exchange/estimated-amount", "/v2/exchange", "/v2/exchange/by-id",
                ] {
                    await payout.exchange.failNext(path, status: .tooManyRequests)
                    await payout.exchange.failNext(path, status: .badGateway, code: "gateway")
                    await payout.exchange.delayNext(path, by: .seconds(3))
                }
                await payout.exchange.dropNextCreateResponses(1)
                for _ in 0..<3 { try await payout.sale() }
                try await payout.drive("paid", passes: 40) { try await payout.payoutStates() == ["paid"] }
                let exchanges = await payout.exchange.exchanges()
                #expect(exchanges.count >= 2, "the lost answer's exchange exists at ChangeNOW besides the funded one")
                var funded = 0
                for exchange in exchanges {
                    let balance = try await payout.chain.rpc.balance(of: try Address(parsing: exchange.payinAddress), at: .latest)
                    if balance > 0 || exchange.amountFrom != nil { funded += 1 }
                }
                #expect(funded == 1, "only the recorded exchange was funded")
                #expect(try await world.count("SELECT count(*) FROM exchange_create_attempts WHERE outcome = 'unknown'") >= 1)
                try await payout.expectBooksMatch()
            }
        }
    }

    @Test(
        "a price that moved under the minimum (out_of_range at the estimate) is not a failure: the amount is pending again, nobody is alerted, and it is paid on a later pass"
    )
    func outOfRangeIsCarriedOver() async throws {
        try await withSubscriptionWorld { world in
            try await ExchangePayoutWorld.with(world) { payout in
                await payout.exchange.failNext("/v2/exchange/estimated-amount", status: .badRequest, code: "out_of_range")
                for _ in 0..<3 { try await payout.sale() }
                let first = try await payout.payouts.runPass()
                #expect(first.planned == 1 && first.failed == 1)
                #expect(try await payout.ledger(.ownerPayable) == -3 * Self.share, "the amount is pending again")
                #expect(
                    try await world.strings("SELECT (released_at IS NOT NULL)::text FROM payouts") == ["true"],
                    "released at once: the next pass may plan it")
                try await payout.drive("paid") { try await payout.payoutStates() == ["failed", "paid"] }
                try await world.settled()
                #expect(!world.alerts.all.contains { if case .payoutFailed = $0 { true } else { false } }, "not an admin's problem")
                #expect(await world.messages(to: SubscriptionWorld.owner, containing: "failed").isEmpty, "nor the owner's")
                try await payout.expectBooksMatch()
            }
        }
    }

    @Test("an exchange held in verifying longer than the configured time alerts the admins once")
    func verifyingTooLong() async throws {
        try await withSubscriptionWorld { world in
            try await ExchangePayoutWorld.with(world, verifyingAlertAfter: .zero) { payout in
                for _ in 0..<3 { try await payout.sale() }
                try await payout.drive("exchanging") { try await payout.payoutStates() == ["exchanging"] }
                let id = try #require(await payout.exchange.exchanges().first?.id)
                try await payout.exchange.setStatus(id, "verifying")
                try await payout.payouts.runPass()
                try await payout.payouts.runPass()
                let verifying = payout.exchangeAlerts.all.filter { if case .verifyingTooLong = $0 { true } else { false } }
                #expect(verifying.count == 1)
                #expect(try await payout.payoutStates() == ["exchanging"], "a KYC hold is not a failure")
            }
        }
    }
}
