import BigInt
import Ethereum
import Testing

/// A valid vector from ethereum/tests `RLPTests/rlptest.json`, or built to the same rules.
struct RLPVector: Sendable, CustomTestStringConvertible {
    let name: String
    let item: RLPItem
    let encoded: String
    var testDescription: String { name }
}

/// An invalid encoding from ethereum/tests `RLPTests/invalidRLPTest.json`, or written for a rule it lacks.
struct InvalidRLPVector: Sendable, CustomTestStringConvertible {
    let name: String
    let encoded: String
    let error: RLPError
    var testDescription: String { name }
}

private let abc: RLPItem = .list([.string("asdf"), .string("qwer"), .string("zxcv")])
private let abcEncoded = "cf84617364668471776572847a786376"

private let validVectors: [RLPVector] = [
    RLPVector(name: "emptystring", item: .string(""), encoded: "80"),
    RLPVector(name: "bytestring00", item: .bytes([0x00]), encoded: "00"),
    RLPVector(name: "bytestring01", item: .bytes([0x01]), encoded: "01"),
    RLPVector(name: "bytestring7F", item: .bytes([0x7f]), encoded: "7f"),
    RLPVector(name: "shortstring", item: .string("dog"), encoded: "83646f67"),
    RLPVector(
        name: "shortstring2",
        item: .string("Lorem ipsum dolor sit amet, consectetur adipisicing eli"),
        encoded: "b74c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e7365637465747572206164697069736963696e6720656c69"
    ),
    RLPVector(
        name: "longstring",
        item: .string("Lorem ipsum dolor sit amet, consectetur adipisicing elit"),
        encoded: "b8384c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e7365637465747572206164697069736963696e6720656c6974"
    ),
    RLPVector(
        name: "1024-byte string has a two-byte length",
        item: .bytes([UInt8](repeating: 0x61, count: 1024)),
        encoded: "b90400" + String(repeating: "61", count: 1024)
    ),
    RLPVector(name: "zero", item: .uint(0 as UInt64), encoded: "80"),
    RLPVector(name: "smallint", item: .uint(1 as UInt64), encoded: "01"),
    RLPVector(name: "fifteen", item: .uint(15 as UInt64), encoded: "0f"),
    RLPVector(name: "smallint2", item: .uint(16 as UInt64), encoded: "10"),
    RLPVector(name: "smallint3", item: .uint(79 as UInt64), encoded: "4f"),
    RLPVector(name: "smallint4", item: .uint(127 as UInt64), encoded: "7f"),
    RLPVector(name: "mediumint1", item: .uint(128 as UInt64), encoded: "8180"),
    RLPVector(name: "mediumint2", item: .uint(1000 as UInt64), encoded: "8203e8"),
    RLPVector(name: "1024", item: .uint(1024 as UInt64), encoded: "820400"),
    RLPVector(name: "mediumint3", item: .uint(100_000 as UInt64), encoded: "830186a0"),
    RLPVector(
        name: "mediumint4",
        item: .uint(BigUInt("83729609699884896815286331701780722")),
        encoded: "8f102030405060708090a0b0c0d0e0f2"
    ),
    RLPVector(
        name: "mediumint5",
        item: .uint(BigUInt("105315505618206987246253880190783558935785933862974822347068935681")),
        encoded: "9c0100020003000400050006000700080009000a000b000c000d000e01"
    ),
    RLPVector(
        name: "bigint",
        item: .uint(BigUInt(1) << 256),
        encoded: "a1010000000000000000000000000000000000000000000000000000000000000000"
    ),
    RLPVector(name: "emptylist", item: .list([]), encoded: "c0"),
    RLPVector(name: "cat dog", item: .list([.string("cat"), .string("dog")]), encoded: "c88363617483646f67"),
    RLPVector(
        name: "stringlist",
        item: .list([.string("dog"), .string("god"), .string("cat")]),
        encoded: "cc83646f6783676f6483636174"
    ),
    RLPVector(
        name: "multilist",
        item: .list([.string("zw"), .list([.uint(4 as UInt64)]), .uint(1 as UInt64)]),
        encoded: "c6827a77c10401"
    ),
    RLPVector(
        name: "shortListMax1",
        item: .list(["asdf", "qwer", "zxcv", "asdf", "qwer", "zxcv", "asdf", "qwer", "zxcv", "asdf", "qwer"].map(RLPItem.string)),
        encoded: "f784617364668471776572847a78637684617364668471776572847a78637684617364668471776572847a78637684617364668471776572"
    ),
    RLPVector(name: "longList1", item: .list(Array(repeating: abc, count: 4)), encoded: "f840" + String(repeating: abcEncoded, count: 4)),
    RLPVector(name: "longList2", item: .list(Array(repeating: abc, count: 32)), encoded: "f90200" + String(repeating: abcEncoded, count: 32)),
    RLPVector(name: "listsoflists", item: .list([.list([.list([]), .list([])]), .list([])]), encoded: "c4c2c0c0c0"),
    RLPVector(
        name: "listsoflists2 (set-theoretical representation of three)",
        item: .list([.list([]), .list([.list([])]), .list([.list([]), .list([.list([])])])]),
        encoded: "c7c0c1c0c3c0c1c0"
    ),
    RLPVector(
        name: "dictTest1",
        item: .list((1...4).map { .list([.string("key\($0)"), .string("val\($0)")]) }),
        encoded: "ecca846b6579318476616c31ca846b6579328476616c32ca846b6579338476616c33ca846b6579348476616c34"
    ),
]

private let invalidVectors: [InvalidRLPVector] = [
    InvalidRLPVector(name: "int32Overflow", encoded: "bf0f000000000000021111", error: .truncated),
    InvalidRLPVector(name: "int32Overflow2", encoded: "ff0f000000000000021111", error: .truncated),
    InvalidRLPVector(name: "wrongSizeList", encoded: "f80180", error: .shortLengthInLongForm),
    InvalidRLPVector(name: "wrongSizeList2", encoded: "f80100", error: .shortLengthInLongForm),
    InvalidRLPVector(
        name: "incorrectLengthInArray",
        encoded: "b9002100dc2b275d0f74e8a53e6f4ec61b27f24278820be3f82ea2110e582081b0565df0",
        error: .leadingZeroInLength
    ),
    InvalidRLPVector(
        name: "randomRLP",
        encoded:
            "f861f83eb9002100dc2b275d0f74e8a53e6f4ec61b27f24278820be3f82ea2110e582081b0565df027b90015002d5ef8325ae4d034df55d4b58d0dfba64d61ddd17be00000b9001a00dae30907045a2f66fa36f2bb8aa9029cbb0b8a7b3b5c435ab331",
        error: .leadingZeroInLength
    ),
    InvalidRLPVector(name: "bytesShouldBeSingleByte00", encoded: "8100", error: .singleByteNotInline),
    InvalidRLPVector(name: "bytesShouldBeSingleByte01", encoded: "8101", error: .singleByteNotInline),
    InvalidRLPVector(name: "bytesShouldBeSingleByte7F", encoded: "817f", error: .singleByteNotInline),
    InvalidRLPVector(
        name: "leadingZerosInLongLengthArray1",
        encoded: "b90040" + hex((0..<64).map { UInt8($0) }),
        error: .leadingZeroInLength
    ),
    InvalidRLPVector(name: "leadingZerosInLongLengthArray2", encoded: "b800", error: .leadingZeroInLength),
    InvalidRLPVector(
        name: "leadingZerosInLongLengthList1",
        encoded: "fb00000040" + hex((0..<64).map { UInt8($0) }),
        error: .leadingZeroInLength
    ),
    InvalidRLPVector(name: "leadingZerosInLongLengthList2", encoded: "f800", error: .leadingZeroInLength),
    InvalidRLPVector(name: "nonOptimalLongLengthArray1", encoded: "b81000112233445566778899aabbccddeeff", error: .shortLengthInLongForm),
    InvalidRLPVector(name: "nonOptimalLongLengthArray2", encoded: "b801ff", error: .shortLengthInLongForm),
    InvalidRLPVector(name: "nonOptimalLongLengthList1", encoded: "f810000102030405060708090a0b0c0d0e0f", error: .shortLengthInLongForm),
    InvalidRLPVector(name: "nonOptimalLongLengthList2", encoded: "f803112233", error: .shortLengthInLongForm),
    InvalidRLPVector(name: "empty input", encoded: "", error: .emptyInput),
    InvalidRLPVector(name: "string shorter than its header says", encoded: "83646f", error: .truncated),
    InvalidRLPVector(name: "list shorter than its header says", encoded: "c280", error: .truncated),
    InvalidRLPVector(name: "child overruns its parent list", encoded: "c283616263", error: .truncated),
    InvalidRLPVector(name: "long length bytes missing", encoded: "b9", error: .truncated),
    InvalidRLPVector(name: "bytes after the item", encoded: "8000", error: .trailingBytes(count: 1)),
    InvalidRLPVector(name: "a second item after a list", encoded: "c0c0", error: .trailingBytes(count: 1)),
]

@Suite("RLP")
struct RLPTests {
    @Test("items encode to the reference bytes", arguments: validVectors)
    func encodes(vector: RLPVector) {
        #expect(hex(RLP.encode(vector.item)) == vector.encoded)
    }

    @Test("reference bytes decode back to the same item", arguments: validVectors)
    func decodes(vector: RLPVector) throws {
        #expect(try RLP.decode(bytes(vector.encoded)) == vector.item)
    }

    @Test("non-canonical, truncated and padded encodings are rejected with their reason", arguments: invalidVectors)
    func rejects(vector: InvalidRLPVector) {
        #expect(throws: vector.error) { try RLP.decode(bytes(vector.encoded)) }
    }

    @Test("nesting is accepted up to the depth limit and rejected one level beyond it")
    func nestingLimit() throws {
        func nested(_ depth: Int) -> RLPItem {
            (0..<depth).reduce(RLPItem.list([])) { inner, _ in .list([inner]) }
        }
        let deepest = nested(RLP.maximumDepth - 1)
        #expect(try RLP.decode(RLP.encode(deepest)) == deepest)
        #expect(throws: RLPError.nestingTooDeep(limit: RLP.maximumDepth)) {
            try RLP.decode(RLP.encode(nested(RLP.maximumDepth)))
        }
    }

    @Test("integers decode exactly and zero-padded integers are rejected")
    func integers() throws {
        #expect(try RLP.decode(bytes("820400")).unsignedInteger() == 1024)
        #expect(try RLP.decode(bytes("80")).unsignedInteger() == 0)
        #expect(throws: RLPError.leadingZeroInInteger) { try RLP.decode(bytes("820004")).unsignedInteger() }
        #expect(throws: RLPError.leadingZeroInInteger) { try RLP.decode(bytes("00")).unsignedInteger() }
    }

    @Test("asking a list for bytes, or bytes for a list, is a typed error")
    func shapeMismatch() {
        #expect(throws: RLPError.expectedBytes) { try RLPItem.list([]).byteString() }
        #expect(throws: RLPError.expectedList) { try RLPItem.bytes([]).listItems() }
        #expect(throws: RLPError.expectedBytes) { try RLPItem.list([]).unsignedInteger() }
    }
}
