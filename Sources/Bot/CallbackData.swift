import Subscriptions

/// What an inline button does when pressed, encoded into Telegram's 64-byte `callback_data`.
///
/// The first field is a version, so buttons on old messages can be recognised as outdated after the
/// format changes instead of being misread. Nothing in callback data is trusted: every case that names a
/// channel is checked against the presser's ownership, and form presses are resolved against the form's
/// current state.
public enum CallbackData: Sendable, Hashable {
    /// Choose the bot's language for this user.
    case chooseLanguage(String)

    /// A button of a conversation's current view: which conversation (its short code), the state revision
    /// the view was drawn for (a press on an older one is outdated), and the button's row and column.
    case form(code: String, revision: UInt32, row: Int, column: Int)

    /// The owner's channel list, and what can be done to one channel from it.
    case channelList
    case channelAdd
    case channelOpen(Int64)
    case channelEdit(Int64)
    case channelPause(Int64)
    case channelResume(Int64)
    case channelDelete(Int64)
    case channelDeleteConfirmed(Int64)
    /// Post the channel's offer in its public channel now (at most once per cooldown).
    case channelPostNow(Int64)

    // MARK: Subscriber purchases (issue 6)

    /// Buy tier `position` of the channel whose offer token is `offerToken`. The token, not the channel's
    /// sequential id, names the channel, so a button can be made only by someone who was shown the offer.
    /// (Version 1 buttons that named the channel id, `buy:<id>:<position>`, now read as outdated.)
    case buyTier(offerToken: String, position: Int)
    /// Ask again for the invoice of an order whose invoice failed.
    case retryInvoice(orderID: Int64)
    /// Show channel `channelID`'s offer again, to renew; shown only to a user who has a subscription to the
    /// channel or an order for it (checked when pressed).
    case renew(channelID: Int64)
    /// Send a new invite link for an active subscription.
    case inviteAgain(subscriptionID: Int64)
    /// A key of the donor's keypad; the keypad itself (channel, amount) is the donor's stored one, and a
    /// press on any message but the current keypad is outdated.
    case donationKey(DonationKey)
    /// Send a test notification to the channel's notification recipient.
    case channelTestNotification(Int64)

    // MARK: Broadcasts and admin tools (issue 16)

    /// The admin menu, and its entries; every press is checked against `TELEPAY_ADMIN_TELEGRAM_IDS`.
    case admin(AdminAction)
    /// Choose who an owner's broadcast from channel `channelID`'s card goes to.
    case channelBroadcast(Int64)
    /// The channel's statistics, for its owner.
    case channelStats(Int64)
    /// Start composing an owner's broadcast to `audience` of channel `channelID`.
    case channelBroadcastTo(channelID: Int64, audience: OwnerAudienceChoice)
    /// Confirm, or discard, a checked draft; pause, resume or cancel a broadcast on its way. The presser
    /// must be the author or an admin.
    case broadcast(BroadcastAction, Int64)
    /// An admin's extend or revoke of subscription `subscriptionID` (a reason is asked next).
    case adminAccess(AdminAccessAction, Int64)
    /// An admin re-queues failed job `id` (as `telepay jobs retry` does).
    case adminRetryJob(Int64)
    /// An owner's CSV export of a channel's subscribers or payments.
    case channelExport(Int64, ChannelExportKind)
    /// An admin allows the channel's next payout after a failed one (`PayoutDesk.release`).
    case adminReleasePayout(Int64)
    /// An admin pauses or resumes any channel (a reason is asked next).
    case adminChannel(AdminChannelAction, Int64)

    public static let version = "v1"
    public static let maximumBytes = 64
    /// Limits of the form case, checked by the conversation loader and by `init`.
    public static let maximumFormCodeLength = 6
    public static let maximumFormPosition = 99

    public var encoded: String {
        switch self {
        case .chooseLanguage(let code): return "\(Self.version):lang:\(code)"
        case .form(let code, let revision, let row, let column):
            return "\(Self.version):f:\(code):\(String(revision, radix: 36)):\(row):\(column)"
        case .channelList: return "\(Self.version):ch:list"
        case .channelAdd: return "\(Self.version):ch:add"
        case .channelOpen(let id): return "\(Self.version):ch:open:\(id)"
        case .channelEdit(let id): return "\(Self.version):ch:edit:\(id)"
        case .channelPause(let id): return "\(Self.version):ch:pause:\(id)"
        case .channelResume(let id): return "\(Self.version):ch:resume:\(id)"
        case .channelDelete(let id): return "\(Self.version):ch:del:\(id)"
        case .channelDeleteConfirmed(let id): return "\(Self.version):ch:delok:\(id)"
        case .channelPostNow(let id): return "\(Self.version):ch:post:\(id)"

        case .buyTier(let token, let position): return "\(Self.version):tier:\(position):\(token)"
        case .retryInvoice(let order): return "\(Self.version):payretry:\(order)"
        case .renew(let channel): return "\(Self.version):renew:\(channel)"
        case .inviteAgain(let subscription): return "\(Self.version):invite:\(subscription)"
        case .donationKey(let key): return "\(Self.version):don:\(key.rawValue)"
        case .channelTestNotification(let id): return "\(Self.version):ch:test:\(id)"

        case .admin(let action): return "\(Self.version):adm:\(action.rawValue)"
        case .channelBroadcast(let id): return "\(Self.version):ch:bc:\(id)"
        case .channelStats(let id): return "\(Self.version):ch:stats:\(id)"
        case .channelBroadcastTo(let id, let audience): return "\(Self.version):chbc:\(audience.rawValue):\(id)"
        case .broadcast(let action, let id): return "\(Self.version):bc:\(action.rawValue):\(id)"
        case .adminAccess(let action, let id): return "\(Self.version):acc:\(action.rawValue):\(id)"
        case .adminRetryJob(let id): return "\(Self.version):admjob:\(id)"
        case .channelExport(let id, let kind): return "\(Self.version):chx:\(kind.rawValue):\(id)"
        case .adminReleasePayout(let id): return "\(Self.version):admpay:\(id)"
        case .adminChannel(let action, let id): return "\(Self.version):admch:\(action.rawValue):\(id)"
        }
    }

    /// Decodes data from a pressed button; `nil` for anything this version does not know (an outdated menu).
    public init?(_ data: String) {
        guard data.utf8.count <= Self.maximumBytes else { return nil }
        let parts = data.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts[0] == Self.version else { return nil }
        switch (parts[1], parts.count) {
        case ("lang", 3) where parts[2].count <= 3 && parts[2].allSatisfy({ $0.isASCII && $0.isLowercase }):
            self = .chooseLanguage(parts[2])
        case ("f", 6):
            let code = parts[2]
            guard (1...Self.maximumFormCodeLength).contains(code.count),
                code.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber) }),
                parts[3].allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber) }),
                let revision = UInt32(parts[3], radix: 36),
                let row = Self.position(parts[4]), let column = Self.position(parts[5])
            else { return nil }
            self = .form(code: code, revision: revision, row: row, column: column)
        case ("ch", 3):
            switch parts[2] {
            case "list": self = .channelList
            case "add": self = .channelAdd
            default: return nil
            }
        case ("ch", 4):
            guard let id = Self.id(parts[3]) else { return nil }
            switch parts[2] {
            case "open": self = .channelOpen(id)
            case "edit": self = .channelEdit(id)
            case "pause": self = .channelPause(id)
            case "resume": self = .channelResume(id)
            case "del": self = .channelDelete(id)
            case "delok": self = .channelDeleteConfirmed(id)
            case "post": self = .channelPostNow(id)
            case "test": self = .channelTestNotification(id)
            case "bc": self = .channelBroadcast(id)
            case "stats": self = .channelStats(id)
            default: return nil
            }

        case ("tier", 4):
            guard parts[2].count == 1, let position = Int(parts[2]), (1...3).contains(position), Self.isOfferToken(parts[3]) else { return nil }
            self = .buyTier(offerToken: parts[3], position: position)
        case ("payretry", 3):
            guard let order = Self.id(parts[2]) else { return nil }
            self = .retryInvoice(orderID: order)
        case ("renew", 3):
            guard let channel = Self.id(parts[2]) else { return nil }
            self = .renew(channelID: channel)
        case ("invite", 3):
            guard let subscription = Self.id(parts[2]) else { return nil }
            self = .inviteAgain(subscriptionID: subscription)
        case ("don", 3):
            guard let key = DonationKey(rawValue: parts[2]) else { return nil }
            self = .donationKey(key)
        case ("adm", 3):
            guard let action = AdminAction(rawValue: parts[2]) else { return nil }
            self = .admin(action)
        case ("chbc", 4):
            guard let audience = OwnerAudienceChoice(rawValue: parts[2]), let id = Self.id(parts[3]) else { return nil }
            self = .channelBroadcastTo(channelID: id, audience: audience)
        case ("bc", 4):
            guard let action = BroadcastAction(rawValue: parts[2]), let id = Self.id(parts[3]) else { return nil }
            self = .broadcast(action, id)
        case ("admjob", 3):
            guard let id = Self.id(parts[2]) else { return nil }
            self = .adminRetryJob(id)
        case ("acc", 4):
            guard let action = AdminAccessAction(rawValue: parts[2]), let id = Self.id(parts[3]) else { return nil }
            self = .adminAccess(action, id)
        case ("chx", 4):
            guard let kind = ChannelExportKind(rawValue: parts[2]), let id = Self.id(parts[3]) else { return nil }
            self = .channelExport(id, kind)
        case ("admpay", 3):
            guard let id = Self.id(parts[2]) else { return nil }
            self = .adminReleasePayout(id)
        case ("admch", 4):
            guard let action = AdminChannelAction(rawValue: parts[2]), let id = Self.id(parts[3]) else { return nil }
            self = .adminChannel(action, id)
        default:
            return nil
        }
    }

    private static func position(_ text: String) -> Int? {
        guard (1...2).contains(text.count), text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(text),
            value <= maximumFormPosition
        else { return nil }
        return value
    }

    /// One value of every case with its largest payload, for the test that all of them fit 64 bytes.
    public static var largestOfEachCase: [CallbackData] {
        let code = String(repeating: "z", count: maximumFormCodeLength)
        return [
            .chooseLanguage("zzz"),
            .form(code: code, revision: .max, row: maximumFormPosition, column: maximumFormPosition),
            .channelList, .channelAdd,
            .channelOpen(.max), .channelEdit(.max), .channelPause(.max), .channelResume(.max),
            .channelDelete(.max), .channelDeleteConfirmed(.max), .channelPostNow(.max),
            .buyTier(offerToken: String(repeating: "Z", count: maximumOfferTokenLength), position: 3),
            .retryInvoice(orderID: .max), .renew(channelID: .max),
            .inviteAgain(subscriptionID: .max),
            .donationKey(.confirm), .channelTestNotification(.max),
        ] + AdminAction.allCases.map { .admin($0) }
            + [.channelBroadcast(.max), .channelStats(.max)]
            + OwnerAudienceChoice.allCases.map { .channelBroadcastTo(channelID: .max, audience: $0) }
            + BroadcastAction.allCases.map { .broadcast($0, .max) }
            + AdminAccessAction.allCases.map { .adminAccess($0, .max) } + [.adminRetryJob(.max)]
            + ChannelExportKind.allCases.map { .channelExport(.max, $0) } + [.adminReleasePayout(.max)]
            + AdminChannelAction.allCases.map { .adminChannel($0, .max) }
    }

    /// Offer tokens are 16 to 32 characters of `[A-Za-z0-9_-]` (the `channels.offer_token` check).
    public static let minimumOfferTokenLength = 16
    public static let maximumOfferTokenLength = 32

    private static func isOfferToken(_ text: String) -> Bool {
        (minimumOfferTokenLength...maximumOfferTokenLength).contains(text.utf8.count)
            && text.utf8.allSatisfy { $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// A positive row id written in plain digits (no sign, no leading zeros), so each id has one encoding.
    private static func id(_ text: String) -> Int64? {
        guard let value = Int64(text), value > 0, String(value) == text else { return nil }
        return value
    }
}

/// The entries of the admin menu.
public enum AdminAction: String, Sendable, Hashable, CaseIterable {
    case menu
    case broadcastToUsers = "bcu"
    case broadcastToOwners = "bco"
    case stats
    case lookUp = "user"
    case failedJobs = "jobs"
}

/// The audiences an owner can pick on the channel card.
public enum OwnerAudienceChoice: String, Sendable, Hashable, CaseIterable {
    case active = "act"
    case expired7 = "exp7"
    case expired30 = "exp30"
    /// The owner types the number of days.
    case expiredDays = "expn"
    case paid
}

/// What can be done to a broadcast from its confirmation or progress message.
public enum BroadcastAction: String, Sendable, Hashable, CaseIterable {
    case send, discard, pause, resume, cancel
}

extension UInt8 {
    fileprivate var isASCIIAlphanumeric: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}
