import Foundation
import Money
import TestSupport
import Testing

@Suite("Largest-remainder allocation")
struct AllocationTests {
    @Test("the parts always sum to the whole and each is within one unit of its exact quota", arguments: [UInt64(1), 2, 3, 4, 5])
    func sumsToWhole(seed: UInt64) {
        var random = SeededGenerator(state: seed)
        for _ in 0..<500 {
            let total = Decimal(Int.random(in: 0...10_000_000, using: &random)) * Decimal(Int.random(in: 1...1_000_000_000_000, using: &random))
            let weights = (0..<Int.random(in: 1...6, using: &random)).map { _ in Decimal(Int.random(in: 0...1000, using: &random)) }
            guard weights.reduce(0, +) > 0 else { continue }
            let parts = Allocation.largestRemainder(total, weights: weights)
            #expect(parts.reduce(0, +) == total)
            let sum = weights.reduce(0, +)
            for (part, weight) in zip(parts, weights) {
                let quota = total * weight / sum
                #expect(part >= 0 && part - quota < 1 && quota - part < 1, "\(part) vs quota \(quota)")
            }
        }
    }

    @Test("a platform fee of 3 % of 4,059,000,000,000,000 wei is exact, and the leftover wei go to the largest remainders")
    func examples() {
        #expect(Allocation.largestRemainder(4_059_000_000_000_000, weights: [3, 97]) == [121_770_000_000_000, 3_937_230_000_000_000])
        #expect(Allocation.largestRemainder(10, weights: [1, 1, 1]) == [4, 3, 3], "ties go to the earlier part")
        #expect(Allocation.largestRemainder(100, weights: [1, 2, 3, 4]) == [10, 20, 30, 40])
        #expect(Allocation.largestRemainder(7, weights: [0, 1]) == [0, 7])
        #expect(Allocation.largestRemainder(1, weights: [2.5, 97.5]) == [0, 1])
        // 123456789012345678901234 wei (well past Int64) split 7 ways sums exactly.
        let big = Decimal(string: "123456789012345678901234")!
        #expect(Allocation.largestRemainder(big, weights: [1, 1, 1, 1, 1, 1, 1]).reduce(0, +) == big)
    }
}
