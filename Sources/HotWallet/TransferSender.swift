import BigInt
import Ethereum
import Foundation
import Logging
import PostgresNIO
import Storage

/// What one pass of the sender did.
public struct PassReport: Sendable {
    /// False when another sender held the wallet's lock, so this pass did nothing.
    public var ran: Bool
    /// Transfers this pass ended without payment, with the reason.
    public var failures: [Int64: TransferError]

    init(ran: Bool, failures: [Int64: TransferError] = [:]) {
        self.ran = ran
        self.failures = failures
    }
}

/// Pays from the hot wallet, at most once per idempotency key, with durable state in PostgreSQL.
///
/// A transfer moves: intent recorded → nonce assigned under the wallet's advisory lock (the larger of
/// the stored next nonce and the node's pending count) → signed, and raw bytes, hash and nonce
/// committed → broadcast → receipt → confirmed at `policy.confirmations`. After a crash, `recover()`
/// re-sends every stored, unconfirmed attempt as the same bytes; "already known" and "nonce too low"
/// lead to a receipt lookup by hash. An attempt without a receipt after `policy.stuckAfter` is
/// replaced at the same nonce with both fee fields raised by at least 12.5 %. A new nonce is never
/// signed for a transfer: the stored nonce is its only slot, so it cannot be paid twice.
/// (The design follows Chainlink's transaction manager.)
public final class TransferSender: Sendable {
    public let wallet: Address
    public let chainId: UInt64
    public let policy: SenderPolicy
    private let key: PrivateKey
    private let rpc: any EthereumRPC
    private let database: Database
    private let alerts: any WalletAlertSink
    private let probe: (any SenderProbe)?
    private let logger: Logger
    private let store: TransferStore

    /// - Parameters:
    ///   - key: the hot wallet's key; it never leaves this object and prints as `<redacted>`.
    ///   - chainId: the chain the operator configured; `start()` refuses a node on any other.
    public init(
        key: PrivateKey, chainId: UInt64, rpc: any EthereumRPC, database: Database, policy: SenderPolicy = SenderPolicy(),
        alerts: any WalletAlertSink, probe: (any SenderProbe)? = nil, logger: Logger
    ) {
        self.key = key
        self.wallet = key.address
        self.chainId = chainId
        self.rpc = rpc
        self.database = database
        self.policy = policy
        self.alerts = alerts
        self.probe = probe
        self.logger = logger
        self.store = TransferStore(wallet: key.address, logger: logger)
    }

    // MARK: - Public operations

    /// Refuses to go on unless the node serves the configured chain, then binds the wallet's stored
    /// state to that chain. Call it before anything else.
    public func start() async throws {
        let nodeChain: UInt64
        do {
            nodeChain = try await rpc.chainId()
        } catch {
            throw TransferError.rpc(error)
        }
        guard nodeChain == chainId else { throw TransferError.chainIdMismatch(configured: chainId, node: nodeChain) }
        let stored = try await stored { try await self.store.bindWallet(chainId: self.chainId, on: $0) }
        guard stored == chainId else {
            throw TransferError.walletBoundToOtherChain(wallet: wallet, stored: stored, configured: chainId)
        }
    }

    /// Records the intent, or returns the transfer already recorded under its key. Sends nothing.
    public func submit(_ request: TransferRequest) async throws -> Transfer {
        guard request.amount > 0 else { throw TransferError.zeroAmount }
        let (transfer, inserted) = try await stored { try await self.store.insert(request, on: $0) }
        if !inserted && (transfer.asset != request.asset || transfer.recipient != request.recipient || transfer.amount != request.amount) {
            throw TransferError.idempotencyKeyReused(request.idempotencyKey)
        }
        return transfer
    }

    /// Records the intent and runs a pass, so the transfer is normally broadcast or mined when this
    /// returns. Throws `TransferError.insufficientFunds` (nothing sent) when the wallet cannot cover
    /// amount plus fees, and `.transferFailed` for other final failures. When the node is unreachable
    /// the transfer comes back still `queued`, with `lastError` saying why; a later pass sends it.
    public func send(_ request: TransferRequest) async throws -> Transfer {
        let submitted = try await submit(request)
        let report = try await runPass()
        if let failure = report.failures[submitted.id] { throw failure }
        guard let transfer = try await transfer(key: request.idempotencyKey) else {
            throw TransferError.transferNotFound(request.idempotencyKey)
        }
        if transfer.state == .failed { throw TransferError.transferFailed(transfer) }
        return transfer
    }

    /// Re-sends every signed, unconfirmed attempt as its stored bytes, then runs a normal pass. Run it
    /// once at start-up.
    @discardableResult
    public func recover() async throws -> PassReport {
        try await pass(resendBroadcast: true)
    }

    /// Broadcasts what is signed but unacknowledged, signs and sends queued transfers, then tracks
    /// receipts, confirmations and stuck transactions.
    @discardableResult
    public func runPass() async throws -> PassReport {
        try await pass(resendBroadcast: false)
    }

    /// `recover()`, then a pass every `interval` until the task is cancelled. A failed pass is logged
    /// and retried on the next tick, since nodes and networks fail transiently.
    public func run(every interval: Duration) async throws {
        try await start()
        do {
            try await recover()
        } catch {
            logger.error("hot-wallet recovery pass failed", metadata: ["error": "\(error)"])
        }
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            do {
                try await runPass()
            } catch {
                logger.error("hot-wallet pass failed", metadata: ["error": "\(error)"])
            }
        }
    }

    public func transfer(key: String) async throws -> Transfer? {
        try await stored { try await self.store.transfer(key: key, on: $0) }
    }

    /// This wallet's transfers in the given states, in nonce order.
    public func transfers(in states: [TransferState], limit: Int = 100) async throws -> [Transfer] {
        try await stored { try await self.store.transfers(in: states, limit: limit, on: $0) }
    }

    public func attempts(of transfer: Transfer) async throws -> [TransferAttempt] {
        try await stored { try await self.store.attempts(of: transfer.id, on: $0) }
    }

    /// One past the highest nonce TelePay has assigned for this wallet.
    public func storedNextNonce() async throws -> UInt64 {
        try await stored { try await self.store.nextNonce(on: $0) }
    }

    // MARK: - The pass

    private enum Progress {
        case continued
        /// A transient problem with the node: later nonces must not be assigned behind an unknown one.
        case blocked
    }

    private func pass(resendBroadcast: Bool) async throws -> PassReport {
        try await stored { connection in
            guard try await self.store.tryLockWallet(on: connection) else { return PassReport(ran: false) }
            do {
                let report = try await self.lockedPass(resendBroadcast: resendBroadcast, on: connection)
                try await self.store.unlockWallet(on: connection)
                return report
            } catch {
                // The connection goes back to the pool; it must not keep the lock.
                try? await self.store.unlockWallet(on: connection)
                throw error
            }
        }
    }

    private func lockedPass(resendBroadcast: Bool, on connection: PostgresConnection) async throws -> PassReport {
        var report = PassReport(ran: true)
        var blocked = false
        let unacknowledged = try await store.transfers(in: resendBroadcast ? [.signed, .broadcast] : [.signed], limit: .max, on: connection)
        for transfer in unacknowledged where !blocked {
            if case .blocked = try await broadcastNewest(transfer, report: &report, on: connection) { blocked = true }
        }
        // A blocked step stops new nonces only: what is already out keeps being tracked and replaced.
        if !blocked {
            for transfer in try await store.transfers(in: [.queued], limit: policy.batchSize, on: connection) {
                if case .blocked = try await signAndBroadcast(transfer, report: &report, on: connection) { break }
            }
        }
        try await track(on: connection)
        return report
    }

    // MARK: - Signing

    private func signAndBroadcast(_ transfer: Transfer, report: inout PassReport, on connection: PostgresConnection) async throws -> Progress {
        let call = transactionShape(of: transfer)
        // Tokens first: a token transfer the balance cannot cover would only show up below as a
        // reverting gas estimate, which is a less useful error.
        if case .token(let contract) = transfer.asset {
            do {
                let block = try await rpc.blockNumber()
                let tokenBalance = try await rpc.tokenBalance(token: contract, owner: wallet, at: .number(block))
                let mined = try await rpc.transactionCount(of: wallet, at: .number(block))
                let reserved = try await store.reservedOutflow(asset: transfer.asset, unminedFrom: mined, on: connection)
                let tokenFree = tokenBalance.subtractingSaturated(reserved.value)
                if tokenFree < transfer.amount {
                    let error = TransferError.insufficientFunds(asset: transfer.asset, required: transfer.amount, available: tokenFree)
                    try await fail(
                        transfer, .insufficientFunds, reason: error.description, releasingNonce: false, report: &report, error: error, on: connection)
                    return .continued
                }
            } catch let error as EthereumRPCError {
                try await store.recordLastError("\(error)", transferID: transfer.id, on: connection)
                return .blocked
            }
        }
        let fees: FeeFields
        let gasLimit: UInt64
        do {
            let market = try await marketFees()
            guard market.fees.maxPriorityFeePerGas + market.nextBaseFee <= policy.maxFeePerGasCeiling else {
                try await store.recordLastError(
                    "fees (next base fee \(market.nextBaseFee) + tip) exceed the ceiling \(policy.maxFeePerGasCeiling); waiting",
                    transferID: transfer.id, on: connection)
                return .blocked
            }
            fees = FeeFields(
                maxFeePerGas: min(market.fees.maxFeePerGas, policy.maxFeePerGasCeiling),
                maxPriorityFeePerGas: market.fees.maxPriorityFeePerGas
            )
            let estimate = try await estimateGas(to: call.to, value: call.value, data: call.data)
            gasLimit = FeeMath.gasLimit(estimate: estimate, marginPercent: policy.gasLimitMarginPercent)
        } catch EthereumRPCError.executionReverted(let reason, _) {
            let text = "the node's gas estimate says it would revert: \(reason ?? "no reason given")"
            try await fail(transfer, .wouldRevert, reason: text, releasingNonce: false, report: &report, on: connection)
            return .continued
        } catch let error as EthereumRPCError {
            try await store.recordLastError("\(error)", transferID: transfer.id, on: connection)
            return .blocked
        }

        // Balance, counting what in-flight transfers may still take. Checked before a nonce is
        // assigned, so a refusal leaves no gap.
        let maximumFee = FeeMath.maximumFee(gasLimit: gasLimit, fees: fees)
        do {
            // The balance and the nonces mined are read at one block: a transfer mined in it has already left the
            // balance and is not counted again.
            let block = try await rpc.blockNumber()
            let etherBalance = try await rpc.balance(of: wallet, at: .number(block))
            let mined = try await rpc.transactionCount(of: wallet, at: .number(block))
            let reservedEther = try await store.reservedOutflow(asset: .ether, unminedFrom: mined, on: connection)
            let etherNeeded = (transfer.asset == .ether ? transfer.amount : 0) + maximumFee
            let etherFree = etherBalance.subtractingSaturated(reservedEther.value + reservedEther.fees)
            if etherFree < etherNeeded {
                let error = TransferError.insufficientFunds(asset: .ether, required: etherNeeded, available: etherFree)
                try await fail(
                    transfer, .insufficientFunds, reason: error.description, releasingNonce: false, report: &report, error: error, on: connection)
                return .continued
            }
        } catch let error as EthereumRPCError {
            try await store.recordLastError("\(error)", transferID: transfer.id, on: connection)
            return .blocked
        }

        let chainPending: UInt64
        do {
            chainPending = try await rpc.transactionCount(of: wallet, at: .pending)
        } catch {
            try await store.recordLastError("\(error)", transferID: transfer.id, on: connection)
            return .blocked
        }
        let key = self.key
        let chainId = self.chainId
        let store = self.store
        let (nonce, storedNext) = try await connection.withTransaction(logger: logger) { transaction in
            let storedNext = try await store.lockNextNonce(on: transaction)
            let nonce = max(storedNext, chainPending)
            let signed = try EIP1559Transaction(
                chainId: chainId, nonce: nonce, maxPriorityFeePerGas: fees.maxPriorityFeePerGas, maxFeePerGas: fees.maxFeePerGas,
                gasLimit: gasLimit, to: call.to, value: call.value, data: call.data
            ).sign(with: key)
            try await store.setNextNonce(nonce + 1, on: transaction)
            try await store.markSigned(transfer.id, nonce: nonce, on: transaction)
            try await store.insertAttempt(transferID: transfer.id, nonce: nonce, fees: fees, gasLimit: gasLimit, signed: signed, on: transaction)
            return (nonce, storedNext)
        }
        logger.info("transfer signed", metadata: ["transfer": "\(transfer.idempotencyKey)", "nonce": "\(nonce)", "fees": "\(fees)"])
        await probe?.reached(.attemptStored, transferID: transfer.id)
        if chainPending > storedNext {
            await alerts.raise(.externalNonceUse(wallet: wallet, storedNextNonce: storedNext, chainPendingNonce: chainPending))
        }
        var signedTransfer = transfer
        signedTransfer.state = .signed
        signedTransfer.nonce = nonce
        return try await broadcastNewest(signedTransfer, report: &report, on: connection)
    }

    // MARK: - Broadcasting

    /// Sends the transfer's newest attempt, exactly as stored, and records what the node said.
    private func broadcastNewest(_ transfer: Transfer, report: inout PassReport, on connection: PostgresConnection) async throws -> Progress {
        let attempts = try await store.attempts(of: transfer.id, on: connection)
        guard let newest = attempts.first, let nonce = transfer.nonce else { return .continued }
        do {
            _ = try await rpc.sendRawTransaction(newest.rawTransaction)
        } catch .alreadyKnown {
            // The node has these exact bytes: as good as accepted.
        } catch .nonceTooLow {
            // Our nonce is used: by one of our attempts (look for its receipt) or by something else,
            // which the tracker finds out once no receipt turns up.
            if let receipt = try await receipt(of: attempts) {
                try await store.markAcknowledged(attemptID: newest.id, transferID: transfer.id, on: connection)
                try await store.recordMined(receipt, transferID: transfer.id, on: connection)
                await probe?.reached(.receiptRecorded, transferID: transfer.id)
                return .continued
            }
        } catch .replacementUnderpriced, .transactionUnderpriced, .feeCapBelowBaseFee {
            // The node wants more fee; the tracker replaces the attempt once it counts as stuck.
            try await store.markAcknowledged(attemptID: newest.id, transferID: transfer.id, on: connection)
            try await store.recordLastError(
                "node refused attempt \(Hex.encodeData(newest.hash)): fee too low", transferID: transfer.id, on: connection)
            return .continued
        } catch .insufficientFunds(let message), .intrinsicGasTooLow(let message), .tipAboveFeeCap(let message),
            .exceedsBlockGasLimit(let message), .invalidSender(let message), .nonceTooHigh(let message)
        {
            return try await refused(transfer, nonce: nonce, attempts: attempts, message: message, report: &report, on: connection)
        } catch {
            // No answer (a timeout, a dropped connection, a gateway error): the bytes may be in a node's pool
            // and be mined later, so from now on this nonce belongs to them until the chain says otherwise.
            try await store.markUnanswered(attemptID: newest.id, on: connection)
            try await store.recordLastError("broadcast: \(error)", transferID: transfer.id, on: connection)
            return .blocked
        }
        let step: SenderStep = attempts.count > 1 ? .replacementAccepted : .broadcastAccepted
        await probe?.reached(step, transferID: transfer.id)
        try await store.markAcknowledged(attemptID: newest.id, transferID: transfer.id, on: connection)
        if step == .broadcastAccepted { await probe?.reached(.broadcastRecorded, transferID: transfer.id) }
        return .continued
    }

    /// The node will not take the bytes. When no node ever acknowledged any attempt, no broadcast of one
    /// ended without an answer, nothing else claims the nonce and it is the last one assigned, the nonce is
    /// released and the transfer fails (nothing was sent). Otherwise an attempt may still be mined, so the
    /// transfer keeps its nonce: its bytes are sent again on later passes until they are taken or mined, or
    /// the chain passes the nonce with another transaction (then the tracker fails it without releasing).
    private func refused(
        _ transfer: Transfer, nonce: UInt64, attempts: [TransferAttempt], message: String, report: inout PassReport,
        on connection: PostgresConnection
    ) async throws -> Progress {
        try await store.recordLastError("node refused the transaction: \(message)", transferID: transfer.id, on: connection)
        guard transfer.state == .signed, !attempts.contains(where: \.acknowledged) else { return .continued }
        guard !attempts.contains(where: \.unanswered) else {
            logger.warning(
                "node refused a transaction whose earlier broadcast got no answer; keeping its nonce",
                metadata: [
                    "transfer": "\(transfer.idempotencyKey)", "nonce": "\(nonce)",
                ])
            return .blocked
        }
        let chainPending: UInt64
        do {
            chainPending = try await rpc.transactionCount(of: wallet, at: .pending)
        } catch {
            return .blocked
        }
        let storedNext = try await store.nextNonce(on: connection)
        guard chainPending <= nonce, storedNext == nonce + 1 else {
            logger.error(
                "refused transaction holds a nonce that later ones depend on",
                metadata: ["transfer": "\(transfer.idempotencyKey)", "nonce": "\(nonce)"])
            await alerts.raise(.transferFailed(transfer, reason: "node refused nonce \(nonce) (\(message)); later nonces wait behind it"))
            return .blocked
        }
        let store = self.store
        try await connection.withTransaction(logger: logger) { transaction in
            _ = try await store.lockNextNonce(on: transaction)
            try await store.setNextNonce(nonce, on: transaction)
            try await store.recordFailure(.rejectedByNode, reason: message, transferID: transfer.id, releasingNonce: true, on: transaction)
        }
        var failed = transfer
        failed.state = .failed
        failed.failure = .rejectedByNode
        failed.failureReason = message
        failed.nonce = nil
        report.failures[transfer.id] = .transferFailed(failed)
        await alerts.raise(.transferFailed(failed, reason: message))
        await probe?.reached(.settled, transferID: transfer.id)
        return .continued
    }

    // MARK: - Tracking

    private func track(on connection: PostgresConnection) async throws {
        let open = try await store.transfers(in: [.broadcast, .mined], limit: policy.batchSize * 4, on: connection)
        guard !open.isEmpty else { return }
        let latest: UInt64
        let chainNonce: UInt64
        do {
            latest = try await rpc.blockNumber()
            chainNonce = try await rpc.transactionCount(of: wallet, at: .latest)
        } catch {
            logger.warning("cannot track transfers now", metadata: ["error": "\(error)"])
            return
        }
        for transfer in open {
            guard let nonce = transfer.nonce else { continue }
            let attempts = try await store.attempts(of: transfer.id, on: connection)
            let found: TransactionReceipt?
            do {
                // Until the chain's nonce passes ours, no attempt can have a receipt; asking only then
                // keeps a long-stuck transfer with many attempts from costing a lookup per attempt per pass.
                if transfer.state == .mined || chainNonce > nonce {
                    found = try await receipt(of: attempts, minedFirst: transfer.minedTransactionHash)
                } else {
                    found = nil
                }
            } catch {
                logger.warning("receipt lookup failed", metadata: ["transfer": "\(transfer.idempotencyKey)", "error": "\(error)"])
                return
            }
            if let found {
                try await settle(transfer, receipt: found, attempts: attempts, latest: latest, on: connection)
                continue
            }
            if transfer.state == .mined {
                logger.warning("receipt disappeared (re-org); waiting again", metadata: ["transfer": "\(transfer.idempotencyKey)"])
                try await store.recordUnmined(transferID: transfer.id, on: connection)
            }
            if chainNonce > nonce {
                // The nonce is used but no attempt of ours has a receipt. Give a lagging node time
                // before concluding that someone else used the key.
                let since = try await store.notePassedNonce(atBlock: latest, transferID: transfer.id, on: connection)
                if latest >= since + policy.confirmations {
                    let reason = "nonce \(nonce) was used by a transaction that is not one of ours; is the key used elsewhere?"
                    var report = PassReport(ran: true)
                    try await fail(transfer, .nonceTakenElsewhere, reason: reason, releasingNonce: false, report: &report, on: connection)
                }
                continue
            }
            if try await store.newestAttemptIsOlder(than: policy.stuckAfter, transferID: transfer.id, on: connection) {
                try await replace(transfer, nonce: nonce, attempts: attempts, on: connection)
            }
        }
    }

    private func settle(
        _ transfer: Transfer, receipt: TransactionReceipt, attempts: [TransferAttempt], latest: UInt64, on connection: PostgresConnection
    ) async throws {
        if transfer.state != .mined || transfer.minedTransactionHash != receipt.transactionHash || transfer.blockNumber != receipt.blockNumber {
            try await store.recordMined(receipt, transferID: transfer.id, on: connection)
            await probe?.reached(.receiptRecorded, transferID: transfer.id)
        }
        guard receipt.confirmations(latestBlock: latest) >= policy.confirmations else { return }
        if receipt.succeeded {
            try await store.recordConfirmed(transferID: transfer.id, on: connection)
            logger.info(
                "transfer confirmed", metadata: ["transfer": "\(transfer.idempotencyKey)", "tx": "\(Hex.encodeData(receipt.transactionHash))"])
        } else {
            let gasLimit = attempts.first { $0.hash == receipt.transactionHash }?.gasLimit
            let reason = await revertReason(of: transfer, receipt: receipt, gasLimit: gasLimit)
            try await store.recordFailure(.reverted, reason: reason, transferID: transfer.id, releasingNonce: false, on: connection)
            var reverted = transfer
            reverted.state = .reverted
            reverted.failure = .reverted
            reverted.failureReason = reason
            logger.error("transfer reverted", metadata: ["transfer": "\(transfer.idempotencyKey)", "reason": "\(reason)"])
            await alerts.raise(.transferReverted(reverted, reason: reason))
        }
        await probe?.reached(.settled, transferID: transfer.id)
    }

    /// Signs the same transfer at the same nonce with both fees raised, stores it, then broadcasts it.
    private func replace(_ transfer: Transfer, nonce: UInt64, attempts: [TransferAttempt], on connection: PostgresConnection) async throws {
        guard let newest = attempts.first else { return }
        let market: (fees: FeeFields, nextBaseFee: BigUInt)
        do {
            market = try await marketFees()
        } catch {
            try await store.recordLastError("replacement: \(error)", transferID: transfer.id, on: connection)
            return
        }
        let fees = FeeMath.replacementFees(
            previous: FeeFields(maxFeePerGas: newest.maxFeePerGas, maxPriorityFeePerGas: newest.maxPriorityFeePerGas),
            market: market.fees
        )
        guard fees.maxFeePerGas <= policy.maxFeePerGasCeiling else {
            let message =
                "stuck at nonce \(nonce); a replacement needs maxFeePerGas \(fees.maxFeePerGas), above the ceiling \(policy.maxFeePerGasCeiling)"
            if transfer.lastError != message {
                try await store.recordLastError(message, transferID: transfer.id, on: connection)
                await alerts.raise(.feeCeilingReached(transfer, neededMaxFeePerGas: fees.maxFeePerGas))
            }
            return
        }
        let call = transactionShape(of: transfer)
        let signed = try EIP1559Transaction(
            chainId: chainId, nonce: nonce, maxPriorityFeePerGas: fees.maxPriorityFeePerGas, maxFeePerGas: fees.maxFeePerGas,
            gasLimit: newest.gasLimit, to: call.to, value: call.value, data: call.data
        ).sign(with: key)
        try await store.insertAttempt(transferID: transfer.id, nonce: nonce, fees: fees, gasLimit: newest.gasLimit, signed: signed, on: connection)
        logger.notice(
            "stuck transfer replaced at the same nonce", metadata: ["transfer": "\(transfer.idempotencyKey)", "nonce": "\(nonce)", "fees": "\(fees)"])
        await probe?.reached(.replacementStored, transferID: transfer.id)
        var report = PassReport(ran: true)
        _ = try await broadcastNewest(transfer, report: &report, on: connection)
    }

    // MARK: - Helpers

    /// Ends the transfer without payment. `error` is what `send` throws for it; by default the
    /// failed transfer itself.
    private func fail(
        _ transfer: Transfer, _ failure: TransferFailure, reason: String, releasingNonce: Bool, report: inout PassReport,
        error: TransferError? = nil, on connection: PostgresConnection
    ) async throws {
        try await store.recordFailure(failure, reason: reason, transferID: transfer.id, releasingNonce: releasingNonce, on: connection)
        var failed = transfer
        failed.state = .failed
        failed.failure = failure
        failed.failureReason = reason
        report.failures[transfer.id] = error ?? .transferFailed(failed)
        logger.error("transfer failed", metadata: ["transfer": "\(transfer.idempotencyKey)", "reason": "\(reason)"])
        await alerts.raise(.transferFailed(failed, reason: reason))
        await probe?.reached(.settled, transferID: transfer.id)
    }

    /// The receipt of whichever version the chain included: the one recorded as mined first (the
    /// usual case on later passes), then the attempts newest first.
    private func receipt(of attempts: [TransferAttempt], minedFirst mined: [UInt8]? = nil) async throws(EthereumRPCError) -> TransactionReceipt? {
        if let mined, let receipt = try await rpc.transactionReceipt(mined) { return receipt }
        for attempt in attempts where attempt.hash != mined {
            if let receipt = try await rpc.transactionReceipt(attempt.hash) { return receipt }
        }
        return nil
    }

    /// The node's estimate; when it says the value alone exceeds the balance, the smallest possible
    /// gas, so the balance check that follows reports the shortfall with its numbers.
    private func estimateGas(to: Address, value: BigUInt, data: [UInt8]) async throws(EthereumRPCError) -> UInt64 {
        do {
            return try await rpc.estimateGas(CallRequest(from: wallet, to: to, value: value, data: data))
        } catch .insufficientFunds {
            return 21_000
        }
    }

    private func marketFees() async throws(EthereumRPCError) -> (fees: FeeFields, nextBaseFee: BigUInt) {
        let tip = try await rpc.maxPriorityFeePerGas()
        let history = try await rpc.feeHistory(blockCount: 1, newest: .latest, rewardPercentiles: [])
        guard let nextBaseFee = history.nextBaseFee else {
            throw .invalidResponse(method: "eth_feeHistory", reason: "no base fee: is the chain pre-London?")
        }
        return (FeeMath.initialFees(nextBaseFee: nextBaseFee, priorityFee: tip), nextBaseFee)
    }

    /// The transaction's destination, value and call data. Derived from the transfer alone, so every
    /// replacement makes exactly the same payment.
    private func transactionShape(of transfer: Transfer) -> (to: Address, value: BigUInt, data: [UInt8]) {
        switch transfer.asset {
        case .ether:
            return (transfer.recipient, transfer.amount, [])
        case .token(let contract):
            // Amounts are checked positive and stored as NUMERIC(78, 0), so they always fit 256 bits.
            let data = (try? ERC20.transferCallData(to: transfer.recipient, amount: transfer.amount)) ?? []
            return (contract, 0, data)
        }
    }

    /// Replays the call against the state before its block to learn why it reverted.
    private func revertReason(of transfer: Transfer, receipt: TransactionReceipt, gasLimit: UInt64?) async -> String {
        if let gasLimit, receipt.gasUsed >= gasLimit {
            return "out of gas (used all \(gasLimit))"
        }
        let call = transactionShape(of: transfer)
        let before: BlockTag = receipt.blockNumber > 0 ? .number(receipt.blockNumber - 1) : .earliest
        do {
            _ = try await rpc.call(CallRequest(from: wallet, to: call.to, value: call.value, data: call.data), at: before)
            return "reverted; replaying the call before its block succeeds, so the cause was state changed within the block"
        } catch .executionReverted(let reason, _) {
            return reason.map { "execution reverted: \($0)" } ?? "execution reverted without a reason"
        } catch {
            return "reverted (the reason could not be read: \(error))"
        }
    }

    private func stored<Value: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> Value) async throws -> Value {
        do {
            return try await database.withConnection(body)
        } catch let error as TransferError {
            throw error
        } catch {
            throw TransferError.database(error)
        }
    }
}

extension BigUInt {
    fileprivate func subtractingSaturated(_ other: BigUInt) -> BigUInt {
        self > other ? self - other : 0
    }
}
