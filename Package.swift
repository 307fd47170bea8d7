// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "TelePay",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "telepay", targets: ["telepay"]),
        // The sandbox is its own program: the fakes it links are not in `telepay`, so `serve` cannot start them.
        .executable(name: "telepay-sandbox", targets: ["telepay-sandbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/attaswift/BigInt.git", from: "6.0.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .target(
            name: "Storage",
            dependencies: [
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Jobs",
            dependencies: [
                "Resilience",
                "Storage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TelegramBotAPI",
            dependencies: [
                "Resilience",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Spec"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PayoutAddresses",
            dependencies: [
                "Ethereum",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Localization",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Resilience",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Money",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Channels",
            dependencies: [
                "Money",
                "Storage",
                "PayoutAddresses",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Conversations",
            dependencies: [
                "Localization",
                "Money",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Broadcasts",
            dependencies: [
                "Storage",
                "Jobs",
                "Subscriptions",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Bot",
            dependencies: [
                "Resilience",
                "Channels",
                "Broadcasts",
                "Money",
                "Payouts",
                "TelegramBotAPI",
                "Storage",
                "Jobs",
                "Subscriptions",
                "Localization",
                "Conversations",
                "PayoutAddresses",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(
            name: "CSecp256k1",
            pkgConfig: "libsecp256k1",
            providers: [.apt(["libsecp256k1-dev"])]
        ),
        .target(
            name: "Ethereum",
            dependencies: [
                "CSecp256k1",
                .product(name: "BigInt", package: "BigInt"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Exchange",
            dependencies: [
                "Money",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HotWallet",
            dependencies: [
                "Ethereum",
                "Storage",
                .product(name: "BigInt", package: "BigInt"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ExchangeOrders",
            dependencies: [
                "Money",
                "Exchange",
                "Jobs",
                "Storage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Payments",
            dependencies: [
                "Resilience",
                "Storage",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Subscriptions",
            dependencies: [
                "Localization",
                "Resilience",
                "Channels",
                "Money",
                "Storage",
                "Jobs",
                "Payments",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Payouts",
            dependencies: [
                "Exchange",
                "ExchangeOrders",
                "Money",
                "Storage",
                "Jobs",
                "Subscriptions",
                "HotWallet",
                "Ethereum",
                .product(name: "BigInt", package: "BigInt"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "App",
            dependencies: [
                "Money",
                "Broadcasts",
                "Payouts",
                "Storage",
                "Jobs",
                "Bot",
                "Conversations",
                "Payments",
                "Subscriptions",
                "Localization",
                "TelegramBotAPI",
                "Ethereum",
                "Exchange",
                "ExchangeOrders",
                "HotWallet",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The operator's one-off commands (doctor, reports, reconciliation): only `telepay` runs them.
        .target(
            name: "OperatorCommands",
            dependencies: [
                "App",
                "Ethereum",
                "Exchange",
                "ExchangeOrders",
                "HotWallet",
                "Jobs",
                "Money",
                "Payments",
                "Payouts",
                "Storage",
                "Subscriptions",
                "TelegramBotAPI",
                .product(name: "BigInt", package: "BigInt"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "telepay",
            dependencies: [
                "App",
                "OperatorCommands",
                "Subscriptions",
                "Payouts",
                "Conversations",
                "Jobs",
                "Storage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Sandbox",
            dependencies: [
                "App",
                "Localization",
                "OperatorCommands",
                "Bot",
                "Jobs",
                "Payouts",
                "Storage",
                "Subscriptions",
                "TelegramBotAPI",
                "TelegramFake",
                "NOWPaymentsFake",
                "TestPeers",
                "Ethereum",
                "Money",
                .product(name: "BigInt", package: "BigInt"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            // The page's HTML, CSS and JavaScript are read from the checkout at run time, not built in.
            exclude: ["Web"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "telepay-sandbox",
            dependencies: [
                "App",
                "Sandbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TestSupport",
            dependencies: [
                "Storage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FakeServing",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/FakeServing",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TelegramFake",
            dependencies: [
                "FakeServing",
                "TelegramBotAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TelegramFake",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "NOWPaymentsFake",
            dependencies: [
                "FakeServing",
                "Payments",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/NOWPaymentsFake",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "telepay-bench",
            dependencies: [
                "Bot", "Broadcasts", "Conversations", "Storage", "Localization", "TelegramBotAPI", "TelegramFake", "App", "Payments", "Subscriptions",
                "Jobs",
                "Payouts", "Exchange", "ExchangeOrders", "Money", "TestPeers",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Tests/Benchmarks",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TelegramBotAPITests",
            dependencies: ["TelegramBotAPI", "TelegramFake", "TestSupport", "Storage"],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BotTests",
            dependencies: [
                "Bot", "Channels", "TelegramBotAPI", "TelegramFake", "TestSupport", "Storage", "Localization", "Conversations", "Jobs",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BroadcastsTests",
            dependencies: [
                "Broadcasts", "Bot", "Jobs", "Storage", "Localization", "Conversations", "TelegramBotAPI", "TelegramFake", "TestSupport",
                "BroadcastCrashChild",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ResilienceTests",
            dependencies: ["Resilience"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StorageTests",
            dependencies: [
                "Storage",
                "TestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TestPeers",
            dependencies: [
                "FakeServing",
                "Ethereum",
                "Exchange",
                "Payouts",
                "Storage",
                "TestSupport",
                .product(name: "BigInt", package: "BigInt"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/TestPeers",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "JobsTests",
            dependencies: [
                "Jobs",
                "Storage",
                "TestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // A separate program the crash and shutdown tests start, SIGKILL and SIGTERM; it keeps test-only
        // job kinds out of the shipped `telepay` binary.
        .executableTarget(
            name: "JobsCrashWorker",
            dependencies: [
                "Jobs",
                "Storage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Tests/JobsCrashWorker",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PayoutAddressesTests",
            dependencies: ["PayoutAddresses"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MoneyTests",
            dependencies: ["Money", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PaymentsTests",
            dependencies: ["Payments", "NOWPaymentsFake", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SubscriptionsTests",
            dependencies: [
                "Subscriptions", "Channels", "Bot", "Jobs", "Money", "Payments", "Storage", "Localization", "TelegramBotAPI",
                "NOWPaymentsFake", "TelegramFake", "TestSupport", "TestPeers", "Ethereum", "HotWallet", "Payouts", "Exchange", "ExchangeOrders",
                "PayoutCrashChild",
                .product(name: "BigInt", package: "BigInt"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EthereumTests",
            dependencies: [
                "Ethereum",
                "TestPeers",
                .product(name: "BigInt", package: "BigInt"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExchangeTests",
            dependencies: [
                "Exchange",
                "ExchangeOrders",
                "Jobs",
                "Storage",
                "TestPeers",
                "TestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "SenderCrashChild",
            dependencies: [
                "HotWallet",
                "Ethereum",
                "Storage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Tests/SenderCrashChild",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "BroadcastCrashChild",
            dependencies: [
                "Bot", "Broadcasts", "Storage", "TelegramBotAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Tests/BroadcastCrashChild",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "PayoutCrashChild",
            dependencies: [
                "Payouts", "HotWallet", "Ethereum", "Exchange", "ExchangeOrders", "Storage", "Jobs", "Subscriptions",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Tests/PayoutCrashChild",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HotWalletTests",
            dependencies: [
                "Money",
                "SenderCrashChild",
                "HotWallet",
                "Ethereum",
                "Exchange",
                "ExchangeOrders",
                "TestPeers",
                "TestSupport",
                .product(name: "BigInt", package: "BigInt"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AppTests",
            dependencies: [
                "FakeServing",
                "App",
                "OperatorCommands",
                "Payouts",
                "Exchange",
                "ExchangeOrders",
                "Jobs",
                "TestSupport",
                "TelegramFake",
                "TelegramBotAPI",
                "Bot",
                "Payments",
                "NOWPaymentsFake",
                "Ethereum",
                "HotWallet",
                "Subscriptions",
                "TestPeers",
                .product(name: "BigInt", package: "BigInt"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SandboxTests",
            dependencies: [
                "Localization",
                "App",
                "Sandbox",
                "TelegramFake",
                "NOWPaymentsFake",
                "TestSupport",
                "TestPeers",
                "Storage",
                "Ethereum",
                "Exchange",
                .product(name: "BigInt", package: "BigInt"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
