import Foundation

/// Splitting a whole into parts that always sum to it.
public enum Allocation {
    /// Splits `total` (a whole number of smallest units: wei, token base units, cents) in proportion to
    /// `weights` by the largest-remainder method: every part gets the whole units of its exact quota, and the
    /// units left over go one each to the parts with the largest fractional remainders (ties to the earlier
    /// part). The parts sum to `total` exactly. Weights must be non-negative with a positive sum.
    public static func largestRemainder(_ total: Decimal, weights: [Decimal]) -> [Decimal] {
        precondition(total >= 0 && DecimalText.rounded(total, scale: 0, .down) == total, "total must be a whole number of units")
        let sum = weights.reduce(0, +)
        precondition(!weights.isEmpty && sum > 0 && weights.allSatisfy { $0 >= 0 }, "weights must be non-negative with a positive sum")
        let quotas = weights.map { total * $0 / sum }
        var parts = quotas.map { DecimalText.rounded($0, scale: 0, .down) }
        var left = total - parts.reduce(0, +)
        let byRemainder = quotas.indices.sorted { a, b in
            let ra = quotas[a] - parts[a], rb = quotas[b] - parts[b]
            return ra != rb ? ra > rb : a < b
        }
        for index in byRemainder where left > 0 {
            parts[index] += 1
            left -= 1
        }
        return parts
    }
}
