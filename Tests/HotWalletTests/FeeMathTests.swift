import BigInt
import HotWallet
import Testing

@Suite("Fee arithmetic")
struct FeeMathTests {
    @Test("initial fees are the suggested tip and a cap of tip + 2 × next base fee")
    func initialFees() {
        let fees = FeeMath.initialFees(nextBaseFee: 30, priorityFee: 2)
        #expect(fees == FeeFields(maxFeePerGas: 62, maxPriorityFeePerGas: 2))
    }

    @Test(
        "a bump is at least 12.5 %, rounded up, and always strictly higher",
        arguments: [
            (BigUInt(0), BigUInt(1)), (1, 2), (7, 8), (8, 9), (9, 11), (1000, 1125), (1001, 1127),
            (BigUInt(1_000_000_000), BigUInt(1_125_000_000)),
        ])
    func bump(value: BigUInt, expected: BigUInt) {
        #expect(FeeMath.bumped(value) == expected)
        #expect(FeeMath.bumped(value) * 1000 >= value * 1125)
    }

    @Test("a replacement raises both fields by 12.5 % over the previous attempt, or to the market's if higher")
    func replacementFees() {
        let previous = FeeFields(maxFeePerGas: 1000, maxPriorityFeePerGas: 100)
        #expect(
            FeeMath.replacementFees(previous: previous, market: FeeFields(maxFeePerGas: 10, maxPriorityFeePerGas: 1))
                == FeeFields(maxFeePerGas: 1125, maxPriorityFeePerGas: 113))
        #expect(
            FeeMath.replacementFees(previous: previous, market: FeeFields(maxFeePerGas: 5000, maxPriorityFeePerGas: 300))
                == FeeFields(maxFeePerGas: 5000, maxPriorityFeePerGas: 300))
        // The cap never ends below the tip, which nodes refuse.
        #expect(
            FeeMath.replacementFees(
                previous: FeeFields(maxFeePerGas: 10, maxPriorityFeePerGas: 10), market: FeeFields(maxFeePerGas: 1, maxPriorityFeePerGas: 50))
                == FeeFields(maxFeePerGas: 50, maxPriorityFeePerGas: 50))
    }

    @Test("every replacement in a long chain clears geth's 10 % rule on both fields")
    func chainOfReplacements() {
        var fees = FeeFields(maxFeePerGas: 3_000_000_001, maxPriorityFeePerGas: 1_000_000_000)
        for _ in 0..<40 {
            let next = FeeMath.replacementFees(previous: fees, market: FeeFields(maxFeePerGas: 1, maxPriorityFeePerGas: 1))
            #expect(next.maxFeePerGas * 100 >= fees.maxFeePerGas * 110)
            #expect(next.maxPriorityFeePerGas * 100 >= fees.maxPriorityFeePerGas * 110)
            #expect(next.maxPriorityFeePerGas <= next.maxFeePerGas)
            fees = next
        }
    }

    @Test("plain transfers use exactly 21 000 gas; contract calls get the margin, rounded up")
    func gasLimits() {
        #expect(FeeMath.gasLimit(estimate: 21_000, marginPercent: 20) == 21_000)
        #expect(FeeMath.gasLimit(estimate: 50_000, marginPercent: 20) == 60_000)
        #expect(FeeMath.gasLimit(estimate: 50_001, marginPercent: 20) == 60_002)
        #expect(FeeMath.maximumFee(gasLimit: 21_000, fees: FeeFields(maxFeePerGas: 3, maxPriorityFeePerGas: 1)) == 63_000)
    }
}
