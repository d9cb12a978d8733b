import Foundation

/// A server message's envelope (protocol 2.1): its string fields and its `data` as raw JSON, read
/// in one pass over the text without building a tree. Unknown fields are skipped.
struct Envelope: Sendable, Equatable {
    var event: String
    var id: String?
    var room: String?
    var eid: String?
    /// `nil` when absent or `null`.
    var data: RawJSON?

    /// Parses one JSON object; `nil` for anything that is not an object with a string `event`.
    init?(parsing text: String) {
        var scanner = JSONScanner(bytes: Array(text.utf8))
        var event: String?
        guard scanner.consume(UInt8(ascii: "{")) else { return nil }
        scanner.skipWhitespace()
        if scanner.consume(UInt8(ascii: "}")) { return nil }
        while true {
            guard let key = scanner.readString() else { return nil }
            guard scanner.consume(UInt8(ascii: ":")) else { return nil }
            scanner.skipWhitespace()
            let start = scanner.index
            guard scanner.skipValue() else { return nil }
            let value = scanner.bytes[start..<scanner.index]
            let isString = value.first == UInt8(ascii: "\"")
            switch key {
            case "event" where isString: if event == nil { event = JSONScanner.decodeString(value) }
            case "id" where isString: if id == nil { id = JSONScanner.decodeString(value) }
            case "room" where isString: if room == nil { room = JSONScanner.decodeString(value) }
            case "eid" where isString: if eid == nil { eid = JSONScanner.decodeString(value) }
            case "data":
                let raw = String(decoding: value, as: UTF8.self)
                if data == nil, raw != "null" { data = RawJSON(raw) }
            default: break
            }
            scanner.skipWhitespace()
            if scanner.consume(UInt8(ascii: ",")) { scanner.skipWhitespace(); continue }
            guard scanner.consume(UInt8(ascii: "}")) else { return nil }
            break
        }
        guard let event else { return nil }
        self.event = event
    }

    init(event: String, id: String? = nil, room: String? = nil, eid: String? = nil, data: RawJSON? = nil) {
        self.event = event
        self.id = id
        self.room = room
        self.eid = eid
        self.data = data
    }

    /// A client envelope's text: `{"event":…,"data":…,"id":…}`.
    static func encode(event: String, data: RawJSON?, id: String?) -> String {
        var text = #"{"event":"# + JSONScanner.quote(event)
        if let data { text += #","data":"# + data.text }
        if let id { text += #","id":"# + JSONScanner.quote(id) }
        return text + "}"
    }
}

/// A forward-only reader of JSON text that finds where values start and end.
struct JSONScanner {
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
        skipWhitespace()
    }

    mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// Reads a string (at the current position) and returns it decoded.
    mutating func readString() -> String? {
        skipWhitespace()
        let start = index
        guard skipString() else { return nil }
        return Self.decodeString(bytes[start..<index])
    }

    /// Skips one string, the index at its opening quote.
    mutating func skipString() -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return false }
        index += 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\\"): index += 2
            case UInt8(ascii: "\""): index += 1; return true
            default: index += 1
            }
        }
        return false
    }

    /// Skips one value of any kind (nested arrays and objects included, at most 64 deep).
    mutating func skipValue() -> Bool {
        skipWhitespace()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return skipString()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard skipString() else { return false }
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                    guard depth <= 64 else { return false }
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { index += 1; return true }
                default: break
                }
                index += 1
            }
            return false
        default:
            // A number, true, false or null: up to the next delimiter.
            let start = index
            while index < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) {
                index += 1
            }
            return index > start
        }
    }

    /// Decodes a quoted JSON string (escapes included); `nil` if it is not one.
    static func decodeString(_ quoted: ArraySlice<UInt8>) -> String? {
        guard quoted.count >= 2, quoted.first == UInt8(ascii: "\""), quoted.last == UInt8(ascii: "\"") else { return nil }
        let inner = quoted.dropFirst().dropLast()
        if !inner.contains(UInt8(ascii: "\\")) { return String(decoding: inner, as: UTF8.self) }
        return try? JSONDecoder().decode(String.self, from: Data(quoted))
    }

    /// A string as a JSON string literal.
    static func quote(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let control where control.value < 0x20:
                out += String(format: "\\u%04x", control.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
