import Foundation

/// Finds the folder that holds TelePay's data files (`Migrations/`, and later `Conversations/` and
/// `Localization/`): the configured folder, else the working folder, else the nearest ancestor of the
/// executable that has them (so `.build/debug/telepay` finds the checkout it was built from).
public enum ResourceLocator {
    public static func locate(configured: String?, executablePath: String = CommandLine.arguments.first ?? "") -> String? {
        if let configured {
            return hasResources(configured) ? configured : nil
        }
        let workingDirectory = FileManager.default.currentDirectoryPath
        if hasResources(workingDirectory) { return workingDirectory }
        var directory = URL(fileURLWithPath: executablePath, relativeTo: URL(fileURLWithPath: workingDirectory))
            .standardizedFileURL.resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" {
            if hasResources(directory.path) { return directory.path }
            directory.deleteLastPathComponent()
        }
        return nil
    }

    static func hasResources(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path + "/Migrations", isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
