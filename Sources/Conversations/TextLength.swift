/// The one way TelePay measures a text: in UTF-16 code units.
///
/// Telegram counts its limits in these units (message text after entity parsing, captions, entity offsets),
/// so a text measured this way fits where Telegram will carry it. The database checks use the same measure
/// (`telepay_text_length`, Migrations/0040), so the form never accepts what a save would refuse. Grapheme
/// clusters (Swift's `count`) and code points (PostgreSQL's `char_length`) each disagree with Telegram on
/// emoji: a flag is one grapheme, two code points and four units.
public enum TextLength {
    public static func of(_ text: some StringProtocol) -> Int {
        text.utf16.count
    }

    /// The longest start of `text` that fits `maximum` units, cut between characters (a flag or an emoji
    /// with its modifiers is kept whole or dropped whole), without trailing white space.
    public static func prefix(_ text: String, fitting maximum: Int) -> String {
        var result = ""
        var used = 0
        for character in text {
            let units = character.utf16.count
            guard used + units <= maximum else { break }
            result.append(character)
            used += units
        }
        while result.last?.isWhitespace == true { result.removeLast() }
        return result
    }

    /// Telegram's limit for a message's text (`sendMessage`, `editMessageText`), after entity parsing.
    public static let telegramMessageMaximum = 4096
}
