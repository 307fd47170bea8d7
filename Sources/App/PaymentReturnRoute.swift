import Bot
import Foundation
import Hummingbird
import Localization
import Logging
import PostgresNIO
import Storage
import Subscriptions

/// `GET /payments/return?order=…`: where the invoice page sends the buyer back. A small page in the buyer's
/// language that shows the order's status, reloads itself until the status is final, and links to the bot.
struct PaymentReturnRoute: Sendable {
    static let path = SubscriptionSettings.returnPath
    /// Seconds between reloads while the payment is still in progress.
    static let refreshSeconds = 5

    let purchases: PurchaseService
    let database: Database
    let localizer: Localizer
    /// The bot, once it has said who it is; the page links back to it.
    let bot: BotIdentity

    func register(on router: Router<TelePayRequestContext>) {
        router.get(RouterPath(Self.path)) { request, _ -> Response in
            try await handle(request)
        }
    }

    func handle(_ request: Request) async throws -> Response {
        let publicID = request.uri.queryParameters.get("order") ?? ""
        let valid = publicID.count <= 64 && publicID.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        let order = valid && !publicID.isEmpty ? try await purchases.order(publicID: publicID) : nil
        var language = Localizer.fallbackLanguage
        if let order { language = try await languageOf(userID: order.userID) }
        func text(_ key: String, _ arguments: [String: String] = [:]) -> String {
            localizer.text(key, language: language, arguments)
        }
        let message: String
        var final = true
        switch order?.status {
        case nil:
            message = text(L10n.returnPageNotFound)
        case .paid?:
            message = text(order!.kind == .donation ? L10n.returnPageDonationPaid : L10n.returnPagePaid, ["title": order!.title])
        case .partiallyPaid?:
            message = text(L10n.returnPagePartiallyPaid, ["title": order!.title])
        case .expired?, .failed?, .invoiceFailed?:
            message = text(L10n.returnPageClosed, ["title": order!.title])
        case .refunded?:
            message = text(L10n.returnPageRefunded, ["title": order!.title])
        case .cancelled?:
            message = text(L10n.returnPageCancelled, ["title": order!.title])
        case .created?, .awaitingPayment?, .waiting?, .confirming?, .confirmed?, .sending?:
            message = text(L10n.returnPagePending, ["title": order!.title])
            final = false
        }
        var html = "<!doctype html><html lang=\"\(language)\"><head><meta charset=\"utf-8\">"
        html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        if !final { html += "<meta http-equiv=\"refresh\" content=\"\(Self.refreshSeconds)\">" }
        html += "<title>\(text(L10n.returnPageTitle))</title>"
        html += "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}</style>"
        html += "</head><body><h1>\(text(L10n.returnPageTitle))</h1><p id=\"status\">\(message)</p>"
        if let username = bot.known?.username {
            html += "<p><a href=\"https://t.me/\(Localizer.escapeHTML(username))\">\(text(L10n.returnPageBackToBot))</a></p>"
        }
        html += "</body></html>"
        return Response(
            status: order == nil ? .notFound : .ok,
            headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: html))
        )
    }

    private func languageOf(userID: Int64) async throws -> String {
        let localizer = self.localizer
        return try await database.withConnection { connection in
            try await TelegramUserStore.language(of: userID, localizer: localizer, on: connection, logger: database.logger)
        }
    }
}
