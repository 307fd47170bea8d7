import BigInt
import Ethereum
import Testing

@Suite("Hex")
struct HexTests {
    @Test("data encodes as lowercase 0x-prefixed hex, empty data as 0x")
    func encodeData() {
        #expect(Hex.encodeData([]) == "0x")
        #expect(Hex.encodeData([0x00, 0xab, 0x7f]) == "0x00ab7f")
    }

    @Test("data decodes from either letter case and 0x alone is empty")
    func decodeData() throws {
        #expect(try Hex.decodeData("0x") == [])
        #expect(try Hex.decodeData("0xABcd00") == [0xab, 0xcd, 0x00])
    }

    @Test("data without the 0x prefix, with an odd digit count or a non-hex character is rejected")
    func decodeDataRejects() {
        #expect(throws: HexError.missingPrefix) { try Hex.decodeData("abcd") }
        #expect(throws: HexError.missingPrefix) { try Hex.decodeData("0Xabcd") }
        #expect(throws: HexError.missingPrefix) { try Hex.decodeData("") }
        #expect(throws: HexError.oddLength) { try Hex.decodeData("0xabc") }
        #expect(throws: HexError.invalidCharacter("g")) { try Hex.decodeData("0xag") }
        #expect(throws: HexError.invalidCharacter("Ａ")) { try Hex.decodeData("0xＡ0") }
    }

    @Test("quantities encode minimally and zero is 0x0")
    func encodeQuantity() {
        #expect(Hex.encodeQuantity(0 as UInt64) == "0x0")
        #expect(Hex.encodeQuantity(BigUInt(0)) == "0x0")
        #expect(Hex.encodeQuantity(1024 as UInt64) == "0x400")
        #expect(Hex.encodeQuantity(BigUInt(1) << 64) == "0x10000000000000000")
    }

    @Test("quantities decode to exact integers of any size")
    func decodeQuantity() throws {
        #expect(try Hex.decodeQuantity("0x0") == 0)
        #expect(try Hex.decodeQuantity("0x400") == 1024)
        #expect(try Hex.decodeQuantity("0xDE0B6B3A7640000") == BigUInt(1_000_000_000_000_000_000))
        #expect(try Hex.decodeQuantity("0x10000000000000000") == BigUInt(1) << 64)
        #expect(try Hex.decodeQuantityUInt64("0xffffffffffffffff") == UInt64.max)
        #expect(try Hex.decodeQuantityUInt64("0x5208") == 21000)
    }

    @Test("quantities that are empty, zero-padded, unprefixed or too wide are rejected")
    func decodeQuantityRejects() {
        #expect(throws: HexError.emptyQuantity) { try Hex.decodeQuantity("0x") }
        #expect(throws: HexError.leadingZero) { try Hex.decodeQuantity("0x0400") }
        #expect(throws: HexError.leadingZero) { try Hex.decodeQuantity("0x00") }
        #expect(throws: HexError.missingPrefix) { try Hex.decodeQuantity("400") }
        #expect(throws: HexError.invalidCharacter("-")) { try Hex.decodeQuantity("0x-1") }
        #expect(throws: HexError.overflow(bits: 64)) { try Hex.decodeQuantityUInt64("0x10000000000000000") }
    }
}
