import BigInt
import Foundation

extension BigUInt {
    init(_ bigEndian: [UInt8]) {
        self.init(Data(bigEndian))
    }

    /// Big-endian without leading zeros; zero is empty.
    var minimalBytes: [UInt8] {
        Array(serialize())
    }

    /// Big-endian, left-padded to `width`; `nil` when the value needs more bytes.
    func paddedBytes(width: Int) -> [UInt8]? {
        let bytes = minimalBytes
        guard bytes.count <= width else { return nil }
        return [UInt8](repeating: 0, count: width - bytes.count) + bytes
    }
}
