import Foundation
import TelegramFake

/// Someone the sandbox's web page can act as.
public struct Persona: Sendable, Hashable, Codable {
    public enum Role: String, Sendable, Hashable, Codable {
        case owner, subscriber, admin
    }

    public var id: Int64
    public var name: String
    public var role: Role
    public var language: String

    public init(id: Int64, name: String, role: Role, language: String) {
        self.id = id
        self.name = name
        self.role = role
        self.language = language
    }
}

/// The small world the sandbox starts with: an owner with a public and a private channel (TelePay does not
/// know them yet; the owner connects them with `/channels`), three subscribers and an admin.
public enum SandboxWorld {
    public static let owner = Persona(id: 2001, name: "Olga", role: .owner, language: "en")
    public static let subscribers = [
        Persona(id: 1001, name: "Sam", role: .subscriber, language: "en"),
        Persona(id: 1002, name: "Sofia", role: .subscriber, language: "ru"),
        Persona(id: 1003, name: "Max", role: .subscriber, language: "en"),
    ]
    public static let admin = Persona(id: 3001, name: "Ada", role: .admin, language: "en")
    public static var personas: [Persona] { [owner] + subscribers + [admin] }

    public static let publicChannel: Int64 = -1_001_000_000_101
    public static let publicChannelTitle = "Olga's Kitchen"
    public static let publicChannelUsername = "olgas_kitchen"
    public static let privateChannel: Int64 = -1_001_000_000_102
    public static let privateChannelTitle = "Olga's Kitchen: Members"

    /// Puts the personas and channels into the fake Bot API. The bot is not yet an administrator of either
    /// channel: the chat picker adds it, as Telegram does.
    public static func seed(_ bot: FakeBotAPI) async {
        for persona in personas {
            await bot.addUser(id: persona.id, firstName: persona.name, username: persona.name.lowercased(), languageCode: persona.language)
        }
        await bot.addChannel(id: publicChannel, title: publicChannelTitle, owner: owner.id, botIsAdmin: false, username: publicChannelUsername)
        await bot.addChannel(id: privateChannel, title: privateChannelTitle, owner: owner.id, botIsAdmin: false)
    }
}
