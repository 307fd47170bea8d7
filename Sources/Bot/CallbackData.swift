/// What an inline button does when pressed, encoded into Telegram's 64-byte `callback_data`.
///
/// The first field is a version, so buttons on old messages can be recognised as outdated after the
/// format changes instead of being misread.
public enum CallbackData: Sendable, Hashable {
    /// Choose the bot's language for this user.
    case chooseLanguage(String)

    public static let version = "v1"
    public static let maximumBytes = 64

    public var encoded: String {
        switch self {
        case .chooseLanguage(let code): return "\(Self.version):lang:\(code)"
        }
    }

    /// Decodes data from a pressed button; `nil` for anything this version does not know (an outdated menu).
    public init?(_ data: String) {
        let parts = data.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts[0] == Self.version else { return nil }
        switch (parts[1], parts.count) {
        case ("lang", 3) where parts[2].count <= 3 && parts[2].allSatisfy({ $0.isASCII && $0.isLowercase }):
            self = .chooseLanguage(parts[2])
        default:
            return nil
        }
    }
}
