import Foundation
import Money
import Testing

@Suite("Decimal amounts on the wire")
struct DecimalTextTests {
    @Test(
        "amounts render in plain notation, never with an exponent",
        arguments: [
            ("0.0000001", "0.0000001"), ("12500", "12500"), ("0.1", "0.1"), ("123456789012345678.123456789", "123456789012345678.123456789"),
        ])
    func plain(input: String, expected: String) throws {
        let value = try #require(Decimal(string: input, locale: Locale(identifier: "en_US_POSIX")))
        #expect(DecimalText.plain(value) == expected)
    }

    @Test(
        "parsing accepts digits with at most one point and refuses what Decimal(string:) would half-read",
        arguments: [
            "12abc", "1e5", "", ".5", "5.", "1.2.3", " 1", "١٢", "-", "--1", "-.5", "+1", "1-",
        ])
    func strictParse(text: String) {
        #expect(DecimalText.parse(text) == nil)
    }

    @Test("parsed amounts are exact")
    func exactParse() {
        #expect(DecimalText.parse("0.1") == Decimal(string: "0.1"))
        #expect(DecimalText.parse("7.41109355")! * 100_000_000 == 741_109_355)
        #expect(DecimalText.parse("-0.30") == Decimal(string: "-0.3"), "ledger credits are negative")
    }

    @Test("require names what was not an amount instead of reading it as zero")
    func requireNamesTheField() {
        #expect(throws: DecimalTextError(what: "order price", text: "12abc")) { try DecimalText.require("12abc", "order price") }
        #expect(DecimalText.usd(Decimal(string: "9.7")!) == "9.70")
        #expect(DecimalText.usd(Decimal(string: "-0.305")!) == "-0.31")
    }
}
