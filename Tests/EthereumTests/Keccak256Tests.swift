import Ethereum
import Testing

/// Long-message expectations come from `scripts/keccak-vectors.py` (pycryptodome's Keccak).
@Suite("Keccak-256")
struct Keccak256Tests {
    @Test("the empty message hashes to Ethereum's well-known empty hash, not SHA3-256's")
    func emptyMessage() {
        let digest = hex(Keccak256.hash([]))
        #expect(digest == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
        #expect(digest != "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a")
    }

    @Test("short text messages match the published vectors")
    func shortMessages() {
        #expect(hex(Keccak256.hash("abc")) == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")
        #expect(
            hex(Keccak256.hash("The quick brown fox jumps over the lazy dog"))
                == "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15"
        )
    }

    @Test("a 200-byte message spanning two blocks matches the reference")
    func twoHundredBytes() {
        let message = [UInt8](repeating: 0xa3, count: 200)
        #expect(hex(Keccak256.hash(message)) == "3a57666b048777f2c953dc4456f45a2588e1cb6f2da760122d530ac2ce607d4a")
    }

    @Test(
        "lengths around the 136-byte rate pad correctly",
        arguments: [
            (135, "cbdfd9dee5faad3818d6b06f95a219fd290b0e1706f6a82e5a595b9ce9faca62"),
            (136, "7ce759f1ab7f9ce437719970c26b0a66ff11fe3e38e17df89cf5d29c7d7f807e"),
            (137, "ac73d4fae68b8453f764007c1a20ce95994187861f0c3227a3a8e99a73a3b1db"),
            (271, "27eceb59ebc3dc8a04a5b135be641591a7278540e4556a2ba9f408194e666ec3"),
            (272, "8e2476e65823b24d96ebe239f2c1534cdf763e689e2410c3b1cb0c74e6177bfc"),
        ]
    )
    func rateBoundaries(length: Int, expected: String) {
        #expect(hex(Keccak256.hash(patternMessage(length: length))) == expected)
    }

    @Test("a message over 1 MB matches the reference, whether hashed at once or in uneven chunks")
    func longMessage() {
        let message = patternMessage(length: 1_048_577)
        let expected = "28c4bfb1e63bbdda29303f8dd3da3dbc9934d176d471f914d91090e97f2f9a0b"
        #expect(hex(Keccak256.hash(message)) == expected)

        var hasher = Keccak256()
        var offset = 0
        var chunkSize = 1
        while offset < message.count {
            let end = min(offset + chunkSize, message.count)
            hasher.update(Array(message[offset..<end]))
            offset = end
            chunkSize = chunkSize * 3 % 1_000 + 1
        }
        #expect(hex(hasher.finalize()) == expected)
    }

    @Test("finalizing leaves the hasher able to absorb more input")
    func finalizeIsNonDestructive() {
        var hasher = Keccak256()
        hasher.update(Array("a".utf8))
        #expect(hasher.finalize() == Keccak256.hash("a"))
        hasher.update(Array("bc".utf8))
        #expect(hasher.finalize() == Keccak256.hash("abc"))
    }

    /// Byte `i` is `i mod 251`; a prime period keeps the pattern out of step with the rate.
    private func patternMessage(length: Int) -> [UInt8] {
        (0..<length).map { UInt8($0 % 251) }
    }
}
