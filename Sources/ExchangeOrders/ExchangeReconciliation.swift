import Exchange
import Foundation
import Logging
import Money
import PostgresNIO
import Storage

/// An exchange recorded for an intent, as reconciliation sees it.
public struct RecordedExchange: Sendable, Hashable {
    public var intentId: Int64
    public var idempotencyKey: String
    public var exchangeId: String
    public var state: ExchangeIntent.State
    public var createdAt: Date

    public init(intentId: Int64, idempotencyKey: String, exchangeId: String, state: ExchangeIntent.State, createdAt: Date) {
        self.intentId = intentId
        self.idempotencyKey = idempotencyKey
        self.exchangeId = exchangeId
        self.state = state
        self.createdAt = createdAt
    }
}

/// A create call that may have made an exchange nobody records, with its intent's terms to match on.
public struct CreateAttemptCandidate: Sendable, Hashable {
    public var intentId: Int64
    public var idempotencyKey: String
    public var attempt: Int
    /// `superseded`, `unknown`, or `nil` (in flight when the process died).
    public var outcome: ExchangeCreateOutcome?
    /// Known for superseded attempts.
    public var exchangeId: String?
    public var payoutAddress: String
    public var fromAmount: Decimal

    public init(
        intentId: Int64, idempotencyKey: String, attempt: Int, outcome: ExchangeCreateOutcome?, exchangeId: String?, payoutAddress: String,
        fromAmount: Decimal
    ) {
        self.intentId = intentId
        self.idempotencyKey = idempotencyKey
        self.attempt = attempt
        self.outcome = outcome
        self.exchangeId = exchangeId
        self.payoutAddress = payoutAddress
        self.fromAmount = fromAmount
    }
}

/// Where an orphan most likely came from.
public enum OrphanOrigin: Sendable, Hashable {
    /// Another create for the same intent was recorded first.
    case supersededAttempt(intentId: Int64, idempotencyKey: String, attempt: Int)
    /// A create whose answer never arrived: same payout address and amount as the attempt's intent.
    case lostAnswer(intentId: Int64, idempotencyKey: String, attempt: Int)
    /// Nothing in TelePay's records explains it (another integration on the same key, or a manual create).
    case unknown
}

/// An exchange ChangeNOW lists that no intent records. TelePay never funds it; unfunded, it expires.
public struct OrphanExchange: Sendable, Hashable {
    public var exchange: ListedExchange
    public var origin: OrphanOrigin
}

/// The comparison of ChangeNOW's list with TelePay's records since a moment.
public struct ExchangeReconciliation: Sendable, Hashable {
    public var since: Date
    public var listed: Int
    /// Listed exchanges that an intent records.
    public var matched: Int
    public var orphans: [OrphanExchange]
    /// Exchanges recorded for intents created since `since` that ChangeNOW does not list for this key.
    public var missing: [RecordedExchange]

    public var isClean: Bool { orphans.isEmpty && missing.isEmpty }

    /// What `telepay exchange reconcile` prints.
    public var reportLines: [String] {
        var lines = [
            "ChangeNOW lists \(listed) exchange(s) created since \(since.formatted(.iso8601)); \(matched) of them belong to an exchange intent."
        ]
        if isClean {
            lines.append("nothing to reconcile: no orphans, nothing missing")
            return lines
        }
        if !orphans.isEmpty {
            lines.append("")
            lines.append("orphans (\(orphans.count)): exchanges no intent records. TelePay never funds them; unfunded ones expire at ChangeNOW.")
            for orphan in orphans {
                let exchange = orphan.exchange
                let amount = exchange.payinExpectedAmount.map(DecimalText.plain) ?? "?"
                var line =
                    "  \(exchange.id)  \(exchange.status.rawValue)  created \(exchange.createdAt ?? "?")  "
                    + "\(amount) \(exchange.payinCurrency ?? "?") → \(exchange.payoutCurrency ?? "?") \(exchange.payoutAddress ?? "?")  "
                switch orphan.origin {
                case .supersededAttempt(let id, let key, let attempt):
                    line += "superseded create attempt \(attempt) of intent \(key) (#\(id))"
                case .lostAnswer(let id, let key, let attempt):
                    line += "probably create attempt \(attempt) of intent \(key) (#\(id)), whose answer was lost"
                case .unknown:
                    line += "not made by TelePay's records (another integration on this key, or by hand)"
                }
                if exchange.isFunded {
                    line += "  FUNDED: a deposit reached it; find out who sent it"
                }
                lines.append(line)
            }
        }
        if !missing.isEmpty {
            lines.append("")
            lines.append(
                "missing (\(missing.count)): exchanges recorded for an intent that ChangeNOW does not list for this key (was the key changed?)")
            for recorded in missing {
                lines.append(
                    "  \(recorded.exchangeId)  intent \(recorded.idempotencyKey) (#\(recorded.intentId))  \(recorded.state.rawValue)  recorded \(recorded.createdAt.formatted(.iso8601))"
                )
            }
        }
        return lines
    }

    /// Pure: classifies every listed exchange and finds recorded ones the list lacks.
    /// - Parameters:
    ///   - recorded: every intent's exchange that might be listed (`missing` only counts those created since `since`).
    public static func compare(
        since: Date, listed: [ListedExchange], recorded: [RecordedExchange], attempts: [CreateAttemptCandidate]
    ) -> ExchangeReconciliation {
        let recordedIDs = Set(recorded.map(\.exchangeId))
        let listedIDs = Set(listed.map(\.id))
        var orphans: [OrphanExchange] = []
        var claimed = Set<String>()
        for exchange in listed where !recordedIDs.contains(exchange.id) {
            var origin = OrphanOrigin.unknown
            if let attempt = attempts.first(where: { $0.exchangeId == exchange.id }) {
                origin = .supersededAttempt(intentId: attempt.intentId, idempotencyKey: attempt.idempotencyKey, attempt: attempt.attempt)
            } else if let attempt = attempts.first(where: { candidate in
                candidate.exchangeId == nil && !claimed.contains("\(candidate.intentId)/\(candidate.attempt)")
                    && candidate.payoutAddress == exchange.payoutAddress && candidate.fromAmount == exchange.payinExpectedAmount
            }) {
                claimed.insert("\(attempt.intentId)/\(attempt.attempt)")
                origin = .lostAnswer(intentId: attempt.intentId, idempotencyKey: attempt.idempotencyKey, attempt: attempt.attempt)
            }
            orphans.append(OrphanExchange(exchange: exchange, origin: origin))
        }
        let missing = recorded.filter { $0.createdAt >= since && !listedIDs.contains($0.exchangeId) }
        return ExchangeReconciliation(
            since: since, listed: listed.count, matched: listed.count - orphans.count, orphans: orphans,
            missing: missing.sorted { $0.intentId < $1.intentId }
        )
    }
}

/// Why reconciliation could not run.
public enum ReconciliationError: Error, Sendable, CustomStringConvertible {
    /// ChangeNOW refused to list for this key; only the private key it issues on request may.
    case keyCannotList(ChangeNowError)
    case listingFailed(ChangeNowError)
    /// More pages than a sane window holds; narrow the window.
    case tooManyExchanges(Int)

    public var description: String {
        switch self {
        case .keyCannotList(let error):
            return "ChangeNOW does not let this API key list exchanges (\(error)). Listing needs ChangeNOW's private API key, "
                + "issued on request by partners@changenow.io; set TELEPAY_CHANGENOW_PRIVATE_API_KEY"
        case .listingFailed(let error): return "cannot list exchanges at ChangeNOW: \(error)"
        case .tooManyExchanges(let count): return "ChangeNOW lists more than \(count) exchanges in the window; choose a shorter one"
        }
    }
}

extension ExchangeOrderService {
    /// Lists every exchange ChangeNOW made for this key since `since` (through `lister`, which must hold
    /// the private key) and compares it with the intents. Reads only; changes nothing anywhere.
    public func reconcile(lister: any ChangeNowAPI, since: Date, maximumExchanges: Int = 100_000) async throws -> ExchangeReconciliation {
        var listed: [ListedExchange] = []
        let clock = ContinuousClock()
        while true {
            let page: ExchangeListPage
            do {
                page = try await lister.listExchanges(ExchangeListQuery(limit: 100, offset: listed.count, createdFrom: since))
            } catch {
                throw error.cannotList ? ReconciliationError.keyCannotList(error) : ReconciliationError.listingFailed(error)
            }
            listed += page.exchanges
            if page.exchanges.count < 100 { break }
            guard listed.count < maximumExchanges else { throw ReconciliationError.tooManyExchanges(maximumExchanges) }
            // Ten pages a second at most: a third of ChangeNOW's limit, shared with the live poller.
            try await Task.sleep(until: clock.now.advanced(by: .milliseconds(100)), clock: clock)
        }
        let listedIDs = listed.map(\.id)
        let (recorded, attempts) = try await reconciliationRecords(since: since, listedIDs: listedIDs)
        return ExchangeReconciliation.compare(since: since, listed: listed, recorded: recorded, attempts: attempts)
    }

    /// Intents whose exchange is listed or was created in the window, and the create attempts that may
    /// have left an orphan.
    func reconciliationRecords(since: Date, listedIDs: [String]) async throws -> ([RecordedExchange], [CreateAttemptCandidate]) {
        try await withDatabase { connection, logger in
            (
                try await ExchangeOrderStore.recordedExchanges(since: since, listedIDs: listedIDs, on: connection, logger: logger),
                try await ExchangeOrderStore.createAttemptCandidates(on: connection, logger: logger)
            )
        }
    }
}
