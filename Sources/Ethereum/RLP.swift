import BigInt

/// Why bytes are not a canonical RLP encoding, or an item is not the shape a caller expected.
public enum RLPError: Error, Equatable, Sendable {
    case emptyInput
    case truncated
    case trailingBytes(count: Int)
    case singleByteNotInline
    case shortLengthInLongForm
    case leadingZeroInLength
    case lengthTooLarge
    case nestingTooDeep(limit: Int)
    case expectedBytes
    case expectedList
    case leadingZeroInInteger
}

/// An RLP item: a byte string or a list of items.
public enum RLPItem: Equatable, Sendable {
    case bytes([UInt8])
    case list([RLPItem])

    public static func string(_ text: String) -> RLPItem {
        .bytes(Array(text.utf8))
    }

    /// Integers are big-endian without leading zeros, so zero is the empty string.
    public static func uint(_ value: BigUInt) -> RLPItem {
        .bytes(value.minimalBytes)
    }

    public static func uint(_ value: UInt64) -> RLPItem {
        .uint(BigUInt(value))
    }

    public func byteString() throws(RLPError) -> [UInt8] {
        guard case .bytes(let bytes) = self else { throw .expectedBytes }
        return bytes
    }

    public func listItems() throws(RLPError) -> [RLPItem] {
        guard case .list(let items) = self else { throw .expectedList }
        return items
    }

    /// Rejects leading zeros because they would give one integer several encodings.
    public func unsignedInteger() throws(RLPError) -> BigUInt {
        let bytes = try byteString()
        if bytes.first == 0 { throw .leadingZeroInInteger }
        return BigUInt(bytes)
    }
}

/// Recursive Length Prefix encoding, as defined in the Ethereum yellow paper, appendix B.
public enum RLP {
    /// Deeper nesting than any Ethereum structure uses; bounds recursion on hostile input.
    public static let maximumDepth = 64

    public static func encode(_ item: RLPItem) -> [UInt8] {
        var output = [UInt8]()
        append(item, to: &output)
        return output
    }

    /// Accepts only the canonical encoding of exactly one item, with nothing after it.
    public static func decode(_ bytes: [UInt8]) throws(RLPError) -> RLPItem {
        guard !bytes.isEmpty else { throw .emptyInput }
        var offset = 0
        let item = try decodeItem(bytes, at: &offset, end: bytes.count, depth: 0)
        guard offset == bytes.count else { throw .trailingBytes(count: bytes.count - offset) }
        return item
    }

    private static func append(_ item: RLPItem, to output: inout [UInt8]) {
        switch item {
        case .bytes(let bytes):
            if bytes.count == 1 && bytes[0] < 0x80 {
                output.append(bytes[0])
            } else {
                appendHeader(length: bytes.count, shortBase: 0x80, to: &output)
                output.append(contentsOf: bytes)
            }
        case .list(let items):
            var payload = [UInt8]()
            for child in items {
                append(child, to: &payload)
            }
            appendHeader(length: payload.count, shortBase: 0xc0, to: &output)
            output.append(contentsOf: payload)
        }
    }

    private static func appendHeader(length: Int, shortBase: UInt8, to output: inout [UInt8]) {
        if length < 56 {
            output.append(shortBase + UInt8(length))
        } else {
            let lengthBytes = bigEndianMinimal(UInt64(length))
            output.append(shortBase + 55 + UInt8(lengthBytes.count))
            output.append(contentsOf: lengthBytes)
        }
    }

    private static func bigEndianMinimal(_ value: UInt64) -> [UInt8] {
        let byteCount = (64 - value.leadingZeroBitCount + 7) / 8
        return (0..<byteCount).reversed().map { UInt8(truncatingIfNeeded: value >> UInt64($0 * 8)) }
    }

    private static func decodeItem(
        _ bytes: [UInt8], at offset: inout Int, end: Int, depth: Int
    ) throws(RLPError) -> RLPItem {
        guard offset < end else { throw .truncated }
        let prefix = bytes[offset]
        offset += 1
        switch prefix {
        case 0x00...0x7f:
            return .bytes([prefix])
        case 0x80...0xbf:
            let length = try payloadLength(prefix: prefix, shortBase: 0x80, bytes, at: &offset, end: end)
            let payload = Array(bytes[offset..<offset + length])
            offset += length
            if length == 1 && payload[0] < 0x80 { throw .singleByteNotInline }
            return .bytes(payload)
        default:
            guard depth < maximumDepth else { throw .nestingTooDeep(limit: maximumDepth) }
            let length = try payloadLength(prefix: prefix, shortBase: 0xc0, bytes, at: &offset, end: end)
            let payloadEnd = offset + length
            var items = [RLPItem]()
            while offset < payloadEnd {
                items.append(try decodeItem(bytes, at: &offset, end: payloadEnd, depth: depth + 1))
            }
            return .list(items)
        }
    }

    /// Reads the length that follows `prefix` and checks the payload fits before `end`.
    private static func payloadLength(
        prefix: UInt8, shortBase: UInt8, _ bytes: [UInt8], at offset: inout Int, end: Int
    ) throws(RLPError) -> Int {
        let length: Int
        if prefix <= shortBase + 55 {
            length = Int(prefix - shortBase)
        } else {
            let lengthOfLength = Int(prefix - shortBase - 55)
            guard end - offset >= lengthOfLength else { throw .truncated }
            guard bytes[offset] != 0 else { throw .leadingZeroInLength }
            var value: UInt64 = 0
            for byte in bytes[offset..<offset + lengthOfLength] {
                value = value << 8 | UInt64(byte)
            }
            offset += lengthOfLength
            guard value <= UInt64(Int.max) else { throw .lengthTooLarge }
            length = Int(value)
            guard length >= 56 else { throw .shortLengthInLongForm }
        }
        guard end - offset >= length else { throw .truncated }
        return length
    }
}
