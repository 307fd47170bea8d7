import BigInt
import Ethereum
import TestPeers
import Testing

/// Builds an EIP-1559 transaction from `key` at the node's current fees: tip from
/// `eth_maxPriorityFeePerGas`, cap = tip + 2 × next base fee (web3.py's recipe).
private func signedTransfer(
    on chain: LocalChain, from key: PrivateKey, to recipient: Address, value: BigUInt, data: [UInt8] = [],
    gasLimit: UInt64 = 21_000, nonce: UInt64? = nil, chainId: UInt64? = nil
) async throws -> SignedTransaction {
    let tip = try await chain.rpc.maxPriorityFeePerGas()
    let history = try await chain.rpc.feeHistory(blockCount: 1, newest: .latest, rewardPercentiles: [])
    let baseFee = try #require(history.nextBaseFee)
    var resolvedNonce = nonce ?? 0
    if nonce == nil {
        resolvedNonce = try await chain.rpc.transactionCount(of: key.address, at: .pending)
    }
    let transaction = EIP1559Transaction(
        chainId: chainId ?? chain.chainId,
        nonce: resolvedNonce,
        maxPriorityFeePerGas: tip, maxFeePerGas: tip + 2 * baseFee, gasLimit: gasLimit,
        to: recipient, value: value, data: data
    )
    return try transaction.sign(with: key)
}

@Suite("Ethereum JSON-RPC client against py-evm")
struct JSONRPCClientTests {
    @Test("reads the eth-tester chain id, block number and a London block header")
    func readsChainState() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        #expect(try await chain.rpc.chainId() == 131_277_322_940_537)
        let number = try await chain.rpc.blockNumber()
        let latest = try await #require(chain.rpc.block(.latest))
        #expect(latest.number >= number)
        #expect(latest.baseFeePerGas != nil)
        #expect(try await chain.rpc.block(.number(latest.number + 1000)) == nil)
    }

    @Test("eth_feeHistory has one more base fee than blocks, and a reward row per block")
    func feeHistoryShape() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let key = try await chain.fundedWallet()
        try await chain.fund(key.address, wei: 1)
        let history = try await chain.rpc.feeHistory(blockCount: 2, newest: .latest, rewardPercentiles: [25, 75])
        #expect(history.baseFeePerGas.count == 3)
        #expect(history.gasUsedRatio.count == 2)
        #expect(history.reward.count == 2 && history.reward.allSatisfy { $0.count == 2 })
    }

    @Test("a transaction we sign is accepted by py-evm and moves exactly the amount")
    func signedTransferMovesExactAmount() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let key = try await chain.fundedWallet(ether: 2)
        let recipient = LocalChain.randomAddress()
        let amount = BigUInt(123_456_789_012_345_678)
        let before = try await chain.rpc.balance(of: key.address, at: .latest)

        let signed = try await signedTransfer(on: chain, from: key, to: recipient, value: amount)
        let hash = try await chain.rpc.sendRawTransaction(signed.rawTransaction)
        #expect(hash == signed.hash)

        let receipt = try await #require(chain.rpc.transactionReceipt(hash))
        #expect(receipt.succeeded)
        #expect(receipt.from == key.address)
        #expect(receipt.to == recipient)
        #expect(receipt.gasUsed == 21_000)
        #expect(try await chain.rpc.balance(of: recipient, at: .latest) == amount)
        let fee = BigUInt(receipt.gasUsed) * receipt.effectiveGasPrice
        #expect(try await chain.rpc.balance(of: key.address, at: .latest) == before - amount - fee)
        #expect(try await chain.rpc.transactionCount(of: key.address, at: .latest) == 1)
        let info = try await #require(chain.rpc.transaction(hash))
        #expect(info.nonce == 0 && info.value == amount && info.blockNumber == receipt.blockNumber)
    }

    @Test("a legacy EIP-155 transaction we sign is accepted too")
    func legacyTransferIsAccepted() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let key = try await chain.fundedWallet(ether: 1)
        let recipient = LocalChain.randomAddress()
        let gasPrice = try await #require(chain.rpc.block(.latest)?.baseFeePerGas) * 2
        let signed = try LegacyTransaction(nonce: 0, gasPrice: gasPrice, gasLimit: 21_000, to: recipient, value: 777, chainId: chain.chainId)
            .sign(with: key)
        let hash = try await chain.rpc.sendRawTransaction(signed.rawTransaction)
        #expect(try await chain.rpc.transactionReceipt(hash)?.succeeded == true)
        #expect(try await chain.rpc.balance(of: recipient, at: .latest) == 777)
    }

    @Test("an ERC-20 transfer we sign moves exactly the base units, and balanceOf reads them")
    func erc20TransferMovesExactBaseUnits() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let key = try await chain.fundedWallet(ether: 1)
        let supply = try TokenUnits.baseUnits(fromDecimal: "1000000", decimals: 6)
        let token = try await chain.deployToken(supply: supply, holder: key.address)
        let recipient = LocalChain.randomAddress()
        let amount = try TokenUnits.baseUnits(fromDecimal: "1234.567891", decimals: 6)
        #expect(amount == 1_234_567_891)

        let data = try ERC20.transferCallData(to: recipient, amount: amount)
        let estimate = try await chain.rpc.estimateGas(CallRequest(from: key.address, to: token, data: data))
        #expect(estimate > 21_000)
        let signed = try await signedTransfer(on: chain, from: key, to: token, value: 0, data: data, gasLimit: estimate)
        let hash = try await chain.rpc.sendRawTransaction(signed.rawTransaction)
        let receipt = try await #require(chain.rpc.transactionReceipt(hash))
        #expect(receipt.succeeded)
        #expect(receipt.logs.count == 1)
        #expect(receipt.logs.first?.address == token)

        #expect(try await chain.rpc.tokenBalance(token: token, owner: recipient) == amount)
        #expect(try await chain.rpc.tokenBalance(token: token, owner: key.address) == supply - amount)
        #expect(try await chain.rpc.tokenDecimals(token: token) == 6)
    }
}

@Suite("Ethereum JSON-RPC errors from py-evm, mapped to typed cases")
struct JSONRPCErrorTests {
    @Test("re-sending a mined transaction is 'nonce too low'")
    func resendMinedIsNonceTooLow() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let key = try await chain.fundedWallet(ether: 1)
        let signed = try await signedTransfer(on: chain, from: key, to: LocalChain.randomAddress(), value: 1)
        _ = try await chain.rpc.sendRawTransaction(signed.rawTransaction)
        await #expect {
            _ = try await chain.rpc.sendRawTransaction(signed.rawTransaction)
        } throws: { error in
            guard case EthereumRPCError.nonceTooLow(let message) = error else { return false }
            return message == "nonce too low: next nonce 1, tx nonce 0"
        }
    }

    @Test("re-sending a pooled transaction is 'already known'; the pending nonce counts it")
    func resendPooledIsAlreadyKnown() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let key = try await chain.fundedWallet(ether: 1)
        try await chain.hold(key.address)
        let signed = try await signedTransfer(on: chain, from: key, to: LocalChain.randomAddress(), value: 1)
        _ = try await chain.rpc.sendRawTransaction(signed.rawTransaction)
        #expect(try await chain.rpc.transactionReceipt(signed.hash) == nil)
        #expect(try await chain.rpc.transaction(signed.hash)?.blockNumber == nil)
        #expect(try await chain.rpc.transactionCount(of: key.address, at: .pending) == 1)
        #expect(try await chain.rpc.transactionCount(of: key.address, at: .latest) == 0)
        await #expect {
            _ = try await chain.rpc.sendRawTransaction(signed.rawTransaction)
        } throws: { error in
            guard case EthereumRPCError.alreadyKnown = error else { return false }
            return true
        }
        #expect(try await chain.mineSender(key.address) == 1)
        #expect(try await chain.rpc.transactionReceipt(signed.hash)?.succeeded == true)
    }

    @Test("a replacement must raise both fees by 10 %; the replacement, not the original, is mined")
    func replacementNeedsBump() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let key = try await chain.fundedWallet(ether: 1)
        try await chain.hold(key.address)
        let recipient = LocalChain.randomAddress()
        let original = EIP1559Transaction(
            chainId: chain.chainId, nonce: 0, maxPriorityFeePerGas: LocalChain.gwei, maxFeePerGas: 10 * LocalChain.gwei,
            gasLimit: 21_000, to: recipient, value: 5
        )
        let first = try original.sign(with: key)
        _ = try await chain.rpc.sendRawTransaction(first.rawTransaction)

        var tipOnly = original
        tipOnly.maxPriorityFeePerGas = LocalChain.gwei * 2
        var tooSmall = original
        tooSmall.maxPriorityFeePerGas = LocalChain.gwei * 109 / 100
        tooSmall.maxFeePerGas = LocalChain.gwei * 1090 / 100
        for refused in [tipOnly, tooSmall] {
            await #expect {
                _ = try await chain.rpc.sendRawTransaction(try refused.sign(with: key).rawTransaction)
            } throws: { error in
                guard case EthereumRPCError.replacementUnderpriced = error else { return false }
                return true
            }
        }

        var bumped = original
        bumped.maxPriorityFeePerGas = LocalChain.gwei * 1125 / 1000
        bumped.maxFeePerGas = LocalChain.gwei * 11_250 / 1000
        bumped.value = 6
        let replacement = try bumped.sign(with: key)
        _ = try await chain.rpc.sendRawTransaction(replacement.rawTransaction)
        try await chain.mineSender(key.address)
        #expect(try await chain.rpc.transactionReceipt(replacement.hash)?.succeeded == true)
        #expect(try await chain.rpc.transactionReceipt(first.hash) == nil)
        #expect(try await chain.rpc.balance(of: recipient, at: .latest) == 6)
    }

    @Test("an unfunded sender gets 'insufficient funds' with the balance and cost")
    func insufficientFunds() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let key = try LocalChain.randomKey()
        try await chain.fund(key.address, wei: 1000)
        await #expect {
            _ = try await chain.rpc.sendRawTransaction(
                try await signedTransfer(on: chain, from: key, to: LocalChain.randomAddress(), value: 1).rawTransaction)
        } throws: { error in
            guard case EthereumRPCError.insufficientFunds(let message) = error else { return false }
            return message.hasPrefix("insufficient funds for gas * price + value: balance 1000, tx cost ")
        }
    }

    @Test("too little gas, a tip above the cap and another chain's id are refused with their own cases")
    func malformedTransactions() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let key = try await chain.fundedWallet(ether: 1)
        let recipient = LocalChain.randomAddress()
        await #expect {
            _ = try await chain.rpc.sendRawTransaction(
                try await signedTransfer(on: chain, from: key, to: recipient, value: 1, gasLimit: 20_000).rawTransaction)
        } throws: { error in
            guard case EthereumRPCError.intrinsicGasTooLow = error else { return false }
            return true
        }
        let inverted = EIP1559Transaction(
            chainId: chain.chainId, nonce: 0, maxPriorityFeePerGas: 5 * LocalChain.gwei, maxFeePerGas: 4 * LocalChain.gwei,
            gasLimit: 21_000, to: recipient, value: 1
        )
        await #expect {
            _ = try await chain.rpc.sendRawTransaction(try inverted.sign(with: key).rawTransaction)
        } throws: { error in
            guard case EthereumRPCError.tipAboveFeeCap = error else { return false }
            return true
        }
        await #expect {
            _ = try await chain.rpc.sendRawTransaction(
                try await signedTransfer(on: chain, from: key, to: recipient, value: 1, chainId: 1).rawTransaction)
        } throws: { error in
            guard case EthereumRPCError.invalidSender = error else { return false }
            return true
        }
    }

    @Test("a reverted call carries the decoded Error(string) reason and the raw revert data")
    func revertedCall() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        let holder = try await chain.fundedWallet(ether: 1)
        let token = try await chain.deployToken(supply: 10, holder: holder.address)
        let pauper = LocalChain.randomAddress()
        let data = try ERC20.transferCallData(to: holder.address, amount: 11)
        await #expect {
            _ = try await chain.rpc.call(CallRequest(from: pauper, to: token, data: data), at: .latest)
        } throws: { error in
            guard case EthereumRPCError.executionReverted(let reason, let revertData) = error else { return false }
            return reason == "ERC20: transfer amount exceeds balance" && Array(revertData.prefix(4)) == [0x08, 0xc3, 0x79, 0xa0]
        }
        await #expect {
            _ = try await chain.rpc.estimateGas(CallRequest(from: holder.address, to: token, data: data))
        } throws: { error in
            guard case EthereumRPCError.executionReverted(let reason, _) = error else { return false }
            return reason == "ERC20: transfer amount exceeds balance"
        }
    }

    @Test("an unknown method, a slow answer, an HTTP error status and a closed port are told apart")
    func transportAndProtocolErrors() async throws {
        let chain = try await EthereumTestNode.shared.chain()
        await #expect {
            _ = try await chain.rpc.request("eth_noSuchMethod", [], as: String.self)
        } throws: { error in
            guard case EthereumRPCError.methodNotFound("eth_noSuchMethod") = error else { return false }
            return true
        }
        let impatient = HTTPEthereumRPC(url: chain.url, timeout: .milliseconds(200))
        await #expect {
            _ = try await impatient.request("test_sleep", [.number("3")], as: Bool.self)
        } throws: { error in
            guard case EthereumRPCError.timedOut("test_sleep") = error else { return false }
            return true
        }
        try await FakeChangeNow().serve { url in
            // Any HTTP server that is not a JSON-RPC endpoint answers with a status, not an envelope.
            let notAnRPCServer = HTTPEthereumRPC(url: url + "/", timeout: .seconds(10))
            await #expect {
                _ = try await notAnRPCServer.chainId()
            } throws: { error in
                guard case EthereumRPCError.httpStatus(404, _) = error else { return false }
                return true
            }
        }
        let nowhere = HTTPEthereumRPC(url: "http://127.0.0.1:9", timeout: .seconds(1))
        await #expect {
            _ = try await nowhere.chainId()
        } throws: { error in
            guard case EthereumRPCError.transport("eth_chainId", _) = error else { return false }
            return true
        }
    }
}
