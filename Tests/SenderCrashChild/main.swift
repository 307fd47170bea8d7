// A hot-wallet sender in its own process, for the crash campaign in HotWalletTests: it recovers, runs
// passes until every transfer is final, and SIGKILLs itself when it reaches the step named in
// CRASH_AT ("step:occurrence"), the way a power cut or an OOM kill would stop it.
//
// Exit codes: 0 all transfers final, 3 passes ran out first, 4 bad setup; killed runs end by SIGKILL.

import Ethereum
import Foundation
import HotWallet
import Logging
import Metrics
import PostgresNIO
import Storage

#if canImport(Glibc)
import Glibc
#endif

/// Kills the process at the n-th time a step is reached.
actor KillSwitch: SenderProbe {
    let step: SenderStep?
    let occurrence: Int
    var seen = 0

    init(_ plan: String) {
        let parts = plan.split(separator: ":")
        step = parts.first.flatMap { SenderStep(rawValue: String($0)) }
        occurrence = parts.count > 1 ? Int(parts[1]) ?? 1 : 1
    }

    func reached(_ reachedStep: SenderStep, transferID: Int64) async {
        guard reachedStep == step else { return }
        seen += 1
        if seen == occurrence {
            // Unbuffered, so the line is on disk before the kill.
            FileHandle.standardOutput.write(Data("killing at \(reachedStep.rawValue) #\(seen) (transfer \(transferID))\n".utf8))
            kill(getpid(), SIGKILL)
        }
    }
}

struct Silent: WalletAlertSink {
    func raise(_ alert: WalletAlert) async {
        print("alert: \(alert)")
    }
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
guard let chainId = UInt64(value("CRASH_CHAIN_ID")), let stuckMilliseconds = Int64(value("CRASH_STUCK_MS")),
    let maxPasses = Int(value("CRASH_MAX_PASSES")), let confirmations = UInt64(value("CRASH_CONFIRMATIONS"))
else { fail("numeric settings are not numbers") }

let logger = Logger(label: "crash-child") { _ in SwiftLogNoOpLogHandler() }
let database = Database(
    configuration: PostgresClient.Configuration(
        unixSocketPath: value("CRASH_DB_SOCKET"), username: value("CRASH_DB_USER"), password: nil, database: value("CRASH_DB_NAME")),
    poolSize: 2, logger: logger, metrics: NOOPMetricsHandler.instance
)
let sender = TransferSender(
    key: key, chainId: chainId, rpc: HTTPEthereumRPC(url: value("CRASH_RPC_URL"), timeout: .seconds(30)), database: database,
    policy: SenderPolicy(confirmations: confirmations, stuckAfter: .milliseconds(stuckMilliseconds)),
    alerts: Silent(), probe: KillSwitch(environment["CRASH_AT"] ?? ""), logger: logger
)

let code: Int32 = await withTaskGroup(of: Void.self) { group in
    group.addTask { await database.run() }
    defer { group.cancelAll() }
    do {
        try await sender.start()
        try await sender.recover()
        for _ in 0..<maxPasses {
            if try await sender.transfers(in: [.queued, .signed, .broadcast, .mined]).isEmpty { return 0 }
            try await Task.sleep(for: .milliseconds(25))
            try await sender.runPass()
        }
        return try await sender.transfers(in: [.queued, .signed, .broadcast, .mined]).isEmpty ? 0 : 3
    } catch {
        print("error: \(error)")
        return 5
    }
}
exit(code)
