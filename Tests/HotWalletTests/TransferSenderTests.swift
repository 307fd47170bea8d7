import BigInt
import Ethereum
import HotWallet
import PostgresNIO
import Storage
import Synchronization
import TestPeers
import TestSupport
import Testing

/// Collects alerts so tests can assert on them.
actor RecordingAlerts: WalletAlertSink {
    private(set) var alerts: [WalletAlert] = []

    func raise(_ alert: WalletAlert) async {
        alerts.append(alert)
    }
}

/// The node's RPC with `sendRawTransaction` refusals injected, for paths py-evm cannot produce on demand.
struct RefusingRPC: EthereumRPC {
    let base: HTTPEthereumRPC
    let refusal: EthereumRPCError

    func chainId() async throws(EthereumRPCError) -> UInt64 { try await base.chainId() }
    func blockNumber() async throws(EthereumRPCError) -> UInt64 { try await base.blockNumber() }
    func balance(of address: Address, at block: BlockTag) async throws(EthereumRPCError) -> BigUInt { try await base.balance(of: address, at: block) }
    func transactionCount(of address: Address, at block: BlockTag) async throws(EthereumRPCError) -> UInt64 {
        try await base.transactionCount(of: address, at: block)
    }
    func maxPriorityFeePerGas() async throws(EthereumRPCError) -> BigUInt { try await base.maxPriorityFeePerGas() }
    func feeHistory(blockCount: UInt64, newest: BlockTag, rewardPercentiles: [Double]) async throws(EthereumRPCError) -> FeeHistory {
        try await base.feeHistory(blockCount: blockCount, newest: newest, rewardPercentiles: rewardPercentiles)
    }
    func estimateGas(_ call: CallRequest) async throws(EthereumRPCError) -> UInt64 { try await base.estimateGas(call) }
    func call(_ call: CallRequest, at block: BlockTag) async throws(EthereumRPCError) -> [UInt8] { try await base.call(call, at: block) }
    func sendRawTransaction(_ raw: [UInt8]) async throws(EthereumRPCError) -> [UInt8] { throw refusal }
    func transactionReceipt(_ hash: [UInt8]) async throws(EthereumRPCError) -> TransactionReceipt? { try await base.transactionReceipt(hash) }
    func transaction(_ hash: [UInt8]) async throws(EthereumRPCError) -> TransactionInfo? { try await base.transaction(hash) }
    func block(_ block: BlockTag) async throws(EthereumRPCError) -> BlockHeader? { try await base.block(block) }
}

/// The node's RPC behind a flaky load balancer: the first `sendRawTransaction` times out while its bytes
/// are held back "in the network" (`deliverWithheld()` lets them reach the node later), and later ones are
/// answered by a node that refuses them.
final class UnansweredBroadcastRPC: EthereumRPC, Sendable {
    let base: HTTPEthereumRPC
    let refusal: EthereumRPCError
    private let withheld = Mutex<[[UInt8]]>([])
    private let calls = Mutex(0)

    init(base: HTTPEthereumRPC, refusal: EthereumRPCError) {
        self.base = base
        self.refusal = refusal
    }

    func deliverWithheld() async throws {
        for raw in withheld.withLock({ $0 }) { _ = try await base.sendRawTransaction(raw) }
    }

    func chainId() async throws(EthereumRPCError) -> UInt64 { try await base.chainId() }
    func blockNumber() async throws(EthereumRPCError) -> UInt64 { try await base.blockNumber() }
    func balance(of address: Address, at block: BlockTag) async throws(EthereumRPCError) -> BigUInt { try await base.balance(of: address, at: block) }
    func transactionCount(of address: Address, at block: BlockTag) async throws(EthereumRPCError) -> UInt64 {
        try await base.transactionCount(of: address, at: block)
    }
    func maxPriorityFeePerGas() async throws(EthereumRPCError) -> BigUInt { try await base.maxPriorityFeePerGas() }
    func feeHistory(blockCount: UInt64, newest: BlockTag, rewardPercentiles: [Double]) async throws(EthereumRPCError) -> FeeHistory {
        try await base.feeHistory(blockCount: blockCount, newest: newest, rewardPercentiles: rewardPercentiles)
    }
    func estimateGas(_ call: CallRequest) async throws(EthereumRPCError) -> UInt64 { try await base.estimateGas(call) }
    func call(_ call: CallRequest, at block: BlockTag) async throws(EthereumRPCError) -> [UInt8] { try await base.call(call, at: block) }
    func sendRawTransaction(_ raw: [UInt8]) async throws(EthereumRPCError) -> [UInt8] {
        let first = calls.withLock { count in
            count += 1
            return count == 1
        }
        if first {
            withheld.withLock { $0.append(raw) }
            throw .timedOut(method: "eth_sendRawTransaction")
        }
        throw refusal
    }
    func transactionReceipt(_ hash: [UInt8]) async throws(EthereumRPCError) -> TransactionReceipt? { try await base.transactionReceipt(hash) }
    func transaction(_ hash: [UInt8]) async throws(EthereumRPCError) -> TransactionInfo? { try await base.transaction(hash) }
    func block(_ block: BlockTag) async throws(EthereumRPCError) -> BlockHeader? { try await base.block(block) }
}

/// A sender for a freshly funded wallet on the shared local chain, with a fresh database.
struct SenderFixture: Sendable {
    let chain: LocalChain
    let key: PrivateKey
    let database: Database
    let alerts: RecordingAlerts

    func sender(policy: SenderPolicy = SenderPolicy(confirmations: 1), rpc: (any EthereumRPC)? = nil, chainId: UInt64? = nil) -> TransferSender {
        TransferSender(
            key: key, chainId: chainId ?? chain.chainId, rpc: rpc ?? chain.rpc, database: database, policy: policy,
            alerts: alerts, logger: quietLogger
        )
    }

    func ether(_ text: String) throws -> BigUInt {
        try TokenUnits.baseUnits(fromDecimal: text, decimals: 18)
    }
}

func withSenderFixture<Result: Sendable>(ether: BigUInt = 10, _ body: @Sendable (SenderFixture) async throws -> Result) async throws -> Result {
    let chain = try await EthereumTestNode.shared.chain()
    let key = try await chain.fundedWallet(ether: ether)
    return try await withMigratedDatabase { database in
        try await body(SenderFixture(chain: chain, key: key, database: database, alerts: RecordingAlerts()))
    }
}

@Suite("Hot-wallet sender against py-evm and PostgreSQL")
struct TransferSenderTests {
    @Test("an ETH transfer is signed, stored, broadcast, mined and confirmed at depth; its key pays only once")
    func etherTransferConfirmsAtDepth() async throws {
        try await withSenderFixture { fixture in
            let depth: UInt64 = 3
            let sender = fixture.sender(policy: SenderPolicy(confirmations: depth))
            try await sender.start()
            let recipient = LocalChain.randomAddress()
            let request = TransferRequest(idempotencyKey: "payout:1", asset: .ether, recipient: recipient, amount: try fixture.ether("0.25"))

            let sent = try await sender.send(request)
            #expect(sent.nonce == 0)
            let attempts = try await sender.attempts(of: sent)
            #expect(attempts.count == 1)
            #expect(attempts[0].hash == Keccak256.hash(attempts[0].rawTransaction))
            #expect(sent.minedTransactionHash == attempts[0].hash)
            // Other tests mine blocks on the shared chain too, so depth is judged from what the chain says.
            let minedIn = try #require(sent.blockNumber)
            if try await fixture.chain.rpc.blockNumber() - minedIn + 1 < depth {
                #expect(sent.state == .mined)
            }

            for _ in 0..<depth { try await fixture.chain.mine() }
            try await sender.runPass()
            let confirmed = try await #require(sender.transfer(key: "payout:1"))
            #expect(confirmed.state == .confirmed)

            let again = try await sender.send(request)
            #expect(again.id == sent.id)
            #expect(try await fixture.chain.rpc.balance(of: recipient, at: .latest) == request.amount)
            #expect(try await fixture.chain.rpc.transactionCount(of: fixture.key.address, at: .latest) == 1)
            #expect(try await sender.storedNextNonce() == 1)

            await #expect {
                _ = try await sender.submit(TransferRequest(idempotencyKey: "payout:1", asset: .ether, recipient: recipient, amount: 1))
            } throws: { error in
                guard case TransferError.idempotencyKeyReused("payout:1") = error else { return false }
                return true
            }
        }
    }

    @Test("a fee read back from the database that is not a whole number of wei is an error, never zero")
    func malformedStoredFeeIsRefused() async throws {
        try await withSenderFixture { fixture in
            let sender = fixture.sender()
            try await sender.start()
            let request = TransferRequest(
                idempotencyKey: "fee:1", asset: .ether, recipient: LocalChain.randomAddress(), amount: try fixture.ether("0.01"))
            let sent = try await sender.send(request)
            #expect(try await sender.attempts(of: sent).count == 1)
            // The schema keeps fees whole; loosening it is the only way to store one the code must refuse.
            try await fixture.database.withConnection { connection in
                try await connection.query("ALTER TABLE wallet_transfer_attempts ALTER COLUMN max_fee_per_gas TYPE numeric", logger: quietLogger)
                try await connection.query(
                    "UPDATE wallet_transfer_attempts SET max_fee_per_gas = max_fee_per_gas + 0.5 WHERE transfer_id = \(sent.id)", logger: quietLogger
                )
            }
            await #expect {
                _ = try await sender.attempts(of: sent)
            } throws: { error in
                guard case TransferError.database(let cause) = error else { return false }
                return "\(cause)".contains("malformedAmount")
            }
        }
    }

    @Test("an ERC-20 transfer moves exactly the base units")
    func tokenTransfer() async throws {
        try await withSenderFixture { fixture in
            let token = try await fixture.chain.deployToken(supply: 5_000_000_000, holder: fixture.key.address)
            let sender = fixture.sender()
            try await sender.start()
            let recipient = LocalChain.randomAddress()
            let amount = try TokenUnits.baseUnits(fromDecimal: "1234.5", decimals: 6)
            let transfer = try await sender.send(
                TransferRequest(idempotencyKey: "token:1", asset: .token(token), recipient: recipient, amount: amount))
            #expect(transfer.state == .confirmed)
            #expect(try await fixture.chain.rpc.tokenBalance(token: token, owner: recipient) == amount)
            #expect(try await fixture.chain.rpc.tokenBalance(token: token, owner: fixture.key.address) == 5_000_000_000 - amount)
        }
    }

    @Test("a wallet that cannot cover amount plus fees gets a clear error and nothing is sent")
    func insufficientFunds() async throws {
        try await withSenderFixture(ether: 1) { fixture in
            let sender = fixture.sender()
            try await sender.start()
            let amount = try fixture.ether("1")
            await #expect {
                _ = try await sender.send(
                    TransferRequest(idempotencyKey: "too-much", asset: .ether, recipient: LocalChain.randomAddress(), amount: amount))
            } throws: { error in
                guard case TransferError.insufficientFunds(.ether, let required, let available) = error else { return false }
                return required > amount && available == amount
            }
            let failed = try await #require(sender.transfer(key: "too-much"))
            #expect(failed.state == .failed && failed.failure == .insufficientFunds && failed.nonce == nil)
            #expect(try await sender.attempts(of: failed).isEmpty)
            #expect(try await fixture.chain.rpc.transactionCount(of: fixture.key.address, at: .pending) == 0)
            #expect(try await sender.storedNextNonce() == 0)
            #expect(await fixture.alerts.alerts.count == 1)

            let token = try await fixture.chain.deployToken(supply: 10, holder: fixture.key.address)
            await #expect {
                _ = try await sender.send(
                    TransferRequest(idempotencyKey: "too-many-tokens", asset: .token(token), recipient: LocalChain.randomAddress(), amount: 11))
            } throws: { error in
                guard case TransferError.insufficientFunds(.token(token), 11, 10) = error else { return false }
                return true
            }
        }
    }

    @Test("a node on another chain is refused before anything is signed or stored")
    func chainIdMismatch() async throws {
        try await withSenderFixture { fixture in
            let sender = fixture.sender(chainId: 1)
            await #expect {
                try await sender.start()
            } throws: { error in
                guard case TransferError.chainIdMismatch(configured: 1, node: 131_277_322_940_537) = error else { return false }
                return true
            }
            let rows = try await fixture.database.withConnection { connection in
                try await connection.query("SELECT count(*) FROM wallet_accounts", logger: quietLogger).collect().first?.decode(Int.self)
            }
            #expect(rows == 0)
        }
    }

    @Test("a restart re-sends the stored bytes: the pooled copy is 'already known', and the receipt is found by hash")
    func restartResendsSameBytes() async throws {
        try await withSenderFixture { fixture in
            try await fixture.chain.hold(fixture.key.address)
            let first = fixture.sender()
            try await first.start()
            let recipient = LocalChain.randomAddress()
            let sent = try await first.send(TransferRequest(idempotencyKey: "restart", asset: .ether, recipient: recipient, amount: 42))
            #expect(sent.state == .broadcast)
            let stored = try await first.attempts(of: sent)

            let restarted = fixture.sender()
            try await restarted.start()
            try await restarted.recover()
            let afterRestart = try await #require(restarted.transfer(key: "restart"))
            #expect(afterRestart.state == .broadcast)
            #expect(try await restarted.attempts(of: afterRestart) == stored)

            #expect(try await fixture.chain.mineSender(fixture.key.address) == 1)
            try await restarted.recover()
            let confirmed = try await #require(restarted.transfer(key: "restart"))
            #expect(confirmed.state == .confirmed)
            #expect(confirmed.minedTransactionHash == stored[0].hash)
            #expect(try await fixture.chain.rpc.balance(of: recipient, at: .latest) == 42)
        }
    }

    @Test("a stuck transfer is replaced at the same nonce with both fees up ≥ 12.5 %, and is paid once")
    func stuckTransferIsReplaced() async throws {
        try await withSenderFixture { fixture in
            try await fixture.chain.hold(fixture.key.address)
            let sender = fixture.sender(policy: SenderPolicy(confirmations: 1, stuckAfter: .zero))
            try await sender.start()
            let recipient = LocalChain.randomAddress()
            let sent = try await sender.send(TransferRequest(idempotencyKey: "stuck", asset: .ether, recipient: recipient, amount: 1000))
            try await sender.runPass()

            let attempts = try await sender.attempts(of: sent).reversed().map { $0 }
            #expect(attempts.count >= 2)
            for (older, newer) in zip(attempts, attempts.dropFirst()) {
                #expect(newer.nonce == older.nonce)
                #expect(newer.maxFeePerGas * 1000 >= older.maxFeePerGas * 1125)
                #expect(newer.maxPriorityFeePerGas * 1000 >= older.maxPriorityFeePerGas * 1125)
                #expect(newer.gasLimit == older.gasLimit)
            }

            try await fixture.chain.mineSender(fixture.key.address)
            try await sender.runPass()
            let settled = try await #require(sender.transfer(key: "stuck"))
            #expect(settled.state == .confirmed)
            let newest = try await #require(sender.attempts(of: settled).first)
            #expect(settled.minedTransactionHash == newest.hash)
            #expect(try await fixture.chain.rpc.balance(of: recipient, at: .latest) == 1000)
            #expect(try await fixture.chain.rpc.transactionCount(of: fixture.key.address, at: .latest) == 1)
        }
    }

    @Test("a transfer that reverts on chain is recorded with its reason and raises the alert")
    func revertedTransfer() async throws {
        try await withSenderFixture { fixture in
            let token = try await fixture.chain.deployToken(supply: 1000, holder: fixture.key.address)
            try await fixture.chain.hold(fixture.key.address)
            let sender = fixture.sender()
            try await sender.start()
            _ = try await sender.send(
                TransferRequest(idempotencyKey: "frozen", asset: .token(token), recipient: LocalChain.randomAddress(), amount: 10))
            try await fixture.chain.freeze(token: token, holder: fixture.key.address)
            try await fixture.chain.mineSender(fixture.key.address)
            try await sender.runPass()

            let reverted = try await #require(sender.transfer(key: "frozen"))
            #expect(reverted.state == .reverted)
            #expect(reverted.failure == .reverted)
            #expect(reverted.failureReason == "execution reverted: ERC20: sender is frozen")
            let alerts = await fixture.alerts.alerts
            #expect(
                alerts.contains { alert in
                    if case .transferReverted(let transfer, "execution reverted: ERC20: sender is frozen") = alert {
                        return transfer.id == reverted.id
                    }
                    return false
                })
            #expect(try await fixture.chain.rpc.tokenBalance(token: token, owner: fixture.key.address) == 1000)
        }
    }

    @Test("the nonce is the larger of the stored next nonce and the node's pending count; outside use raises an alert")
    func externalNonceUse() async throws {
        try await withSenderFixture { fixture in
            let sender = fixture.sender()
            try await sender.start()
            let tip = try await fixture.chain.rpc.maxPriorityFeePerGas()
            let outside = try EIP1559Transaction(
                chainId: fixture.chain.chainId, nonce: 0, maxPriorityFeePerGas: tip, maxFeePerGas: 10 * LocalChain.gwei,
                gasLimit: 21_000, to: LocalChain.randomAddress(), value: 1
            ).sign(with: fixture.key)
            _ = try await fixture.chain.rpc.sendRawTransaction(outside.rawTransaction)

            let transfer = try await sender.send(
                TransferRequest(idempotencyKey: "after-outside", asset: .ether, recipient: LocalChain.randomAddress(), amount: 5))
            #expect(transfer.nonce == 1)
            #expect(try await sender.storedNextNonce() == 2)
            let alerts = await fixture.alerts.alerts
            #expect(alerts.contains(.externalNonceUse(wallet: fixture.key.address, storedNextNonce: 0, chainPendingNonce: 1)))
        }
    }

    @Test("when another transaction takes the nonce, the transfer fails without being re-sent at a new nonce")
    func nonceTakenElsewhere() async throws {
        try await withSenderFixture { fixture in
            try await fixture.chain.hold(fixture.key.address)
            let sender = fixture.sender()
            try await sender.start()
            let recipient = LocalChain.randomAddress()
            let transfer = try await sender.send(TransferRequest(idempotencyKey: "taken", asset: .ether, recipient: recipient, amount: 7))
            let ours = try await #require(sender.attempts(of: transfer).first)
            let intruder = try EIP1559Transaction(
                chainId: fixture.chain.chainId, nonce: 0, maxPriorityFeePerGas: FeeMath.bumped(ours.maxPriorityFeePerGas),
                maxFeePerGas: FeeMath.bumped(ours.maxFeePerGas), gasLimit: 21_000, to: LocalChain.randomAddress(), value: 1
            ).sign(with: fixture.key)
            _ = try await fixture.chain.rpc.sendRawTransaction(intruder.rawTransaction)
            try await fixture.chain.mineSender(fixture.key.address)

            try await sender.runPass()
            try await fixture.chain.mine()
            try await sender.runPass()
            let failed = try await #require(sender.transfer(key: "taken"))
            #expect(failed.state == .failed && failed.failure == .nonceTakenElsewhere && failed.nonce == 0)
            #expect(try await fixture.chain.rpc.balance(of: recipient, at: .latest) == 0)
            #expect(try await fixture.chain.rpc.transactionCount(of: fixture.key.address, at: .pending) == 1)
        }
    }

    @Test("a node refusing the only attempt for good releases the nonce, so the next transfer leaves no gap")
    func refusedAttemptReleasesNonce() async throws {
        try await withSenderFixture { fixture in
            let refusing = RefusingRPC(base: fixture.chain.rpc, refusal: .insufficientFunds(message: "insufficient funds for gas * price + value"))
            let doomed = fixture.sender(rpc: refusing)
            try await doomed.start()
            await #expect {
                _ = try await doomed.send(TransferRequest(idempotencyKey: "refused", asset: .ether, recipient: LocalChain.randomAddress(), amount: 3))
            } throws: { error in
                guard case TransferError.transferFailed(let transfer) = error else { return false }
                return transfer.failure == .rejectedByNode && transfer.nonce == nil
            }
            #expect(try await doomed.storedNextNonce() == 0)

            let healthy = fixture.sender()
            let next = try await healthy.send(
                TransferRequest(idempotencyKey: "after-refusal", asset: .ether, recipient: LocalChain.randomAddress(), amount: 3))
            #expect(next.nonce == 0)
            #expect(next.state == .confirmed)
        }
    }

    @Test("a broadcast that timed out keeps its nonce even when a node later refuses the bytes; when they land, the transfer is paid once")
    func unansweredBroadcastKeepsNonce() async throws {
        try await withSenderFixture { fixture in
            let flaky = UnansweredBroadcastRPC(
                base: fixture.chain.rpc, refusal: .insufficientFunds(message: "insufficient funds for gas * price + value"))
            let sender = fixture.sender(rpc: flaky)
            try await sender.start()
            let recipient = LocalChain.randomAddress()
            let sent = try await sender.send(TransferRequest(idempotencyKey: "unanswered", asset: .ether, recipient: recipient, amount: 77))
            #expect(sent.state == .signed && sent.nonce == 0)
            #expect(try await sender.attempts(of: sent).first?.unanswered == true)

            // Another node refuses the same bytes: the outcome of the first broadcast is still unknown.
            try await sender.runPass()
            let kept = try #require(try await sender.transfer(key: "unanswered"))
            #expect(kept.state == .signed && kept.nonce == 0, "the nonce stays with the unanswered bytes: \(kept)")
            #expect(try await sender.storedNextNonce() == 1)

            // The bytes reach the chain after all; the transfer is found mined, and nothing else used nonce 0.
            try await flaky.deliverWithheld()
            let healthy = fixture.sender()
            try await healthy.runPass()
            try await healthy.runPass()
            let paid = try #require(try await healthy.transfer(key: "unanswered"))
            #expect(paid.state == .confirmed && paid.nonce == 0)
            #expect(try await fixture.chain.rpc.balance(of: recipient, at: .latest) == 77)
            let next = try await healthy.send(
                TransferRequest(idempotencyKey: "after-unanswered", asset: .ether, recipient: LocalChain.randomAddress(), amount: 1))
            #expect(next.nonce == 1)
        }
    }
}
