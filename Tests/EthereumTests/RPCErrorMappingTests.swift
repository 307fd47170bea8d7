import Ethereum
import Testing

@Suite("geth error texts map to typed cases")
struct RPCErrorMappingTests {
    private func classify(_ message: String, code: Int = -32000, data: JSONValue? = nil) -> EthereumRPCError {
        EthereumRPCError.classify(code: code, message: message, data: data, method: "eth_sendRawTransaction")
    }

    @Test("each txpool and core message from go-ethereum lands in its own case")
    func gethMessages() {
        let cases: [(String, (EthereumRPCError) -> Bool)] = [
            (
                "nonce too low: next nonce 5, tx nonce 3",
                {
                    if case .nonceTooLow = $0 { return true }; return false
                }
            ),
            (
                "already known",
                {
                    if case .alreadyKnown = $0 { return true }; return false
                }
            ),
            (
                "known transaction: 3f2a…",
                {
                    if case .alreadyKnown = $0 { return true }; return false
                }
            ),
            (
                "replacement transaction underpriced",
                {
                    if case .replacementUnderpriced = $0 { return true }; return false
                }
            ),
            (
                "transaction underpriced: tip needed 1, tip permitted 0",
                {
                    if case .transactionUnderpriced = $0 { return true }; return false
                }
            ),
            (
                "insufficient funds for gas * price + value: balance 1, tx cost 2, overshot 1",
                {
                    if case .insufficientFunds = $0 { return true }; return false
                }
            ),
            (
                "intrinsic gas too low: gas 20000, minimum needed 21000",
                {
                    if case .intrinsicGasTooLow = $0 { return true }; return false
                }
            ),
            (
                "max fee per gas less than block base fee: address 0x…, maxFeePerGas: 1, baseFee: 7",
                {
                    if case .feeCapBelowBaseFee = $0 { return true }; return false
                }
            ),
            (
                "max priority fee per gas higher than max fee per gas",
                {
                    if case .tipAboveFeeCap = $0 { return true }; return false
                }
            ),
            (
                "exceeds block gas limit",
                {
                    if case .exceedsBlockGasLimit = $0 { return true }; return false
                }
            ),
            (
                "nonce too high",
                {
                    if case .nonceTooHigh = $0 { return true }; return false
                }
            ),
            (
                "invalid sender",
                {
                    if case .invalidSender = $0 { return true }; return false
                }
            ),
            (
                "Nonce too low",
                {
                    if case .nonceTooLow = $0 { return true }; return false
                }
            ),
            (
                "something else entirely",
                {
                    if case .server(-32000, "something else entirely") = $0 { return true }; return false
                }
            ),
        ]
        for (message, matches) in cases {
            #expect(matches(classify(message)), "\(message)")
        }
    }

    @Test("code -32601 is an unknown method")
    func unknownMethod() {
        guard
            case .methodNotFound("eth_foo") = EthereumRPCError.classify(
                code: -32601, message: "the method eth_foo does not exist/is not available", data: nil, method: "eth_foo")
        else {
            Issue.record("not methodNotFound")
            return
        }
    }

    @Test("code 3 decodes Error(string) from the revert data")
    func revertWithReason() throws {
        // abi.encodeWithSignature("Error(string)", "nope")
        let data =
            "0x08c379a0" + String(repeating: "0", count: 62) + "20" + String(repeating: "0", count: 63) + "4"
            + "6e6f7065" + String(repeating: "0", count: 56)
        guard case .executionReverted(let reason, let bytes) = classify("execution reverted: nope", code: 3, data: .string(data)) else {
            Issue.record("not executionReverted")
            return
        }
        #expect(reason == "nope")
        #expect(bytes.count == 4 + 96)
    }

    @Test("a Panic(uint256) revert names the panic code; a bare revert has no reason")
    func panicAndBareRevert() {
        let panic = "0x4e487b71" + String(repeating: "0", count: 62) + "11"
        guard case .executionReverted("panic 0x11", _) = classify("execution reverted", code: 3, data: .string(panic)) else {
            Issue.record("panic not decoded")
            return
        }
        guard case .executionReverted(nil, []) = classify("execution reverted", code: 3, data: nil) else {
            Issue.record("bare revert has a reason")
            return
        }
    }

    @Test("truncated or lying Error(string) payloads decode to no reason instead of crashing")
    func malformedRevertData() throws {
        let lyingLength = try Hex.decodeData("0x08c379a0" + String(repeating: "0", count: 62) + "20" + String(repeating: "f", count: 64))
        #expect(RevertReason.decode(lyingLength) == nil)
        #expect(RevertReason.decode([0x08, 0xc3, 0x79, 0xa0, 0x00]) == nil)
        #expect(RevertReason.decode([]) == nil)
    }
}
