import App
import Foundation
import Jobs

/// Renders `telepay jobs` output.
public enum JobsReport {
    public static func render(_ summary: JobQueueSummary, now: Date = Date()) -> String {
        var lines: [String] = []
        if summary.counts.isEmpty {
            lines.append("no jobs")
        } else {
            let kindWidth = max(4, summary.counts.map(\.kind.count).max() ?? 0)
            lines.append(pad("KIND", kindWidth) + "  " + pad("STATE", 9) + "  " + "COUNT".leftPadded(to: 8))
            for row in summary.counts {
                lines.append(pad(row.kind, kindWidth) + "  " + pad(row.state, 9) + "  " + String(row.count).leftPadded(to: 8))
            }
        }
        lines.append("")
        if let oldest = summary.oldestWaiting {
            lines.append("oldest waiting job: #\(oldest.id) (\(oldest.kind)), ready for \(age(oldest.waitingSeconds))")
        } else {
            lines.append("oldest waiting job: none waiting")
        }
        if summary.recentFailures.isEmpty {
            lines.append("recent failures: none")
        } else {
            lines.append("recent failures (newest first; `telepay jobs retry ID` re-queues one):")
            for job in summary.recentFailures {
                let when = job.finalizedAt.map { $0.formatted(.iso8601) } ?? "?"
                let error = (job.lastError ?? "").replacingOccurrences(of: "\n", with: " ")
                lines.append("  #\(job.id) \(job.kind) attempt \(job.attempt)/\(job.maxAttempts), failed \(when): \(error.prefix(200))")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func age(_ seconds: Int64) -> String {
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m \(seconds % 60)s" }
        if seconds < 86400 { return "\(seconds / 3600)h \(seconds % 3600 / 60)m" }
        return "\(seconds / 86400)d \(seconds % 86400 / 3600)h"
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
