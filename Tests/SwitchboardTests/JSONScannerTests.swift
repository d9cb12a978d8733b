import Foundation
import Testing

@testable import Switchboard

/// Runs `body` over the UTF-8 bytes of `text`.
private func withBytes<Result>(_ text: String, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
    Array(text.utf8).withUnsafeBytes(body)
}

/// `JSONScanner.validate` on a string.
private func validate(_ text: String) -> Bool {
    withBytes(text) { JSONScanner.validate($0) }
}

/// `JSONScanner.scanEnvelope` on a string.
private func scan(_ text: String) -> EnvelopeScan {
    withBytes(text) { JSONScanner.scanEnvelope($0) }
}

/// The text of `range` within `text`.
private func slice(_ text: String, _ range: Range<Int>?) -> String? {
    guard let range else { return nil }
    return String(decoding: Array(text.utf8)[range], as: UTF8.self)
}

/// Whether Foundation's `JSONSerialization` accepts `text` as one JSON text (fragments allowed).
private func foundationAccepts(_ text: String) -> Bool {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil
}

/// The envelope as `JSONDecoder` sees it: the struct Switchboard decoded before the scanner.
private struct ReferenceEnvelope: Decodable {
    let event: String
    let id: String?
    let hasData: Bool

    private enum CodingKeys: String, CodingKey { case event, id, data }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        event = try container.decode(String.self, forKey: .event)
        id = try container.decodeIfPresent(String.self, forKey: .id)
        hasData = container.contains(.data)
    }
}

/// What `JSONDecoder` makes of `text` as an envelope, in `EnvelopeScan` terms (the data range is
/// replaced by `0..<0` when present, since `JSONDecoder` cannot tell where it is).
///
/// Maps errors as `InboundEnvelope.parse` does, except that a top-level `null` reads as "not an
/// object" (JSONDecoder reports it as `valueNotFound` with an empty path, which `parse` turned into
/// "\"event\" must be a string").
private func foundationEnvelope(_ text: String) -> EnvelopeScan {
    do {
        let envelope = try JSONDecoder().decode(ReferenceEnvelope.self, from: Data(text.utf8))
        return .envelope(event: envelope.event, id: envelope.id, data: envelope.hasData ? 0..<0 : nil)
    } catch DecodingError.dataCorrupted {
        return .notJSON
    } catch DecodingError.keyNotFound(let key, _) {
        return .notEnvelope("missing \"\(key.stringValue)\"")
    } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
        guard let field = context.codingPath.first?.stringValue else {
            return .notEnvelope("the message must be a JSON object")
        }
        return .notEnvelope("\"\(field)\" must be a string")
    } catch {
        return .notJSON
    }
}

/// `scan` with the data range blanked the way `foundationEnvelope` reports it.
private func comparable(_ scan: EnvelopeScan) -> EnvelopeScan {
    guard case .envelope(let event, let id, let data) = scan else { return scan }
    return .envelope(event: event, id: id, data: data == nil ? nil : 0..<0)
}

/// Nests `inner` in `depth - 1` arrays, so that the whole has `depth` levels when `inner` is `[]`.
private func nested(_ depth: Int, _ inner: String = "[]") -> String {
    String(repeating: "[", count: depth - 1) + inner + String(repeating: "]", count: depth - 1)
}

// MARK: - Validation

@Suite("JSONScanner.validate")
struct JSONScannerValidationTests {
    /// Valid per RFC 8259, and accepted by JSONSerialization too.
    static let valid: [String] = [
        "{}", "[]", "0", "-0", "-0.0e+0", "1", "1E5", "1e-5", "1E+2", "0.5", "-1.5E-10", "123.456e78",
        "12345678901234567890", "100000000000000000000000000000", "1e308", "1e-999",
        "true", "false", "null", "\"\"", "\"abc\"",
        #""\u0000""#, #""\/""#, #""\\""#, #""\"""#, #""\b\f\n\r\t\/\\\"""#, #""\u00e9\u00E9""#,
        #""\uD83D\uDE00""#, #""\ud83d\ude00""#, #""\uFFFF""#, #""\uE000""#, #""\u2028""#,
        "\"é中😀\"", "\"\u{7F}\"",
        " \t\n\r[ 1 , 2 ]\n", "  {}  ", "\t\n\r {}", "{\"a\":1}\n",
        #"{"a":{"b":[1,{"c":null}]},"d":[true,false,"x",-2.5e3]}"#,
        #"{"":0}"#, #"{"\u0000":1}"#, "[[[]]]", "[{}]", "[[],{}]",
        #"{"a":1,"a":2}"#,
        #"{ "event" : "a" , "data" : { } }"#,
        "\"0123456789abcdefghij\"", "\"01234567\\\"89abcdef\"", "\"0123456\\u0041bcdefghijklmnop\"",
        String(repeating: "x", count: 0) + "\"" + String(repeating: "y", count: 1000) + "\"",
        nested(64), nested(63, "{\"a\":[]}"),
        "\u{FEFF}{}", "\u{FEFF} [1]",
    ]

    /// Invalid per RFC 8259, and rejected by JSONSerialization too.
    static let invalid: [String] = [
        "", " ", "\t\n", "{}{}", "[] []", "1 2", "{}x", "[]]", "{\"a\":1}}", "[1];",
        "{'a':1}", "['a']", "\"a\tb\"", "\"a\nb\"", "\"a\u{1F}\"", "\"a\u{0}b\"", "\"a\rb\"",
        "{\"a\" 1}", "{\"a\"}", "{\"a\":}", "{1:2}", "{a:1}", "{\"a\":1 \"b\":2}", "{\"a\":1,,\"b\":2}",
        "[1 2]", "[,1]", "[1,,2]", "[,]", "{,}", "[", "]", "{", "}", "[[]", "{\"a\":[}",
        "01", "-01", "00", "-", "--1", "1e", "1e+", "1E-", "1.5e+", ".1", "-.1", "1.", "1.e5", "+1",
        "[-]", "[0x10]", "[1_000]", "[01.5]", "0e", "1ee2", "1.2.3",
        "NaN", "Infinity", "-Infinity", "nan", "inf",
        "tru", "truex", "nul", "nulll", "fals", "TRUE", "True", "Null", "[true false]",
        #""\x""#, #""\u12""#, #""\u12G4""#, #""\U0041""#, #""\a""#, #""\'""#, #""\0""#, "\"\\", "\"abc",
        #""\ud800""#, #""\udc00""#, #""\ud800\u0041""#, #""\ud83d\ud83d""#, #""\uDE00\uD83D""#,
        #""\ud83dx""#, #""\ud83d\n""#, #""\ud83d\""#,
        "\u{0C}{}", "\u{0B}1", "\u{A0}1", "{}\u{0}", "\u{0}", "\u{0}{}", "{\u{0}}",
        " \u{FEFF}{}", "\u{FEFF}\u{FEFF}{}", "\u{FEFF}", "[\u{FEFF}1]",
        "/* c */ {}", "// c\n{}", "{\"a\":1} // c",
        "\"01234567890123456789\u{1}\"", "\"0123456789abcdef",
        nested(513), nested(70, "[") , String(repeating: "[", count: 100),
    ]

    /// Documents where Foundation departs from RFC 8259; we follow the RFC. `rfc` is the verdict
    /// we give; Foundation (JSONSerialization) gives the opposite.
    static let divergences: [(document: String, rfc: Bool, reason: String)] = [
        ("[1,]", false, "Foundation accepts trailing commas"),
        (#"{"a":1,}"#, false, "Foundation accepts trailing commas"),
        (#"{"event":"a","x":[1, ],}"#, false, "Foundation accepts trailing commas"),
        (nested(65), false, "depth limit 64 (Foundation: 512)"),
        (nested(512), false, "depth limit 64 (Foundation: 512)"),
        (nested(65, "{\"a\":1}"), false, "depth limit 64 (Foundation: 512)"),
        ("7\u{0}", false, "Foundation reads a NUL in the first two bytes as UTF-16/32"),
        ("\u{0}{\u{0}}", false, "Foundation reads a NUL in the first two bytes as UTF-16/32"),
        ("1e999", true, "JSONSerialization rejects numbers beyond Double"),
        ("-1e999", true, "JSONSerialization rejects numbers beyond Double"),
        ("[1e400]", true, "JSONSerialization rejects numbers beyond Double"),
        ("123456789012345678901234567890e300", true, "JSONSerialization rejects numbers beyond Double"),
    ]

    @Test(arguments: valid)
    func acceptsValidDocuments(_ document: String) {
        #expect(validate(document))
        #expect(foundationAccepts(document), "Foundation cross-check")
    }

    @Test(arguments: invalid)
    func rejectsInvalidDocuments(_ document: String) {
        #expect(!validate(document))
        #expect(!foundationAccepts(document), "Foundation cross-check")
        #expect(scan(document) == .notJSON)
    }

    @Test(arguments: divergences)
    func followsRFCWhereFoundationDiffers(_ divergence: (document: String, rfc: Bool, reason: String)) {
        #expect(validate(divergence.document) == divergence.rfc, "\(divergence.reason)")
        // If Foundation changes its mind, this case belongs in `valid` or `invalid`.
        #expect(foundationAccepts(divergence.document) == !divergence.rfc, "\(divergence.reason)")
    }

    @Test func depthLimitIsSixtyFourLevels() {
        #expect(JSONScanner.maxDepth == 64)
        #expect(validate(nested(64)))
        #expect(!validate(nested(65)))
        // Objects count the same as arrays.
        let objects64 = String(repeating: #"{"a":"#, count: 63) + "{}" + String(repeating: "}", count: 63)
        #expect(validate(objects64))
        #expect(!validate(String(repeating: #"{"a":"#, count: 64) + "{}" + String(repeating: "}", count: 64)))
        // The envelope is level 1, so `data` may nest 63 levels.
        #expect(scan(#"{"event":"e","data":"# + nested(63) + "}") == .envelope(event: "e", id: nil, data: 20..<146))
        #expect(scan(#"{"event":"e","data":"# + nested(64) + "}") == .notJSON)
    }

    @Test func deepInvalidNestingDoesNotRecurse() {
        // Far beyond any stack a recursive parser could take: must fail fast, not crash.
        #expect(!validate(String(repeating: "[", count: 1_000_000)))
        #expect(!validate(String(repeating: "{\"a\":", count: 200_000)))
    }

    @Test func rejectsBytesThatAreNotJSONAnywhere() {
        // Raw bytes, including invalid UTF-8, must simply fail (never crash).
        let documents: [[UInt8]] = [[0xFF], [0x22, 0xFF, 0x22], [0x5B, 0x80, 0x5D], [0xEF, 0xBB], [0xEF], [0x00], []]
        for document in documents {
            let valid = document.withUnsafeBytes { JSONScanner.validate($0) }
            #expect(valid == (document == [0x22, 0xFF, 0x22]), "\(document)")
        }
        // A null base address (empty buffer) is fine.
        #expect(!JSONScanner.validate(UnsafeRawBufferPointer(start: nil, count: 0)))
        #expect(JSONScanner.scanEnvelope(UnsafeRawBufferPointer(start: nil, count: 0)) == .notJSON)
    }

    @Test func stringFastPathFindsSpecialBytesAtEveryOffset() {
        // The 8-byte scan must notice a quote, a backslash or a control byte wherever it falls.
        for offset in 0..<24 {
            let pad = String(repeating: "a", count: offset)
            #expect(validate("\"" + pad + "\""))
            #expect(validate("\"" + pad + "\\n" + pad + "\""))
            #expect(!validate("\"" + pad + "\u{1F}" + pad + "\""))
            #expect(!validate("\"" + pad + "\u{0}" + pad + "\""))
            #expect(!validate("\"" + pad + "\"" + pad + "\""))
            #expect(!validate("\"" + pad))
            #expect(validate("\"" + pad + "é😀" + pad + "\""))
        }
    }
}

// MARK: - Envelopes

@Suite("JSONScanner.scanEnvelope")
struct JSONScannerEnvelopeTests {
    /// A document, what the scanner must return (data range as the text of the range), and
    /// whether `JSONDecoder` agrees (`nil` when it does, else why not).
    struct Case: Sendable, CustomTestStringConvertible {
        /// The message text.
        let text: String
        /// The expected event, id and data text, or the expected failure.
        let expected: Expected
        /// Why JSONDecoder gives another answer, if it does.
        let foundationDiffers: String?

        /// The expected outcome, with the data range as text for readability.
        enum Expected: Sendable, Equatable {
            case envelope(event: String, id: String?, data: String?)
            case notJSON
            case notEnvelope(String)
        }

        init(_ text: String, _ expected: Expected, foundationDiffers: String? = nil) {
            self.text = text
            self.expected = expected
            self.foundationDiffers = foundationDiffers
        }

        var testDescription: String { text }
    }

    static let cases: [Case] = [
        Case(#"{"event":"message.send","data":{"room":"r1"},"id":"abc"}"#,
             .envelope(event: "message.send", id: "abc", data: #"{"room":"r1"}"#)),
        Case(#"{"event":"ping"}"#, .envelope(event: "ping", id: nil, data: nil)),
        Case(#"{"id":"7","event":"ping","data":null}"#, .envelope(event: "ping", id: "7", data: "null")),
        Case(#"{"event":"ping","data":[1, 2]}"#, .envelope(event: "ping", id: nil, data: "[1, 2]")),
        Case(#"{"event":"ping","data":"x\"y"}"#, .envelope(event: "ping", id: nil, data: #""x\"y""#)),
        Case(#"{"event":"ping","data":-1.5e3}"#, .envelope(event: "ping", id: nil, data: "-1.5e3")),
        Case(" \n{ \"event\" : \"a\" , \"data\" : [ 1 ] }\t", .envelope(event: "a", id: nil, data: "[ 1 ]")),
        Case(#"{"event":"a","id":null}"#, .envelope(event: "a", id: nil, data: nil)),
        Case(#"{"event":"","id":""}"#, .envelope(event: "", id: "", data: nil)),
        Case(#"{"event":"a","extra":{"deep":[[[{"x":"\ud83d\ude00"}]]]},"n":1e999}"#,
             .envelope(event: "a", id: nil, data: nil)),
        Case("\u{FEFF}{\"event\":\"a\",\"data\":{}}", .envelope(event: "a", id: nil, data: "{}")),

        // Escapes are undone in event and id, and in keys.
        Case(#"{"event":"a\nb\"c\\d\/e\b\f\r\t","id":"\u00e9\u00E9"}"#,
             .envelope(event: "a\nb\"c\\d/e\u{8}\u{C}\r\t", id: "éé", data: nil)),
        Case(#"{"event":"\uD83D\uDE00 \u4e2d\u0000!","id":"é中😀"}"#,
             .envelope(event: "😀 中\u{0}!", id: "é中😀", data: nil)),
        Case(#"{"\u0065vent":"a","\u0069d":"i","d\u0061ta":1}"#, .envelope(event: "a", id: "i", data: "1")),
        Case(#"{"Event":"a"}"#, .notEnvelope("missing \"event\"")),
        Case(#"{"event ":"a"}"#, .notEnvelope("missing \"event\"")),
        Case(#"{"even":"a","eventt":"b","ids":1,"dat":2}"#, .notEnvelope("missing \"event\"")),

        // Duplicate keys: the first wins, later ones are ignored whatever their type.
        Case(#"{"event":"a","event":"b"}"#, .envelope(event: "a", id: nil, data: nil)),
        Case(#"{"event":"a","event":1}"#, .envelope(event: "a", id: nil, data: nil)),
        Case(#"{"event":1,"event":"a"}"#, .notEnvelope("\"event\" must be a string")),
        Case(#"{"id":"1","event":"a","id":"2"}"#, .envelope(event: "a", id: "1", data: nil)),
        Case(#"{"id":"1","event":"a","id":2}"#, .envelope(event: "a", id: "1", data: nil)),
        Case(#"{"event":"a","data":1,"data":2}"#, .envelope(event: "a", id: nil, data: "1")),
        Case(#"{"ev\u0065nt":"x","event":"y"}"#, .envelope(event: "x", id: nil, data: nil)),
        Case(#"{"id":null,"event":"a","id":3}"#, .envelope(event: "a", id: nil, data: nil)),

        // Not envelopes.
        Case("{}", .notEnvelope("missing \"event\"")),
        Case(#"{"id":"1"}"#, .notEnvelope("missing \"event\"")),
        Case(#"{"event":null}"#, .notEnvelope("\"event\" must be a string")),
        Case(#"{"event":1}"#, .notEnvelope("\"event\" must be a string")),
        Case(#"{"event":true}"#, .notEnvelope("\"event\" must be a string")),
        Case(#"{"event":[]}"#, .notEnvelope("\"event\" must be a string")),
        Case(#"{"event":{}}"#, .notEnvelope("\"event\" must be a string")),
        Case(#"{"event":"a","id":1}"#, .notEnvelope("\"id\" must be a string")),
        Case(#"{"event":"a","id":{}}"#, .notEnvelope("\"id\" must be a string")),
        Case(#"{"event":"a","id":false}"#, .notEnvelope("\"id\" must be a string")),
        Case(#"{"id":1}"#, .notEnvelope("missing \"event\"")),
        Case(#"{"event":2,"id":1}"#, .notEnvelope("\"event\" must be a string")),
        Case("[]", .notEnvelope("the message must be a JSON object")),
        Case(#"["event","a"]"#, .notEnvelope("the message must be a JSON object")),
        Case(#""event""#, .notEnvelope("the message must be a JSON object")),
        Case("1", .notEnvelope("the message must be a JSON object")),
        Case("true", .notEnvelope("the message must be a JSON object")),
        Case("null", .notEnvelope("the message must be a JSON object")),

        // Syntax errors anywhere make it not JSON, even once `event` has been read.
        Case(#"{"event":"a","x":01}"#, .notJSON, foundationDiffers: "JSONDecoder only checks decoded numbers"),
        Case(#"{"event":"a","x":1.}"#, .notJSON, foundationDiffers: "JSONDecoder only checks decoded numbers"),
        Case(#"{"event":"a","x":"\ud800"}"#, .notJSON, foundationDiffers: "JSONDecoder only checks decoded strings"),
        Case(#"{"event":"a","x":[1,]}"#, .notJSON, foundationDiffers: "JSONDecoder accepts trailing commas"),
        Case(#"{"event":"a",}"#, .notJSON, foundationDiffers: "JSONDecoder accepts trailing commas"),
        Case(#"{"event":"a","data":"# + nested(64) + "}", .notJSON, foundationDiffers: "depth limit 64 (JSONDecoder: 512)"),
        Case(#"{"event":"a"} x"#, .notJSON),
        Case(#"{"event":"a"}{}"#, .notJSON),
        Case(#"{"event":"a","x":[}"#, .notJSON),
        Case(#"{"event":"a""#, .notJSON),
        Case(#"{"event":"a","#, .notJSON),
        Case(#"{"event":"a\x"}"#, .notJSON),
        Case(#"{"event":"\ud800"}"#, .notJSON),
        Case(#"{"event":"\udc00x"}"#, .notJSON),
        Case(#"{"event" "a"}"#, .notJSON),
        Case(#"{"event":"a" "id":"b"}"#, .notJSON),
        Case(#"{event:"a"}"#, .notJSON),
        Case("{\"event\":\"a\tb\"}", .notJSON),
        Case(#"[1,]"#, .notJSON, foundationDiffers: "JSONDecoder accepts trailing commas"),
        Case("", .notJSON),
        Case("   ", .notJSON),
        Case("{", .notJSON),
    ]

    @Test(arguments: cases)
    func scansEnvelope(_ testCase: Case) {
        let result = scan(testCase.text)
        let actual: Case.Expected
        switch result {
        case .envelope(let event, let id, let data): actual = .envelope(event: event, id: id, data: slice(testCase.text, data))
        case .notJSON: actual = .notJSON
        case .notEnvelope(let message): actual = .notEnvelope(message)
        }
        #expect(actual == testCase.expected)
        #expect((result == .notJSON) == !validate(testCase.text))

        let foundation = foundationEnvelope(testCase.text)
        if let reason = testCase.foundationDiffers {
            #expect(foundation != comparable(result), "expected JSONDecoder to differ: \(reason)")
        } else {
            #expect(foundation == comparable(result), "JSONDecoder cross-check")
        }
    }

    @Test func dataRangeIsRelativeToTheWholeBuffer() {
        let text = "\u{FEFF}  {\"event\":\"e\",\"data\":{\"a\":1}}"
        guard case .envelope(_, _, let data?) = scan(text) else {
            Issue.record("not an envelope")
            return
        }
        #expect(data == 25..<32)
        #expect(slice(text, data) == #"{"a":1}"#)
    }

    @Test func lastByteOfBufferIsNeverReadPast() {
        // The buffer ends mid-token; an over-read would see the bytes after the slice.
        let whole = Array(#"{"event":"abc"}"#.utf8)
        for length in 0..<whole.count {
            let result = whole.withUnsafeBytes { JSONScanner.scanEnvelope(UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
            #expect(result == .notJSON, "prefix of length \(length)")
        }
    }
}

// MARK: - Flat objects

@Suite("JSONScanner.flatObject")
struct JSONScannerFlatObjectTests {
    /// `flatObject` over the `data` member of `{"event":"e","data":<data>}`.
    private func flat(data: String) -> FlatObject? {
        let text = #"{"event":"e","data":"# + data + "}"
        return withBytes(text) { bytes in
            guard case .envelope(_, _, let range) = JSONScanner.scanEnvelope(bytes) else { return nil }
            return JSONScanner.flatObject(bytes, range: range)
        }
    }

    @Test func readsScalarMembers() throws {
        let object = try #require(flat(data: #"""
            {"room":"r1","content":"hi \"there\"\n\u00e9","n":-12.5e1,"i":42,"t":true,"f":false,"z":null}
            """#))
        #expect(object[string: "room"] == "r1")
        #expect(object[string: "content"] == "hi \"there\"\né")
        #expect(object[string: "n"] == nil)
        #expect(object[string: "missing"] == nil)
        #expect(object.number("n") == "-12.5e1")
        #expect(object.double("n") == -125)
        #expect(object.int64("n") == -125)
        #expect(object.int64("i") == 42)
        #expect(object.double("room") == nil)
        #expect(object.bool("t") == true)
        #expect(object.bool("f") == false)
        #expect(object["z"] == .null)
        #expect(object.hasMember("z"))
        #expect(!object.hasMember("missing"))
        #expect(!object.hasNested)
        #expect(object.members.map(\.key) == ["room", "content", "n", "i", "t", "f", "z"])
    }

    @Test func notesNestedMembers() throws {
        let object = try #require(flat(data: #"{"o":{"x":[1,{"y":2}]},"a":[],"s":"v"}"#))
        #expect(object.hasNested)
        #expect(object["o"] == .nested)
        #expect(object["a"] == .nested)
        #expect(object[string: "s"] == "v")
        #expect(object[string: "o"] == nil)
    }

    @Test func absentDataIsAnEmptyObject() throws {
        let object = try #require(withBytes(#"{"event":"e"}"#) { JSONScanner.flatObject($0, range: nil) })
        #expect(object.members.isEmpty)
        #expect(!object.hasNested)
        #expect(object == FlatObject())
    }

    @Test(arguments: ["null", "[]", "[1]", #""s""#, "1", "true"])
    func rejectsValuesThatAreNotObjects(_ data: String) {
        #expect(flat(data: data) == nil)
    }

    @Test func firstDuplicateWinsLikeJSONDecoder() throws {
        let object = try #require(flat(data: #"{"a":"1","a":"2","b":3,"b":"x"}"#))
        #expect(object[string: "a"] == "1")
        #expect(object.int64("b") == 3)
        #expect(object[string: "b"] == nil)
        #expect(object.members.count == 4)

        struct Probe: Decodable { let a: String; let b: Int64 }
        let decoded = try JSONDecoder().decode(Probe.self, from: Data(#"{"a":"1","a":"2","b":3,"b":"x"}"#.utf8))
        #expect(decoded.a == "1" && decoded.b == 3)
    }

    @Test func keysAreUnescapedAndCompareLikeSwiftStrings() throws {
        let object = try #require(flat(data: #"{"r\u006fom":"x","\u00e9":1}"#))
        #expect(object[string: "room"] == "x")
        // Canonically equivalent keys match, as they do in JSONDecoder's dictionary.
        #expect(object.int64("e\u{301}") == 1)
        #expect(object.int64("\u{E9}") == 1)
    }

    @Test func numberAccessors() throws {
        let object = try #require(flat(data: #"""
            {"max":9223372036854775807,"min":-9223372036854775808,"over":9223372036854775808,
             "under":-9223372036854775809,"one":1.0,"hundred":1e2,"half":1.5,"negzero":-0,"huge":1e999,
             "tiny":1e-999,"big":12345678901234567890123,"frac":0.1e1}
            """#))
        #expect(object.int64("max") == .max)
        #expect(object.int64("min") == .min)
        #expect(object.int64("over") == nil)
        #expect(object.int64("under") == nil)
        #expect(object.int64("one") == 1)
        #expect(object.int64("hundred") == 100)
        #expect(object.int64("half") == nil)
        #expect(object.int64("negzero") == 0)
        #expect(object.int64("huge") == nil)
        #expect(object.int64("big") == nil)
        #expect(object.int64("frac") == 1)
        #expect(object.double("huge") == nil)
        #expect(object.double("tiny") == 0)
        #expect(object.double("big") == 1.2345678901234568e22)
        #expect(object.number("huge") == "1e999")
        #expect(object.double("half") == 1.5)
    }

    @Test func rejectsBadRangesAndMalformedObjects() {
        let text = #"{"a":1} {"b":2"#
        withBytes(text) { bytes in
            #expect(JSONScanner.flatObject(bytes, range: 0..<7)?.int64("a") == 1)
            #expect(JSONScanner.flatObject(bytes, range: 0..<8)?.int64("a") == 1)  // trailing space
            #expect(JSONScanner.flatObject(bytes, range: 0..<9) == nil)  // trailing garbage
            #expect(JSONScanner.flatObject(bytes, range: 0..<6) == nil)  // cut short
            #expect(JSONScanner.flatObject(bytes, range: 8..<text.utf8.count) == nil)  // unterminated
            #expect(JSONScanner.flatObject(bytes, range: 0..<1000) == nil)  // out of bounds
            #expect(JSONScanner.flatObject(bytes, range: -1..<7) == nil)
            #expect(JSONScanner.flatObject(bytes, range: 3..<3) == nil)  // empty
        }
        for malformed in [#"{"a":01}"#, #"{"a":1,}"#, #"{"a":"\x"}"#, #"{"a" 1}"#, #"{"a":[1,]}"#, #"{"a":tru}"#, #"{a:1}"#] {
            let parsed = withBytes(malformed) { JSONScanner.flatObject($0, range: 0..<$0.count) }
            #expect(parsed == nil, "\(malformed)")
        }
    }
}

// MARK: - Randomized agreement with Foundation

/// Builds valid JSON texts, biased towards envelopes and the awkward corners of the grammar.
private struct DocumentGenerator {
    var random: SplitMix64

    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }
    mutating func pick<T>(_ options: [T]) -> T { options[Int.random(in: 0..<options.count, using: &random)] }

    mutating func whitespace() -> String {
        chance(70) ? "" : String((0..<Int.random(in: 1...3, using: &random)).map { _ in pick([" ", "\n", "\t", "\r"]) })
    }

    mutating func number() -> String {
        var text = chance(30) ? "-" : ""
        text += chance(25) ? "0" : String(Int.random(in: 1...9, using: &random))
            + String((0..<Int.random(in: 0...(chance(5) ? 25 : 4), using: &random)).map { _ in pick(Array("0123456789")) })
        if chance(30) { text += "." + String((0..<Int.random(in: 1...4, using: &random)).map { _ in pick(Array("0123456789")) }) }
        if chance(25) {
            text += pick(["e", "E"]) + pick(["", "+", "-"])
            text += chance(5) ? pick(["400", "999", "309"]) : String(Int.random(in: 0...30, using: &random))
        }
        return text
    }

    mutating func stringBody() -> String {
        var text = ""
        for _ in 0..<Int.random(in: 0...(chance(10) ? 30 : 5), using: &random) {
            switch Int.random(in: 0..<12, using: &random) {
            case 0: text += pick([#"\n"#, #"\""#, #"\\"#, #"\/"#, #"\b"#, #"\f"#, #"\r"#, #"\t"#])
            case 1: text += String(format: "\\u%04x", Int.random(in: 0...0xD7FF, using: &random))
            case 2: text += pick([#"\uD83D\uDE00"#, #"\ud83d\ude00"#, #"\u00E9"#, #"\u0000"#, #"\uFFFF"#])
            case 3: text += pick(["é", "中", "😀", "e\u{301}", "\u{7F}"])
            case 4: text += pick(["event", "id", "data", "room"])
            default: text += String(pick(Array("abcxyz 0123:,[]{}'")))
            }
        }
        return text
    }

    mutating func string() -> String { "\"" + stringBody() + "\"" }

    mutating func key() -> String {
        chance(60) ? pick([#""event""#, #""id""#, #""data""#, #""room""#, #""content""#, #""\u0065vent""#, #""\u00e9""#, #""e\u0301""#]) : string()
    }

    mutating func value(depth: Int) -> String {
        let scalarOnly = depth >= 4
        switch Int.random(in: 0..<(scalarOnly ? 6 : 8), using: &random) {
        case 0, 1: return number()
        case 2, 3: return string()
        case 4: return pick(["true", "false"])
        case 5: return "null"
        case 6:
            let elements = (0..<Int.random(in: 0...3, using: &random)).map { _ in whitespace() + value(depth: depth + 1) + whitespace() }
            return "[" + whitespace() + elements.joined(separator: ",") + "]"
        default: return object(depth: depth)
        }
    }

    mutating func object(depth: Int) -> String {
        let members = (0..<Int.random(in: 0...4, using: &random)).map { _ in
            whitespace() + key() + whitespace() + ":" + whitespace() + value(depth: depth + 1) + whitespace()
        }
        return "{" + whitespace() + members.joined(separator: ",") + "}"
    }

    mutating func envelope() -> String {
        var members: [String] = []
        if chance(90) { members.append(#""event":"# + (chance(85) ? string() : value(depth: 2))) }
        if chance(50) { members.append(#""id":"# + (chance(80) ? string() : value(depth: 2))) }
        if chance(70) { members.append(#""data":"# + (chance(70) ? object(depth: 1) : value(depth: 1))) }
        for _ in 0..<Int.random(in: 0...2, using: &random) { members.append(key() + ":" + value(depth: 1)) }
        members.shuffle(using: &random)
        return whitespace() + "{" + members.map { whitespace() + $0 + whitespace() }.joined(separator: ",") + "}" + whitespace()
    }

    mutating func document() -> String {
        switch Int.random(in: 0..<20, using: &random) {
        case 0: return value(depth: 0)
        case 1:
            let depth = Int.random(in: 60...68, using: &random)
            return chance(50) ? nested(depth) : #"{"event":"deep","data":"# + nested(depth - 1) + "}"
        default: return envelope()
        }
    }

    /// Replaces, inserts or deletes one byte, with bytes that matter to the grammar.
    mutating func mutate(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        let alphabet = Array(#"{}[]":,\ 0123456789-+.eEtrufalsn/'x"#.utf8) + [0x09, 0x0A, 0x0D, 0x00, 0x1F, 0x7F]
        let position = Int.random(in: 0...bytes.count, using: &random)
        switch Int.random(in: 0..<3, using: &random) {
        case 0 where position < bytes.count: bytes[position] = pick(alphabet)
        case 1 where position < bytes.count: bytes.remove(at: position)
        default: bytes.insert(pick(alphabet), at: position)
        }
        return bytes
    }
}

/// Test-side lexing, independent of the scanner, to recognise the documented divergences.
private enum Lexer {
    /// Calls `body` with each byte outside string literals and its index.
    static func outsideStrings(_ bytes: [UInt8], _ body: (Int, UInt8) -> Void) {
        var inString = false
        var escaped = false
        for (index, byte) in bytes.enumerated() {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            } else {
                body(index, byte)
            }
        }
    }

    /// The deepest bracket nesting outside strings.
    static func maxDepth(_ bytes: [UInt8]) -> Int {
        var depth = 0
        var deepest = 0
        outsideStrings(bytes) { _, byte in
            if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") { depth += 1; deepest = max(deepest, depth) }
            if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") { depth -= 1 }
        }
        return deepest
    }

    /// `bytes` without commas that are followed (after whitespace) by `]` or `}`.
    static func removingTrailingCommas(_ bytes: [UInt8]) -> [UInt8] {
        var drop = Set<Int>()
        outsideStrings(bytes) { index, byte in
            guard byte == UInt8(ascii: ",") else { return }
            var next = index + 1
            while next < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[next]) { next += 1 }
            if next < bytes.count, bytes[next] == UInt8(ascii: "]") || bytes[next] == UInt8(ascii: "}") { drop.insert(index) }
        }
        return bytes.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
    }

    /// `bytes` with every number token that overflows `Double` replaced by `0`, and whether any did.
    static func replacingOverflowingNumbers(_ bytes: [UInt8]) -> (bytes: [UInt8], replaced: Bool) {
        var tokens: [Range<Int>] = []
        var start: Int?
        outsideStrings(bytes + [0x20]) { index, byte in
            let numberByte = (0x30...0x39).contains(byte) || Array("+-.eE".utf8).contains(byte)
            if numberByte, start == nil { start = index }
            if !numberByte, let begin = start { tokens.append(begin..<index); start = nil }
        }
        var result = bytes
        var replaced = false
        for token in tokens.reversed() {
            if let value = Double(String(decoding: bytes[token], as: UTF8.self)), value.isInfinite {
                result.replaceSubrange(token, with: [0x30])
                replaced = true
            }
        }
        return (result, replaced)
    }
}

/// `JSONDecoder`'s view of one `data` member value, for comparing with `FlatObject`.
private enum ProbeValue: Decodable, Equatable {
    case null, bool(Bool), string(String), number(Double), unrepresentableNumber, nested

    init(from decoder: any Decoder) throws {
        if (try? decoder.container(keyedBy: AnyKey.self)) != nil || (try? decoder.unkeyedContainer()) != nil {
            self = .nested
            return
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else {
            self = .unrepresentableNumber
        }
    }

    /// Any key.
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// `{"data": {...}}` decoded by `JSONDecoder` as a dictionary of probes.
private struct ProbeEnvelope: Decodable {
    let data: [String: ProbeValue]
}

@Suite("JSONScanner randomized")
struct JSONScannerPropertyTests {
    /// Which documented divergence explains a verdict that differs from JSONSerialization's, if any.
    private func divergenceReason(_ bytes: [UInt8], ours: Bool) -> String? {
        if ours {
            // We accept, JSONSerialization rejects: numbers beyond Double.
            let (fixed, replaced) = Lexer.replacingOverflowingNumbers(bytes)
            return replaced && foundationAccepts(String(decoding: fixed, as: UTF8.self)) ? "number beyond Double" : nil
        }
        // We reject, Foundation accepts: a NUL byte up front makes Foundation read UTF-16 or UTF-32
        // (text frames are UTF-8 by RFC 6455, and RFC 8259 §8.1 requires UTF-8 on the wire).
        if bytes.prefix(2).contains(0) { return "UTF-16/32 sniffing" }
        if Lexer.maxDepth(bytes) > JSONScanner.maxDepth { return "depth > 64" }
        let fixed = Lexer.removingTrailingCommas(bytes)
        guard fixed != bytes else { return nil }
        if fixed.withUnsafeBytes({ JSONScanner.validate($0) }) || Lexer.maxDepth(fixed) > JSONScanner.maxDepth {
            return "trailing comma"
        }
        return nil
    }

    @Test func agreesWithFoundationOnRandomDocuments() throws {
        var generator = DocumentGenerator(random: SplitMix64(seed: 0x5EED_2025))
        var reasons: [String: Int] = [:]
        var counts = (documents: 0, skippedInvalidUTF8: 0, valid: 0, envelopes: 0, divergences: 0, flatObjects: 0)
        for iteration in 0..<5_000 {
            var bytes = Array(generator.document().utf8)
            for _ in 0..<Int.random(in: 0...2, using: &generator.random) where iteration % 4 != 0 {
                bytes = generator.mutate(bytes)
            }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                counts.skippedInvalidUTF8 += 1
                continue
            }
            counts.documents += 1

            let ours = bytes.withUnsafeBytes { JSONScanner.validate($0) }
            let foundation = foundationAccepts(text)
            if ours { counts.valid += 1 }
            if ours != foundation {
                counts.divergences += 1
                let reason = divergenceReason(bytes, ours: ours)
                #expect(reason != nil, "validate=\(ours), JSONSerialization=\(foundation): \(text.debugDescription)")
                reasons[reason ?? "unexplained", default: 0] += 1
            }

            let scan = bytes.withUnsafeBytes { JSONScanner.scanEnvelope($0) }
            #expect((scan == .notJSON) == !ours, "\(text.debugDescription)")
            guard ours else { continue }

            // JSONDecoder is lax about members it does not decode, so compare on valid texts only.
            let reference = foundationEnvelope(text)
            #expect(comparable(scan) == reference, "scan=\(scan) JSONDecoder=\(reference): \(text.debugDescription)")

            guard case .envelope(_, _, let range) = scan else { continue }
            counts.envelopes += 1
            if let range {
                let dataText = String(decoding: bytes[range], as: UTF8.self)
                #expect(validate(dataText), "data range \(range) is one value: \(text.debugDescription)")
            }
            let flat = bytes.withUnsafeBytes { JSONScanner.flatObject($0, range: range) }
            let isObject = range.map { bytes[$0.lowerBound] == UInt8(ascii: "{") } ?? true
            #expect((flat != nil) == isObject, "\(text.debugDescription)")
            guard let flat, range != nil,
                  let probe = try? JSONDecoder().decode(ProbeEnvelope.self, from: Data(bytes)).data
            else { continue }
            counts.flatObjects += 1
            #expect(Set(flat.members.map(\.key)) == Set(probe.keys), "\(text.debugDescription)")
            for (key, expected) in probe {
                let actual = flat[key]
                switch expected {
                case .null: #expect(actual == .null, "\(key) in \(text.debugDescription)")
                case .bool(let value): #expect(actual == .bool(value), "\(key) in \(text.debugDescription)")
                case .string(let value): #expect(actual == .string(value), "\(key) in \(text.debugDescription)")
                case .number(let value): #expect(flat.double(key) == value, "\(key) in \(text.debugDescription)")
                case .unrepresentableNumber: #expect(flat.number(key) != nil, "\(key) in \(text.debugDescription)")
                case .nested: #expect(actual == .nested, "\(key) in \(text.debugDescription)")
                }
            }
            // Shadowed duplicates count too, so `hasNested` may only err towards falling back.
            #expect(flat.hasNested == flat.members.contains { $0.value == .nested })
            if probe.values.contains(.nested) { #expect(flat.hasNested, "\(text.debugDescription)") }
        }
        // The generator must actually reach every branch, or the test proves little.
        #expect(counts.documents > 4_500)
        #expect(counts.valid > 1_000 && counts.valid < counts.documents - 1_000)
        #expect(counts.envelopes > 500)
        #expect(counts.divergences > 10)
        #expect(counts.flatObjects > 300)
        print("JSONScanner randomized: \(counts), divergences by reason: \(reasons.sorted { $0.key < $1.key })")
    }

    @Test func neverCrashesOnArbitraryBytes() {
        var random = SplitMix64(seed: 42)
        let alphabet = Array(#"{}[]":,\ 0123456789-+.eEtrufalsn/u"#.utf8) + [0x00, 0x1F, 0x80, 0xBF, 0xEF, 0xBB, 0xFF]
        for _ in 0..<20_000 {
            let bytes = (0..<Int.random(in: 0...24, using: &random)).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &random)] }
            bytes.withUnsafeBytes { raw in
                let valid = JSONScanner.validate(raw)
                let scan = JSONScanner.scanEnvelope(raw)
                #expect((scan == .notJSON) == !valid)
                let lower = Int.random(in: -2...raw.count + 2, using: &random)
                let upper = Int.random(in: max(lower, -1)...raw.count + 2, using: &random)
                _ = JSONScanner.flatObject(raw, range: lower..<upper)
                if case .envelope(_, _, let range) = scan {
                    _ = JSONScanner.flatObject(raw, range: range)
                }
            }
        }
    }
}
