import Ethereum
import Testing

/// The examples listed in EIP-55 itself.
private let eip55Examples = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]

@Suite("EIP-55 addresses")
struct AddressTests {
    @Test("EIP-55's examples parse and render back unchanged", arguments: eip55Examples)
    func roundTrip(example: String) throws {
        let address = try Address(parsing: example)
        #expect(address.checksummed == example)
        #expect(address.description == example)
    }

    @Test("all-lowercase and all-uppercase hex carry no checksum and are accepted", arguments: eip55Examples)
    func singleCase(example: String) throws {
        let digits = example.dropFirst(2)
        #expect(try Address(parsing: "0x" + digits.lowercased()).checksummed == example)
        #expect(try Address(parsing: "0x" + digits.uppercased()).checksummed == example)
    }

    @Test("mixed case with one letter's case flipped fails the checksum")
    func wrongChecksum() {
        let correct = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        let mistyped = "0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        #expect(throws: AddressError.checksumMismatch(expected: correct)) { try Address(parsing: mistyped) }
    }

    @Test("wrong lengths and malformed hex are rejected with their cause")
    func malformed() {
        #expect(throws: AddressError.invalidLength(byteCount: 19)) {
            try Address(parsing: "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea")
        }
        #expect(throws: AddressError.invalidHex(.missingPrefix)) {
            try Address(parsing: "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
        }
        #expect(throws: AddressError.invalidHex(.invalidCharacter("g"))) {
            try Address(parsing: "0xgaaeb6053f3e94c9b9a09f33669435e7ef1beaed")
        }
        #expect(throws: AddressError.invalidLength(byteCount: 21)) { try Address(bytes: [UInt8](repeating: 1, count: 21)) }
    }

    @Test("addresses compare by value regardless of the case they were parsed from")
    func equality() throws {
        let lower = try Address(parsing: "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
        let mixed = try Address(parsing: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
        #expect(lower == mixed)
    }
}
