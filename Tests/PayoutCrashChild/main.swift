// The payout engine and the hot-wallet sender in their own process, for the payout crash campaigns in
// SubscriptionsTests: it recovers, runs payout and sender passes until no payout is open and nothing is
// pending, and SIGKILLs itself when it reaches the payout step named in CRASH_AT ("step:occurrence"), the
// way a power cut or an OOM kill would stop it. ChangeNOW is the test's fake, reached over HTTP. With
// CRASH_MODE=threshold it runs the batch conversion to USDT (token CRASH_USDT) and the USDT payouts instead
// of instant payouts; the kill switch counts the conversion's steps and the payouts' together.
//
// Exit codes: 0 everything paid, 3 passes ran out first, 4 bad setup, 5 an error; killed runs end by SIGKILL.

import Ethereum
import Exchange
import ExchangeOrders
import Foundation
import HotWallet
import Jobs
import Logging
import Metrics
import Payouts
import PostgresNIO
import Storage
import Subscriptions

#if canImport(Glibc)
import Glibc
#endif

/// Kills the process at the n-th time a step is reached.
actor KillSwitch: PayoutProbe {
    let step: PayoutStep?
    let occurrence: Int
    var seen = 0

    init(_ plan: String) {
        let parts = plan.split(separator: ":")
        step = parts.first.flatMap { PayoutStep(rawValue: String($0)) }
        occurrence = parts.count > 1 ? Int(parts[1]) ?? 1 : 1
    }

    func reached(_ reachedStep: PayoutStep, payoutID: Int64) async {
        guard reachedStep == step else { return }
        seen += 1
        if seen == occurrence {
            FileHandle.standardOutput.write(Data("killing at \(reachedStep.rawValue) #\(seen) (payout \(payoutID))\n".utf8))
            kill(getpid(), SIGKILL)
        }
    }
}

struct Printed: WalletAlertSink {
    func raise(_ alert: WalletAlert) async { print("alert: \(alert)") }
}

func fail(_ message: String) -> Never {
    print("setup: \(message)")
    exit(4)
}

let environment = ProcessInfo.processInfo.environment
func value(_ name: String) -> String {
    guard let value = environment[name], !value.isEmpty else { fail("\(name) is not set") }
    return value
}

let key: PrivateKey
do {
    key = try PrivateKey(bytes: try Hex.decodeData(value("CRASH_KEY")))
} catch {
    fail("CRASH_KEY: \(error)")
}
guard let chainId = UInt64(value("CRASH_CHAIN_ID")), let maxPasses = Int(value("CRASH_MAX_PASSES")) else { fail("numeric settings are not numbers") }

let logger = Logger(label: "payout-crash-child") { _ in SwiftLogNoOpLogHandler() }
let database = Database(
    configuration: PostgresClient.Configuration(
        unixSocketPath: value("CRASH_DB_SOCKET"), username: value("CRASH_DB_USER"), password: nil, database: value("CRASH_DB_NAME")),
    poolSize: 4, logger: logger, metrics: NOOPMetricsHandler.instance
)
let rpc = HTTPEthereumRPC(url: value("CRASH_RPC_URL"), timeout: .seconds(30))
let sender = TransferSender(
    key: key, chainId: chainId, rpc: rpc, database: database, policy: SenderPolicy(confirmations: 1), alerts: Printed(), logger: logger)
let api = ChangeNowClient(baseURL: value("CRASH_CHANGENOW_URL"), apiKey: "test-api-key", timeout: .seconds(10))
let threshold = environment["CRASH_MODE"] == "threshold"
let killSwitch = KillSwitch(environment["CRASH_AT"] ?? "")
let queue = JobQueue(database: database, logger: logger)
let orders = ExchangeOrderService(database: database, api: api, logger: logger)
let payouts: PayoutService
var conversions: ConversionService?
if threshold {
    let usdt: Address
    do { usdt = try Address(parsing: value("CRASH_USDT")) } catch { fail("CRASH_USDT: \(error)") }
    conversions = ConversionService(
        database: database, queue: queue, wallet: HotWalletPayouts(sender: sender, rpc: rpc),
        arrivals: ChainConversionArrivals(rpc: rpc, token: usdt, wallet: key.address, confirmations: 1), settlement: .ether,
        exchange: PayoutExchange(orders: orders, api: api, refundAddress: key.address.checksummed, minimumLifetime: .zero),
        hotWallet: key.address.checksummed, settings: ConversionSettings(minimumUSD: 20, interval: .zero), probe: killSwitch, logger: logger
    )
    payouts = PayoutService(
        database: database, queue: queue, wallet: HotWalletPayouts(sender: sender, rpc: rpc, asset: .token(usdt)), settlement: .usdt,
        exchange: PayoutExchange(
            orders: orders, api: api, refundAddress: key.address.checksummed, from: ExchangeLeg(currency: "usdt", network: "eth"),
            minimumLifetime: .zero
        ),
        probe: killSwitch, planning: .converted(unitsPerUSD: SettlementAsset.usdt.unitsPerCoin), logger: logger
    )
} else {
    payouts = PayoutService(
        database: database, queue: queue, wallet: HotWalletPayouts(sender: sender, rpc: rpc), settlement: .ether,
        exchange: PayoutExchange(orders: orders, api: api, refundAddress: key.address.checksummed),
        probe: killSwitch, logger: logger
    )
}

/// Nothing open and nothing pending: every share paid (threshold mode: converted, but the wei below
/// ChangeNOW's 8 decimals, and the USDT paid).
func done() async throws -> Bool {
    try await database.withConnection { connection in
        let open = try await connection.query(
            """
            SELECT (SELECT count(*) FROM payouts WHERE state IN ('planned', 'sending', 'exchanging', 'held'))
                 + (SELECT count(*) FROM conversions WHERE state IN ('planned', 'sending', 'exchanging', 'held'))
                 + (SELECT count(*) FROM owner_balances WHERE asset = 'ETH' AND pending >= \(threshold ? 10_000_000_000 : 1))
                 + (SELECT count(*) FROM owner_balances WHERE asset = 'USDT' AND pending > 0)
            """,
            logger: logger
        ).collect().first?.decode(Int64.self)
        return open == 0
    }
}

let code: Int32 = await withTaskGroup(of: Void.self) { group in
    group.addTask { await database.run() }
    defer { group.cancelAll() }
    do {
        try await sender.start()
        try await sender.recover()
        for _ in 0..<maxPasses {
            if try await done() { return 0 }
            try await conversions?.runPass()
            try await payouts.runPass()
            try await sender.runPass()
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await done() ? 0 : 3
    } catch {
        print("error: \(error)")
        return 5
    }
}
exit(code)
