import BigInt
import Ethereum
import Testing

@Suite("ERC-20 call data")
struct ERC20Tests {
    @Test("selectors are the first four bytes of the Keccak-256 of the function signatures")
    func selectors() {
        #expect(ERC20.transferSelector == Array(Keccak256.hash("transfer(address,uint256)").prefix(4)))
        #expect(ERC20.balanceOfSelector == Array(Keccak256.hash("balanceOf(address)").prefix(4)))
        #expect(hex(ERC20.transferSelector) == "a9059cbb")
        #expect(hex(ERC20.balanceOfSelector) == "70a08231")
        #expect(ERC20.decimalsSelector == Array(Keccak256.hash("decimals()").prefix(4)))
    }

    @Test("transfer call data is the selector, the left-padded address and the left-padded amount")
    func transfer() throws {
        let callData = try ERC20.transferCallData(to: exampleRecipient, amount: 1_500_000)
        #expect(callData.count == 68)
        #expect(
            hex(callData)
                == "a9059cbb"
                + "0000000000000000000000003535353535353535353535353535353535353535"
                + "000000000000000000000000000000000000000000000000000000000016e360"
        )
    }

    @Test("the largest uint256 is encoded and anything larger is refused")
    func transferAmountBounds() throws {
        let maximum = (BigUInt(1) << 256) - 1
        let callData = try ERC20.transferCallData(to: exampleRecipient, amount: maximum)
        #expect(Array(callData.suffix(32)) == [UInt8](repeating: 0xff, count: 32))
        #expect(throws: ABIError.valueExceeds256Bits) {
            try ERC20.transferCallData(to: exampleRecipient, amount: maximum + 1)
        }
    }

    @Test("balanceOf call data is the selector and the left-padded owner")
    func balanceOf() {
        #expect(
            hex(ERC20.balanceOfCallData(owner: exampleKey.address))
                == "70a08231" + "0000000000000000000000009d8a62f656a8d1615c1294fd71e9cfb3e4855a4f"
        )
    }

    @Test("a 32-byte return word decodes to its exact integer")
    func decodeReturn() throws {
        #expect(try ERC20.decodeUInt256(bytes("000000000000000000000000000000000000000000000000000000000016e360")) == 1_500_000)
        #expect(try ERC20.decodeUInt256([UInt8](repeating: 0xff, count: 32)) == (BigUInt(1) << 256) - 1)
        #expect(try ERC20.decodeUInt256([UInt8](repeating: 0, count: 32)) == 0)
    }

    @Test("return data that is not exactly one word is refused")
    func decodeReturnLength() {
        #expect(throws: ABIError.unexpectedReturnLength(0)) { try ERC20.decodeUInt256([]) }
        #expect(throws: ABIError.unexpectedReturnLength(31)) { try ERC20.decodeUInt256([UInt8](repeating: 0, count: 31)) }
        #expect(throws: ABIError.unexpectedReturnLength(64)) { try ERC20.decodeUInt256([UInt8](repeating: 0, count: 64)) }
    }
}
