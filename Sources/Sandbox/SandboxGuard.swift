import App
import Foundation

/// Why the sandbox refuses to start.
public enum SandboxError: Error, CustomStringConvertible, Equatable {
    /// A base URL of an outside service points off this machine: the sandbox would reach a real service.
    case reachesRealService(variable: String, url: String)
    /// The sandbox keeps its own embedded database; an external `DATABASE_URL` could be a real one.
    case externalDatabase

    public var description: String {
        switch self {
        case .reachesRealService(let variable, let url):
            return "the sandbox refuses to start: \(variable)=\(url) is not on this machine, so the sandbox could reach a real service; "
                + "it talks only to its own simulations on 127.0.0.1"
        case .externalDatabase:
            return "the sandbox refuses to start: it keeps its own embedded database in its data folder, and DATABASE_URL could be a real one"
        }
    }
}

/// The sandbox's promise that nothing in it reaches a real service, checked on the configuration TelePay is
/// about to start with: every outside service's base URL must be a loopback address (where the sandbox's
/// simulations listen), and the database must be the sandbox's own embedded one.
public enum SandboxGuard {
    public static func requireSimulated(_ configuration: Configuration) throws(SandboxError) {
        if case .external = configuration.database { throw .externalDatabase }
        let urls: [(String, String)] = [
            ("TELEPAY_TELEGRAM_API_URL", configuration.telegramAPIURL.absoluteString),
            ("TELEPAY_NOWPAYMENTS_API_URL", configuration.nowPaymentsAPIURL.absoluteString),
            ("TELEPAY_CHANGENOW_API_URL", configuration.changeNowAPIURL.absoluteString),
            ("TELEPAY_ETH_RPC_URL", configuration.ethereumRPCURL.value),
        ]
        for (variable, url) in urls where !isLoopback(url) {
            throw .reachesRealService(variable: variable, url: url)
        }
    }

    /// Whether `url` is an http(s) URL whose host is this machine.
    public static func isLoopback(_ url: String) -> Bool {
        guard let components = URLComponents(string: url), let host = components.host?.lowercased(),
            ["http", "https"].contains(components.scheme?.lowercased() ?? "")
        else { return false }
        return host == "localhost" || host == "::1" || host == "[::1]"
            || host.hasPrefix("127.")
                && host.split(separator: ".").count == 4 && host.split(separator: ".").allSatisfy { UInt8($0) != nil }
    }
}
