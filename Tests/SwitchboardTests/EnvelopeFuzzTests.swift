import Foundation
import PropertyBased
import Testing

@testable import Switchboard

/// The envelope scanner against Foundation's parsers, on random and mutated texts: it never
/// crashes, never rejects valid JSON as invalid, and an envelope it accepts is the one
/// `JSONDecoder` reads (event, id and data).
@Suite("Envelope scanner: property tests against Foundation")
struct EnvelopeFuzzTests {
    struct OracleEnvelope: Decodable {
        let event: String
        let id: String?
        let data: JSONValue?
    }

    /// What the scanner says of `bytes`, checked against Foundation; a failed expectation names
    /// the text.
    static func check(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        let scan = bytes.withUnsafeBytes { JSONScanner.scanEnvelope($0) }
        // The scanner's callers hand it valid UTF-8 only (the transport checks text frames, the
        // dispatcher binary headers): other input need only not crash it.
        guard let decoded = String(bytes: bytes, encoding: .utf8), !Self.foundationDeviates(decoded) else { return }
        let text = decoded.debugDescription
        let data = Data(bytes)
        let valid = (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil
        switch scan {
        case .notJSON:
            #expect(!valid, "the scanner rejected valid JSON: \(text)", sourceLocation: sourceLocation)
        case .notEnvelope:
            #expect(valid, "the scanner took invalid JSON for JSON: \(text)", sourceLocation: sourceLocation)
            #expect((try? JSONDecoder().decode(OracleEnvelope.self, from: data)) == nil, "JSONDecoder reads an envelope: \(text)", sourceLocation: sourceLocation)
        case .envelope(let event, let id, let range):
            #expect(valid, "the scanner took invalid JSON for an envelope: \(text)", sourceLocation: sourceLocation)
            guard let oracle = try? JSONDecoder().decode(OracleEnvelope.self, from: data) else {
                Issue.record("JSONDecoder reads no envelope where the scanner does: \(text)", sourceLocation: sourceLocation)
                return
            }
            #expect(oracle.event == event, "event: \(text)", sourceLocation: sourceLocation)
            #expect(oracle.id == id, "id: \(text)", sourceLocation: sourceLocation)
            let scanned = range.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data(bytes[$0])) }
            // `"data": null` has a range (holding null) where the decoder has no value.
            if oracle.data == nil {
                #expect(range == nil || scanned == .null, "data: \(text)", sourceLocation: sourceLocation)
            } else {
                #expect(scanned == oracle.data, "data: \(text)", sourceLocation: sourceLocation)
            }
        }
    }

    /// Where Foundation departs from RFC 8259 (found by these tests): it accepts a trailing comma
    /// (`{"a":1,}`), `JSONDecoder` rejects a number with both a fraction and an exponent
    /// (`-0.0e+1`), and both reject a number out of `Double`'s range (`1e3456789`), which the RFC
    /// leaves to implementations; and `JSONSerialization` reads a NUL byte as the end of the text
    /// (`"\u{0}0"` is valid to it). The scanner follows the grammar; on such texts there is no
    /// oracle to compare with.
    static func foundationDeviates(_ text: String) -> Bool {
        text.contains("\u{0}") || [#",\s*[}\]]"#, #"[0-9]\.[0-9]+[eE]"#, #"[eE][+-]?[0-9]{3,}"#].contains { text.range(of: $0, options: .regularExpression) != nil }
    }

    @Test("random envelopes, valid or not quite (members missing, duplicated, of other types), read as Foundation reads them")
    func generatedEnvelopes() async {
        let choices = Gen<UInt64>.value(in: 0...UInt64.max).array(of: 0...200)
        await propertyCheck(count: 2000, input: choices) { tape in
            var source = ChoiceTape(tape)
            Self.check(Array(RandomJSON.envelope(using: &source).utf8))
        }
    }

    @Test("valid envelopes with bytes flipped, inserted or deleted: never a crash, never a disagreement with Foundation")
    func mutatedEnvelopes() async {
        let choices = Gen<UInt64>.value(in: 0...UInt64.max).array(of: 0...200)
        await propertyCheck(count: 3000, input: choices) { tape in
            var source = ChoiceTape(tape)
            var bytes = Array(RandomJSON.envelope(using: &source).utf8)
            for _ in 0..<Int.random(in: 1...4, using: &source) {
                let position = Int.random(in: 0...bytes.count, using: &source)
                let byte = RandomJSON.interestingBytes.randomElement(using: &source) ?? 0
                switch Int.random(in: 0..<3, using: &source) {
                case 0 where position < bytes.count: bytes[position] = byte
                case 1: bytes.insert(byte, at: position)
                default: if position < bytes.count { bytes.remove(at: position) }
                }
            }
            Self.check(bytes)
        }
    }

    @Test("arbitrary bytes: the scanner answers, and agrees with Foundation")
    func arbitraryBytes() async {
        await propertyCheck(count: 2000, input: Gen<UInt8>.uint8().array(of: 0...64)) { bytes in
            Self.check(bytes)
        }
    }

    @Test("findings kept as regressions")
    func regressions() {
        for text in [
            #"{"event":"a","event":"b","id":"1"}"#, #"{"event":"a\u0000","data":[1,{"x":null}]}"#, #"{"event":"\ud83d\ude00"}"#,
            #"{"event":"e","data":-0.0e+1}"#, #"{"event":"e","id":null}"#, "\u{FEFF}{\"event\":\"e\"}", #"{"event":"e","data":01}"#,
            #"{"event":"\ud800"}"#, #"{"event":"e",}"#, #"[{"event":"e"}]"#, #"{"event":"e"} x"#,
            #"{"id":"","data":1e3456789012345678901234567890}"#, "\u{0}0", "{\"event\":\"e\"}\u{0}",
        ] {
            Self.check(Array(text.utf8))
        }
    }
}

/// Random JSON texts shaped like envelopes, from a tape of choices (so that failures shrink).
enum RandomJSON {
    /// Bytes that change a JSON text's meaning the most.
    static let interestingBytes: [UInt8] = Array(#"{}[]:,"\ 0-+.eE9tfnu/"#.utf8) + [0x00, 0x0A, 0x7F, 0x80, 0xC3, 0xA9, 0xED, 0xFF]

    static func envelope<G: RandomNumberGenerator>(using generator: inout G) -> String {
        var members: [String] = []
        if Int.random(in: 0..<8, using: &generator) != 0 { members.append(#""event":"# + memberValue(string: true, using: &generator)) }
        if Bool.random(using: &generator) { members.append(#""id":"# + memberValue(string: true, using: &generator)) }
        if Bool.random(using: &generator) { members.append(#""data":"# + value(depth: 0, using: &generator)) }
        for _ in 0..<Int.random(in: 0...2, using: &generator) {
            let key = [#""event""#, #""id""#, #""data""#, #""ev\u0065nt""#, string(using: &generator)].randomElement(using: &generator) ?? #""x""#
            members.append(key + ":" + value(depth: 1, using: &generator))
        }
        members.shuffle(using: &generator)
        return space(using: &generator) + "{" + members.joined(separator: "," + space(using: &generator)) + "}" + space(using: &generator)
    }

    /// Mostly a string (what `event` and `id` should be), sometimes anything.
    static func memberValue<G: RandomNumberGenerator>(string wanted: Bool, using generator: inout G) -> String {
        Int.random(in: 0..<5, using: &generator) == 0 ? value(depth: 1, using: &generator) : string(using: &generator)
    }

    static func value<G: RandomNumberGenerator>(depth: Int, using generator: inout G) -> String {
        switch Int.random(in: 0..<(depth >= 4 ? 6 : 8), using: &generator) {
        case 0: return string(using: &generator)
        case 1: return number(using: &generator)
        case 2: return ["true", "false", "null"].randomElement(using: &generator) ?? "null"
        case 3, 4, 5: return string(using: &generator)
        case 6:
            let items = (0..<Int.random(in: 0...3, using: &generator)).map { _ in value(depth: depth + 1, using: &generator) }
            return "[" + items.joined(separator: ",") + "]"
        default:
            let items = (0..<Int.random(in: 0...3, using: &generator)).map { _ in
                string(using: &generator) + space(using: &generator) + ":" + value(depth: depth + 1, using: &generator)
            }
            return "{" + items.joined(separator: ",") + "}"
        }
    }

    static func string<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let pieces = ["a", "Z", "0", " ", "é", "😀", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\u0000", "\\ud83d\\ude00", "\\uD834", "message.send", "-"]
        return "\"" + (0..<Int.random(in: 0...6, using: &generator)).map { _ in pieces.randomElement(using: &generator) ?? "a" }.joined() + "\""
    }

    static func number<G: RandomNumberGenerator>(using generator: inout G) -> String {
        ["0", "-0", "1", "-12", "3.25", "1e3", "-2.5E-7", "1E+2", "123456789012345678901234567890", "0.000001"].randomElement(using: &generator) ?? "0"
    }

    static func space<G: RandomNumberGenerator>(using generator: inout G) -> String {
        ["", "", " ", "\n", "\t ", "\r\n"].randomElement(using: &generator) ?? ""
    }
}
