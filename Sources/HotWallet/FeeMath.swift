import BigInt

/// EIP-1559 fee fields of one attempt.
public struct FeeFields: Sendable, Hashable, CustomStringConvertible {
    public var maxFeePerGas: BigUInt
    public var maxPriorityFeePerGas: BigUInt

    public init(maxFeePerGas: BigUInt, maxPriorityFeePerGas: BigUInt) {
        self.maxFeePerGas = maxFeePerGas
        self.maxPriorityFeePerGas = maxPriorityFeePerGas
    }

    public var description: String { "maxFee=\(maxFeePerGas) tip=\(maxPriorityFeePerGas)" }
}

/// The sender's fee and gas arithmetic, free of I/O.
public enum FeeMath {
    /// A replacement raises both fields by at least 12.5 %: geth and Erigon require 10 %,
    /// OpenEthereum required 12.5 %, so this clears every common pool.
    public static let bumpPerMille: BigUInt = 1125

    /// web3.py's default: the tip the node suggests, and a cap of tip + 2 × base fee, which survives
    /// six consecutive full blocks of base-fee increases.
    public static func initialFees(nextBaseFee: BigUInt, priorityFee: BigUInt) -> FeeFields {
        FeeFields(maxFeePerGas: priorityFee + 2 * nextBaseFee, maxPriorityFeePerGas: priorityFee)
    }

    /// `value × 1.125`, rounded up, and always strictly more than `value` (pools refuse an equal tip,
    /// which matters when the tip is 0 or tiny).
    public static func bumped(_ value: BigUInt) -> BigUInt {
        let raised = (value * bumpPerMille + 999) / 1000
        return Swift.max(raised, value + 1)
    }

    /// Fees for a same-nonce replacement: both fields bumped from the previous attempt, or today's
    /// market fees where those are higher still.
    public static func replacementFees(previous: FeeFields, market: FeeFields) -> FeeFields {
        let tip = Swift.max(bumped(previous.maxPriorityFeePerGas), market.maxPriorityFeePerGas)
        let cap = Swift.max(bumped(previous.maxFeePerGas), market.maxFeePerGas, tip)
        return FeeFields(maxFeePerGas: cap, maxPriorityFeePerGas: tip)
    }

    /// Plain ether transfers cost exactly 21 000; anything that runs code gets a margin, because the
    /// estimate is taken against a state that may change before inclusion.
    public static func gasLimit(estimate: UInt64, marginPercent: UInt64) -> UInt64 {
        estimate == 21_000 ? estimate : estimate + (estimate * marginPercent + 99) / 100
    }

    /// The most the transaction can cost in fees: every unit of gas at the fee cap.
    public static func maximumFee(gasLimit: UInt64, fees: FeeFields) -> BigUInt {
        BigUInt(gasLimit) * fees.maxFeePerGas
    }
}
