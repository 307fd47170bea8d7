import Channels
import Foundation
import Jobs
import Localization
import Logging
import Storage
import Subscriptions
import TelegramBotAPI

/// An admin looks someone up (`/admin user 123` or `/admin user @name`) and extends (30 days) or revokes
/// their access to a channel, or grants access to anyone, with or without an order (`/admin grant`). Each
/// change needs a reason, typed next, and is written to `admin_access_actions` with the expiry before and
/// after in the transaction that makes it; the person is told, a grant or extension that makes access active
/// sends them an invite, and a revocation ends the subscription now so the expiry sweep removes them from the
/// channel. `/admin channel` (AdminChannelCommands.swift) pauses or resumes any channel the same way.
public struct AdminAccessCommands: Sendable {
    public static let extensionDays = 30

    public let admins: Set<Int64>

    public init(admins: Set<Int64>) {
        self.admins = admins
    }

    func register(into router: inout BotRouter) {
        router.callback { data, context in
            switch data {
            case .adminAccess(let action, let subscription):
                try await begin(action, subscription: subscription, context: context)
            case .adminChannel(let action, let channel):
                try await beginChannel(action, channel: channel, context: context)
            default:
                return false
            }
            return true
        }
        router.onMessage { context in
            try await receiveReason(context)
        }
        router.onMessage { context in
            try await receiveChannelReason(context)
        }
    }

    func isAdmin(_ context: UpdateContext) -> Bool {
        guard let user = context.user?.id, admins.contains(user), context.chatID.map({ $0 > 0 }) == true else { return false }
        return true
    }

    func lookUp(_ query: String, context: UpdateContext) async throws {
        guard !query.isEmpty else {
            try await context.reply(L10n.adminLookupUsage)
            return
        }
        guard let record = try await context.services.admin.lookUp(query) else {
            try await context.reply(L10n.adminLookupNotFound, ["query": query])
            return
        }
        let subscriptions = record.subscriptions.map { subscription in
            context.text(
                subscription.status == .active ? L10n.adminUserSubscriptionActive : L10n.adminUserSubscriptionExpired,
                [
                    "title": subscription.channelTitle, "date": AccessService.format(subscription.expiresAt),
                ])
        }
        let orders = record.orders.map { order in
            context.text(
                L10n.adminUserOrder,
                [
                    "date": AccessService.format(order.createdAt), "title": order.channelTitle, "price": order.priceUSD,
                    "status": order.status, "id": order.publicID,
                ])
        }
        // Each line is localized with its values escaped; the card joins them without escaping them again.
        let text = [
            context.text(L10n.adminUserCard, ["name": record.firstName, "username": record.username.map { "@" + $0 } ?? "", "id": String(record.id)])
                + (record.blockedBot ? " " + context.text(L10n.adminUserBlocked) : ""),
            context.text(L10n.adminUserSubscriptions) + "\n" + (subscriptions.isEmpty ? "—" : subscriptions.joined(separator: "\n")),
            context.text(L10n.adminUserOrders) + "\n" + (orders.isEmpty ? "—" : orders.joined(separator: "\n")),
        ].joined(separator: "\n\n")
        var rows: [[InlineKeyboardButton]] = []
        for subscription in record.subscriptions {
            var row = [
                InlineKeyboardButton(
                    text: context.text(L10n.adminButtonExtend, ["days": String(Self.extensionDays), "title": subscription.channelTitle]),
                    action: .callbackData(CallbackData.adminAccess(.extend, subscription.id).encoded)
                )
            ]
            if subscription.status == .active {
                row.append(
                    InlineKeyboardButton(
                        text: context.text(L10n.adminButtonRevoke, ["title": subscription.channelTitle]),
                        action: .callbackData(CallbackData.adminAccess(.revoke, subscription.id).encoded)
                    ))
            }
            rows.append(row)
        }
        guard let chat = context.chatID else { return }
        try await context.services.client.send(
            SendMessage(
                chatId: .id(chat), text: text, parseMode: "HTML", linkPreviewOptions: LinkPreviewOptions(isDisabled: true),
                replyMarkup: rows.isEmpty ? nil : .inlineKeyboard(InlineKeyboardMarkup(inlineKeyboard: rows))
            ))
    }

    /// `/admin grant <user id or @username> <channel id> <days>`: checks the person, the channel and the days,
    /// then asks for the reason.
    func grant(_ arguments: String, context: UpdateContext) async throws {
        guard let admin = context.user?.id else { return }
        let words = arguments.split(separator: " ").map(String.init)
        guard words.count == 3, let channel = Int64(words[1]), channel > 0, let days = Int(words[2]), (1...Self.maximumGrantDays).contains(days)
        else {
            try await context.reply(L10n.adminGrantUsage, ["maximum": String(Self.maximumGrantDays)])
            return
        }
        let title = try await context.services.admin.beginGrant(admin: admin, user: words[0], channelID: channel, days: days)
        guard let title else {
            try await context.reply(L10n.adminGrantNotFound, ["user": words[0], "channel": words[1]])
            return
        }
        try await context.reply(L10n.adminAccessReasonPromptGrant, ["title": title, "days": String(days), "user": words[0]])
    }

    public static let maximumGrantDays = 3650

    func begin(_ action: AdminAccessAction, subscription: Int64, context: UpdateContext) async throws {
        guard isAdmin(context), let admin = context.user?.id, action != .grant else {
            context.logger.warning(
                "refused an admin action from someone who is not an admin",
                metadata: [
                    "user_id": "\(context.user?.id ?? 0)", "action": "\(action.rawValue)", "subscription_id": "\(subscription)",
                ])
            try await context.answerCallback(text: context.text(L10n.adminNotAllowed))
            return
        }
        let title = try await context.services.admin.begin(
            action, admin: admin, subscriptionID: subscription, days: action == .extend ? Self.extensionDays : nil)
        try await context.answerCallback()
        guard let title else {
            try await context.reply(L10n.adminAccessNotPossible)
            return
        }
        try await context.reply("admin.access.reason_prompt.\(action.rawValue)", ["title": title, "days": String(Self.extensionDays)])
    }

    /// The admin's next text after pressing extend or revoke is the reason; the change is made then.
    func receiveReason(_ context: UpdateContext) async throws -> Bool {
        guard isAdmin(context), let admin = context.user?.id,
            let reason = context.update.message?.text?.trimmingCharacters(in: .whitespacesAndNewlines),
            let jobs = context.services.jobs
        else { return false }
        let outcome = try await context.services.admin.completeAccess(admin: admin, reason: reason, jobs: jobs)
        switch outcome {
        case .none:
            return false
        case .invalid:
            try await context.reply(L10n.adminAccessReasonInvalid)
        case .notPossible:
            try await context.reply(L10n.adminAccessNotPossible)
        case .extended(let title, let until):
            context.logger.notice("an admin extended a subscription", metadata: ["admin": "\(admin)", "title": "\(title)"])
            try await context.reply(L10n.adminAccessExtended, ["title": title, "date": AccessService.format(until)])
        case .granted(let title, let until):
            context.logger.notice("an admin granted access", metadata: ["admin": "\(admin)", "title": "\(title)"])
            try await context.reply(L10n.adminAccessGranted, ["title": title, "date": AccessService.format(until)])
        case .revoked(let title):
            context.logger.notice("an admin revoked a subscription", metadata: ["admin": "\(admin)", "title": "\(title)"])
            try await context.reply(L10n.adminAccessRevoked, ["title": title])
        }
        return true
    }
}
