import NIOCore

/// One value of the Redis serialization protocol (RESP2 and RESP3), as a reply decodes to.
///
/// RESP2 replies use `simpleString`, `error`, `integer`, `bulkString` and `array` only (a null
/// bulk string or array is `bulkString(nil)` / `array(nil)`). A connection that switched to RESP3
/// (`HELLO 3`) also gets the other cases; RESP3 attributes (`|`) are skipped by the decoder and
/// never appear here.
public enum RESPValue: Sendable, Hashable {
    /// `+OK`: a short status line (never contains CR or LF).
    case simpleString(String)
    /// `-ERR message` or RESP3's blob error `!`: the whole line, error code first.
    case error(String)
    /// `:42`: a signed 64-bit integer.
    case integer(Int64)
    /// `$5\r\nhello`: binary-safe bytes; `nil` is RESP2's null bulk string (`$-1`).
    case bulkString(ByteBuffer?)
    /// `*2\r\n…`: an ordered list; `nil` is RESP2's null array (`*-1`).
    case array([RESPValue]?)
    /// RESP3 `_`: the null value.
    case null
    /// RESP3 `#t` / `#f`.
    case boolean(Bool)
    /// RESP3 `,1.5` (also `inf`, `-inf`, `nan`).
    case double(Double)
    /// RESP3 `(123…`: an integer too large for 64 bits, as its decimal text.
    case bigNumber(String)
    /// RESP3 `=`: a string with a three-letter format (`txt`, `mkd`).
    case verbatimString(format: String, ByteBuffer)
    /// RESP3 `%`: key-value pairs, in the order the server sent them.
    case map([RESPMapEntry])
    /// RESP3 `~`: an unordered collection, in the order the server sent it.
    case set([RESPValue])
    /// RESP3 `>`: out-of-band data (pub/sub messages, invalidations), not a reply to a command.
    case push([RESPValue])
}

/// One key-value pair of a RESP3 map.
public struct RESPMapEntry: Sendable, Hashable {
    /// The key: any value, usually a simple or bulk string.
    public var key: RESPValue
    /// The value for `key`.
    public var value: RESPValue

    public init(key: RESPValue, value: RESPValue) {
        self.key = key
        self.value = value
    }
}

extension RESPValue {
    /// Whether this is a null of either protocol (`$-1`, `*-1`, `_`).
    public var isNull: Bool {
        switch self {
        case .null, .bulkString(nil), .array(nil): return true
        default: return false
        }
    }

    /// The text of a simple string, bulk string or verbatim string (UTF-8, invalid bytes
    /// replaced), or of an integer, double or big number; `nil` for other values.
    public var string: String? {
        switch self {
        case .simpleString(let text), .bigNumber(let text): return text
        case .bulkString(let buffer?), .verbatimString(_, let buffer): return String(buffer: buffer)
        case .integer(let value): return String(value)
        case .double(let value): return String(value)
        default: return nil
        }
    }

    /// The bytes of a bulk string, simple string or verbatim string; `nil` for other values.
    public var buffer: ByteBuffer? {
        switch self {
        case .bulkString(let buffer?), .verbatimString(_, let buffer): return buffer
        case .simpleString(let text): return ByteBuffer(string: text)
        default: return nil
        }
    }

    /// An integer reply, or a bulk or simple string that holds a decimal integer
    /// (`GET` of a counter); `nil` otherwise.
    public var int: Int? {
        switch self {
        case .integer(let value): return Int(exactly: value)
        case .bulkString(let buffer?): return Int(String(buffer: buffer))
        case .simpleString(let text): return Int(text)
        default: return nil
        }
    }

    /// The elements of an array, set or push; `nil` for other values (and for a null array).
    public var array: [RESPValue]? {
        switch self {
        case .array(let elements?), .set(let elements), .push(let elements): return elements
        default: return nil
        }
    }
}

extension RESPValue {
    /// Writes this value in RESP syntax (RESP3 syntax for the RESP3-only cases).
    ///
    /// Clients send commands with `RESPCommand`; this is for servers, tests and tools. A
    /// `simpleString` or `error` must not contain CR or LF (the receiver would misparse it).
    public func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .simpleString(let text):
            buffer.writeInteger(UInt8(ascii: "+"))
            buffer.writeString(text)
            buffer.writeRESPLineEnd()
        case .error(let text):
            buffer.writeInteger(UInt8(ascii: "-"))
            buffer.writeString(text)
            buffer.writeRESPLineEnd()
        case .integer(let value):
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeString(String(value))
            buffer.writeRESPLineEnd()
        case .bulkString(nil):
            buffer.writeString("$-1\r\n")
        case .bulkString(let bytes?):
            buffer.writeRESPBulkHeader(count: bytes.readableBytes)
            buffer.writeImmutableBuffer(bytes)
            buffer.writeRESPLineEnd()
        case .array(nil):
            buffer.writeString("*-1\r\n")
        case .array(let elements?):
            Self.encodeAggregate("*", elements, into: &buffer)
        case .null:
            buffer.writeString("_\r\n")
        case .boolean(let value):
            buffer.writeString(value ? "#t\r\n" : "#f\r\n")
        case .double(let value):
            buffer.writeInteger(UInt8(ascii: ","))
            if value.isNaN {
                buffer.writeString("nan")
            } else if value.isInfinite {
                buffer.writeString(value < 0 ? "-inf" : "inf")
            } else {
                buffer.writeString("\(value)")
            }
            buffer.writeRESPLineEnd()
        case .bigNumber(let text):
            buffer.writeInteger(UInt8(ascii: "("))
            buffer.writeString(text)
            buffer.writeRESPLineEnd()
        case .verbatimString(let format, let bytes):
            buffer.writeInteger(UInt8(ascii: "="))
            buffer.writeString(String(format.utf8.count + 1 + bytes.readableBytes))
            buffer.writeRESPLineEnd()
            buffer.writeString(format)
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeImmutableBuffer(bytes)
            buffer.writeRESPLineEnd()
        case .map(let entries):
            buffer.writeInteger(UInt8(ascii: "%"))
            buffer.writeString(String(entries.count))
            buffer.writeRESPLineEnd()
            for entry in entries {
                entry.key.encode(into: &buffer)
                entry.value.encode(into: &buffer)
            }
        case .set(let elements):
            Self.encodeAggregate("~", elements, into: &buffer)
        case .push(let elements):
            Self.encodeAggregate(">", elements, into: &buffer)
        }
    }

    private static func encodeAggregate(_ marker: Unicode.Scalar, _ elements: [RESPValue], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: marker))
        buffer.writeString(String(elements.count))
        buffer.writeRESPLineEnd()
        for element in elements { element.encode(into: &buffer) }
    }
}

extension ByteBuffer {
    @inlinable
    mutating func writeRESPLineEnd() {
        writeInteger(UInt16(0x0D0A))  // "\r\n", big-endian
    }

    /// `$<count>\r\n`: the header of a bulk string of `count` bytes.
    @inlinable
    mutating func writeRESPBulkHeader(count: Int) {
        writeInteger(UInt8(ascii: "$"))
        writeString(String(count))
        writeRESPLineEnd()
    }
}
