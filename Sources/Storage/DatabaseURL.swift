import Foundation
import PostgresNIO

/// A parsed `postgres://user:password@host:port/database?sslmode=…&sslrootcert=…` connection URL.
///
/// `host` may also be an absolute socket folder (`?host=/var/run/postgresql`), as libpq allows.
/// It prints (and mirrors, for `dump`) without its password.
///
/// TLS follows libpq's `sslmode` meanings. Without `sslmode`, a local server (a socket folder, `localhost`,
/// a loopback address) gets `prefer` and any other host `require`, so a password never crosses a network
/// in the clear by default. `verify-ca` and `verify-full` check the server's certificate against
/// `sslrootcert` (a PEM file) or, without it, the system's trust store; `verify-full` also checks the host name.
public struct DatabaseURL: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public enum TLSMode: String, Sendable, Hashable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tlsMode: TLSMode
    /// `sslrootcert`: the PEM file of certificate authorities `verify-ca`/`verify-full` trust.
    public var rootCertificateFile: String?

    /// Why a URL was rejected. No part of the URL is ever repeated: any part may carry a secret (a password,
    /// or a whole URL pasted into the wrong parameter).
    public enum ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        case notAURL
        case unsupportedScheme
        case missingHost
        case missingUser
        case missingDatabase
        case invalidPort
        case unsupportedSSLMode
        case rootCertificateWithoutVerification
        case unreadableRootCertificate

        public var description: String {
            switch self {
            case .notAURL: return "is not a URL (expected postgres://user:password@host:5432/database)"
            case .unsupportedScheme: return "must start with postgres:// or postgresql://"
            case .missingHost: return "has no host"
            case .missingUser: return "has no user name"
            case .missingDatabase: return "has no database name after the host"
            case .invalidPort: return "has a port outside 1–65535"
            case .unsupportedSSLMode:
                return "has an sslmode that is not one of disable, allow, prefer, require, verify-ca, verify-full"
            case .rootCertificateWithoutVerification:
                return "has sslrootcert but an sslmode that does not check certificates; use sslmode=verify-full (or verify-ca)"
            case .unreadableRootCertificate:
                return "has an sslrootcert file that cannot be read (it must be a PEM file of certificate authorities)"
            }
        }
    }

    public init(parsing text: String) throws(ParseError) {
        guard let components = URLComponents(string: text) else { throw .notAURL }
        guard let scheme = components.scheme?.lowercased() else { throw .notAURL }
        guard scheme == "postgres" || scheme == "postgresql" else { throw .unsupportedScheme }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        guard
            let host = (components.percentEncodedHost.flatMap { $0.removingPercentEncoding }).flatMap({ $0.isEmpty ? nil : $0 })
                ?? query["host"].flatMap({ $0.isEmpty ? nil : $0 })
        else { throw .missingHost }
        guard let user = components.percentEncodedUser?.removingPercentEncoding, !user.isEmpty else { throw .missingUser }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw .missingDatabase }
        let port = components.port ?? Int(query["port"] ?? "") ?? 5432
        guard (1...65535).contains(port) else { throw .invalidPort }
        let mode: TLSMode
        switch query["sslmode"] {
        case nil: mode = Self.isLocal(host) ? .prefer : .require
        case "disable"?, "allow"?: mode = .disable
        case "prefer"?: mode = .prefer
        case "require"?: mode = .require
        case "verify-ca"?: mode = .verifyCA
        case "verify-full"?: mode = .verifyFull
        default: throw .unsupportedSSLMode
        }
        let rootCertificate = query["sslrootcert"].flatMap { $0.isEmpty ? nil : $0 }
        if let rootCertificate {
            guard mode == .verifyCA || mode == .verifyFull else { throw .rootCertificateWithoutVerification }
            guard FileManager.default.isReadableFile(atPath: rootCertificate) else { throw .unreadableRootCertificate }
        }
        self.host = host
        self.port = port
        self.username = user
        self.password = components.percentEncodedPassword?.removingPercentEncoding
        self.database = database
        self.tlsMode = host.hasPrefix("/") ? .disable : mode
        self.rootCertificateFile = rootCertificate
    }

    /// A server on this machine: a Unix socket folder, `localhost`, or a loopback address.
    public static func isLocal(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare.hasPrefix("/") || bare.lowercased() == "localhost" || bare == "::1" { return true }
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    public var clientConfiguration: PostgresClient.Configuration {
        if host.hasPrefix("/") {
            return PostgresClient.Configuration(
                unixSocketPath: "\(host)/.s.PGSQL.\(port)", username: username, password: password, database: database
            )
        }
        return PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
    }

    /// The settings of one connection (start-up's reachability check), with the same TLS as the pool.
    public func connectionConfiguration() throws -> PostgresConnection.Configuration {
        if host.hasPrefix("/") {
            return .init(unixSocketPath: "\(host)/.s.PGSQL.\(port)", username: username, password: password, database: database)
        }
        let connectionTLS: PostgresConnection.Configuration.TLS
        switch tlsMode {
        case .disable: connectionTLS = .disable
        case .prefer: connectionTLS = .prefer(try NIOSSLContext(configuration: tlsSettings))
        default: connectionTLS = .require(try NIOSSLContext(configuration: tlsSettings))
        }
        return .init(host: host, port: port, username: username, password: password, database: database, tls: connectionTLS)
    }

    /// The TLS settings `sslmode` asks for. `prefer` and `require` encrypt without checking the certificate
    /// (libpq's meaning); only the `verify-` modes check it.
    public var tls: PostgresClient.Configuration.TLS {
        switch tlsMode {
        case .disable: return .disable
        case .prefer: return .prefer(tlsSettings)
        default: return .require(tlsSettings)
        }
    }

    var tlsSettings: TLSConfiguration {
        var settings = TLSConfiguration.makeClientConfiguration()
        switch tlsMode {
        case .disable, .prefer, .require: settings.certificateVerification = .none
        case .verifyCA: settings.certificateVerification = .noHostnameVerification
        case .verifyFull: settings.certificateVerification = .fullVerification
        }
        if let rootCertificateFile {
            settings.trustRoots = .file(rootCertificateFile)
        }
        return settings
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
