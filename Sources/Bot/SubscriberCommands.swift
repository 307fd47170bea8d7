import Foundation
import Localization
import Money
import Subscriptions
import TelegramBotAPI

/// What a subscriber does in the bot: open an offer from a deep link, pick a tier, pay, list subscriptions,
/// renew, get an invite again, donate. The closed channels' join requests and joins go to `JoinGate`.
public struct SubscriberCommands: Sendable {
    public let purchases: PurchaseService
    public let access: AccessService

    public init(purchases: PurchaseService, access: AccessService) {
        self.purchases = purchases
        self.access = access
    }

    /// Registers the core commands with purchases wired in, the purchase buttons, and the join gate.
    public func register(into router: inout BotRouter) {
        CoreCommands.register(
            into: &router,
            startPayload: { payload, context in try await openOffer(payload: payload, context: context) },
            subscriptions: { context in try await listSubscriptions(context) }
        )
        router.callback { data, context in
            switch data {
            case .buyTier(let token, let position):
                try await context.answerCallback()
                try await buy(offerToken: token, position: position, context: context)
            case .retryInvoice(let order):
                try await context.answerCallback()
                guard let userID = context.user?.id else { return true }
                try await show(try await purchases.retryInvoice(orderID: order, userID: userID), context: context)
            case .renew(let channel):
                try await context.answerCallback()
                guard let userID = context.user?.id else { return true }
                if let token = try await access.renewalOfferToken(channelID: channel, userID: userID),
                    let offer = try await purchases.offer(token: token)
                {
                    try await showOffer(offer, token: token, context: context)
                } else {
                    try await context.reply(L10n.purchaseUnavailable)
                }
            case .inviteAgain(let subscription):
                try await context.answerCallback()
                guard let userID = context.user?.id else { return true }
                let queued = try await access.requestInviteAgain(subscriptionID: subscription, userID: userID)
                try await context.reply(queued ? L10n.inviteAgainQueued : L10n.inviteAgainUnavailable)
            case .donationKey(let key):
                try await pressDonationKey(key, context: context)
            default:
                return false
            }
            return true
        }
        JoinGate(access: access).register(into: &router)
    }

    /// A payload is an offer token, `t<position>` followed by the token for one tier, or `d` followed by the
    /// token for a donation.
    func openOffer(payload: String, context: UpdateContext) async throws -> Bool {
        if let offer = try await purchases.offer(token: payload) {
            try await showOffer(offer, token: payload, context: context)
            return true
        }
        if payload.first == "d", try await openDonation(token: String(payload.dropFirst()), context: context) {
            return true
        }
        let characters = Array(payload)
        guard characters.count > 2, characters[0] == "t", let position = Int(String(characters[1])),
            let offer = try await purchases.offer(token: String(characters[2...])),
            offer.tiers.contains(where: { $0.position == position })
        else { return false }
        try await buy(channelID: offer.channelID, position: position, context: context)
        return true
    }

    /// Shows the offer; its buttons carry `token`, the offer token it was opened with.
    func showOffer(_ offer: Offer, token: String, context: UpdateContext) async throws {
        guard !offer.tiers.isEmpty else {
            try await context.reply(L10n.offerNoTiers, ["title": offer.closedTitle])
            return
        }
        let buttons = offer.tiers.map { tier in
            [
                InlineKeyboardButton(
                    text: context.text(
                        L10n.offerTierButton,
                        [
                            "price": Self.usd(tier.priceUSD), "duration": context.text(L10n.daysCount, count: tier.durationDays),
                        ]),
                    action: .callbackData(CallbackData.buyTier(offerToken: token, position: tier.position).encoded)
                )
            ]
        }
        try await context.reply(
            L10n.offerText, ["title": offer.closedTitle, "description": offer.closedDescription],
            markup: .inlineKeyboard(InlineKeyboardMarkup(inlineKeyboard: buttons))
        )
    }

    /// Buys a tier of the channel the offer token names; a token no active channel has is unavailable.
    func buy(offerToken: String, position: Int, context: UpdateContext) async throws {
        guard let offer = try await purchases.offer(token: offerToken) else {
            try await context.reply(L10n.purchaseUnavailable)
            return
        }
        try await buy(channelID: offer.channelID, position: position, context: context)
    }

    func buy(channelID: Int64, position: Int, context: UpdateContext) async throws {
        guard let userID = context.user?.id else { return }
        try await show(try await purchases.buy(userID: userID, channelID: channelID, position: position), context: context)
    }

    func show(_ outcome: PurchaseOutcome, context: UpdateContext) async throws {
        switch outcome {
        case .invoice(_, let url, let price, let days, let title):
            try await context.reply(
                L10n.purchaseInvoice,
                ["title": title, "price": Self.usd(price), "duration": context.text(L10n.daysCount, count: days)],
                markup: .inlineKeyboard(
                    InlineKeyboardMarkup(inlineKeyboard: [
                        [
                            InlineKeyboardButton(text: context.text(L10n.purchasePayButton), action: .url(url))
                        ]
                    ]))
            )
        case .invoiceFailed(let order):
            try await context.reply(
                L10n.purchaseInvoiceFailed,
                markup: .inlineKeyboard(
                    InlineKeyboardMarkup(inlineKeyboard: [
                        [
                            InlineKeyboardButton(
                                text: context.text(L10n.purchaseRetryButton),
                                action: .callbackData(CallbackData.retryInvoice(orderID: order).encoded)
                            )
                        ]
                    ]))
            )
        case .unavailable:
            try await context.reply(L10n.purchaseUnavailable)
        case .paymentsUnavailable:
            try await context.reply(L10n.purchasePaymentsUnavailable)
        }
    }

    // MARK: - Donations

    /// Draws a fresh keypad for the donor in their private chat; false when no active channel has `token`.
    func openDonation(token: String, context: UpdateContext) async throws -> Bool {
        guard let userID = context.user?.id, let chatID = context.chatID, chatID > 0,
            let view = try await purchases.donations.open(token: token, userID: userID, chatID: chatID)
        else { return false }
        let sent = try await context.services.client.send(
            SendMessage(
                chatId: .id(chatID), text: Self.keypadText(view, rejection: nil, context: context), parseMode: "HTML",
                replyMarkup: .inlineKeyboard(Self.keypad(context))
            ))
        try await purchases.donations.attach(userID: userID, messageID: sent.messageId)
        return true
    }

    func pressDonationKey(_ key: DonationKey, context: UpdateContext) async throws {
        guard let userID = context.user?.id, let messageID = context.callbackMessageID else { return }
        let outcome = try await purchases.donations.press(key, userID: userID, messageID: messageID)
        switch outcome {
        case .outdated:
            try await context.answerCallback(text: context.text(L10n.donationOutdated))
        case .unavailable:
            try await context.answerCallback()
            try await context.reply(L10n.purchaseUnavailable)
        case .cancelled(let title):
            try await context.answerCallback()
            _ = try await MenuEditing.edit(context, messageID: messageID, text: context.text(L10n.donationCancelled, ["title": title]), keyboard: nil)
        case .updated(let view, let rejection):
            try await context.answerCallback(text: rejection.map { Self.plain(Self.rejectionText($0, view: view, context: context)) })
            _ = try await MenuEditing.edit(
                context, messageID: messageID, text: Self.keypadText(view, rejection: rejection, context: context), keyboard: Self.keypad(context)
            )
        case .confirmed(let purchase, let amount):
            try await context.answerCallback()
            switch purchase {
            case .invoice(_, let url, _, _, let title):
                let text = context.text(L10n.donationInvoice, ["title": title, "amount": Self.usd(amount)])
                let keyboard = InlineKeyboardMarkup(inlineKeyboard: [
                    [InlineKeyboardButton(text: context.text(L10n.purchasePayButton), action: .url(url))]
                ])
                if !(try await MenuEditing.edit(context, messageID: messageID, text: text, keyboard: keyboard)) {
                    try await context.reply(L10n.donationInvoice, ["title": title, "amount": Self.usd(amount)], markup: .inlineKeyboard(keyboard))
                }
            default:
                _ = try await MenuEditing.edit(context, messageID: messageID, text: context.text(L10n.donationKeypadClosed), keyboard: nil)
                try await show(purchase, context: context)
            }
        }
    }

    static func rejectionText(_ rejection: DonationRejection, view: DonationKeypadView, context: UpdateContext) -> String {
        context.text(
            "donation.rejected.\(rejection.rawValue)",
            [
                "min": usd(view.range.minimum), "max": usd(view.range.maximum),
                "digits": String(DonationKeypad.maximumIntegerDigits), "decimals": String(DonationKeypad.maximumDecimals),
            ])
    }

    static func keypadText(_ view: DonationKeypadView, rejection: DonationRejection?, context: UpdateContext) -> String {
        let text = context.text(
            L10n.donationKeypad,
            [
                "title": view.title, "amount": DonationKeypad.display(view.amount), "min": usd(view.range.minimum), "max": usd(view.range.maximum),
            ])
        return rejection.map { text + "\n\n⚠️ " + rejectionText($0, view: view, context: context) } ?? text
    }

    /// Digits, ".", ⌫, Clear, Confirm and Cancel; every button names only its key.
    static func keypad(_ context: UpdateContext) -> InlineKeyboardMarkup {
        func key(_ label: String, _ key: DonationKey) -> InlineKeyboardButton {
            InlineKeyboardButton(text: label, action: .callbackData(CallbackData.donationKey(key).encoded))
        }
        let digits: [[DonationKey]] = [[.d1, .d2, .d3], [.d4, .d5, .d6], [.d7, .d8, .d9]]
        var rows = digits.map { $0.map { key($0.rawValue, $0) } }
        rows.append([key(".", .dot), key("0", .d0), key("⌫", .backspace)])
        rows.append([key(context.text(L10n.donationButtonClear), .clear)])
        rows.append([key(context.text(L10n.donationButtonConfirm), .confirm), key(context.text(L10n.donationButtonCancel), .cancel)])
        return InlineKeyboardMarkup(inlineKeyboard: rows)
    }

    func listSubscriptions(_ context: UpdateContext) async throws {
        guard let userID = context.user?.id else { return }
        let subscriptions = try await purchases.subscriptions(of: userID)
        guard !subscriptions.isEmpty else {
            try await context.reply(L10n.subscriptionsNone)
            return
        }
        var lines = [context.text(L10n.subscriptionsHeader)]
        var buttons: [[InlineKeyboardButton]] = []
        for subscription in subscriptions {
            let expires = AccessService.format(subscription.expiresAt)
            lines.append(
                context.text(
                    subscription.isActive ? L10n.subscriptionsLineActive : L10n.subscriptionsLineExpired,
                    ["title": subscription.title, "expires": expires]
                ))
            var row = [
                InlineKeyboardButton(
                    text: Self.plain(context.text(L10n.subscriptionsRenewButton, ["title": subscription.title])),
                    action: .callbackData(CallbackData.renew(channelID: subscription.channelID).encoded)
                )
            ]
            if subscription.isActive {
                row.append(
                    InlineKeyboardButton(
                        text: context.text(L10n.subscriptionsInviteButton),
                        action: .callbackData(CallbackData.inviteAgain(subscriptionID: subscription.id).encoded)
                    ))
            }
            buttons.append(row)
        }
        guard let chatID = context.chatID else { return }
        try await context.services.client.send(
            SendMessage(
                chatId: .id(chatID), text: lines.joined(separator: "\n"), parseMode: "HTML",
                linkPreviewOptions: LinkPreviewOptions(isDisabled: true), replyMarkup: .inlineKeyboard(InlineKeyboardMarkup(inlineKeyboard: buttons))
            ))
    }

    /// Button labels are not parsed as HTML, so the escaping the localizer applies to arguments is undone
    /// (a channel called "Tom & Jerry" must not show as "Tom &amp; Jerry").
    static func plain(_ html: String) -> String {
        html.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }

    static func usd(_ value: Decimal) -> String {
        DecimalText.usd(value)
    }
}
