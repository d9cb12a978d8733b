import NIOCore

/// One argument of a Redis command: sent as a bulk string whatever its Swift type.
///
/// String and integer literals convert implicitly: `RESPCommand("SET", "key", 42)`.
public struct RESPCommandArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    @usableFromInline
    enum Storage: Sendable, Hashable {
        case string(String)
        case buffer(ByteBuffer)
        case bytes([UInt8])
        case integer(Int64)
        case double(Double)
    }

    @usableFromInline
    let storage: Storage

    /// The UTF-8 bytes of `string`.
    public init(_ string: String) { storage = .string(string) }
    /// The readable bytes of `buffer` (binary-safe).
    public init(_ buffer: ByteBuffer) { storage = .buffer(buffer) }
    /// `bytes` as they are (binary-safe).
    public init(_ bytes: [UInt8]) { storage = .bytes(bytes) }
    /// The decimal text of `integer`.
    public init<Integer: BinaryInteger>(_ integer: Integer) {
        if let value = Int64(exactly: integer) {
            storage = .integer(value)
        } else {
            storage = .string(String(integer))
        }
    }
    /// The shortest text that reads back as `double` (`inf`, `-inf` for infinities).
    public init(_ double: Double) { storage = .double(double) }

    public init(stringLiteral value: String) { storage = .string(value) }
    public init(integerLiteral value: Int64) { storage = .integer(value) }

    /// Writes this argument as a RESP bulk string.
    @inlinable
    public func encode(into buffer: inout ByteBuffer) {
        switch storage {
        case .string(let text):
            buffer.writeRESPBulkHeader(count: text.utf8.count)
            buffer.writeString(text)
        case .buffer(let bytes):
            buffer.writeRESPBulkHeader(count: bytes.readableBytes)
            buffer.writeImmutableBuffer(bytes)
        case .bytes(let bytes):
            buffer.writeRESPBulkHeader(count: bytes.count)
            buffer.writeBytes(bytes)
        case .integer(let value):
            let text = String(value)
            buffer.writeRESPBulkHeader(count: text.utf8.count)
            buffer.writeString(text)
        case .double(let value):
            let text = value.isInfinite ? (value < 0 ? "-inf" : "inf") : "\(value)"
            buffer.writeRESPBulkHeader(count: text.utf8.count)
            buffer.writeString(text)
        }
        buffer.writeRESPLineEnd()
    }
}

/// A Redis command: its name and arguments, sent as a RESP array of bulk strings.
///
/// ```swift
/// let reply = try await client.send(RESPCommand("SET", "greeting", "hello", "EX", 60))
/// ```
public struct RESPCommand: Sendable, Hashable {
    /// The name first (`SET`), then the arguments.
    public var arguments: [RESPCommandArgument]

    public init(_ name: String, _ arguments: RESPCommandArgument...) {
        self.arguments = [RESPCommandArgument(name)] + arguments
    }

    public init(_ name: String, arguments: [RESPCommandArgument]) {
        self.arguments = [RESPCommandArgument(name)] + arguments
    }

    /// Writes `*<n>\r\n` and every argument as a bulk string straight into `buffer`.
    @inlinable
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        buffer.writeString(String(arguments.count))
        buffer.writeRESPLineEnd()
        for argument in arguments { argument.encode(into: &buffer) }
    }
}
