import App
import Foundation
import OperatorCommands
import Payouts
import Testing

@Suite("telepay payouts output")
struct PayoutReportTests {
    static func payout(_ id: Int64, _ state: PayoutState, route: PayoutRoute = .exchange, failure: String? = nil, fixable: Bool = false) -> Payout {
        Payout(
            id: id, ownerUserID: 2001, channelID: 7, asset: "ETH", amount: Decimal(string: "11811690000000000")!, route: route,
            currency: "USDC", network: "ETH", walletAddress: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", walletMemo: nil, state: state,
            failure: failure, exchangeIntentID: 3, estimatedTo: 29, amountTo: state == .paid ? Decimal(string: "27.02")! : nil,
            payoutHash: state == .paid ? "0xabc" : nil, ownerFixable: fixable,
            createdAt: Date(timeIntervalSince1970: 1_000), updatedAt: Date(timeIntervalSince1970: 1_000)
        )
    }

    @Test("open, failed and paid payouts and balances read in whole ETH, with reasons and what the owner must do")
    func rendering() {
        let overview = PayoutOverview(
            open: [Self.payout(3, .exchanging)],
            failed: [Self.payout(2, .failed, failure: "ChangeNOW rejects the wallet", fixable: true)],
            paid: [Self.payout(1, .paid)],
            balances: [
                OwnerPayoutBalance(
                    ownerUserID: 2001, channelID: 7, asset: "ETH", earned: Decimal(string: "30000000000000000")!,
                    pending: Decimal(string: "6376620000000000")!,
                    inFlight: Decimal(string: "11811690000000000")!, paidOut: Decimal(string: "11811690000000000")!
                )
            ]
        )
        let text = PayoutReport.render(overview, now: Date(timeIntervalSince1970: 1_000 + 600))
        #expect(
            text.contains(
                "#3 exchanging for 10 min — owner 2001 channel 7: 0.01181169 ETH exchange to USDC on ETH 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"))
        #expect(
            text.contains(
                "#2 owner 2001 channel 7: 0.01181169 ETH exchange to USDC on ETH 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed [the owner must change the wallet]: ChangeNOW rejects the wallet"
            ))
        #expect(
            text.contains(
                "#1 owner 2001 channel 7: 0.01181169 ETH exchange to USDC on ETH 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed → 27.02 USDC (estimated 29, -6.83 %) tx 0xabc"
            ))
        #expect(text.contains("owner 2001 channel 7 ETH: earned 0.03 pending 0.00637662 in flight 0.01181169 paid out 0.01181169"))
    }

    @Test("conversions show what went in, its worth at payment time, what arrived, and each channel's part with its spread and payout")
    func conversions() {
        let conversion = Conversion(
            id: 4, state: .converted, fromAsset: "ETH", fromUnits: Decimal(string: "40000000000000000")!, toAsset: "USDT", valueUSD: 97,
            exchangeIntentID: 9, estimatedUnits: 98_450_000, reportedUnits: 98_450_000, receivedUnits: 98_449_983, payoutHash: "0xdef", failure: nil,
            createdAt: Date(timeIntervalSince1970: 1_000)
        )
        let parts = [
            ConversionPart(
                conversionID: 4, ownerUserID: 2001, channelID: 7, fromUnits: Decimal(string: "30000000000000000")!, valueUSD: 72.75,
                allocatedUnits: 73_837_487, payoutID: 12),
            ConversionPart(
                conversionID: 4, ownerUserID: 2002, channelID: 8, fromUnits: Decimal(string: "10000000000000000")!, valueUSD: 24.25,
                allocatedUnits: 24_612_496, payoutID: nil),
        ]
        let overview = PayoutOverview(open: [], failed: [], paid: [], balances: [], conversions: [(conversion, parts)])
        let text = PayoutReport.render(overview)
        #expect(text.contains("#4 converted — 0.04 ETH worth $97.00 at payment time → 98.449983 USDT received (ChangeNOW reported 98.45)"), "\(text)")
        #expect(text.contains("owner 2001 channel 7: 0.03 ETH worth $72.75 → 73.837487 USDT (spread +1.09), paid by payout #12"), "\(text)")
        #expect(text.contains("owner 2002 channel 8: 0.01 ETH worth $24.25 → 24.612496 USDT (spread +0.36), not paid yet"), "\(text)")
    }
}
