import Foundation
import PostgresNIO

/// A parsed `postgres://user:password@host:port/database?sslmode=…` connection URL.
///
/// `host` may also be an absolute socket folder (`?host=/var/run/postgresql`), as libpq allows.
/// It prints (and mirrors, for `dump`) without its password.
public struct DatabaseURL: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public enum TLSMode: String, Sendable, Hashable {
        case disable, prefer, require
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tlsMode: TLSMode

    /// Why a URL was rejected. The URL itself is never repeated: it may carry a password.
    public enum ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        case notAURL
        case unsupportedScheme
        case missingHost
        case missingUser
        case missingDatabase
        case invalidPort
        case unsupportedSSLMode(String)

        public var description: String {
            switch self {
            case .notAURL: return "is not a URL (expected postgres://user:password@host:5432/database)"
            case .unsupportedScheme: return "must start with postgres:// or postgresql://"
            case .missingHost: return "has no host"
            case .missingUser: return "has no user name"
            case .missingDatabase: return "has no database name after the host"
            case .invalidPort: return "has a port outside 1–65535"
            case .unsupportedSSLMode(let mode): return "has sslmode=\(mode); use disable, prefer or require"
            }
        }
    }

    public init(parsing text: String) throws(ParseError) {
        guard let components = URLComponents(string: text) else { throw .notAURL }
        guard let scheme = components.scheme?.lowercased() else { throw .notAURL }
        guard scheme == "postgres" || scheme == "postgresql" else { throw .unsupportedScheme }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        guard let host = (components.percentEncodedHost.flatMap { $0.removingPercentEncoding }).flatMap({ $0.isEmpty ? nil : $0 })
            ?? query["host"].flatMap({ $0.isEmpty ? nil : $0 })
        else { throw .missingHost }
        guard let user = components.percentEncodedUser?.removingPercentEncoding, !user.isEmpty else { throw .missingUser }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw .missingDatabase }
        let port = components.port ?? Int(query["port"] ?? "") ?? 5432
        guard (1...65535).contains(port) else { throw .invalidPort }
        let modeText = query["sslmode"] ?? "prefer"
        let mode: TLSMode
        switch modeText {
        case "disable", "allow": mode = .disable
        case "prefer": mode = .prefer
        case "require", "verify-ca", "verify-full": mode = .require
        default: throw .unsupportedSSLMode(modeText)
        }
        self.host = host
        self.port = port
        self.username = user
        self.password = components.percentEncodedPassword?.removingPercentEncoding
        self.database = database
        self.tlsMode = host.hasPrefix("/") ? .disable : mode
    }

    public var clientConfiguration: PostgresClient.Configuration {
        if host.hasPrefix("/") {
            return PostgresClient.Configuration(
                unixSocketPath: "\(host)/.s.PGSQL.\(port)", username: username, password: password, database: database
            )
        }
        let tls: PostgresClient.Configuration.TLS
        switch tlsMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(.makeClientConfiguration())
        case .require: tls = .require(.makeClientConfiguration())
        }
        return PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
    }

    public var description: String { redacted }
    public var debugDescription: String { redacted }
    public var customMirror: Mirror {
        Mirror(self, children: ["host": host, "port": port, "username": username, "database": database, "tlsMode": tlsMode])
    }

    /// The URL with the password removed, safe for logs and `doctor` output.
    public var redacted: String {
        let location = host.hasPrefix("/") ? "[\(host)]" : "\(host):\(port)"
        return "postgres://\(username)@\(location)/\(database)"
    }
}
