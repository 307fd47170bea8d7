/// Why text or bytes are not an Ethereum address.
public enum AddressError: Error, Equatable, Sendable {
    case invalidHex(HexError)
    case invalidLength(byteCount: Int)
    /// Mixed case promises an EIP-55 checksum; a wrong one usually means a mistyped address.
    case checksumMismatch(expected: String)
}

/// A 20-byte Ethereum account address, rendered with its EIP-55 mixed-case checksum.
public struct Address: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(AddressError) {
        guard bytes.count == 20 else { throw .invalidLength(byteCount: bytes.count) }
        self.bytes = bytes
    }

    init(validatedBytes bytes: [UInt8]) {
        precondition(bytes.count == 20, "an address is 20 bytes")
        self.bytes = bytes
    }

    /// Accepts all-lowercase and all-uppercase hex, which carry no checksum, and mixed case only
    /// when it is the correct EIP-55 checksum.
    public init(parsing text: String) throws(AddressError) {
        let bytes: [UInt8]
        do {
            bytes = try Hex.decodeData(text)
        } catch {
            throw .invalidHex(error)
        }
        try self.init(bytes: bytes)
        let digits = text.dropFirst(2)
        let hasLower = digits.contains { $0.isLowercase }
        let hasUpper = digits.contains { $0.isUppercase }
        if hasLower && hasUpper && text != checksummed {
            throw .checksumMismatch(expected: checksummed)
        }
    }

    /// EIP-55: a hex letter is uppercase when the matching nibble of the Keccak-256 of the
    /// lowercase hex is 8 or more.
    public var checksummed: String {
        let lowercase = Array(Hex.encodeData(bytes).utf8.dropFirst(2))
        let digest = Keccak256.hash(lowercase)
        var output = Array("0x".utf8)
        for (index, digit) in lowercase.enumerated() {
            let nibble = index.isMultiple(of: 2) ? digest[index / 2] >> 4 : digest[index / 2] & 0x0f
            let isLetter = digit >= UInt8(ascii: "a")
            output.append(isLetter && nibble >= 8 ? digit - 0x20 : digit)
        }
        return String(decoding: output, as: UTF8.self)
    }

    public var description: String { checksummed }
}
