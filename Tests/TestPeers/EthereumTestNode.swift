import BigInt
import Ethereum
import Foundation
import Storage
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Why the local EVM could not be used. Tests that need it fail with this, never skip.
public enum EthereumTestNodeError: Error, CustomStringConvertible {
    case pythonNotFound
    case failedToStart(exitCode: Int32?, output: String)

    public var description: String {
        switch self {
        case .pythonNotFound:
            return "python3 is not on PATH (set TELEPAY_TEST_PYTHON); the Ethereum tests need it for Tests/EthereumNode/eth_test_node.py"
        case .failedToStart(let exitCode, let output):
            let how = exitCode.map { "exited with code \($0)" } ?? "did not report its port"
            return "the local EVM (Tests/EthereumNode/eth_test_node.py) \(how); run scripts/install-deps. Its output:\n\(output)"
        }
    }
}

/// One py-evm node (Tests/EthereumNode/eth_test_node.py) per test process, started on first use.
///
/// Tests share it, so each works with its own freshly funded wallet instead of resetting the chain,
/// and pauses mining only for its own sender (`hold`).
public actor EthereumTestNode {
    public static let shared = EthereumTestNode()

    private var starting: Task<LocalChain, any Error>?

    public func chain() async throws -> LocalChain {
        if let starting { return try await starting.value }
        let task = Task { try await Self.launch() }
        starting = task
        return try await task.value
    }

    public static var scriptPath: String { RepositoryPaths.root + "/Tests/EthereumNode/eth_test_node.py" }

    private static func launch() async throws -> LocalChain {
        let environment = ProcessInfo.processInfo.environment
        guard let python = environment["TELEPAY_TEST_PYTHON"] ?? findOnPath("python3", environment: environment) else {
            throw EthereumTestNodeError.pythonNotFound
        }
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("telepay-eth-node-\(UUID().uuidString.prefix(8)).log").path
        // The node watches this process and exits when it is gone, so a crashed test run leaves nothing behind.
        let pid = try ProcessRunner.spawn(python, [scriptPath, "--parent-pid", String(getpid())], environment: environment, outputPath: outputPath)
        // py-evm takes a few seconds to import on a busy machine; the limit only bounds a hung start.
        let deadline = ContinuousClock.now + .seconds(180)
        while ContinuousClock.now < deadline {
            let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            if let line = output.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }) {
                let url = String(line.split(separator: " ")[1])
                return try await LocalChain(url: url, pid: pid)
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                throw EthereumTestNodeError.failedToStart(exitCode: (status >> 8) & 0xff, output: output)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(pid, SIGKILL)
        throw EthereumTestNodeError.failedToStart(exitCode: nil, output: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }

    private static func findOnPath(_ name: String, environment: [String: String]) -> String? {
        for folder in (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// A running local chain: the production RPC client pointed at it, plus the node's test controls.
public struct LocalChain: Sendable {
    public let url: String
    public let pid: pid_t
    public let rpc: HTTPEthereumRPC
    public let chainId: UInt64

    init(url: String, pid: pid_t) async throws {
        self.url = url
        self.pid = pid
        self.rpc = HTTPEthereumRPC(url: url, timeout: .seconds(60))
        self.chainId = try await rpc.chainId()
    }

    public static let ether = BigUInt(10).power(18)
    public static let gwei = BigUInt(10).power(9)

    /// A new random key whose address holds `ether` ETH from the node's prefunded account.
    public func fundedWallet(ether: BigUInt = 10) async throws -> PrivateKey {
        let key = try Self.randomKey()
        try await fund(key.address, wei: ether * Self.ether)
        return key
    }

    public static func randomKey() throws -> PrivateKey {
        try PrivateKey(bytes: randomSecret())
    }

    /// 32 random bytes; astronomically unlikely to be outside the curve order, which `PrivateKey` checks.
    public static func randomSecret() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    public static func randomAddress() -> Address {
        var generator = SystemRandomNumberGenerator()
        do {
            return try Address(bytes: (0..<20).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        } catch {
            preconditionFailure("20 bytes are always an address")
        }
    }

    public func fund(_ address: Address, wei: BigUInt) async throws {
        _ = try await rpc.request("test_fund", [.string(address.checksummed), .string(Hex.encodeQuantity(wei))], as: String.self)
    }

    /// Mines pooled transactions of senders not held (one block each), or one empty block when none is.
    public func mine() async throws {
        _ = try await rpc.request("evm_mine", [], as: String.self)
    }

    /// While held, the sender's transactions stay in the node's pool, as if the network ignored them.
    public func hold(_ sender: Address, _ held: Bool = true) async throws {
        _ = try await rpc.request("test_holdSender", [.string(sender.checksummed), .bool(held)], as: Bool.self)
    }

    /// Mines the sender's pooled transactions even while held; returns how many were mined.
    @discardableResult
    public func mineSender(_ sender: Address) async throws -> Int {
        let mined = try await rpc.request("test_mineSender", [.string(sender.checksummed)], as: String.self)
        return Int(try Hex.decodeQuantityUInt64(mined))
    }

    /// Deploys TestToken (Tests/EthereumNode/TestToken.vy) with `supply` base units held by `holder`.
    public func deployToken(name: String = "Test USD", symbol: String = "TUSD", decimals: UInt8 = 6, supply: BigUInt, holder: Address) async throws
        -> Address
    {
        let address = try await rpc.request(
            "test_deployToken",
            [.string(name), .string(symbol), .number(String(decimals)), .string(Hex.encodeQuantity(supply)), .string(holder.checksummed)],
            as: String.self
        )
        return try Address(parsing: address)
    }
}

extension LocalChain {
    /// Calls TestToken's `freeze(holder, frozen)` from the node's prefunded account, so the holder's
    /// next transfer reverts with "ERC20: sender is frozen".
    public func freeze(token: Address, holder: Address, _ frozen: Bool = true) async throws {
        let selector = Array(Keccak256.hash("freeze(address,bool)").prefix(4))
        let data = selector + [UInt8](repeating: 0, count: 12) + holder.bytes + [UInt8](repeating: 0, count: 31) + [frozen ? 1 : 0]
        _ = try await rpc.request("test_faucetCall", [.string(token.checksummed), .string(Hex.encodeData(data))], as: String.self)
    }
}
