import Foundation
import Logging
import PostgresNIO
import Storage
import Subscriptions

/// What an owner can export from a channel's statistics.
public enum ChannelExportKind: String, Sendable, Hashable, CaseIterable {
    case subscribers = "subs"
    case payments = "pays"

    /// The file name recipients see (`alpha-vip-subscribers-2026-12-05.csv`).
    public func fileName(title: String, date: Date) -> String {
        let slug = String(title.lowercased().unicodeScalars.map { CharacterSet.alphanumerics.contains($0) && $0.isASCII ? Character($0) : "-" })
            .split(separator: "-").joined(separator: "-").prefix(40)
        let day = ISO8601DateFormatter.string(from: date, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate])
        return "\(slug.isEmpty ? "channel" : String(slug))-\(self == .subscribers ? "subscribers" : "payments")-\(day).csv"
    }

    public var header: [String] {
        switch self {
        case .subscribers: ["user_id", "username", "first_name", "status", "started_at", "expires_at"]
        case .payments: ["order", "kind", "tier", "price_usd", "received_usd", "status", "user_id", "username", "created_at", "paid_at"]
        }
    }
}

/// CSV as RFC 4180 writes it: fields with a comma, quote or line break are quoted, quotes doubled, lines end
/// in CRLF. Text from people (names, usernames) that starts like a spreadsheet formula gets a leading `'`, so
/// opening the file never runs anything.
public enum CSV {
    public static func line(_ fields: [String]) -> String {
        fields.map(field).joined(separator: ",") + "\r\n"
    }

    public static func field(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A person's text, made inert for spreadsheets.
    public static func text(_ value: String) -> String {
        guard let first = value.first, "=+-@\t\r".contains(first) else { return value }
        return "'" + value
    }
}

/// An export that could not be written.
public enum ChannelExportError: Error, Sendable, Hashable {
    case cannotCreate(String)
}
