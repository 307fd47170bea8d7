import BigInt
import Ethereum
import Foundation
import Logging
import PostgresNIO
import Storage

/// The SQL behind the sender, and the only writer of `wallet_accounts`, `wallet_transfers` and
/// `wallet_transfer_attempts`. Every method runs on the connection it is given, so the sender decides what shares
/// a transaction and which connection holds the wallet's advisory lock. States are bound from `TransferState`.
struct TransferStore: Sendable {
    let wallet: Address
    let logger: Logger

    private typealias TransferRow = (Int64, String, String, String?, String, String, String, Int64?, Data?, Int64?, String?, String?, String?)

    private static let transferColumns = """
        id, idempotency_key, asset, token_address, recipient, amount::text, state, nonce, mined_tx_hash, \
        block_number, failure_code, failure_reason, last_error
        """

    // MARK: - Wallet

    /// Creates the wallet row on first use; returns the chain id the row is bound to.
    func bindWallet(chainId: UInt64, on connection: PostgresConnection) async throws -> UInt64 {
        try await connection.run(
            """
            INSERT INTO wallet_accounts (address, chain_id) VALUES (\(wallet.checksummed), \(Int64(chainId)))
            ON CONFLICT (address) DO NOTHING
            """, logger: logger)
        guard
            let stored = try await connection.first(
                "SELECT chain_id FROM wallet_accounts WHERE address = \(wallet.checksummed)", as: Int64.self, logger: logger)
        else {
            throw TransferStoreError.walletMissing
        }
        return UInt64(stored)
    }

    /// Locks the wallet row for the rest of the transaction and returns its next nonce.
    func lockNextNonce(on connection: PostgresConnection) async throws -> UInt64 {
        guard
            let next = try await connection.first(
                "SELECT next_nonce FROM wallet_accounts WHERE address = \(wallet.checksummed) FOR UPDATE", as: Int64.self, logger: logger
            )
        else { throw TransferStoreError.walletMissing }
        return UInt64(next)
    }

    func setNextNonce(_ next: UInt64, on connection: PostgresConnection) async throws {
        try await connection.run("UPDATE wallet_accounts SET next_nonce = \(Int64(next)) WHERE address = \(wallet.checksummed)", logger: logger)
    }

    func nextNonce(on connection: PostgresConnection) async throws -> UInt64 {
        guard
            let next = try await connection.first(
                "SELECT next_nonce FROM wallet_accounts WHERE address = \(wallet.checksummed)", as: Int64.self, logger: logger)
        else {
            throw TransferStoreError.walletMissing
        }
        return UInt64(next)
    }

    /// A session-level advisory lock, so it outlives the short transactions of a pass and is released
    /// by the server if the process dies.
    func tryLockWallet(on connection: PostgresConnection) async throws -> Bool {
        try await connection.first(
            "SELECT pg_try_advisory_lock(hashtextextended(\("telepay.wallet:" + wallet.checksummed), 0))", as: Bool.self, logger: logger
        ) ?? false
    }

    func unlockWallet(on connection: PostgresConnection) async throws {
        try await connection.run("SELECT pg_advisory_unlock(hashtextextended(\("telepay.wallet:" + wallet.checksummed), 0))", logger: logger)
    }

    // MARK: - Transfers

    /// Inserts the intent, or returns the existing row for its key.
    func insert(_ request: TransferRequest, on connection: PostgresConnection) async throws -> (Transfer, inserted: Bool) {
        let (asset, token): (String, String?) =
            switch request.asset {
            case .ether: ("eth", nil)
            case .token(let contract): ("erc20", contract.checksummed)
            }
        if let inserted = try await connection.first(
            """
            INSERT INTO wallet_transfers (idempotency_key, wallet_address, asset, token_address, recipient, amount)
            VALUES (\(request.idempotencyKey), \(wallet.checksummed), \(asset), \(token), \(request.recipient.checksummed), \(String(request.amount))::numeric)
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING \(unescaped: Self.transferColumns)
            """, as: TransferRow.self, logger: logger)
        {
            return (try Self.transfer(inserted), true)
        }
        guard let existing = try await transfer(key: request.idempotencyKey, on: connection) else {
            throw TransferStoreError.walletMissing
        }
        return (existing, false)
    }

    func transfer(key: String, on connection: PostgresConnection) async throws -> Transfer? {
        try await connection.first(
            "SELECT \(unescaped: Self.transferColumns) FROM wallet_transfers WHERE idempotency_key = \(key)", as: TransferRow.self, logger: logger
        ).map(Self.transfer)
    }

    func transfer(id: Int64, on connection: PostgresConnection) async throws -> Transfer? {
        try await connection.first(
            "SELECT \(unescaped: Self.transferColumns) FROM wallet_transfers WHERE id = \(id)", as: TransferRow.self, logger: logger
        ).map(Self.transfer)
    }

    /// This wallet's transfers in `states`, nonce order first (what the chain orders by), then age.
    func transfers(in states: [TransferState], limit: Int, on connection: PostgresConnection) async throws -> [Transfer] {
        try await connection.all(
            """
            SELECT \(unescaped: Self.transferColumns) FROM wallet_transfers
            WHERE wallet_address = \(wallet.checksummed) AND state = ANY(\(states.map(\.rawValue)))
            ORDER BY nonce NULLS LAST, id
            LIMIT \(limit)
            """, as: TransferRow.self, logger: logger
        ).map(Self.transfer)
    }

    /// What in-flight transfers (signed or broadcast, with a nonce from `unminedFrom` — the wallet's mined
    /// transaction count at the block the balance was read — so not yet in that block) may still take from
    /// the balance: their value in `asset`, and the worst-case fee of each newest attempt in ether.
    func reservedOutflow(asset: TransferAsset, unminedFrom: UInt64, on connection: PostgresConnection) async throws -> (value: BigUInt, fees: BigUInt)
    {
        let token: String? = if case .token(let contract) = asset { contract.checksummed } else { nil }
        let row = try await connection.first(
            """
            SELECT
                COALESCE(SUM(t.amount) FILTER (WHERE t.token_address IS NOT DISTINCT FROM \(token)), 0)::text,
                COALESCE(SUM(a.gas_limit * a.max_fee_per_gas), 0)::text
            FROM wallet_transfers t
            JOIN LATERAL (
                SELECT gas_limit, max_fee_per_gas FROM wallet_transfer_attempts
                WHERE transfer_id = t.id ORDER BY id DESC LIMIT 1
            ) a ON true
            WHERE t.wallet_address = \(wallet.checksummed) AND t.state = ANY(\([TransferState.signed, .broadcast].map(\.rawValue))) AND t.nonce >= \(Int64(unminedFrom))
            """, as: (String, String).self, logger: logger)
        guard let (value, fees) = row else { return (0, 0) }
        return (try Self.units(value, "reserved transfer value"), try Self.units(fees, "reserved fees"))
    }

    func markSigned(_ transferID: Int64, nonce: UInt64, on connection: PostgresConnection) async throws {
        try await connection.run(
            """
            UPDATE wallet_transfers SET state = \(TransferState.signed.rawValue), nonce = \(Int64(nonce)), last_error = NULL
            WHERE id = \(transferID) AND state = \(TransferState.queued.rawValue)
            """, logger: logger)
    }

    func insertAttempt(
        transferID: Int64, nonce: UInt64, fees: FeeFields, gasLimit: UInt64, signed: SignedTransaction,
        on connection: PostgresConnection
    ) async throws {
        try await connection.run(
            """
            INSERT INTO wallet_transfer_attempts
                (transfer_id, nonce, max_fee_per_gas, max_priority_fee_per_gas, gas_limit, tx_hash, raw_transaction)
            VALUES (\(transferID), \(Int64(nonce)), \(String(fees.maxFeePerGas))::numeric,
                    \(String(fees.maxPriorityFeePerGas))::numeric, \(Int64(gasLimit)), \(Data(signed.hash)), \(Data(signed.rawTransaction)))
            """, logger: logger)
    }

    /// Newest first.
    func attempts(of transferID: Int64, on connection: PostgresConnection) async throws -> [TransferAttempt] {
        try await connection.all(
            """
            SELECT id, nonce, max_fee_per_gas::text, max_priority_fee_per_gas::text, gas_limit, tx_hash, raw_transaction,
                   broadcast_at IS NOT NULL, unanswered_broadcast_at IS NOT NULL
            FROM wallet_transfer_attempts WHERE transfer_id = \(transferID) ORDER BY id DESC
            """, as: (Int64, Int64, String, String, Int64, Data, Data, Bool, Bool).self, logger: logger
        ).map { id, nonce, maxFee, tip, gas, hash, raw, acknowledged, unanswered in
            TransferAttempt(
                id: id, nonce: UInt64(nonce), maxFeePerGas: try Self.units(maxFee, "max_fee_per_gas of attempt \(id)"),
                maxPriorityFeePerGas: try Self.units(tip, "max_priority_fee_per_gas of attempt \(id)"),
                gasLimit: UInt64(gas), hash: Array(hash), rawTransaction: Array(raw), acknowledged: acknowledged, unanswered: unanswered
            )
        }
    }

    /// True when the newest attempt was signed at least `age` ago (by the database clock).
    func newestAttemptIsOlder(than age: Duration, transferID: Int64, on connection: PostgresConnection) async throws -> Bool {
        let seconds = Double(age.components.seconds) + Double(age.components.attoseconds) / 1e18
        return try await connection.first(
            """
            SELECT created_at <= now() - make_interval(secs => \(seconds))
            FROM wallet_transfer_attempts WHERE transfer_id = \(transferID) ORDER BY id DESC LIMIT 1
            """, as: Bool.self, logger: logger) ?? false
    }

    /// A node has the bytes: the attempt is acknowledged and a `signed` transfer becomes `broadcast`.
    func markAcknowledged(attemptID: Int64, transferID: Int64, on connection: PostgresConnection) async throws {
        try await connection.run("UPDATE wallet_transfer_attempts SET broadcast_at = now() WHERE id = \(attemptID)", logger: logger)
        try await connection.run(
            """
            UPDATE wallet_transfers SET state = \(TransferState.broadcast.rawValue), last_error = NULL
            WHERE id = \(transferID) AND state = \(TransferState.signed.rawValue)
            """, logger: logger)
    }

    /// A broadcast of the attempt ended without an answer; the first such time is kept.
    func markUnanswered(attemptID: Int64, on connection: PostgresConnection) async throws {
        try await connection.run(
            "UPDATE wallet_transfer_attempts SET unanswered_broadcast_at = coalesce(unanswered_broadcast_at, now()) WHERE id = \(attemptID)",
            logger: logger
        )
    }

    func recordLastError(_ message: String, transferID: Int64, on connection: PostgresConnection) async throws {
        try await connection.run("UPDATE wallet_transfers SET last_error = \(String(message.prefix(1000))) WHERE id = \(transferID)", logger: logger)
    }

    func recordMined(_ receipt: TransactionReceipt, transferID: Int64, on connection: PostgresConnection) async throws {
        try await connection.run(
            """
            UPDATE wallet_transfers SET state = \(TransferState.mined.rawValue), mined_tx_hash = \(Data(receipt.transactionHash)),
                block_number = \(Int64(receipt.blockNumber)), block_hash = \(Data(receipt.blockHash)),
                gas_used = \(Int64(receipt.gasUsed)), effective_gas_price = \(String(receipt.effectiveGasPrice))::numeric,
                nonce_passed_at_block = NULL, last_error = NULL
            WHERE id = \(transferID) AND state = ANY(\([TransferState.signed, .broadcast, .mined].map(\.rawValue)))
            """, logger: logger)
    }

    /// The receipt vanished (a re-org): back to waiting for one.
    func recordUnmined(transferID: Int64, on connection: PostgresConnection) async throws {
        try await connection.run(
            """
            UPDATE wallet_transfers SET state = \(TransferState.broadcast.rawValue), mined_tx_hash = NULL, block_number = NULL, block_hash = NULL,
                gas_used = NULL, effective_gas_price = NULL
            WHERE id = \(transferID) AND state = \(TransferState.mined.rawValue)
            """, logger: logger)
    }

    func recordConfirmed(transferID: Int64, on connection: PostgresConnection) async throws {
        try await connection.run(
            """
            UPDATE wallet_transfers SET state = \(TransferState.confirmed.rawValue), settled_at = now(), last_error = NULL
            WHERE id = \(transferID) AND state = \(TransferState.mined.rawValue)
            """, logger: logger)
    }

    /// Ends a transfer without payment. `releasingNonce` clears the nonce (it never reached the chain).
    func recordFailure(
        _ failure: TransferFailure, reason: String, transferID: Int64, releasingNonce: Bool, on connection: PostgresConnection
    ) async throws {
        let state: TransferState = failure == .reverted ? .reverted : .failed
        try await connection.run(
            """
            UPDATE wallet_transfers SET state = \(state.rawValue), failure_code = \(failure.rawValue), failure_reason = \(String(reason.prefix(1000))),
                nonce = CASE WHEN \(releasingNonce) THEN NULL ELSE nonce END, settled_at = now()
            WHERE id = \(transferID)
            """, logger: logger)
    }

    /// Remembers the first block at which the chain had passed the transfer's nonce without a receipt
    /// of ours; returns that block.
    func notePassedNonce(atBlock block: UInt64, transferID: Int64, on connection: PostgresConnection) async throws -> UInt64 {
        return try await connection.first(
            """
            UPDATE wallet_transfers SET nonce_passed_at_block = COALESCE(nonce_passed_at_block, \(Int64(block)))
            WHERE id = \(transferID) RETURNING nonce_passed_at_block
            """, as: Int64.self, logger: logger
        ).map(UInt64.init) ?? block
    }

    private static func transfer(_ row: TransferRow) throws -> Transfer {
        let (id, key, asset, token, recipient, amount, state, nonce, minedHash, block, failureCode, failureReason, lastError) = row
        let transferAsset: TransferAsset
        if asset == "erc20", let token {
            transferAsset = .token(try Address(parsing: token))
        } else {
            transferAsset = .ether
        }
        guard let transferState = TransferState(rawValue: state), let value = BigUInt(amount) else {
            throw TransferStoreError.corruptRow(id)
        }
        return Transfer(
            id: id, idempotencyKey: key, asset: transferAsset, recipient: try Address(parsing: recipient), amount: value,
            state: transferState, nonce: nonce.map(UInt64.init), minedTransactionHash: minedHash.map(Array.init),
            blockNumber: block.map(UInt64.init), failure: failureCode.flatMap(TransferFailure.init(rawValue:)),
            failureReason: failureReason, lastError: lastError
        )
    }

    /// Base units read back from a numeric column: money is never silently zero, so text that is not a whole
    /// non-negative number is an error.
    private static func units(_ text: String, _ what: String) throws(TransferStoreError) -> BigUInt {
        guard let value = BigUInt(text) else { throw .malformedAmount(what, text) }
        return value
    }
}

/// The stored state is not what the schema promises.
enum TransferStoreError: Error {
    case walletMissing
    case corruptRow(Int64)
    /// A stored amount (named by the first value) whose text is not a whole number of base units.
    case malformedAmount(String, String)
}
