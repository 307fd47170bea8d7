/// What an inline button does when pressed, encoded into Telegram's 64-byte `callback_data`.
///
/// The first field is a version, so buttons on old messages can be recognised as outdated after the
/// format changes instead of being misread.
public enum CallbackData: Sendable, Hashable {
    /// Choose the bot's language for this user.
    case chooseLanguage(String)

    // MARK: Subscriber purchases (issue 6)

    /// Buy tier `position` of channel `channelID`.
    case buyTier(channelID: Int64, position: Int)
    /// Ask again for the invoice of an order whose invoice failed.
    case retryInvoice(orderID: Int64)
    /// Show channel `channelID`'s offer again, to renew.
    case renew(channelID: Int64)
    /// Send a new invite link for an active subscription.
    case inviteAgain(subscriptionID: Int64)

    public static let version = "v1"
    public static let maximumBytes = 64

    public var encoded: String {
        switch self {
        case .chooseLanguage(let code): return "\(Self.version):lang:\(code)"
        case .buyTier(let channel, let position): return "\(Self.version):buy:\(channel):\(position)"
        case .retryInvoice(let order): return "\(Self.version):payretry:\(order)"
        case .renew(let channel): return "\(Self.version):renew:\(channel)"
        case .inviteAgain(let subscription): return "\(Self.version):invite:\(subscription)"
        }
    }

    /// Decodes data from a pressed button; `nil` for anything this version does not know (an outdated menu).
    public init?(_ data: String) {
        let parts = data.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts[0] == Self.version else { return nil }
        switch (parts[1], parts.count) {
        case ("lang", 3) where parts[2].count <= 3 && parts[2].allSatisfy({ $0.isASCII && $0.isLowercase }):
            self = .chooseLanguage(parts[2])
        case ("buy", 4):
            guard let channel = Self.id(parts[2]), let position = Int(parts[3]), (1...3).contains(position) else { return nil }
            self = .buyTier(channelID: channel, position: position)
        case ("payretry", 3):
            guard let order = Self.id(parts[2]) else { return nil }
            self = .retryInvoice(orderID: order)
        case ("renew", 3):
            guard let channel = Self.id(parts[2]) else { return nil }
            self = .renew(channelID: channel)
        case ("invite", 3):
            guard let subscription = Self.id(parts[2]) else { return nil }
            self = .inviteAgain(subscriptionID: subscription)
        default:
            return nil
        }
    }

    /// A positive row id written in plain digits (no sign, no leading zeros), so each id has one encoding.
    private static func id(_ text: String) -> Int64? {
        guard let value = Int64(text), value > 0, String(value) == text else { return nil }
        return value
    }
}
