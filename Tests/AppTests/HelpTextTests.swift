import Bot
import Foundation
import Localization
import TestSupport
import Testing

@Suite("Help text")
struct HelpTextTests {
    @Test("/help names every command the bot registers, in every language")
    func helpNamesEveryCommand() throws {
        let localizer = try Localizer.load(directory: RepositoryPaths.root + "/Localization")
        for language in localizer.languages {
            let help = localizer.text("help.text", language: language)
            for command in BotCommandName.allCases {
                #expect(help.contains("/\(command.rawValue) "), "help.text in \(language) does not mention /\(command.rawValue)")
            }
        }
    }
}
