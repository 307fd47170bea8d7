// A broadcast sender in its own process, for the SIGKILL test in BroadcastsTests: it runs one broadcast's
// sends against a Bot API server (the test's fake) through the real client, limiter and Telegram delivery,
// until the broadcast is finished. The test kills it with SIGKILL mid-broadcast and starts it again.
//
// Exit codes: 0 finished, 3 not finished (paused, cancelled, or still running after 120 runs), 4 bad setup;
// a killed run ends by SIGKILL.

import Bot
import Broadcasts
import Foundation
import Logging
import Metrics
import PostgresNIO
import Storage
import TelegramBotAPI

struct NoDisplay: BroadcastProgressDisplay {
    func show(_ progress: BroadcastProgress) async {}
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

guard let broadcastID = Int64(value("CRASH_BROADCAST_ID")) else { fail("CRASH_BROADCAST_ID is not a number") }
let logger = Logger(label: "broadcast-crash-child") { _ in SwiftLogNoOpLogHandler() }
let database = Database(
    configuration: PostgresClient.Configuration(
        unixSocketPath: value("CRASH_DB_SOCKET"), username: value("CRASH_DB_USER"), password: nil, database: value("CRASH_DB_NAME")),
    poolSize: 12, logger: logger, metrics: NOOPMetricsHandler.instance
)
let client = TelegramClient(
    transport: HTTPTelegramTransport(baseURL: value("CRASH_BOT_URL"), token: value("CRASH_BOT_TOKEN"), logger: logger),
    limiter: OutboundLimiter(limits: .telegram), logger: logger
)
let store = BroadcastStore(database: database, logger: logger)
let sender = BroadcastSender(
    store: store, delivery: TelegramBroadcastDelivery(client: client, database: database, logger: logger), display: NoDisplay(),
    settings: BroadcastSenderSettings(concurrency: 8, progressInterval: .seconds(3))
)

let code: Int32 = await withTaskGroup(of: Int32?.self) { group in
    group.addTask {
        await database.run()
        return nil
    }
    group.addTask {
        do {
            // A run that ends `.running` left recipients waiting out flood control; the job engine would run it
            // again, so this process does.
            for _ in 0..<120 {
                let status = try await sender.send(broadcastID, logger: logger)
                guard status == .running else {
                    print("run ended: \(status.map { $0.rawValue } ?? "no broadcast")")
                    return status == .finished ? 0 : 3
                }
                try await Task.sleep(for: .seconds(1))
            }
            print("still running after 120 runs")
            return 3
        } catch {
            print("run failed: \(error)")
            return 3
        }
    }
    var result: Int32 = 3
    for await outcome in group {
        if let outcome {
            result = outcome
            group.cancelAll()
        }
    }
    return result
}
exit(code)
