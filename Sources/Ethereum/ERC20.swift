import BigInt

/// Why a value cannot be ABI-encoded or ABI-decoded as a `uint256`.
public enum ABIError: Error, Equatable, Sendable {
    case valueExceeds256Bits
    case unexpectedReturnLength(Int)
}

/// Call data and return decoding for the ERC-20 functions TelePay calls.
public enum ERC20 {
    /// First four bytes of `keccak256("transfer(address,uint256)")`.
    public static let transferSelector: [UInt8] = [0xa9, 0x05, 0x9c, 0xbb]
    /// First four bytes of `keccak256("balanceOf(address)")`.
    public static let balanceOfSelector: [UInt8] = [0x70, 0xa0, 0x82, 0x31]
    /// First four bytes of `keccak256("decimals()")`; the call data is the selector alone.
    public static let decimalsSelector: [UInt8] = [0x31, 0x3c, 0xe5, 0x67]

    /// `keccak256("Transfer(address,address,uint256)")`: topic 0 of every ERC-20 transfer's log.
    public static let transferTopic: [UInt8] = Keccak256.hash("Transfer(address,address,uint256)")

    /// The amount `token` moved to `recipient` in a transaction's logs (every `Transfer` to it, summed).
    public static func received(by recipient: Address, token: Address, in logs: [LogEntry]) -> BigUInt {
        let word = encodeAddressWord(recipient)
        return logs.reduce(BigUInt(0)) { total, log in
            guard log.address == token, log.topics.count == 3, log.topics[0] == transferTopic, log.topics[2] == word, log.data.count == 32 else {
                return total
            }
            return total + BigUInt(log.data)
        }
    }

    public static func transferCallData(to recipient: Address, amount: BigUInt) throws(ABIError) -> [UInt8] {
        transferSelector + encodeAddressWord(recipient) + (try encodeUInt256Word(amount))
    }

    public static func balanceOfCallData(owner: Address) -> [UInt8] {
        balanceOfSelector + encodeAddressWord(owner)
    }

    /// Expects exactly one 32-byte word, which is what `balanceOf` returns; anything else means
    /// the call reached something that is not an ERC-20 token.
    public static func decodeUInt256(_ returnData: [UInt8]) throws(ABIError) -> BigUInt {
        guard returnData.count == 32 else { throw .unexpectedReturnLength(returnData.count) }
        return BigUInt(returnData)
    }

    private static func encodeAddressWord(_ address: Address) -> [UInt8] {
        [UInt8](repeating: 0, count: 12) + address.bytes
    }

    private static func encodeUInt256Word(_ value: BigUInt) throws(ABIError) -> [UInt8] {
        guard let word = value.paddedBytes(width: 32) else { throw .valueExceeds256Bits }
        return word
    }
}
