import Foundation

/// A verified provider callback, as the inbox stores it.
public struct PaymentNotification: Sendable, Hashable {
    public var provider: String
    public var paymentID: String
    public var status: PaymentStatus
    public var orderID: String?
    public var invoiceID: String?
    public var signatureVariant: String
    /// The body exactly as received.
    public var payload: String

    public init(
        provider: String, paymentID: String, status: PaymentStatus, orderID: String?, invoiceID: String?,
        signatureVariant: String, payload: String
    ) {
        self.provider = provider
        self.paymentID = paymentID
        self.status = status
        self.orderID = orderID
        self.invoiceID = invoiceID
        self.signatureVariant = signatureVariant
        self.payload = payload
    }
}
