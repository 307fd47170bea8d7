import App
import Foundation
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
            balances: [OwnerPayoutBalance(
                ownerUserID: 2001, channelID: 7, asset: "ETH", earned: Decimal(string: "30000000000000000")!, pending: Decimal(string: "6376620000000000")!,
                inFlight: Decimal(string: "11811690000000000")!, paidOut: Decimal(string: "11811690000000000")!
            )]
        )
        let text = PayoutReport.render(overview, now: Date(timeIntervalSince1970: 1_000 + 600))
        #expect(text.contains("#3 exchanging for 10 min — owner 2001 channel 7: 0.01181169 ETH exchange to USDC on ETH 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"))
        #expect(text.contains("#2 owner 2001 channel 7: 0.01181169 ETH exchange to USDC on ETH 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed [the owner must change the wallet]: ChangeNOW rejects the wallet"))
        #expect(text.contains("#1 owner 2001 channel 7: 0.01181169 ETH exchange to USDC on ETH 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed → 27.02 USDC (estimated 29, -6.83 %) tx 0xabc"))
        #expect(text.contains("owner 2001 channel 7 ETH: earned 0.03 pending 0.00637662 in flight 0.01181169 paid out 0.01181169"))
    }
}
