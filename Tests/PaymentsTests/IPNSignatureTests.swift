import Foundation
import Payments
import Testing

/// Vectors computed with Node 20's crypto over NOWPayments' documented recipes, and from `scripts/nowpayments-ipn-vectors.py`, which runs NOWPayments'
/// documented recipes in Node and Python themselves.
@Suite("NOWPayments IPN signatures")
struct IPNSignatureTests {
    static let secret = "test-ipn-secret"

    /// A body shaped like NOWPayments' documented IPN example, with a nested fee object, small floats and non-ASCII text.
    static let documentedBody =
        #"{"payment_id":5077125051,"parent_payment_id":null,"invoice_id":6121311734,"payment_status":"finished","pay_address":"0xd1cDE08A07cD25adEbEd35c3867a59228C09B606","payin_extra_id":null,"price_amount":10,"price_currency":"usd","pay_amount":0.00414231,"actually_paid":0.00414231,"actually_paid_at_fiat":0,"pay_currency":"eth","order_id":"sub-42","order_description":"Channel \"Alpha\" — 30 days","purchase_id":"5312822613","outcome_amount":0.0041,"outcome_currency":"eth","payment_extra_ids":null,"fee":{"currency":"eth","depositFee":0.0000123,"withdrawalFee":0,"serviceFee":0.00002071}}"#

    static let documentedSorted =
        #"{"actually_paid":0.00414231,"actually_paid_at_fiat":0,"fee":{"currency":"eth","depositFee":0.0000123,"serviceFee":0.00002071,"withdrawalFee":0},"invoice_id":6121311734,"order_description":"Channel \"Alpha\" — 30 days","order_id":"sub-42","outcome_amount":0.0041,"outcome_currency":"eth","parent_payment_id":null,"pay_address":"0xd1cDE08A07cD25adEbEd35c3867a59228C09B606","pay_amount":0.00414231,"pay_currency":"eth","payin_extra_id":null,"payment_extra_ids":null,"payment_id":5077125051,"payment_status":"finished","price_amount":10,"price_currency":"usd","purchase_id":"5312822613"}"#

    static let documentedSignatures: [IPNSignatureVariant: String] = [
        .recursive:
            "6cf332cce6804f3979da6693f8dee71ffa6678afd5743797c903594bdee326aef86e4fa12ff942010d66246ea7819b82e1b87ce0d2a29258e3f98d329a86e16b",
        .legacyReplacer:
            "c151f468179cc9a1202a52f812d3870b5956e95823e76bc0b2c37c09194c68f86c4245f5f2b9a2ea362d86913ade59331ddd98260a055c34859e9852940de185",
        .python: "00af88fef0ce140f05cd7654d57de3be88cb400423ff2475a95b2f706c3f0b7dd7151ed3da23f17051f518291be0fb8092b0051b422f667ed9df9ac5eda6e313",
    ]

    /// Arrays with objects inside, index-like keys, keys whose UTF-16 and code-point orders differ (😀 and ｚ),
    /// escapes, a lone surrogate, DEL, and number forms.
    static let trickyBody =
        #"{"payment_id":"7","payment_status":"partially_paid","10":"ten","9":"nine","0":"zero","01":"lead","z":1,"é":2,"😀":3,"ｚ":5,"":4,"list":[{"b":1,"a":[true,null,{"y":1,"x":2}]},[],"s"],"text":"caf\u00e9 \ud83d\ude00 — \"q\" \\ / \u0007 \u007f\t\n end","lone":"\ud800x","nested":{"10":1,"2":2,"z":{"d":0.5,"c":-1e-7},"payment_id":0},"big":123456789012345680000,"huge":1e+21,"tiny":0.0000123,"neg":-0.25}"#

    static let trickySignatures: [IPNSignatureVariant: String] = [
        .recursive:
            "16ed6705a1d7c697725e72112d25dbada2a636fc21e7a3d056c0a4d487de6cb35a330e085c3c372b0b0675efe75024696c58a5098d7d44aa3d86c9013227bf7b",
        .legacyReplacer:
            "693f63ae8782580e16888d06a3247e39adcbb490610d82b67f006f864c528bcf9170ee73159513eb51cb73867a4bc39ca34fdb7ab9d9a778c5a331fe7db17cef",
        .python: "2e6ad8e9933ea185ffd679cdf0d4ffb910f1d997fbc480d03e0a7339d2bca7aff965780fa4a3d6875cd413bb5a3a48a734642a985fd84e442fb8f33d3157362d",
    ]

    static let trickyPythonText =
        #"{"":4,"0":"zero","01":"lead","10":"ten","9":"nine","big":123456789012345680000,"huge":1e+21,"list":[{"a":[true,null,{"x":2,"y":1}],"b":1},[],"s"],"lone":"\ud800x","neg":-0.25,"nested":{"10":1,"2":2,"payment_id":0,"z":{"c":-1e-07,"d":0.5}},"payment_id":"7","payment_status":"partially_paid","text":"caf\u00e9 \ud83d\ude00 \u2014 \"q\" \\ / \u0007 \u007f\t\n end","tiny":1.23e-05,"z":1,"\u00e9":2,"\uff5a":5,"\ud83d\ude00":3}"#

    func body(_ text: String) throws -> ExactJSON {
        try ExactJSON.parse(Array(text.utf8))
    }

    func text(_ body: ExactJSON, _ variant: IPNSignatureVariant) -> String {
        String(decoding: IPNSignatureVerifier.canonicalText(of: body, variant: variant), as: UTF8.self)
    }

    @Test("the documented body sorts to the documented string and every documented signature verifies as its variant")
    func documentedVectors() throws {
        let body = try body(Self.documentedBody)
        #expect(text(body, .recursive) == Self.documentedSorted)
        #expect(
            text(body, .legacyReplacer)
                == Self.documentedSorted.replacingOccurrences(
                    of: #""fee":{"currency":"eth","depositFee":0.0000123,"serviceFee":0.00002071,"withdrawalFee":0}"#, with: #""fee":{}"#))
        let verifier = IPNSignatureVerifier(secret: Self.secret)
        for (variant, signature) in Self.documentedSignatures {
            #expect(verifier.sign(body, variant: variant) == signature, "\(variant)")
            #expect(try verifier.verify(body: body, signature: signature) == variant)
        }
    }

    @Test("Node's and Python's own output for a body with arrays, index keys, astral keys, escapes and odd numbers is reproduced")
    func trickyVectors() throws {
        let body = try body(Self.trickyBody)
        #expect(text(body, .python) == Self.trickyPythonText)
        let verifier = IPNSignatureVerifier(secret: Self.secret)
        for (variant, signature) in Self.trickySignatures {
            #expect(verifier.sign(body, variant: variant) == signature, "\(variant): \(text(body, variant))")
            #expect(try verifier.verify(body: body, signature: signature) == variant)
        }
        // Recursive sorting turns arrays into index-keyed objects; the fallback that keeps them differs.
        #expect(text(body, .recursive).contains(#""list":{"0":{"a":{"0":true,"1":null,"2":{"x":2,"y":1}},"b":1},"1":{},"2":"s"}"#))
        #expect(text(body, .recursiveArraysKept).contains(#""list":[{"a":[true,null,{"x":2,"y":1}],"b":1},[],"s"]"#))
    }

    @Test("a body whose array is signed with arrays kept verifies through the fallback")
    func arraysKeptFallback() throws {
        let body = try body(#"{"payment_id":1,"payment_status":"finished","payment_extra_ids":[5513339153,{"b":1,"a":2}]}"#)
        let verifier = IPNSignatureVerifier(secret: Self.secret)
        let signature = verifier.sign(body, variant: .recursiveArraysKept)
        #expect(text(body, .recursiveArraysKept) == #"{"payment_extra_ids":[5513339153,{"a":2,"b":1}],"payment_id":1,"payment_status":"finished"}"#)
        #expect(try verifier.verify(body: body, signature: signature) == .recursiveArraysKept)
    }

    @Test("number literals are signed exactly as received in the JavaScript forms and as repr prints them in Python's")
    func numberForms() throws {
        let body = try body(
            #"{"a":1.10,"b":15.0,"c":1E5,"d":-0,"e":-0.0,"f":12345678901234567890123,"g":1e400,"h":0.0001,"i":1e16,"j":1234567890123456.0,"k":5e-324}"#
        )
        #expect(
            text(body, .recursive)
                == #"{"a":1.10,"b":15.0,"c":1E5,"d":-0,"e":-0.0,"f":12345678901234567890123,"g":1e400,"h":0.0001,"i":1e16,"j":1234567890123456.0,"k":5e-324}"#
        )
        // Checked against python3: json.dumps(json.loads(body), separators=(',', ':'), sort_keys=True).
        #expect(
            text(body, .python)
                == #"{"a":1.1,"b":15.0,"c":100000.0,"d":0,"e":-0.0,"f":12345678901234567890123,"g":Infinity,"h":0.0001,"i":1e+16,"j":1234567890123456.0,"k":5e-324}"#
        )
    }

    @Test("a key named __proto__ behaves as in JavaScript: dropped by sortObject, looked up through the prototype by the replacer")
    func protoKey() throws {
        // Checked against node: JSON.stringify(sortObject(o)) and JSON.stringify(o, Object.keys(o).sort()).
        let body = try body(#"{"__proto__":{"x":1},"a":{"b":2}}"#)
        #expect(text(body, .recursive) == #"{"a":{"b":2}}"#)
        #expect(text(body, .legacyReplacer) == #"{"__proto__":{"__proto__":{"__proto__":null}},"a":{"__proto__":{"__proto__":null}}}"#)
    }

    @Test("the secret is trimmed, upper-case hex is accepted, and every comparison failure is typed")
    func verificationOutcomes() throws {
        let body = try body(Self.documentedBody)
        let signature = Self.documentedSignatures[.recursive]!
        #expect(try IPNSignatureVerifier(secret: "  test-ipn-secret\n").verify(body: body, signature: signature) == .recursive)
        let verifier = IPNSignatureVerifier(secret: Self.secret)
        #expect(try verifier.verify(body: body, signature: signature.uppercased()) == .recursive)
        #expect(throws: IPNSignatureError.missing) { try verifier.verify(body: body, signature: nil) }
        #expect(throws: IPNSignatureError.missing) { try verifier.verify(body: body, signature: " ") }
        #expect(throws: IPNSignatureError.malformed(length: 127)) { try verifier.verify(body: body, signature: String(signature.dropLast())) }
        #expect(throws: IPNSignatureError.malformed(length: 128)) { try verifier.verify(body: body, signature: String(repeating: "g", count: 128)) }
        var flipped = Array(signature)
        flipped[0] = flipped[0] == "0" ? "1" : "0"
        #expect(throws: IPNSignatureError.mismatch) { try verifier.verify(body: body, signature: String(flipped)) }
        #expect(throws: IPNSignatureError.mismatch) { try IPNSignatureVerifier(secret: "other").verify(body: body, signature: signature) }
        let tampered = try self.body(
            Self.documentedBody.replacingOccurrences(of: #""actually_paid":0.00414231"#, with: #""actually_paid":0.0041423"#))
        #expect(throws: IPNSignatureError.mismatch) { try verifier.verify(body: tampered, signature: signature) }
    }
}
