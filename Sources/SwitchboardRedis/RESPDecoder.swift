import NIOCore

/// Decodes RESP2 and RESP3 values from a byte stream, incrementally and within bounds.
///
/// `decode(buffer:)` returns `nil` and consumes nothing while the buffer holds only part of a
/// value (a truncated reply waits for more bytes), and throws `RedisError.protocolError` on input
/// that is not RESP or breaks a limit. The limits keep a broken or hostile server from making
/// the client allocate without bound or recurse without limit: a declared length is checked
/// before any memory is reserved for it, and nesting deeper than `maxDepth` fails.
///
/// A value is parsed again from its start when more bytes arrive; that is cheap for the small
/// replies Redis sends and for large bulk strings (whose length is known from the header), and
/// quadratic only for a huge aggregate arriving in many small reads.
public struct RESPDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = RESPValue

    /// The bounds a reply must respect.
    public struct Limits: Sendable, Hashable {
        /// The longest bulk, verbatim or blob-error string, in bytes. Default 64 MiB.
        public var maxBulkLength: Int
        /// The most elements one array, set, push or map (counting pairs) may declare. Default 1 Mi.
        public var maxAggregateCount: Int
        /// How deeply aggregates may nest (a top-level array is depth 1). Default 32.
        public var maxDepth: Int
        /// The longest line (simple string, error, number, header) without its CRLF. Default 64 KiB.
        public var maxLineLength: Int

        public init(
            maxBulkLength: Int = 64 * 1024 * 1024,
            maxAggregateCount: Int = 1024 * 1024,
            maxDepth: Int = 32,
            maxLineLength: Int = 64 * 1024
        ) {
            self.maxBulkLength = maxBulkLength
            self.maxAggregateCount = maxAggregateCount
            self.maxDepth = maxDepth
            self.maxLineLength = maxLineLength
        }
    }

    public var limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> RESPValue? {
        var reader = buffer
        guard let value = try parseValue(&reader, depth: 0) else { return nil }
        buffer.moveReaderIndex(to: reader.readerIndex)
        return value
    }

    /// At the end of the stream a partial value is dropped: the connection reports
    /// `RedisError.connectionClosed` to the commands still waiting.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPValue? {
        try decode(buffer: &buffer)
    }

    // MARK: - Parsing

    /// Parses one value (skipping any attributes before it), or returns `nil` when incomplete.
    private func parseValue(_ buffer: inout ByteBuffer, depth: Int) throws -> RESPValue? {
        while true {
            guard let marker = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
            if marker == UInt8(ascii: "|") {
                // An attribute: a map of metadata about the next value, which this client ignores.
                guard try parseAggregate(&buffer, depth: depth, pairs: true) != nil else { return nil }
                continue
            }
            return try parseNonAttribute(&buffer, marker: marker, depth: depth)
        }
    }

    private func parseNonAttribute(_ buffer: inout ByteBuffer, marker: UInt8, depth: Int) throws -> RESPValue? {
        switch marker {
        case UInt8(ascii: "+"):
            guard let line = try readLine(&buffer) else { return nil }
            return .simpleString(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: "-"):
            guard let line = try readLine(&buffer) else { return nil }
            return .error(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: ":"):
            guard let line = try readLine(&buffer) else { return nil }
            return .integer(try Self.parseInteger(line, what: "integer"))
        case UInt8(ascii: "$"):
            guard let body = try readBulk(&buffer, allowNull: true) else { return nil }
            return .bulkString(body)
        case UInt8(ascii: "!"):
            guard let body = try readBulk(&buffer, allowNull: false) else { return nil }
            return .error(body.map { String(buffer: $0) } ?? "")
        case UInt8(ascii: "="):
            guard let body = try readBulk(&buffer, allowNull: false) else { return nil }
            guard var text = body, text.readableBytes >= 4,
                text.getInteger(at: text.readerIndex + 3, as: UInt8.self) == UInt8(ascii: ":"),
                let format = text.readString(length: 3)
            else {
                throw RedisError.protocolError("verbatim string without a three-letter format and ':'")
            }
            text.moveReaderIndex(forwardBy: 1)
            return .verbatimString(format: format, text)
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"):
            guard let aggregate = try parseAggregate(&buffer, depth: depth, pairs: marker == UInt8(ascii: "%")) else {
                return nil
            }
            switch (marker, aggregate) {
            case (UInt8(ascii: "*"), let elements): return .array(elements)
            case (_, nil): throw RedisError.protocolError("null is allowed for RESP2 arrays only")
            case (UInt8(ascii: "~"), let elements?): return .set(elements)
            case (UInt8(ascii: ">"), let elements?): return .push(elements)
            case (_, let elements?):
                var entries: [RESPMapEntry] = []
                entries.reserveCapacity(elements.count / 2)
                var index = 0
                while index + 1 < elements.count {
                    entries.append(RESPMapEntry(key: elements[index], value: elements[index + 1]))
                    index += 2
                }
                return .map(entries)
            }
        case UInt8(ascii: "_"):
            guard let line = try readLine(&buffer) else { return nil }
            guard line.isEmpty else { throw RedisError.protocolError("null with a payload") }
            return .null
        case UInt8(ascii: "#"):
            guard let line = try readLine(&buffer) else { return nil }
            switch line {
            case [UInt8(ascii: "t")]: return .boolean(true)
            case [UInt8(ascii: "f")]: return .boolean(false)
            default: throw RedisError.protocolError("boolean that is neither t nor f")
            }
        case UInt8(ascii: ","):
            guard let line = try readLine(&buffer) else { return nil }
            let text = String(decoding: line, as: UTF8.self)
            switch text.lowercased() {
            case "inf", "+inf": return .double(.infinity)
            case "-inf": return .double(-.infinity)
            case "nan", "-nan": return .double(.nan)
            default:
                guard let value = Double(text), value.isFinite else {
                    throw RedisError.protocolError("invalid double \(Self.excerpt(line))")
                }
                return .double(value)
            }
        case UInt8(ascii: "("):
            guard let line = try readLine(&buffer) else { return nil }
            var digits = line[...]
            if digits.first == UInt8(ascii: "-") || digits.first == UInt8(ascii: "+") { digits = digits.dropFirst() }
            guard !digits.isEmpty, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                throw RedisError.protocolError("invalid big number \(Self.excerpt(line))")
            }
            return .bigNumber(String(decoding: line, as: UTF8.self))
        default:
            throw RedisError.protocolError("unknown type marker \(Self.excerpt([marker]))")
        }
    }

    /// The elements of an aggregate (`pairs`: a map or attribute, whose count is of pairs);
    /// `.some(nil)` for a RESP2 null array; `nil` when incomplete.
    private func parseAggregate(_ buffer: inout ByteBuffer, depth: Int, pairs: Bool) throws -> [RESPValue]?? {
        guard depth < limits.maxDepth else {
            throw RedisError.protocolError("aggregates nested deeper than \(limits.maxDepth)")
        }
        guard let line = try readLine(&buffer) else { return nil }
        let count = try Self.parseInteger(line, what: "aggregate length")
        if count == -1 { return .some(nil) }
        guard count >= 0 else { throw RedisError.protocolError("negative aggregate length \(count)") }
        guard count <= limits.maxAggregateCount else {
            throw RedisError.protocolError("aggregate of \(count) elements exceeds the limit of \(limits.maxAggregateCount)")
        }
        let elementCount = Int(count) * (pairs ? 2 : 1)
        var elements: [RESPValue] = []
        // Every element takes at least 3 bytes; reserve no more than the bytes at hand could hold.
        elements.reserveCapacity(min(elementCount, buffer.readableBytes / 3))
        for _ in 0..<elementCount {
            guard let element = try parseValue(&buffer, depth: depth + 1) else { return nil }
            elements.append(element)
        }
        return .some(elements)
    }

    /// The payload of a `$`, `!` or `=` string; `.some(nil)` for `$-1`; `nil` when incomplete.
    private func readBulk(_ buffer: inout ByteBuffer, allowNull: Bool) throws -> ByteBuffer?? {
        guard let line = try readLine(&buffer) else { return nil }
        if line == [UInt8(ascii: "?")] {
            throw RedisError.protocolError("streamed strings are not supported")
        }
        let length = try Self.parseInteger(line, what: "string length")
        if length == -1 && allowNull { return .some(nil) }
        guard length >= 0 else { throw RedisError.protocolError("negative string length \(length)") }
        guard length <= limits.maxBulkLength else {
            throw RedisError.protocolError("string of \(length) bytes exceeds the limit of \(limits.maxBulkLength)")
        }
        let size = Int(length)
        guard buffer.readableBytes >= size + 2 else { return nil }
        guard buffer.getInteger(at: buffer.readerIndex + size, as: UInt16.self) == 0x0D0A else {
            throw RedisError.protocolError("string of \(size) bytes not followed by CRLF")
        }
        guard let body = buffer.readSlice(length: size) else { return nil }
        buffer.moveReaderIndex(forwardBy: 2)
        return .some(body)
    }

    /// The bytes after the type marker up to CRLF (consumed with the marker), or `nil` when the
    /// line is not complete yet.
    private func readLine(_ buffer: inout ByteBuffer) throws -> [UInt8]? {
        let start = buffer.readerIndex + 1
        let available = buffer.readableBytes - 1
        guard available > 0 else { return nil }
        let searched = min(available, limits.maxLineLength + 2)
        guard let view = buffer.viewBytes(at: start, length: searched) else { return nil }
        guard let cr = view.firstIndex(of: UInt8(ascii: "\r")) else {
            if available > limits.maxLineLength + 1 {
                throw RedisError.protocolError("line longer than \(limits.maxLineLength) bytes")
            }
            if view.contains(UInt8(ascii: "\n")) { throw RedisError.protocolError("LF without CR") }
            return nil
        }
        let length = cr - view.startIndex
        guard length <= limits.maxLineLength else {
            throw RedisError.protocolError("line longer than \(limits.maxLineLength) bytes")
        }
        guard cr + 1 < view.endIndex else { return nil }  // the LF has not arrived yet
        guard view[cr + 1] == UInt8(ascii: "\n") else { throw RedisError.protocolError("CR not followed by LF") }
        let line = Array(view[view.startIndex..<cr])
        if line.contains(UInt8(ascii: "\n")) { throw RedisError.protocolError("LF without CR") }
        buffer.moveReaderIndex(forwardBy: 1 + length + 2)
        return line
    }

    private static func parseInteger(_ line: [UInt8], what: String) throws -> Int64 {
        var digits = line[...]
        var negative = false
        if digits.first == UInt8(ascii: "-") {
            negative = true
            digits = digits.dropFirst()
        } else if digits.first == UInt8(ascii: "+") {
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.count <= 19 else {
            throw RedisError.protocolError("invalid \(what) \(excerpt(line))")
        }
        var value: Int64 = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else {
                throw RedisError.protocolError("invalid \(what) \(excerpt(line))")
            }
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = shifted.addingReportingOverflow(Int64(digit - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { throw RedisError.protocolError("\(what) out of range \(excerpt(line))") }
            value = next
        }
        // -9223372036854775808 does not fit the positive accumulator; Redis never sends it.
        return negative ? -value : value
    }

    /// A short, printable rendering of bytes for an error message.
    static func excerpt<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let shown = bytes.prefix(32).map { byte -> String in
            (0x20..<0x7F).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
        }
        return "\"" + shown.joined() + (bytes.count > 32 ? "…" : "") + "\""
    }
}
