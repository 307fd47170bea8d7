import PayoutAddresses
import Testing

@Suite("Wallet address validation")
struct WalletAddressTests {
    func accepts(_ address: String, _ format: WalletAddressFormat) -> Bool {
        if case .success = WalletAddressValidator.validate(address, format: format) { return true }
        return false
    }

    func error(_ address: String, _ format: WalletAddressFormat) -> WalletAddressError? {
        if case .failure(let error) = WalletAddressValidator.validate(address, format: format) { return error }
        return nil
    }

    /// Published addresses from the networks' specifications and well-known accounts.
    static let valid: [(WalletAddressFormat, String)] = [
        (.evm, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
        (.evm, "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"),
        (.bitcoin, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"),
        (.bitcoin, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),
        (.bitcoin, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
        (.bitcoin, "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"),
        (.bitcoin, "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"),
        (.bitcoin, "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"),
        (.bitcoinCash, "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a"),
        (.bitcoinCash, "qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a"),
        (.tron, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"),
        (.solana, "11111111111111111111111111111111"),
        (.solana, "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"),
        (.ripple, "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh"),
        (.ripple, "rrrrrrrrrrrrrrrrrrrrrhoLvTp"),
        (.ton, "EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2N"),
        (.ton, "0:83dfd552e63729b472fcbcc8c45ebcc6691702558b68ec7527e1ba403a0f31a8"),
        (.cardano, "addr1qx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq835lu7drv2xwl2wywfgse35a3x"),
        (.litecoin, "LVg2kJoFNg45Nbpy53h7Fe1wKyeXVRhMH9"),
        (.litecoin, "MGxNPPB7eBoWPUaprtX9v9CXJZoD2465zN"),
        (.dogecoin, "DH5yaieqoZN36fDVciNyRueRGvGLR3mr7L"),
        (.stellar, "GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGZ"),
        (.stellar, "GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"),
        // Built by an independent Python base58check encoder from BIP-173's example key hash.
        (.zcash, "t1UYsZVJkLPeMjxEtACvSxfWuNmddpWfxzs"),
        (.zcash, "t3VEtV2oBtHxjq7wKHJb3PHsqXHvMRgUmVw"),
        (.monero, "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A"),
    ]

    @Test("published addresses of every network are accepted", arguments: WalletAddressTests.valid.indices)
    func acceptsValid(_ index: Int) {
        let (format, address) = Self.valid[index]
        #expect(accepts(address, format), "\(format.rawValue): \(address)")
    }

    @Test("EVM addresses come back with their EIP-55 checksum; a wrong mixed-case checksum is a typo")
    func evmChecksum() {
        #expect(
            WalletAddressValidator.validate("0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359", format: .evm)
                == .success("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"))
        #expect(error("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", .evm) == .checksumMismatch)
        #expect(error("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA", .evm) == .notThisNetwork)
        #expect(error("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", .evm) == .notThisNetwork)
    }

    @Test("one changed character breaks the checksum of each checksummed format")
    func typosCaught() {
        #expect(error("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", .bitcoin) == .checksumMismatch)
        #expect(error("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", .bitcoin) == .checksumMismatch)
        #expect(error("bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6c", .bitcoinCash) == .checksumMismatch)
        #expect(error("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u", .tron) == .checksumMismatch)
        #expect(error("GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGA", .stellar) == .checksumMismatch)
        #expect(error("LVg2kJoFNg45Nbpy53h7Fe1wKyeXVRhMH8", .litecoin) == .checksumMismatch)
        #expect(error("rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTj", .ripple) == .checksumMismatch)
        #expect(error("EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2M", .ton) == .checksumMismatch)
        #expect(
            error("44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3B", .monero) == .checksumMismatch)
    }

    @Test("an address of another network is refused")
    func wrongNetwork() {
        #expect(error("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", .tron) == .notThisNetwork)
        #expect(error("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", .bitcoin) == .notThisNetwork)
        #expect(error("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", .solana) == .notThisNetwork)
        #expect(error("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", .litecoin) == .notThisNetwork)
        #expect(error("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", .bitcoin) == .notThisNetwork)
        #expect(error("DH5yaieqoZN36fDVciNyRueRGvGLR3mr7L", .bitcoin) == .notThisNetwork)
        #expect(error("  ", .evm) == .empty)
        #expect(error("0x5aAeb6053F3E94C9\u{200B}b9A09f33669435E7Ef1BeAed", .evm) == .notThisNetwork)
    }

    @Test("BIP-350: version 0 must use bech32 and later versions bech32m")
    func segwitVariants() {
        // A v1 program encoded with the bech32 (not bech32m) checksum, from BIP-350's invalid list.
        #expect(!accepts("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", .bitcoin))
        // A v0 program encoded with bech32m.
        #expect(!accepts("BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL", .bitcoin))
        // Mixed case.
        #expect(!accepts("bc1qW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", .bitcoin))
    }
}
