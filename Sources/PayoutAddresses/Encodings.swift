import Crypto

/// Base58 over a given alphabet (Bitcoin's, or Ripple's), with the double-SHA-256 "check" variant.
struct Base58 {
    static let bitcoin = Base58(alphabet: "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
    static let ripple = Base58(alphabet: "rpshnaf39wBUDNEGHJKLM4PQRST7VWXYZ2bcdeCg65jkm8oFqi1tuvAxyz")

    private let digits: [Character: Int]
    private let zero: Character

    init(alphabet: String) {
        var digits: [Character: Int] = [:]
        for (index, character) in alphabet.enumerated() { digits[character] = index }
        self.digits = digits
        self.zero = alphabet.first!
    }

    func decode(_ text: String) -> [UInt8]? {
        guard !text.isEmpty else { return nil }
        var bytes: [UInt8] = []
        for character in text {
            guard var carry = digits[character] else { return nil }
            for index in bytes.indices.reversed() {
                carry += Int(bytes[index]) * 58
                bytes[index] = UInt8(carry & 0xff)
                carry >>= 8
            }
            while carry > 0 {
                bytes.insert(UInt8(carry & 0xff), at: 0)
                carry >>= 8
            }
        }
        let leadingZeros = text.prefix { $0 == zero }.count
        return [UInt8](repeating: 0, count: leadingZeros) + bytes.drop { $0 == 0 }
    }

    /// Decodes and verifies the 4-byte double-SHA-256 checksum; returns the payload without it.
    func decodeChecked(_ text: String) -> [UInt8]? {
        guard let bytes = decode(text), bytes.count > 4 else { return nil }
        let payload = Array(bytes.dropLast(4))
        let checksum = Array(SHA256.hash(data: Array(SHA256.hash(data: payload))).prefix(4))
        return Array(bytes.suffix(4)) == checksum ? payload : nil
    }
}

/// BIP-173 bech32 and BIP-350 bech32m.
enum Bech32 {
    enum Variant { case bech32, bech32m }

    static let charset = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l")

    static func polymod(_ values: [UInt8]) -> UInt32 {
        let generator: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var checksum: UInt32 = 1
        for value in values {
            let top = checksum >> 25
            checksum = (checksum & 0x1ff_ffff) << 5 ^ UInt32(value)
            for index in 0..<5 where (top >> index) & 1 == 1 { checksum ^= generator[index] }
        }
        return checksum
    }

    static func expand(_ hrp: [UInt8]) -> [UInt8] {
        hrp.map { $0 >> 5 } + [0] + hrp.map { $0 & 31 }
    }

    /// Splits and verifies a bech32/bech32m string; mixed case is invalid. `maxLength` is 90 for Bitcoin;
    /// Cardano and Zcash use longer strings.
    static func decode(_ text: String, maxLength: Int = 90) -> (hrp: String, data: [UInt8], variant: Variant)? {
        guard text.count <= maxLength, text.count >= 8, text.allSatisfy({ $0.isASCII }) else { return nil }
        guard text == text.lowercased() || text == text.uppercased() else { return nil }
        let lower = Array(text.lowercased().utf8)
        guard let separator = lower.lastIndex(of: UInt8(ascii: "1")), separator >= 1, lower.count - separator - 1 >= 6 else { return nil }
        let hrp = Array(lower[..<separator])
        guard hrp.allSatisfy({ (33...126).contains($0) }) else { return nil }
        var data: [UInt8] = []
        for byte in lower[(separator + 1)...] {
            guard let value = charset.firstIndex(of: Character(Unicode.Scalar(byte))) else { return nil }
            data.append(UInt8(value))
        }
        let check = polymod(expand(hrp) + data)
        let variant: Variant
        switch check {
        case 1: variant = .bech32
        case 0x2bc8_30a3: variant = .bech32m
        default: return nil
        }
        return (String(decoding: hrp, as: UTF8.self), Array(data.dropLast(6)), variant)
    }

    /// Regroups 5-bit values into bytes, refusing non-zero or over-long padding.
    static func fiveToEight(_ values: [UInt8]) -> [UInt8]? {
        var accumulator = 0
        var bits = 0
        var result: [UInt8] = []
        for value in values {
            accumulator = (accumulator << 5) | Int(value)
            bits += 5
            while bits >= 8 {
                bits -= 8
                result.append(UInt8((accumulator >> bits) & 0xff))
            }
        }
        guard bits < 5, (accumulator << (8 - bits)) & 0xff == 0 || bits == 0 else { return nil }
        return result
    }

    /// A segwit address for `hrp`: version 0 must be bech32 with a 20- or 32-byte program, later versions
    /// bech32m with 2–40 bytes (BIP-350).
    static func isSegwitAddress(_ text: String, hrp expected: String) -> Bool {
        guard let (hrp, data, variant) = decode(text), hrp == expected, let version = data.first, version <= 16,
            let program = fiveToEight(Array(data.dropFirst())), (2...40).contains(program.count)
        else { return false }
        if version == 0 { return variant == .bech32 && (program.count == 20 || program.count == 32) }
        return variant == .bech32m
    }
}

/// CRC-16/XMODEM, used by Stellar strkeys and TON addresses.
enum CRC16 {
    static func xmodem(_ bytes: [UInt8]) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 {
                crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
            }
        }
        return crc
    }
}

/// RFC 4648 base32 without padding (Stellar strkeys).
enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")

    static func decode(_ text: String) -> [UInt8]? {
        var accumulator = 0
        var bits = 0
        var result: [UInt8] = []
        for character in text {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            accumulator = (accumulator << 5) | value
            bits += 5
            if bits >= 8 {
                bits -= 8
                result.append(UInt8((accumulator >> bits) & 0xff))
            }
        }
        return result
    }
}

/// Monero's base58: 8-byte blocks encoded as 11 characters (the last block shorter).
enum MoneroBase58 {
    static let encodedBlockSizes = [0, 2, 3, 5, 6, 7, 9, 10, 11]

    static func decode(_ text: String) -> [UInt8]? {
        let characters = Array(text)
        var result: [UInt8] = []
        var index = 0
        while index < characters.count {
            let size = min(11, characters.count - index)
            guard let byteCount = encodedBlockSizes.firstIndex(of: size) else { return nil }
            var value: UInt64 = 0
            for character in characters[index..<(index + size)] {
                guard let digit = Base58.bitcoinDigit(character) else { return nil }
                let (product, overflow) = value.multipliedReportingOverflow(by: 58)
                guard !overflow else { return nil }
                let (sum, overflow2) = product.addingReportingOverflow(UInt64(digit))
                guard !overflow2 else { return nil }
                value = sum
            }
            if byteCount < 8 && value >> (8 * UInt64(byteCount)) != 0 { return nil }
            for shift in (0..<byteCount).reversed() {
                result.append(UInt8((value >> (8 * UInt64(shift))) & 0xff))
            }
            index += size
        }
        return result
    }
}

extension Base58 {
    static let bitcoinAlphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")

    static func bitcoinDigit(_ character: Character) -> Int? {
        bitcoinAlphabet.firstIndex(of: character)
    }
}
