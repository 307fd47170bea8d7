import BigInt
import Ethereum
import Testing

@Suite("Decimal amounts and base units")
struct TokenUnitsTests {
    @Test(
        "decimal strings convert exactly to base units",
        arguments: [
            ("1.5", UInt8(6), "1500000"),
            ("0", 6, "0"),
            ("0.000001", 6, "1"),
            ("1.000000", 6, "1000000"),
            ("123", 0, "123"),
            ("007.25", 2, "725"),
            ("1", 18, "1000000000000000000"),
            ("0.1", 18, "100000000000000000"),
            ("1000000000000.123456789012345678", 18, "1000000000000123456789012345678"),
        ]
    )
    func parses(text: String, decimals: UInt8, expected: String) throws {
        #expect(try TokenUnits.baseUnits(fromDecimal: text, decimals: decimals) == BigUInt(expected)!)
    }

    @Test("more fractional digits than the token has are refused, not rounded")
    func tooPrecise() {
        #expect(throws: TokenAmountError.tooManyFractionalDigits(allowed: 6)) {
            try TokenUnits.baseUnits(fromDecimal: "1.1234567", decimals: 6)
        }
        #expect(throws: TokenAmountError.tooManyFractionalDigits(allowed: 0)) {
            try TokenUnits.baseUnits(fromDecimal: "1.5", decimals: 0)
        }
    }

    @Test("empty and negative amounts are refused")
    func emptyAndNegative() {
        #expect(throws: TokenAmountError.empty) { try TokenUnits.baseUnits(fromDecimal: "", decimals: 6) }
        #expect(throws: TokenAmountError.negative) { try TokenUnits.baseUnits(fromDecimal: "-1", decimals: 6) }
        #expect(throws: TokenAmountError.negative) { try TokenUnits.baseUnits(fromDecimal: "-0.5", decimals: 6) }
    }

    @Test(
        "anything but plain digits with at most one inner point is refused",
        arguments: ["abc", "1.2.3", "1e6", " 1", "1 ", "1,5", ".5", "1.", ".", "+1", "0x10", "١", "1.5O", "NaN", "∞"]
    )
    func garbage(text: String) {
        #expect(throws: TokenAmountError.invalidFormat) { try TokenUnits.baseUnits(fromDecimal: text, decimals: 6) }
    }

    @Test(
        "base units render as the shortest exact decimal",
        arguments: [
            ("1500000", UInt8(6), "1.5"),
            ("0", 6, "0"),
            ("1", 6, "0.000001"),
            ("1234567", 6, "1.234567"),
            ("1000000", 6, "1"),
            ("123", 0, "123"),
            ("1000000000000000000", 18, "1"),
            ("1000000000000123456789012345678", 18, "1000000000000.123456789012345678"),
        ]
    )
    func renders(units: String, decimals: UInt8, expected: String) {
        #expect(TokenUnits.decimalString(fromBaseUnits: BigUInt(units)!, decimals: decimals) == expected)
    }

    @Test("rendering then parsing returns the same base units", arguments: [UInt8(0), 2, 6, 8, 18, 30])
    func roundTrip(decimals: UInt8) throws {
        for units in [BigUInt(0), 1, 9, 10, 99_999, 1_000_000, BigUInt(1) << 200] {
            let text = TokenUnits.decimalString(fromBaseUnits: units, decimals: decimals)
            #expect(try TokenUnits.baseUnits(fromDecimal: text, decimals: decimals) == units)
        }
    }
}
