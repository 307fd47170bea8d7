import Foundation
import Jobs
import Localization
import Money
import Payouts
import Storage
import Subscriptions
import TelegramBotAPI

/// Renders owner notifications. Pure: facts and a language in, HTML text out.
public enum OwnerNotificationText {
    /// `0x5aAe…eAed`: the first six and last four characters, enough to recognise a wallet.
    public static func shortWallet(_ wallet: String) -> String {
        wallet.count <= 12 ? wallet : String(wallet.prefix(6)) + "…" + String(wallet.suffix(4))
    }

    /// A link that opens the user's profile, with their name as its text.
    public static func mention(id: Int64, name: String) -> String {
        "<a href=\"tg://user?id=\(id)\">\(Localizer.escapeHTML(name))</a>"
    }

    /// How far the pending balance is towards the threshold, in whole percent (rounded down).
    public static func percent(_ pending: Decimal, of threshold: Decimal) -> Int {
        guard threshold > 0, pending > 0 else { return 0 }
        return NSDecimalNumber(decimal: DecimalText.rounded(pending * 100 / threshold, scale: 0, .down)).intValue
    }

    /// The payout section: instant (currency, network, shortened wallet) or threshold (progress).
    public static func payoutSection(_ payout: OwnerNotificationFacts.Payout, language: String, localizer: Localizer) -> String {
        if payout.strategy == PayoutStrategy.threshold.rawValue, let threshold = payout.thresholdUSD {
            return localizer.text(
                L10n.ownerNoticePayoutThreshold, language: language,
                [
                    "converted": DecimalText.usd(payout.convertedUSD), "threshold": DecimalText.usd(threshold),
                    "percent": String(min(percent(payout.convertedUSD, of: threshold), 100)), "waiting": DecimalText.usd(payout.waitingUSD),
                ])
        }
        return localizer.text(
            L10n.ownerNoticePayoutInstant, language: language,
            [
                "currency": payout.currency, "network": payout.network, "wallet": shortWallet(payout.wallet),
            ])
    }

    public static func render(
        _ notification: OwnerNotification, facts: OwnerNotificationFacts, feePercent: Decimal, language: String, localizer: Localizer
    ) -> String {
        let channel = facts.channelTitle
        let payout = facts.payout.map { payoutSection($0, language: language, localizer: localizer) } ?? ""
        func orderText(_ key: String) -> String {
            guard let order = facts.order else { return localizer.text(key, language: language, ["channel": channel]) }
            let split = FeeSplit(gross: order.priceUSD, feePercent: feePercent)
            return localizer.text(
                key, language: language,
                [
                    "channel": channel, "tier": order.tier.map(String.init) ?? "", "price": DecimalText.usd(order.priceUSD),
                    "share": DecimalText.usd(split.ownerShare),
                    "duration": order.durationDays.map { localizer.text(L10n.daysCount, language: language, count: $0) } ?? "",
                ], html: ["buyer": mention(id: order.buyerID, name: order.buyerName), "payout": payout])
        }
        func payoutText(_ key: String, _ notice: PayoutNotice, _ extra: [String: String] = [:]) -> String {
            localizer.text(
                key, language: language,
                [
                    "channel": channel, "amount": notice.amount, "currency": notice.currency, "network": notice.network,
                    "wallet": shortWallet(notice.wallet), "transaction": notice.transactionHash ?? "—",
                ].merging(extra) { $1 })
        }
        switch notification {
        case .sale(_, let renewal): return orderText(renewal ? L10n.ownerNoticeRenewal : L10n.ownerNoticeSale)
        case .donation: return orderText(L10n.ownerNoticeDonation)
        case .refund: return orderText(facts.order?.kind == .donation ? L10n.ownerNoticeRefundDonation : L10n.ownerNoticeRefund)
        case .payoutSent(let notice): return payoutText(L10n.ownerNoticePayoutSent, notice)
        case .payoutArrived(let notice): return payoutText(L10n.ownerNoticePayoutArrived, notice)
        case .payoutFailed(let notice, let problem):
            return payoutText(
                L10n.ownerNoticePayoutFailed, notice,
                [
                    "fix": SubscriberCommands.plain(localizer.text("owner.notice.payout_fix.\(problem.rawValue)", language: language))
                ])
        case .converted(let notice):
            return localizer.text(
                L10n.ownerNoticeConverted, language: language,
                [
                    "channel": channel, "value": notice.valueUSD, "amount": notice.amount, "currency": notice.currency,
                ], html: ["payout": payout])
        case .test: return localizer.text(L10n.ownerNoticeTest, language: language, ["channel": channel], html: ["payout": payout])
        }
    }
}

/// Sends `OwnerNotificationJob`s to the channel's recipient, read when the job runs: notifications turned
/// off meanwhile send nothing, a changed recipient gets it. Flood control and outages are retried; a
/// recipient who blocked the bot fails the job at once.
public struct OwnerNotifier: JobHandler {
    public let client: TelegramClient
    public let database: Database
    public let localizer: Localizer
    /// The platform fee, to state the owner's share.
    public let feePercent: Decimal

    public init(client: TelegramClient, database: Database, localizer: Localizer, feePercent: Decimal) {
        self.client = client
        self.database = database
        self.localizer = localizer
        self.feePercent = feePercent
    }

    public var options: JobKindOptions { JobKindOptions(concurrency: 8) }

    public func run(_ payload: OwnerNotificationJob, context: JobContext) async throws {
        let logger = context.logger
        guard let facts = try await database.withConnection({ try await OwnerNotificationStore.facts(for: payload, on: $0, logger: logger) }) else {
            logger.info("owner notification not sent: notifications are off", metadata: ["channel_id": "\(payload.channelID)"])
            return
        }
        let language = localizer.resolveLanguage(chosen: facts.recipientChosenLanguage, telegramCode: facts.recipientTelegramLanguage)
        let text = OwnerNotificationText.render(payload.notification, facts: facts, feePercent: feePercent, language: language, localizer: localizer)
        try await client.send(
            SendMessage(
                chatId: .id(facts.recipientID), text: text, parseMode: "HTML", linkPreviewOptions: LinkPreviewOptions(isDisabled: true)
            ))
    }

    public func classify(_ error: any Error) -> JobErrorClass {
        guard let telegram = error as? TelegramError else { return .retryable }
        return telegram.isTransient ? .retryable : .permanent
    }
}
