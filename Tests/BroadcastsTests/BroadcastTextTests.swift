import Broadcasts
import Testing

@Suite("Broadcast text: Telegram's HTML subset, checked before it is stored")
struct BroadcastTextTests {
    @Test(
        "plain text and every supported tag pass, and the visible text is what a recipient sees",
        arguments: [
            ("Hello everyone", "Hello everyone"),
            ("<b>New</b> <i>posts</i> <u>today</u> <s>not</s> <code>x</code>", "New posts today not x"),
            ("<strong>a</strong><em>b</em><ins>c</ins><strike>d</strike><del>e</del><tg-spoiler>f</tg-spoiler>", "abcdef"),
            ("<a href=\"https://t.me/x\">link</a>", "link"),
            ("<span class=\"tg-spoiler\">secret</span>", "secret"),
            ("<pre><code class=\"language-swift\">let x</code></pre>", "let x"),
            ("<blockquote expandable>quote</blockquote>", "quote"),
            ("5 &lt; 6 &amp;&amp; 7 &gt; 3 &quot;ok&quot; &#128512; &#x41;", "5 < 6 && 7 > 3 \"ok\" 😀 A"),
            ("<B>upper</B>", "upper"),
        ])
    func accepted(html: String, visible: String) {
        #expect(BroadcastText.check(html) == .success(visible))
    }

    @Test(
        "each mistake is named, so the author can be told what to fix",
        arguments: [
            ("", BroadcastTextProblem.empty),
            ("   \n ", .empty),
            ("<b> </b>", .empty),
            ("<div>x</div>", .unsupportedTag("div")),
            ("<br>", .unsupportedTag("br")),
            ("<b>bold", .unclosedTag("b")),
            ("<b><i>x</b></i>", .unclosedTag("i")),
            ("x</b>", .unexpectedEndTag("b")),
            ("<a>no link</a>", .missingAttribute(tag: "a", attribute: "href")),
            ("<span>x</span>", .missingAttribute(tag: "span", attribute: "class")),
            ("5 < 6", .unescaped("<")),
            ("a <", .unescaped("<")),
            ("5 > 6", .unescaped(">")),
            ("Tom & Jerry", .unescaped("&")),
            ("&nbsp;", .unknownEntity("nbsp")),
            ("&#xZZ;", .unknownEntity("#xZZ")),
        ])
    func refused(html: String, problem: BroadcastTextProblem) {
        #expect(BroadcastText.check(html) == .failure(problem))
    }

    @Test("length is Telegram's: UTF-16 units of the visible text, tags not counted")
    func length() {
        let limit = String(repeating: "a", count: 4096)
        #expect(BroadcastText.check("<b>" + limit + "</b>") == .success(limit))
        #expect(BroadcastText.check(limit + "a") == .failure(.tooLong(length: 4097, maximum: 4096)))
        // A flag is one character but four UTF-16 units.
        let flags = String(repeating: "🇺🇸", count: 1025)
        #expect(BroadcastText.check(flags) == .failure(.tooLong(length: 4100, maximum: 4096)))
    }

    @Test(
        "time left follows the rate so far",
        arguments: [
            (100, 50, Duration.seconds(10), Duration?.some(.seconds(20))),
            (0, 50, .seconds(10), .some(.zero)),
            (10, 0, .seconds(10), nil),
            (7, 3, .seconds(1), .some(.seconds(3))),
        ])
    func estimate(left: Int, done: Int, elapsed: Duration, expected: Duration?) {
        #expect(BroadcastProgress.estimate(left: left, done: done, elapsed: elapsed) == expected)
    }
}
