import App
import Foundation
import Localization

/// The sandbox's web page: plain HTML, CSS and JavaScript from `Sources/Sandbox/Web/` in the resources folder (the checkout), read once
/// at start-up (no build step).
struct SandboxPage: Sendable {
    let html: String
    let script: String
    let style: String
    /// The page's own words, from TelePay's String Catalog (keys `sandbox.page.*`).
    let strings: SandboxStrings

    static func load(resourcesDirectory: String?) throws -> SandboxPage {
        guard let resources = ResourceLocator.locate(configured: resourcesDirectory) else {
            throw SandboxStartError.pageMissing(folder: resourcesDirectory ?? "the working folder")
        }
        let folder = resources + "/Sources/Sandbox/Web"
        func read(_ name: String) throws -> String {
            do {
                return try String(contentsOfFile: folder + "/" + name, encoding: .utf8)
            } catch {
                throw SandboxStartError.pageMissing(folder: folder)
            }
        }
        let localizer: Localizer
        do {
            localizer = try Localizer.load(directory: resources + "/Localization")
        } catch {
            throw SandboxStartError.pageMissing(folder: resources + "/Localization")
        }
        return SandboxPage(
            html: try read("index.html"), script: try read("app.js"), style: try read("app.css"), strings: SandboxStrings(localizer))
    }
}

/// What `/sandbox/strings.json` serves: every `sandbox.page.*` text of the catalog, per language. The page puts
/// values into `{name}` itself and shows them as text, never as markup.
struct SandboxStrings: Sendable, Encodable {
    static let prefix = "sandbox.page."
    let languages: [String]
    let strings: [String: [String: String]]

    init(_ localizer: Localizer) {
        languages = localizer.languages
        var strings: [String: [String: String]] = [:]
        for (language, entries) in localizer.catalogs {
            for (key, entry) in entries where key.hasPrefix(Self.prefix) {
                if case .text(let text) = entry { strings[language, default: [:]][key] = text }
            }
        }
        self.strings = strings
    }
}

/// Why the sandbox could not start (besides what stops TelePay itself).
public enum SandboxStartError: Error, CustomStringConvertible, Equatable {
    case pageMissing(folder: String)
    /// The data folder holds files the sandbox did not make; it empties its own folder on each start.
    case foreignDataDirectory(String)
    /// A database server still runs on the data folder (another sandbox, or one that did not stop).
    case dataDirectoryInUse(String)

    public var description: String {
        switch self {
        case .foreignDataDirectory(let folder):
            return "the sandbox starts afresh each time by emptying its data folder, and \(folder) is not empty and not a sandbox's; "
                + "choose another --data-dir"
        case .dataDirectoryInUse(let folder):
            return "a database server still runs on \(folder) (postgres/cluster/postmaster.pid): another sandbox? Stop it first"
        case .pageMissing(let folder):
            return "the sandbox's page (index.html, app.js, app.css) is missing from \(folder); run it from the checkout or set --resources-dir"
        }
    }
}
