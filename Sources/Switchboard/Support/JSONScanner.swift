/// The outcome of scanning a client text message as an envelope `{"event": …, "id": …, "data": …}`.
///
/// The error cases carry the same wording the `JSONDecoder`-based `InboundEnvelope.parse` produced,
/// so the reply a client sees does not depend on which parser ran. Two deliberate differences from
/// `parse`: a top-level `null` is "not an object" (`parse` said "\"event\" must be a string"), and
/// `"data": null` yields a range (`parse` reported `hasData == false`); a caller wanting the old
/// `hasData` checks whether the range holds `null`.
enum EnvelopeScan: Sendable, Equatable {
    /// A well-formed envelope. `data` is the byte range of the `data` member's value within the
    /// scanned bytes (`nil` when the member is absent; present when its value is `null`).
    case envelope(event: String, id: String?, data: Range<Int>?)
    /// The text is not one valid JSON value (RFC 8259, plus the depth limit).
    case notJSON
    /// Valid JSON, but not an envelope; the message says why.
    case notEnvelope(String)
}

/// The members of a JSON object whose values are scalars, for payloads small and flat enough not
/// to need `JSONDecoder`.
///
/// Members are kept in document order and looked up linearly; duplicate keys are all kept and a
/// lookup returns the first, as `JSONDecoder` does. Keys compare with `String` equality (canonical
/// equivalence), which is also what `JSONDecoder`'s dictionary does.
struct FlatObject: Sendable, Equatable {
    /// A member's value; objects and arrays are not decoded, only noted.
    enum Value: Sendable, Equatable {
        /// A string, unescaped.
        case string(String)
        /// A number, as its JSON text (which always matches the RFC 8259 number grammar).
        case number(String)
        /// `true` or `false`.
        case bool(Bool)
        /// `null`.
        case null
        /// An object or an array, left for a full decoder.
        case nested

        /// The number as a `Double`, or `nil` for non-numbers and numbers beyond `Double`'s range
        /// (which `JSONDecoder` refuses too).
        var doubleValue: Double? {
            guard case .number(let text) = self, let value = Double(text), value.isFinite else { return nil }
            return value
        }

        /// The number as an `Int64` when it is an integer in range, `nil` otherwise.
        ///
        /// Like `JSONDecoder`, accepts integral values written with a fraction or an exponent
        /// (`1.0`, `1e2`); those go through `Double`, so they are exact only up to 2^53.
        var int64Value: Int64? {
            guard case .number(let text) = self else { return nil }
            // Integer texts are exact or nothing: going through Double would round
            // -9223372036854775809 to Int64.min.
            if !text.utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 | 0x20 == UInt8(ascii: "e") }) {
                return Self.parseInteger(text)
            }
            guard let value = Double(text), value.isFinite, value.rounded(.towardZero) == value,
                  value >= -9_223_372_036_854_775_808.0, value < 9_223_372_036_854_775_808.0
            else { return nil }
            return Int64(value)
        }

        /// Parses `-?[0-9]+` exactly, accumulating negatively so that `Int64.min` fits.
        private static func parseInteger(_ text: String) -> Int64? {
            var result: Int64 = 0
            var negative = false
            var sawDigit = false
            for byte in text.utf8 {
                if byte == UInt8(ascii: "-"), !sawDigit, !negative {
                    negative = true
                    continue
                }
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                sawDigit = true
                let (times10, overflow1) = result.multipliedReportingOverflow(by: 10)
                let (next, overflow2) = times10.subtractingReportingOverflow(Int64(byte &- UInt8(ascii: "0")))
                if overflow1 || overflow2 { return nil }
                result = next
            }
            guard sawDigit else { return nil }
            if negative { return result }
            let (positive, overflow) = Int64(0).subtractingReportingOverflow(result)
            return overflow ? nil : positive
        }
    }

    /// One `"key": value` pair.
    struct Member: Sendable, Equatable {
        /// The key, unescaped.
        let key: String
        /// The value.
        let value: Value
    }

    /// All members in document order, duplicates included.
    private(set) var members: [Member]
    /// Whether any member's value is an object or an array, counting members hidden by an earlier
    /// duplicate: a caller that falls back to `JSONDecoder` on `true` can only fall back too often.
    private(set) var hasNested: Bool

    /// Creates an object from its members.
    init(members: [Member] = []) {
        self.members = members
        self.hasNested = members.contains { $0.value == .nested }
    }

    /// The value of the first member named `key`.
    subscript(key: String) -> Value? {
        for member in members where member.key == key {
            return member.value
        }
        return nil
    }

    /// The value of the first member named `key` if it is a string; `nil` if absent or not a string.
    subscript(string key: String) -> String? {
        guard case .string(let value)? = self[key] else { return nil }
        return value
    }

    /// The JSON text of the first member named `key` if it is a number.
    func number(_ key: String) -> String? {
        guard case .number(let text)? = self[key] else { return nil }
        return text
    }

    /// The first member named `key` as a finite `Double`, if it is a number.
    func double(_ key: String) -> Double? {
        self[key]?.doubleValue
    }

    /// The first member named `key` as an `Int64`, if it is an integral number in range.
    func int64(_ key: String) -> Int64? {
        self[key]?.int64Value
    }

    /// The first member named `key` if it is a boolean.
    func bool(_ key: String) -> Bool? {
        guard case .bool(let value)? = self[key] else { return nil }
        return value
    }

    /// Whether a member named `key` exists, whatever its value (`null` included).
    func hasMember(_ key: String) -> Bool {
        members.contains { $0.key == key }
    }
}

/// A strict RFC 8259 JSON scanner over raw bytes, built for the inbound hot path: it validates a
/// whole text in one pass and only materialises the few strings the caller asks for.
///
/// Decisions where Foundation and RFC 8259 differ (Foundation = `JSONSerialization` and
/// `JSONDecoder` on Linux, swift-foundation):
/// - Trailing commas (`[1,]`, `{"a":1,}`): Foundation accepts them; RFC 8259 does not, nor do we.
/// - Nesting: at most `maxDepth` (64) nested arrays/objects; Foundation allows 512. RFC 8259 §9
///   lets parsers set limits, and a client envelope has no reason to nest deeply.
/// - Numbers beyond `Double` (`1e999`): valid syntax per RFC 8259, so valid here;
///   `JSONSerialization` rejects the whole text, `JSONDecoder` only fails if the number is decoded.
/// - Lone UTF-16 surrogate escapes (`"\ud800"`): RFC 8259's grammar allows them but they encode no
///   character (§8.2); both Foundation parsers reject them, and so do we.
/// - A leading UTF-8 byte order mark is skipped, as both Foundation parsers do (RFC 8259 §8.1
///   allows that); a BOM anywhere else is an error.
/// - Duplicate keys: the first occurrence wins, as in `JSONDecoder` on Linux (its keyed container
///   keeps the first value), which decodes the payloads; `JSONSerialization` keeps the last.
///   Later duplicates are still validated but otherwise ignored, whatever their type.
///
/// The input is assumed to be valid UTF-8 (the WebSocket layer checks text frames); bytes ≥ 0x80
/// are accepted inside strings and rejected elsewhere. Invalid UTF-8 cannot crash the scanner:
/// materialised strings are repaired by `String(decoding:)`.
struct JSONScanner {
    /// The deepest nesting of arrays and objects accepted; the top-level container is depth 1.
    static let maxDepth = 64

    /// Whether `bytes` is exactly one JSON value, optionally surrounded by whitespace.
    static func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let reader = Reader(bytes, end: bytes.count)
        let start = reader.skipWhitespace(from: reader.skipBOM())
        guard let end = reader.skipValue(at: start, depth: 0) else { return false }
        return reader.skipWhitespace(from: end) == bytes.count
    }

    /// Validates `bytes` and extracts the envelope members in a single pass.
    ///
    /// Syntax errors anywhere in the text win over envelope errors. Among envelope errors, `event`
    /// is checked before `id`, as `JSONDecoder` decodes them. An `id` of `null` counts as absent,
    /// as `decodeIfPresent` has it.
    static func scanEnvelope(_ bytes: UnsafeRawBufferPointer) -> EnvelopeScan {
        let reader = Reader(bytes, end: bytes.count)
        var index = reader.skipWhitespace(from: reader.skipBOM())
        guard reader[index] == JSONByte.openBrace else {
            guard let end = reader.skipValue(at: index, depth: 0),
                  reader.skipWhitespace(from: end) == bytes.count
            else { return .notJSON }
            return .notEnvelope("the message must be a JSON object")
        }

        // Only ranges are recorded while scanning, so that invalid texts allocate nothing (escaped
        // keys aside).
        var event: MemberValue?
        var id: MemberValue?
        var data: Range<Int>?
        index = reader.skipWhitespace(from: index + 1)
        if reader[index] == JSONByte.closeBrace {
            index += 1
        } else {
            while true {
                guard let (key, valueIndex) = reader.memberKey(at: index) else { return .notJSON }
                let name = reader.envelopeKey(key)
                index = valueIndex

                let valueStart = index
                let value: MemberValue
                if reader[index] == JSONByte.quote {
                    guard let string = reader.scanString(at: index) else { return .notJSON }
                    value = .string(string)
                    index = string.end
                } else {
                    guard let end = reader.skipValue(at: index, depth: 1) else { return .notJSON }
                    value = reader[valueStart] == JSONByte.n ? .null : .other
                    index = end
                }
                switch name {
                case .event where event == nil: event = value
                case .id where id == nil: id = value
                case .data where data == nil: data = valueStart..<index
                default: break
                }

                guard let next = reader.memberEnd(after: index) else { return .notJSON }
                if case .next(let keyIndex) = next {
                    index = keyIndex
                } else if case .end(let pastObject) = next {
                    index = pastObject
                    break
                }
            }
        }
        guard reader.skipWhitespace(from: index) == bytes.count else { return .notJSON }

        let eventString: String
        switch event {
        case nil: return .notEnvelope("missing \"event\"")
        case .string(let string)?: eventString = reader.string(string)
        case .null?, .other?: return .notEnvelope("\"event\" must be a string")
        }
        let idString: String?
        switch id {
        case nil, .null?: idString = nil
        case .string(let string)?: idString = reader.string(string)
        case .other?: return .notEnvelope("\"id\" must be a string")
        }
        return .envelope(event: eventString, id: idString, data: data)
    }

    /// Reads the object at `range` of `bytes` (typically the `data` range from `scanEnvelope`),
    /// keeping its scalar members.
    ///
    /// `range == nil` reads as `{}`, since a missing `data` is an empty payload. Returns `nil` when
    /// the range is out of bounds or does not hold exactly one object (whitespace around allowed),
    /// including when the object is malformed.
    static func flatObject(_ bytes: UnsafeRawBufferPointer, range: Range<Int>?) -> FlatObject? {
        guard let range else { return FlatObject() }
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return nil }
        let reader = Reader(bytes, end: range.upperBound)
        var index = reader.skipWhitespace(from: range.lowerBound)
        guard reader[index] == JSONByte.openBrace else { return nil }

        var members: [FlatObject.Member] = []
        // Payloads have a handful of members: one allocation instead of growing 1, 2, 4, 8.
        members.reserveCapacity(8)
        index = reader.skipWhitespace(from: index + 1)
        if reader[index] == JSONByte.closeBrace {
            index += 1
        } else {
            while true {
                guard let (key, valueIndex) = reader.memberKey(at: index) else { return nil }
                index = valueIndex

                let value: FlatObject.Value
                let start = index
                switch reader[index] {
                case JSONByte.quote:
                    guard let string = reader.scanString(at: index) else { return nil }
                    value = .string(reader.string(string))
                    index = string.end
                case JSONByte.minus, JSONByte.digit0 ... JSONByte.digit9:
                    guard let end = reader.scanNumber(at: index) else { return nil }
                    value = .number(reader.text(start..<end))
                    index = end
                case JSONByte.t, JSONByte.f, JSONByte.n:
                    guard let end = reader.skipValue(at: index, depth: 1) else { return nil }
                    value = reader[start] == JSONByte.n ? .null : .bool(reader[start] == JSONByte.t)
                    index = end
                case JSONByte.openBrace, JSONByte.openBracket:
                    guard let end = reader.skipValue(at: index, depth: 1) else { return nil }
                    value = .nested
                    index = end
                default:
                    return nil
                }
                members.append(FlatObject.Member(key: reader.string(key), value: value))

                guard let next = reader.memberEnd(after: index) else { return nil }
                if case .next(let keyIndex) = next {
                    index = keyIndex
                } else if case .end(let pastObject) = next {
                    index = pastObject
                    break
                }
            }
        }
        guard reader.skipWhitespace(from: index) == range.upperBound else { return nil }
        return FlatObject(members: members)
    }
}

// MARK: - Internals

extension JSONScanner {
    /// A scanned string literal: its contents (between the quotes) and whether it needs unescaping.
    fileprivate struct ScannedString {
        /// The bytes between the quotes.
        let content: Range<Int>
        /// Whether `content` contains a backslash.
        let escaped: Bool
        /// The index just past the closing quote.
        var end: Int { content.upperBound + 1 }
    }

    /// What an envelope member's value was, as far as the envelope cares.
    fileprivate enum MemberValue {
        case string(ScannedString)
        case null
        case other
    }

    /// The envelope members the scanner looks for.
    fileprivate enum EnvelopeKey {
        case event, id, data, other
    }

    /// Bounds-checked reads over a byte range. Reading at or past `end` yields 0, which is never
    /// valid where a token is expected and is a control character inside strings, so the end of
    /// input needs no separate checks and can never be read past.
    fileprivate struct Reader {
        /// The whole buffer; indices are offsets into it so that ranges can be handed back as is.
        let bytes: UnsafeRawBufferPointer
        /// One past the last readable index (≤ `bytes.count`).
        let end: Int

        /// Creates a reader of `bytes[..<end]`.
        init(_ bytes: UnsafeRawBufferPointer, end: Int) {
            self.bytes = bytes
            self.end = min(end, bytes.count)
        }

        /// The byte at `index`, or 0 outside `0..<end`.
        @inline(__always)
        subscript(index: Int) -> UInt8 {
            index >= 0 && index < end ? bytes[index] : 0
        }

        /// The index after a leading UTF-8 byte order mark, if any.
        func skipBOM() -> Int {
            self[0] == 0xEF && self[1] == 0xBB && self[2] == 0xBF ? 3 : 0
        }

        /// Where an object member ends: at `,` (then the next key starts at the index) or at `}`
        /// (the index is just past it).
        enum MemberEnd {
            case next(Int)
            case end(Int)
        }

        /// Reads the `"key" :` of an object member at `index`: the key and where its value starts.
        func memberKey(at index: Int) -> (key: ScannedString, valueIndex: Int)? {
            guard self[index] == JSONByte.quote, let key = scanString(at: index) else { return nil }
            let colon = skipWhitespace(from: key.end)
            guard self[colon] == JSONByte.colon else { return nil }
            return (key, skipWhitespace(from: colon + 1))
        }

        /// Reads what follows a member's value (which ended at `index`), or `nil` if it is neither
        /// `,` nor `}`.
        func memberEnd(after index: Int) -> MemberEnd? {
            let index = skipWhitespace(from: index)
            switch self[index] {
            case JSONByte.comma: return .next(skipWhitespace(from: index + 1))
            case JSONByte.closeBrace: return .end(index + 1)
            default: return nil
            }
        }

        /// The first index at or after `index` that is not JSON whitespace.
        @inline(__always)
        func skipWhitespace(from index: Int) -> Int {
            var index = index
            while true {
                switch self[index] {
                case JSONByte.space, JSONByte.lineFeed, JSONByte.carriageReturn, JSONByte.tab: index += 1
                default: return index
                }
            }
        }

        /// Validates the value starting at `index` (no leading whitespace) and returns the index
        /// just past it, or `nil` if it is malformed or nests deeper than `maxDepth - depth`.
        ///
        /// Iterative: open containers are a bit stack (1 = object), which 64 levels fit exactly.
        func skipValue(at index: Int, depth: Int) -> Int? {
            let limit = JSONScanner.maxDepth - depth
            var index = index
            var level = 0
            var stack: UInt64 = 0
            while true {
                // Here a value is expected at `index`.
                switch self[index] {
                case JSONByte.quote:
                    guard let string = scanString(at: index) else { return nil }
                    index = string.end
                case JSONByte.minus, JSONByte.digit0 ... JSONByte.digit9:
                    guard let end = scanNumber(at: index) else { return nil }
                    index = end
                case JSONByte.t:
                    guard matches(at: index, 0x74, 0x72, 0x75, 0x65) else { return nil }
                    index += 4
                case JSONByte.f:
                    guard matches(at: index, 0x66, 0x61, 0x6C, 0x73), self[index + 4] == 0x65 else { return nil }
                    index += 5
                case JSONByte.n:
                    guard matches(at: index, 0x6E, 0x75, 0x6C, 0x6C) else { return nil }
                    index += 4
                case JSONByte.openBracket:
                    // An empty container still counts as a level, but is never pushed.
                    guard level < limit else { return nil }
                    index = skipWhitespace(from: index + 1)
                    if self[index] == JSONByte.closeBracket {
                        index += 1
                    } else {
                        level += 1
                        stack <<= 1
                        continue
                    }
                case JSONByte.openBrace:
                    guard level < limit else { return nil }
                    index = skipWhitespace(from: index + 1)
                    if self[index] == JSONByte.closeBrace {
                        index += 1
                    } else {
                        guard let next = skipKey(at: index) else { return nil }
                        level += 1
                        stack = stack << 1 | 1
                        index = next
                        continue
                    }
                default:
                    return nil
                }

                // A value ended: close containers until one expects another element.
                while true {
                    if level == 0 { return index }
                    index = skipWhitespace(from: index)
                    let inObject = stack & 1 == 1
                    let byte = self[index]
                    if byte == JSONByte.comma {
                        index = skipWhitespace(from: index + 1)
                        if inObject {
                            guard let next = skipKey(at: index) else { return nil }
                            index = next
                        }
                        break
                    } else if byte == (inObject ? JSONByte.closeBrace : JSONByte.closeBracket) {
                        index += 1
                        level -= 1
                        stack >>= 1
                    } else {
                        return nil
                    }
                }
            }
        }

        /// Skips `"key" :` and the whitespace after it, returning where the value starts.
        @inline(__always)
        private func skipKey(at index: Int) -> Int? {
            guard self[index] == JSONByte.quote, let key = scanString(at: index) else { return nil }
            let colon = skipWhitespace(from: key.end)
            guard self[colon] == JSONByte.colon else { return nil }
            return skipWhitespace(from: colon + 1)
        }

        /// Whether the four bytes at `index` are `a b c d`.
        @inline(__always)
        private func matches(at index: Int, _ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> Bool {
            self[index] == a && self[index + 1] == b && self[index + 2] == c && self[index + 3] == d
        }

        /// Validates the number at `index` against `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        /// and returns the index past it. What follows is the caller's business (`01` is `0`
        /// followed by garbage).
        func scanNumber(at index: Int) -> Int? {
            var index = index
            if self[index] == JSONByte.minus { index += 1 }
            switch self[index] {
            case JSONByte.digit0:
                index += 1
            case JSONByte.digit1 ... JSONByte.digit9:
                index += 1
                while JSONByte.isDigit(self[index]) { index += 1 }
            default:
                return nil
            }
            if self[index] == JSONByte.period {
                index += 1
                guard JSONByte.isDigit(self[index]) else { return nil }
                while JSONByte.isDigit(self[index]) { index += 1 }
            }
            if self[index] | 0x20 == JSONByte.e {
                index += 1
                if self[index] == JSONByte.plus || self[index] == JSONByte.minus { index += 1 }
                guard JSONByte.isDigit(self[index]) else { return nil }
                while JSONByte.isDigit(self[index]) { index += 1 }
            }
            return index
        }

        /// Validates the string literal whose opening quote is at `index`.
        func scanString(at index: Int) -> ScannedString? {
            let start = index + 1
            var index = start
            var escaped = false
            while true {
                // Eight bytes at a time while none of them needs a look: the common case is long
                // runs of plain text (message contents).
                while index + 8 <= end {
                    let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    if Self.hasSpecialByte(word) { break }
                    index += 8
                }
                var byte = self[index]
                while byte >= 0x20 && byte != JSONByte.quote && byte != JSONByte.backslash {
                    index += 1
                    byte = self[index]
                }
                if byte == JSONByte.quote {
                    return ScannedString(content: start..<index, escaped: escaped)
                }
                // Control characters, and the end of input (read as 0), end up here too.
                guard byte == JSONByte.backslash, let next = scanEscape(at: index) else { return nil }
                escaped = true
                index = next
            }
        }

        /// Whether any byte of `word` is `"`, `\` or below 0x20 (SWAR: a byte's high bit is set in
        /// `(x - 0x01…) & ~x & 0x80…` iff the byte is 0, for the lowest such byte at least).
        @inline(__always)
        private static func hasSpecialByte(_ word: UInt64) -> Bool {
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            let quotes = word ^ (ones &* UInt64(JSONByte.quote))
            let backslashes = word ^ (ones &* UInt64(JSONByte.backslash))
            let hasQuote = (quotes &- ones) & ~quotes
            let hasBackslash = (backslashes &- ones) & ~backslashes
            let hasControl = (word &- ones &* 0x20) & ~word
            return (hasQuote | hasBackslash | hasControl) & highs != 0
        }

        /// Validates the escape whose backslash is at `index` and returns the index past it.
        /// A `\u` high surrogate must be followed by a `\u` low surrogate, and a low one must not
        /// stand alone: Foundation rejects lone surrogates, and they are not characters.
        private func scanEscape(at index: Int) -> Int? {
            switch self[index + 1] {
            case JSONByte.quote, JSONByte.backslash, JSONByte.slash, JSONByte.b, JSONByte.f, JSONByte.n, JSONByte.r, JSONByte.t:
                return index + 2
            case JSONByte.u:
                guard let unit = hex4(at: index + 2) else { return nil }
                switch unit {
                case 0xD800 ... 0xDBFF:
                    guard self[index + 6] == JSONByte.backslash, self[index + 7] == JSONByte.u,
                          let low = hex4(at: index + 8), (0xDC00 ... 0xDFFF).contains(low)
                    else { return nil }
                    return index + 12
                case 0xDC00 ... 0xDFFF:
                    return nil
                default:
                    return index + 6
                }
            default:
                return nil
            }
        }

        /// The value of the four hex digits at `index`.
        @inline(__always)
        private func hex4(at index: Int) -> UInt32? {
            var value: UInt32 = 0
            for offset in 0..<4 {
                guard let digit = JSONByte.hexValue(self[index + offset]) else { return nil }
                value = value << 4 | UInt32(digit)
            }
            return value
        }

        /// Which envelope member `key` names. Escaped keys (`"\u0065vent"`) are unescaped first,
        /// which allocates, but clients have no reason to send them.
        func envelopeKey(_ key: ScannedString) -> EnvelopeKey {
            if key.escaped {
                switch string(key) {
                case "event": return .event
                case "id": return .id
                case "data": return .data
                default: return .other
                }
            }
            let start = key.content.lowerBound
            switch key.content.count {
            case 5 where matches(at: start, 0x65, 0x76, 0x65, 0x6E) && self[start + 4] == 0x74: return .event
            case 2 where self[start] == 0x69 && self[start + 1] == 0x64: return .id
            case 4 where matches(at: start, 0x64, 0x61, 0x74, 0x61): return .data
            default: return .other
            }
        }

        /// The bytes of `range` as a string, for number texts (ASCII by construction).
        func text(_ range: Range<Int>) -> String {
            String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range.clamped(to: 0..<end)]), as: UTF8.self)
        }

        /// The unescaped contents of a string that `scanString` accepted.
        func string(_ string: ScannedString) -> String {
            guard string.escaped else { return text(string.content) }
            let content = string.content.clamped(to: 0..<end)
            // Unescaping never lengthens: `\n` → 1 byte, `\uXXXX` → at most 3, a pair (12) → 4.
            return String(unsafeUninitializedCapacity: content.count) { output in
                var written = 0
                var index = content.lowerBound
                while index < content.upperBound, written < output.count {
                    let byte = self[index]
                    guard byte == JSONByte.backslash else {
                        output[written] = byte
                        written += 1
                        index += 1
                        continue
                    }
                    let simple: UInt8
                    switch self[index + 1] {
                    case JSONByte.quote: simple = JSONByte.quote
                    case JSONByte.backslash: simple = JSONByte.backslash
                    case JSONByte.slash: simple = JSONByte.slash
                    case JSONByte.b: simple = 0x08
                    case JSONByte.f: simple = 0x0C
                    case JSONByte.n: simple = JSONByte.lineFeed
                    case JSONByte.r: simple = JSONByte.carriageReturn
                    case JSONByte.t: simple = JSONByte.tab
                    default: simple = 0
                    }
                    if simple != 0 {
                        output[written] = simple
                        written += 1
                        index += 2
                        continue
                    }
                    // `\u`, validated by `scanString`; the fallbacks only keep this total.
                    var scalar = hex4(at: index + 2) ?? 0xFFFD
                    index += 6
                    if (0xD800 ... 0xDBFF).contains(scalar) {
                        if let low = hex4(at: index + 2), (0xDC00 ... 0xDFFF).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                            index += 6
                        } else {
                            scalar = 0xFFFD
                        }
                    } else if (0xDC00 ... 0xDFFF).contains(scalar) {
                        scalar = 0xFFFD
                    }
                    let encoded = Unicode.UTF8.encode(Unicode.Scalar(scalar) ?? "\u{FFFD}")
                    guard let encoded, written + encoded.count <= output.count else { break }
                    for unit in encoded {
                        output[written] = unit
                        written += 1
                    }
                }
                return written
            }
        }
    }
}

/// The bytes the grammar cares about, namespaced so that no `UInt8` extension elsewhere in the
/// module or its dependencies can make them ambiguous.
fileprivate enum JSONByte {
    static let tab: UInt8 = 0x09
    static let lineFeed: UInt8 = 0x0A
    static let carriageReturn: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x22
    static let plus: UInt8 = 0x2B
    static let comma: UInt8 = 0x2C
    static let minus: UInt8 = 0x2D
    static let period: UInt8 = 0x2E
    static let slash: UInt8 = 0x2F
    static let digit0: UInt8 = 0x30
    static let digit1: UInt8 = 0x31
    static let digit9: UInt8 = 0x39
    static let colon: UInt8 = 0x3A
    static let openBracket: UInt8 = 0x5B
    static let backslash: UInt8 = 0x5C
    static let closeBracket: UInt8 = 0x5D
    static let b: UInt8 = 0x62
    static let e: UInt8 = 0x65
    static let f: UInt8 = 0x66
    static let n: UInt8 = 0x6E
    static let r: UInt8 = 0x72
    static let t: UInt8 = 0x74
    static let u: UInt8 = 0x75
    static let openBrace: UInt8 = 0x7B
    static let closeBrace: UInt8 = 0x7D

    /// Whether `byte` is an ASCII digit.
    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- 0x30 < 10 }

    /// The value of `byte` as an ASCII hex digit.
    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30 ... 0x39: return byte - 0x30
        case 0x41 ... 0x46: return byte - 0x41 + 10
        case 0x61 ... 0x66: return byte - 0x61 + 10
        default: return nil
        }
    }
}
