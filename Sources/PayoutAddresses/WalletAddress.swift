import Crypto
import Ethereum
import Foundation

/// The address syntaxes of the payout networks (the `address_format` column of `payout_networks`).
public enum WalletAddressFormat: String, Sendable, CaseIterable {
    case evm, bitcoin, litecoin
    case bitcoinCash = "bitcoin_cash"
    case dogecoin, solana, tron, ton, cardano, stellar, monero, ripple, zcash
}

/// Why an address was refused; each case maps to one localized sentence in the owner form.
public enum WalletAddressError: Error, Sendable, Hashable {
    case empty
    /// It is not an address of this network at all (wrong shape, alphabet or prefix).
    case notThisNetwork
    /// It has the right shape but its checksum is wrong: almost always a typo.
    case checksumMismatch
}

/// Validates payout wallet addresses per network, checksums included, and returns the canonical form
/// (EVM addresses come back EIP-55 checksummed).
public enum WalletAddressValidator {
    public static func validate(_ input: String, format: WalletAddressFormat) -> Result<String, WalletAddressError> {
        let text = input.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return .failure(.empty) }
        guard text.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else { return .failure(.notThisNetwork) }
        switch format {
        case .evm: return evm(text)
        case .bitcoin: return bitcoinLike(text, versions: [0x00, 0x05], segwitPrefix: "bc")
        case .litecoin: return bitcoinLike(text, versions: [0x30, 0x32, 0x05], segwitPrefix: "ltc")
        case .dogecoin: return bitcoinLike(text, versions: [0x1e, 0x16], segwitPrefix: nil)
        case .bitcoinCash: return bitcoinCash(text)
        case .tron: return checked(text, base58: .bitcoin, accept: { $0.count == 21 && $0[0] == 0x41 })
        case .ripple: return checked(text, base58: .ripple, accept: { $0.count == 21 && $0[0] == 0x00 })
        case .zcash: return zcash(text)
        case .solana:
            guard (32...44).contains(text.count), let bytes = Base58.bitcoin.decode(text) else { return .failure(.notThisNetwork) }
            return bytes.count == 32 ? .success(text) : .failure(.notThisNetwork)
        case .ton: return ton(text)
        case .cardano: return cardano(text)
        case .stellar: return stellar(text)
        case .monero: return monero(text)
        }
    }

    static func evm(_ text: String) -> Result<String, WalletAddressError> {
        guard text.count == 42, text.hasPrefix("0x"), text.dropFirst(2).allSatisfy(\.isHexDigit) else { return .failure(.notThisNetwork) }
        do {
            return .success(try Address(parsing: text).checksummed)
        } catch .checksumMismatch {
            return .failure(.checksumMismatch)
        } catch {
            return .failure(.notThisNetwork)
        }
    }

    static func checked(_ text: String, base58: Base58, accept: ([UInt8]) -> Bool) -> Result<String, WalletAddressError> {
        guard let raw = base58.decode(text), raw.count > 4 else { return .failure(.notThisNetwork) }
        guard let payload = base58.decodeChecked(text) else {
            return accept(Array(raw.dropLast(4))) ? .failure(.checksumMismatch) : .failure(.notThisNetwork)
        }
        return accept(payload) ? .success(text) : .failure(.notThisNetwork)
    }

    static func bitcoinLike(_ text: String, versions: Set<UInt8>, segwitPrefix: String?) -> Result<String, WalletAddressError> {
        if let segwitPrefix, text.lowercased().hasPrefix(segwitPrefix + "1") {
            if Bech32.isSegwitAddress(text, hrp: segwitPrefix) { return .success(text) }
            return Bech32.decode(text) == nil ? .failure(.checksumMismatch) : .failure(.notThisNetwork)
        }
        return checked(text, base58: .bitcoin) { $0.count == 21 && versions.contains($0[0]) }
    }

    static func bitcoinCash(_ text: String) -> Result<String, WalletAddressError> {
        let lower = text.lowercased()
        guard text == lower || text == text.uppercased() else { return .failure(.notThisNetwork) }
        let body = lower.hasPrefix("bitcoincash:") ? String(lower.dropFirst("bitcoincash:".count)) : lower
        guard body.first == "q" || body.first == "p" else {
            // Legacy addresses are still accepted by exchanges.
            return checked(text, base58: .bitcoin) { $0.count == 21 && ($0[0] == 0x00 || $0[0] == 0x05) }
        }
        guard body.count == 42 else { return .failure(.notThisNetwork) }
        var values: [UInt8] = []
        for character in body {
            guard let value = Bech32.charset.firstIndex(of: character) else { return .failure(.notThisNetwork) }
            values.append(UInt8(value))
        }
        let prefix = Array("bitcoincash".utf8).map { $0 & 0x1f } + [0]
        return cashAddrPolymod(prefix + values) == 0 ? .success("bitcoincash:" + body) : .failure(.checksumMismatch)
    }

    static func cashAddrPolymod(_ values: [UInt8]) -> UInt64 {
        var checksum: UInt64 = 1
        for value in values {
            let top = checksum >> 35
            checksum = ((checksum & 0x07_ffff_ffff) << 5) ^ UInt64(value)
            if top & 0x01 != 0 { checksum ^= 0x98_f2bc_8e61 }
            if top & 0x02 != 0 { checksum ^= 0x79_b76d_99e2 }
            if top & 0x04 != 0 { checksum ^= 0xf3_3e5f_b3c4 }
            if top & 0x08 != 0 { checksum ^= 0xae_2eab_e2a8 }
            if top & 0x10 != 0 { checksum ^= 0x1e_4f43_e470 }
        }
        return checksum ^ 1
    }

    static func zcash(_ text: String) -> Result<String, WalletAddressError> {
        if text.hasPrefix("zs1") {
            guard let (hrp, _, variant) = Bech32.decode(text, maxLength: 100) else { return .failure(.checksumMismatch) }
            return hrp == "zs" && variant == .bech32 ? .success(text) : .failure(.notThisNetwork)
        }
        // Transparent addresses carry a two-byte version: t1 (P2PKH) and t3 (P2SH).
        return checked(text, base58: .bitcoin) { $0.count == 22 && $0[0] == 0x1c && ($0[1] == 0xb8 || $0[1] == 0xbd) }
    }

    static func ton(_ text: String) -> Result<String, WalletAddressError> {
        let raw = text.split(separator: ":", omittingEmptySubsequences: false)
        if raw.count == 2 {
            guard raw[0] == "0" || raw[0] == "-1", raw[1].count == 64, raw[1].allSatisfy(\.isHexDigit) else { return .failure(.notThisNetwork) }
            return .success(text)
        }
        guard text.count == 48 else { return .failure(.notThisNetwork) }
        let standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard let bytes = Data(base64Encoded: standard).map(Array.init), bytes.count == 36 else { return .failure(.notThisNetwork) }
        let flags = bytes[0] & 0x7f
        guard flags == 0x11 || flags == 0x51, bytes[1] == 0x00 || bytes[1] == 0xff else { return .failure(.notThisNetwork) }
        guard bytes[0] & 0x80 == 0 else { return .failure(.notThisNetwork) }
        let crc = CRC16.xmodem(Array(bytes[0..<34]))
        return UInt16(bytes[34]) << 8 | UInt16(bytes[35]) == crc ? .success(text) : .failure(.checksumMismatch)
    }

    static func cardano(_ text: String) -> Result<String, WalletAddressError> {
        if text.hasPrefix("addr1") {
            guard let (hrp, data, variant) = Bech32.decode(text, maxLength: 130) else { return .failure(.checksumMismatch) }
            guard hrp == "addr", variant == .bech32, let bytes = Bech32.fiveToEight(data), let header = bytes.first,
                header & 0x0f == 1, bytes.count >= 29
            else { return .failure(.notThisNetwork) }
            return .success(text)
        }
        // Byron-era addresses are base58 CBOR; exchanges still accept them.
        guard text.hasPrefix("Ae2") || text.hasPrefix("DdzFF"), let bytes = Base58.bitcoin.decode(text), bytes.count > 40 else {
            return .failure(.notThisNetwork)
        }
        return .success(text)
    }

    static func stellar(_ text: String) -> Result<String, WalletAddressError> {
        guard text.count == 56, text.first == "G", let bytes = Base32.decode(text), bytes.count == 35, bytes[0] == 6 << 3 else {
            return .failure(.notThisNetwork)
        }
        let crc = CRC16.xmodem(Array(bytes[0..<33]))
        return UInt16(bytes[33]) | UInt16(bytes[34]) << 8 == crc ? .success(text) : .failure(.checksumMismatch)
    }

    static func monero(_ text: String) -> Result<String, WalletAddressError> {
        guard text.count == 95 || text.count == 106, let bytes = MoneroBase58.decode(text), bytes.count > 4 else {
            return .failure(.notThisNetwork)
        }
        // Mainnet standard (18), integrated (19) and subaddress (42) prefixes, as varints of one byte.
        guard [18, 19, 42].contains(bytes[0]) else { return .failure(.notThisNetwork) }
        let body = Array(bytes.dropLast(4))
        return Array(Keccak256.hash(body).prefix(4)) == Array(bytes.suffix(4)) ? .success(text) : .failure(.checksumMismatch)
    }
}
