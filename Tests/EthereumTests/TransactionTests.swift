import BigInt
import Ethereum
import Testing

private let gwei = BigUInt(1_000_000_000)
private let oneEther = BigUInt(1_000_000_000_000_000_000)

/// EIP-155's worked example.
private let eip155Example = LegacyTransaction(
    nonce: 9, gasPrice: 20 * gwei, gasLimit: 21_000, to: exampleRecipient, value: oneEther, chainId: 1
)

/// An EIP-1559 vector computed with eth-account 0.14.0 and reproduced with libsecp256k1.
private let eip1559Example = EIP1559Transaction(
    chainId: 1, nonce: 9, maxPriorityFeePerGas: 2 * gwei, maxFeePerGas: 30 * gwei,
    gasLimit: 21_000, to: exampleRecipient, value: oneEther
)

@Suite("Transactions")
struct TransactionTests {
    @Test("EIP-155 example: signing data and signing hash match the EIP")
    func legacySigningHash() {
        #expect(hex(eip155Example.signingPayload) == "ec098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a764000080018080")
        #expect(hex(eip155Example.signingHash) == "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53")
    }

    @Test("EIP-155 example: signature, raw transaction and hash match the EIP byte for byte")
    func legacySigned() throws {
        let signed = try eip155Example.sign(with: exampleKey)
        #expect(hex(signed.signature.r) == "28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276")
        #expect(hex(signed.signature.s) == "67cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83")
        #expect(signed.signature.recoveryId == 0)
        #expect(
            hex(signed.rawTransaction)
                == "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
        )
        #expect(Hex.encodeData(signed.hash) == "0x33469b22e9f636356c4160a87eb19df52b7412e8eac32a4a55ffe88ea8350788")
        #expect(try signed.sender() == exampleKey.address)
    }

    @Test("EIP-155 v is chainId * 2 + 35 + recovery id")
    func legacyV() throws {
        let signed = try eip155Example.sign(with: exampleKey)
        let fields = try RLP.decode(signed.rawTransaction).listItems()
        #expect(fields.count == 9)
        #expect(try fields[6].unsignedInteger() == 37)

        var sepolia = eip155Example
        sepolia.chainId = 11_155_111
        let sepoliaSigned = try sepolia.sign(with: exampleKey)
        let sepoliaV = try RLP.decode(sepoliaSigned.rawTransaction).listItems()[6].unsignedInteger()
        #expect(sepoliaV == BigUInt(11_155_111 * 2 + 35) + BigUInt(sepoliaSigned.signature.recoveryId))
    }

    @Test("EIP-1559 vector: signing payload and signing hash match")
    func eip1559SigningHash() {
        #expect(
            hex(eip1559Example.signingPayload)
                == "02f0010984773594008506fc23ac00825208943535353535353535353535353535353535353535880de0b6b3a764000080c0")
        #expect(hex(eip1559Example.signingHash) == "fae77debb64203fbaea6213fcde74f1b138c6854c3d7b44ba1c2ced52c2d8c4d")
    }

    @Test("EIP-1559 vector: signature, raw transaction, hash and sender match byte for byte")
    func eip1559Signed() throws {
        let signed = try eip1559Example.sign(with: exampleKey)
        #expect(signed.signature.recoveryId == 0)
        #expect(hex(signed.signature.r) == "2b03b67e070f45175ce9d07c4512720168bd468a24edb6997977a53d48c87a12")
        #expect(hex(signed.signature.s) == "733d775fdd689d306e08ac8ab399f34b5a0253b47ed81b8bf2d2a6ea607fcac7")
        #expect(
            hex(signed.rawTransaction)
                == "02f873010984773594008506fc23ac00825208943535353535353535353535353535353535353535880de0b6b3a764000080c080a02b03b67e070f45175ce9d07c4512720168bd468a24edb6997977a53d48c87a12a0733d775fdd689d306e08ac8ab399f34b5a0253b47ed81b8bf2d2a6ea607fcac7"
        )
        #expect(Hex.encodeData(signed.hash) == "0xbb94970b7e5afad02e4e38a462eacd085a96791deacaab2827d61aeb20e0778e")
        #expect(try signed.sender().checksummed == "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F")
    }

    @Test("an ERC-20 transfer transaction carries its call data and a zero value")
    func tokenTransfer() throws {
        let callData = try ERC20.transferCallData(to: exampleRecipient, amount: 1_500_000)
        let transaction = EIP1559Transaction(
            chainId: 11_155_111, nonce: 0, maxPriorityFeePerGas: gwei, maxFeePerGas: 3 * gwei,
            gasLimit: 65_000, to: try Address(parsing: "0x1c7d4b196cb0c7b01d743fbc6116a902379c7238"), value: 0, data: callData
        )
        let signed = try transaction.sign(with: exampleKey)
        #expect(signed.rawTransaction.first == 0x02)
        let fields = try RLP.decode(Array(signed.rawTransaction.dropFirst())).listItems()
        #expect(fields.count == 12)
        #expect(try fields[0].unsignedInteger() == 11_155_111)
        #expect(try fields[6].byteString() == [])
        #expect(try fields[7].byteString() == callData)
        #expect(try fields[8].listItems() == [])
        #expect(try signed.sender() == exampleKey.address)
    }

    @Test("r and s drop leading zero bytes, so the raw transaction stays canonical RLP")
    func signatureIntegersAreMinimal() throws {
        var transaction = eip1559Example
        var signed = try transaction.sign(with: exampleKey)
        while signed.signature.r.first != 0 {
            transaction.nonce += 1
            signed = try transaction.sign(with: exampleKey)
        }
        let fields = try RLP.decode(Array(signed.rawTransaction.dropFirst())).listItems()
        let encodedR = try fields[10].byteString()
        #expect(encodedR.count < 32)
        #expect(encodedR.first != 0)
        #expect([UInt8](repeating: 0, count: 32 - encodedR.count) + encodedR == signed.signature.r)
    }
}
