/// Keccak-256 as Ethereum uses it: the original Keccak submission, padded with `0x01`,
/// which differs from NIST SHA3-256 (padding `0x06`) and therefore from any SHA3 API.
public struct Keccak256: Sendable {
    private static let rateInBytes = 136
    private static let digestLength = 32

    private var state = [UInt64](repeating: 0, count: 25)
    private var pending = [UInt8]()

    public init() {
        pending.reserveCapacity(Self.rateInBytes)
    }

    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var hasher = Keccak256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    public static func hash(_ text: String) -> [UInt8] {
        hash(Array(text.utf8))
    }

    public mutating func update(_ bytes: [UInt8]) {
        var offset = 0
        if !pending.isEmpty {
            let taken = min(Self.rateInBytes - pending.count, bytes.count)
            pending.append(contentsOf: bytes[0..<taken])
            offset = taken
            guard pending.count == Self.rateInBytes else { return }
            absorb(pending[...])
            pending.removeAll(keepingCapacity: true)
        }
        while bytes.count - offset >= Self.rateInBytes {
            absorb(bytes[offset..<offset + Self.rateInBytes])
            offset += Self.rateInBytes
        }
        pending.append(contentsOf: bytes[offset...])
    }

    /// Pads a copy of the state, so the hasher itself can keep absorbing input.
    public func finalize() -> [UInt8] {
        var block = pending
        block.append(0x01)
        block.append(contentsOf: repeatElement(0, count: Self.rateInBytes - block.count))
        block[Self.rateInBytes - 1] |= 0x80
        var last = self
        last.absorb(block[...])

        var digest = [UInt8]()
        digest.reserveCapacity(Self.digestLength)
        for lane in last.state.prefix(Self.digestLength / 8) {
            for shift in stride(from: 0, to: 64, by: 8) {
                digest.append(UInt8(truncatingIfNeeded: lane >> UInt64(shift)))
            }
        }
        return digest
    }

    private mutating func absorb(_ block: ArraySlice<UInt8>) {
        var index = block.startIndex
        for lane in 0..<(Self.rateInBytes / 8) {
            var word: UInt64 = 0
            for byte in 0..<8 {
                word |= UInt64(block[index + byte]) << UInt64(8 * byte)
            }
            state[lane] ^= word
            index += 8
        }
        state.withUnsafeMutableBufferPointer { Self.permute($0) }
    }

    private static func permute(_ lanes: UnsafeMutableBufferPointer<UInt64>) {
        var parity = [UInt64](repeating: 0, count: 5)
        var moved = [UInt64](repeating: 0, count: 25)
        for roundConstant in roundConstants {
            // θ: mix each column's parity into its two neighbouring columns.
            for x in 0..<5 {
                parity[x] = lanes[x] ^ lanes[x + 5] ^ lanes[x + 10] ^ lanes[x + 15] ^ lanes[x + 20]
            }
            for x in 0..<5 {
                let mix = parity[(x + 4) % 5] ^ rotateLeft(parity[(x + 1) % 5], by: 1)
                for y in stride(from: 0, to: 25, by: 5) {
                    lanes[x + y] ^= mix
                }
            }
            // ρ and π: lane (x, y) moves to (y, 2x + 3y) after its fixed rotation.
            for x in 0..<5 {
                for y in 0..<5 {
                    let source = x + 5 * y
                    moved[y + 5 * ((2 * x + 3 * y) % 5)] = rotateLeft(lanes[source], by: rotationOffsets[source])
                }
            }
            // χ: the only non-linear step.
            for y in stride(from: 0, to: 25, by: 5) {
                for x in 0..<5 {
                    lanes[y + x] = moved[y + x] ^ (~moved[y + (x + 1) % 5] & moved[y + (x + 2) % 5])
                }
            }
            // ι: makes the rounds differ from one another.
            lanes[0] ^= roundConstant
        }
    }

    private static func rotateLeft(_ value: UInt64, by amount: Int) -> UInt64 {
        amount == 0 ? value : value << UInt64(amount) | value >> UInt64(64 - amount)
    }

    /// Indexed by `x + 5y`.
    private static let rotationOffsets: [Int] = [
        0, 1, 62, 28, 27,
        36, 44, 6, 55, 20,
        3, 10, 43, 25, 39,
        41, 45, 15, 21, 8,
        18, 2, 61, 56, 14,
    ]

    private static let roundConstants: [UInt64] = [
        0x0000_0000_0000_0001, 0x0000_0000_0000_8082, 0x8000_0000_0000_808A, 0x8000_0000_8000_8000,
        0x0000_0000_0000_808B, 0x0000_0000_8000_0001, 0x8000_0000_8000_8081, 0x8000_0000_0000_8009,
        0x0000_0000_0000_008A, 0x0000_0000_0000_0088, 0x0000_0000_8000_8009, 0x0000_0000_8000_000A,
        0x0000_0000_8000_808B, 0x8000_0000_0000_008B, 0x8000_0000_0000_8089, 0x8000_0000_0000_8003,
        0x8000_0000_0000_8002, 0x8000_0000_0000_0080, 0x0000_0000_0000_800A, 0x8000_0000_8000_000A,
        0x8000_0000_8000_8081, 0x8000_0000_0000_8080, 0x0000_0000_8000_0001, 0x8000_0000_8000_8008,
    ]
}
