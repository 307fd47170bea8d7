import BigInt
import Ethereum
import Foundation
import HotWallet
import Money
import Payouts
import PostgresNIO
import Storage
import Subscriptions
import TestPeers
import TestSupport
import Testing

/// Wallet alerts a test does not look at.
struct IgnoredWalletAlerts: WalletAlertSink {
    func raise(_ alert: WalletAlert) async {}
}

/// An owner who takes ETH on Ethereum instantly, a hot wallet on the local EVM that NOWPayments settles into,
/// the hot-wallet sender and the payout service.
struct DirectPayoutWorld {
    let world: SubscriptionWorld
    let chain: LocalChain
    let sender: TransferSender
    let payouts: PayoutService
    let hotWallet: Address
    let ownerWallet: Address

    /// `settles`: whether NOWPayments' settlement really reaches the hot wallet on the chain.
    static func make(_ world: SubscriptionWorld, gasEther: String, settles: Bool = true) async throws -> DirectPayoutWorld {
        let chain = try await EthereumTestNode.shared.chain()
        let key = try LocalChain.randomKey()
        let ownerWallet = LocalChain.randomAddress()
        let gas = try TokenUnits.baseUnits(fromDecimal: gasEther, decimals: 18)
        if gas > 0 { try await chain.fund(key.address, wei: gas) }
        if settles {
            await world.provider.settleOnChain { amount in
                try await chain.fund(key.address, wei: try TokenUnits.baseUnits(fromDecimal: DecimalText.plain(amount), decimals: 18))
            }
        }
        try await world.database.withConnection { connection in
            try await connection.run(
                """
                UPDATE channel_payout_settings SET currency_code = 'ETH', network_code = 'ETH', wallet_address = \(ownerWallet.checksummed),
                    strategy = \(PayoutStrategy.instant.rawValue)
                """,
                logger: quietLogger
            )
        }
        let sender = TransferSender(
            key: key, chainId: chain.chainId, rpc: chain.rpc, database: world.database, policy: SenderPolicy(confirmations: 1),
            alerts: IgnoredWalletAlerts(), logger: quietLogger
        )
        try await sender.start()
        let payouts = PayoutService(
            database: world.database, queue: world.queue, wallet: HotWalletPayouts(sender: sender, rpc: chain.rpc), settlement: .ether,
            logger: quietLogger
        )
        return DirectPayoutWorld(world: world, chain: chain, sender: sender, payouts: payouts, hotWallet: key.address, ownerWallet: ownerWallet)
    }

    /// The ledger's balance of `account` in ETH (for the owner, when the account is an owner's).
    func ledgerETH(_ account: LedgerAccount) async throws -> Decimal {
        let text = try await world.strings(
            "SELECT coalesce(sum(amount), 0)::text FROM ledger_entries WHERE asset = 'ETH' AND account = \(account.rawValue)")
        return Decimal(string: text.first ?? "0") ?? -1
    }
}

@Suite("Instant payouts paid straight from the hot wallet")
struct DirectPayoutTests {
    @Test("an owner paid in ETH on Ethereum gets their share from the hot wallet: credited on the chain, ledger balanced per asset, gas booked")
    func ethOwnerPaidDirectly() async throws {
        try await withSubscriptionWorld { world in
            let payout = try await DirectPayoutWorld.make(world, gasEther: "1")
            let invoice = try await world.order(SubscriptionWorld.anna)
            try await world.pay(invoice, through: ["finished"])
            try await world.waitForOrder(invoice.orderID!, "paid")
            try await world.settled()

            let planned = try await payout.payouts.runPass()
            #expect(planned.planned == 1 && planned.submitted == 1)
            #expect(try await payout.ledgerETH(.ownerInFlight) == -3_937_230_000_000_000)
            #expect(try await payout.ledgerETH(.ownerPayable) == 0, "the share moved from pending to in flight")
            // A second pass plans nothing new: the share has its payout.
            #expect(try await payout.payouts.runPass().planned == 0)

            try await payout.sender.runPass()
            try await payout.sender.runPass()
            let settled = try await payout.payouts.runPass()
            #expect(settled.paid == 1)

            let received = try await payout.chain.rpc.balance(of: payout.ownerWallet, at: .latest)
            #expect(received == BigUInt(3_937_230_000_000_000), "the owner's wallet holds exactly their share")
            #expect(try await payout.ledgerETH(.ownerInFlight) == 0)
            let gas = try await payout.ledgerETH(.networkFees)
            #expect(gas > 0, "gas is booked as the platform's network fee")
            // The chain holds what the ledger says, plus the 1 ETH the test put there for gas.
            let onChain = try await payout.chain.rpc.balance(of: payout.hotWallet, at: .latest)
            let expected = try await payout.ledgerETH(.hotWallet) + 1_000_000_000_000_000_000
            #expect(onChain.description == DecimalText.plain(expected), "chain \(onChain), ledger + gas money \(expected)")
            #expect(try await world.strings("SELECT state || ' ' || (gas_units > 0) FROM payouts") == ["paid true"])
            let unbalanced = try await world.strings(
                "SELECT transaction_id::text FROM ledger_entries GROUP BY transaction_id, asset HAVING sum(amount) <> 0"
            )
            #expect(unbalanced.isEmpty)
        }
    }

    @Test(
        "a payout whose transfer cannot be sent (an empty hot wallet) fails without moving money: the share is pending again and the admins are alerted"
    )
    func failedTransferReturnsTheShare() async throws {
        try await withSubscriptionWorld { world in
            let payout = try await DirectPayoutWorld.make(world, gasEther: "0", settles: false)
            let invoice = try await world.order(SubscriptionWorld.anna)
            try await world.pay(invoice, through: ["finished"])
            try await world.waitForOrder(invoice.orderID!, "paid")
            try await world.settled()
            // The settlement never reached the wallet, so it cannot cover the share.
            #expect(try await payout.payouts.runPass().submitted == 1)
            try await payout.sender.runPass()
            let pass = try await payout.payouts.runPass()
            #expect(pass.failed == 1)
            #expect(try await world.strings("SELECT state FROM payouts") == ["failed"])
            #expect(try await payout.ledgerETH(.ownerInFlight) == 0)
            #expect(try await payout.ledgerETH(.ownerPayable) == -3_937_230_000_000_000, "the share is pending again")
            #expect(try await payout.chain.rpc.balance(of: payout.ownerWallet, at: .latest) == 0)
            try await world.eventually("the admins are alerted") {
                world.alerts.all.contains { if case .payoutFailed = $0 { true } else { false } }
            }
            // Not planned again on its own: an operator decides (the share stays pending).
            #expect(try await payout.payouts.runPass().planned == 0)
        }
    }

    @Test("a wallet the hot wallet refuses (not an address) fails that payout at once without moving money, and the pass goes on")
    func refusedWalletFailsWithoutMoving() async throws {
        try await withSubscriptionWorld { world in
            let payout = try await DirectPayoutWorld.make(world, gasEther: "1")
            try await world.database.withConnection { connection in
                try await connection.run("UPDATE channel_payout_settings SET wallet_address = 'not-an-ethereum-address'", logger: quietLogger)
            }
            let invoice = try await world.order(SubscriptionWorld.anna)
            try await world.pay(invoice, through: ["finished"])
            try await world.waitForOrder(invoice.orderID!, "paid")
            try await world.settled()
            let pass = try await payout.payouts.runPass()
            #expect(pass.planned == 1 && pass.submitted == 0)
            #expect(try await world.strings("SELECT state FROM payouts") == ["failed"])
            #expect(try await world.count("SELECT count(*) FROM wallet_transfers") == 0, "no transfer was ever recorded")
            #expect(try await payout.ledgerETH(.ownerPayable) == -3_937_230_000_000_000, "the share is pending again")
            #expect(try await payout.ledgerETH(.ownerInFlight) == 0)
        }
    }
}
