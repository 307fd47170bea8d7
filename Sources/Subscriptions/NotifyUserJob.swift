import Foundation
import Jobs

/// A message the domain wants a user to get, by catalog key; localized in the user's language when sent.
/// Sent by a durable job, so a crash or a Telegram outage delays it instead of losing it.
public struct NotifyUserJob: JobPayload {
    public static let kind = "subscriptions.notify_user"
    public static let maxAttempts = 12

    public var userID: Int64
    public var key: String
    public var arguments: [String: String]
    /// Arguments that are day counts, rendered through the `days.count` plural.
    public var dayArguments: [String: Int]
    public var buttons: [UserButton]

    public init(userID: Int64, key: String, arguments: [String: String] = [:], dayArguments: [String: Int] = [:], buttons: [UserButton] = []) {
        self.userID = userID
        self.key = key
        self.arguments = arguments
        self.dayArguments = dayArguments
        self.buttons = buttons
    }
}
