import NIOCore
import PropertyBased
import Testing

@testable import SwitchboardRedis

/// Decodes every value in `bytes` fed in pieces of the given sizes (the last piece takes the rest).
private func decodeAll(_ bytes: [UInt8], pieces: [Int] = [], limits: RESPDecoder.Limits = .init()) throws -> [RESPValue] {
    let processor = NIOSingleStepByteToMessageProcessor(RESPDecoder(limits: limits))
    var values: [RESPValue] = []
    var offset = 0
    for size in pieces where offset < bytes.count {
        let end = min(bytes.count, offset + size)
        try processor.process(buffer: ByteBuffer(bytes: bytes[offset..<end])) { values.append($0) }
        offset = end
    }
    if offset < bytes.count {
        try processor.process(buffer: ByteBuffer(bytes: bytes[offset...])) { values.append($0) }
    }
    return values
}

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
private func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

@Suite("RESP codec")
struct RESPCodecTests {
    /// Every type of both protocol versions: wire text and the value it decodes to.
    static let cases: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("+\r\n", .simpleString("")),
        ("-ERR unknown command\r\n", .error("ERR unknown command")),
        (":0\r\n", .integer(0)),
        (":-42\r\n", .integer(-42)),
        (":9223372036854775807\r\n", .integer(.max)),
        ("$5\r\nhello\r\n", bulk("hello")),
        ("$0\r\n\r\n", bulk("")),
        ("$4\r\na\r\nb\r\n", bulk("a\r\nb")),
        ("$-1\r\n", .bulkString(nil)),
        ("*0\r\n", .array([])),
        ("*-1\r\n", .array(nil)),
        ("*3\r\n:1\r\n$1\r\nx\r\n*1\r\n+y\r\n", .array([.integer(1), bulk("x"), .array([.simpleString("y")])])),
        ("_\r\n", .null),
        ("#t\r\n", .boolean(true)),
        ("#f\r\n", .boolean(false)),
        (",1.5\r\n", .double(1.5)),
        (",-2\r\n", .double(-2)),
        (",1e3\r\n", .double(1000)),
        (",inf\r\n", .double(.infinity)),
        (",-inf\r\n", .double(-.infinity)),
        ("(3492890328409238509324850943850943825024385\r\n", .bigNumber("3492890328409238509324850943850943825024385")),
        ("(-12\r\n", .bigNumber("-12")),
        ("=15\r\ntxt:Some string\r\n", .verbatimString(format: "txt", ByteBuffer(string: "Some string"))),
        ("!21\r\nSYNTAX invalid syntax\r\n", .error("SYNTAX invalid syntax")),
        ("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", .map([
            RESPMapEntry(key: .simpleString("first"), value: .integer(1)),
            RESPMapEntry(key: .simpleString("second"), value: .integer(2)),
        ])),
        ("%0\r\n", .map([])),
        ("~2\r\n+a\r\n:1\r\n", .set([.simpleString("a"), .integer(1)])),
        (">3\r\n+message\r\n+ch\r\n$2\r\nhi\r\n", .push([.simpleString("message"), .simpleString("ch"), bulk("hi")])),
        // An attribute before a value is skipped, at the top level and inside an aggregate.
        ("|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
         .array([.integer(2039123), .integer(9543892)])),
        ("*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n", .array([.integer(1), .integer(2)])),
    ]

    @Test("every type decodes", arguments: 0..<RESPCodecTests.cases.count)
    func decodesEveryType(index: Int) throws {
        let (wire, expected) = Self.cases[index]
        #expect(try decodeAll(bytes(wire)) == [expected])
    }

    @Test("NaN decodes")
    func decodesNaN() throws {
        let values = try decodeAll(bytes(",nan\r\n"))
        guard case .double(let value)? = values.first else {
            Issue.record("expected a double, got \(values)")
            return
        }
        #expect(value.isNaN)
    }

    /// All cases back to back, so that values also split across one another.
    static var stream: (bytes: [UInt8], values: [RESPValue]) {
        (cases.flatMap { bytes($0.0) }, cases.map(\.1))
    }

    @Test("truncated input waits: byte by byte gives the same values")
    func byteByByte() throws {
        let (wire, expected) = Self.stream
        #expect(try decodeAll(wire, pieces: Array(repeating: 1, count: wire.count)) == expected)
    }

    @Test("truncated input waits: every two-part split gives the same values")
    func everySplit() throws {
        for (wire, expected) in Self.cases {
            let data = bytes(wire)
            for split in 0...data.count {
                #expect(try decodeAll(data, pieces: [split]) == [expected], "split at \(split) of \(wire.debugDescription)")
            }
        }
    }

    @Test("a truncated value consumes nothing and decodes once complete")
    func truncatedConsumesNothing() throws {
        var decoder = RESPDecoder()
        var buffer = ByteBuffer(string: "*2\r\n$5\r\nhel")
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readerIndex == 0)
        buffer.writeString("lo\r\n:7\r\n+extra")
        #expect(try decoder.decode(buffer: &buffer) == .array([bulk("hello"), .integer(7)]))
        #expect(String(buffer: buffer) == "+extra")
    }

    static let malformed: [String] = [
        "?what\r\n",  // unknown type
        ":12a\r\n",  // not an integer
        ":\r\n",
        ":99999999999999999999\r\n",  // out of range
        "$abc\r\n",
        "$-2\r\n",
        "$3\r\nabcd\r\n",  // payload longer than declared: no CRLF where expected
        "*-2\r\n",
        "*x\r\n",
        "+OK\rX",  // CR without LF
        "+OK\nmore\r\n",  // LF without CR
        "#x\r\n",
        ",abc\r\n",
        "(12a\r\n",
        "_x\r\n",
        "=2\r\nab\r\n",  // verbatim without a format
        "~-1\r\n",  // null set
        "$?\r\n",  // streamed strings
    ]

    @Test("malformed input is a protocol error", arguments: RESPCodecTests.malformed)
    func malformedInput(wire: String) {
        let error = #expect(throws: RedisError.self) { _ = try decodeAll(bytes(wire)) }
        guard case .protocolError = error else {
            Issue.record("expected a protocol error, got \(String(describing: error))")
            return
        }
    }

    @Test("a huge declared bulk length fails before any payload arrives")
    func hugeBulkLength() throws {
        #expect(throws: RedisError.self) { _ = try decodeAll(bytes("$99999999999\r\n")) }
        #expect(throws: RedisError.self) { _ = try decodeAll(bytes("$11\r\n"), limits: .init(maxBulkLength: 10)) }
        #expect(throws: RedisError.self) { _ = try decodeAll(bytes("!11\r\n"), limits: .init(maxBulkLength: 10)) }
        // At the limit it is fine.
        #expect(try decodeAll(bytes("$10\r\n0123456789\r\n"), limits: .init(maxBulkLength: 10)) == [bulk("0123456789")])
    }

    @Test("a huge declared aggregate count fails at once and reserves nothing")
    func hugeAggregate() throws {
        #expect(throws: RedisError.self) { _ = try decodeAll(bytes("*2000000\r\n")) }
        #expect(throws: RedisError.self) { _ = try decodeAll(bytes("%3\r\n"), limits: .init(maxAggregateCount: 2)) }
        #expect(throws: RedisError.self) { _ = try decodeAll(bytes(">3\r\n"), limits: .init(maxAggregateCount: 2)) }
        // Within the limit, a count with no elements yet just waits.
        #expect(try decodeAll(bytes("*1000000\r\n")).isEmpty)
    }

    @Test("nesting deeper than the limit fails without recursing further")
    func deepNesting() throws {
        let deep = String(repeating: "*1\r\n", count: 100_000) + ":1\r\n"
        #expect(throws: RedisError.self) { _ = try decodeAll(bytes(deep)) }
        let limits = RESPDecoder.Limits(maxDepth: 3)
        #expect(try decodeAll(bytes("*1\r\n*1\r\n*1\r\n:1\r\n"), limits: limits) == [.array([.array([.array([.integer(1)])])])])
        #expect(throws: RedisError.self) { _ = try decodeAll(bytes("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"), limits: limits) }
        #expect(throws: RedisError.self) { _ = try decodeAll(bytes("|1\r\n" + String(repeating: "%1\r\n", count: 40)), limits: .init()) }
    }

    @Test("a line longer than the limit fails, complete or not")
    func longLine() throws {
        let limits = RESPDecoder.Limits(maxLineLength: 8)
        #expect(try decodeAll(bytes("+12345678\r\n"), limits: limits) == [.simpleString("12345678")])
        #expect(throws: RedisError.self) { _ = try decodeAll(bytes("+123456789\r\n"), limits: limits) }
        #expect(throws: RedisError.self) { _ = try decodeAll(bytes("+123456789012"), limits: limits) }
        #expect(throws: RedisError.self) { _ = try decodeAll(bytes("-" + String(repeating: "x", count: 100_000))) }
    }

    @Test("commands encode as arrays of bulk strings")
    func commandEncoding() {
        var buffer = ByteBuffer()
        let command = RESPCommand(
            "SET", "key", RESPCommandArgument(ByteBuffer(string: "v\r\n")), 42, RESPCommandArgument([0, 255]),
            RESPCommandArgument(-7), RESPCommandArgument(1.5), RESPCommandArgument(UInt64.max))
        command.encode(into: &buffer)
        let expected: [UInt8] = bytes("*8\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\nv\r\n\r\n$2\r\n42\r\n$2\r\n") + [0, 255]
            + bytes("\r\n$2\r\n-7\r\n$3\r\n1.5\r\n$20\r\n18446744073709551615\r\n")
        #expect(Array(buffer.readableBytesView) == expected)
        // What a server decodes it to: the same arguments as bulk strings.
        let decoded = try? decodeAll(Array(buffer.readableBytesView))
        #expect(decoded?.first?.array?.count == 8)
    }

    /// Any value round-trips through encode and decode, whole and cut at any point into pieces.
    /// The values are built from a tape of random choices that the property checker generates and,
    /// on a failure, shrinks (a shorter tape of smaller numbers is a simpler value), so a failing
    /// case is reported small, with the seed that reproduces it.
    @Test("random values round-trip through encode and decode, whole and in pieces")
    func randomRoundTrip() async {
        let choices = Gen<UInt64>.value(in: 0...UInt64.max).array(of: 0...400)
        await propertyCheck(count: 300, input: choices, Gen<Int>.int(in: 0...10_000)) { tape, cut in
            var source = ChoiceTape(tape)
            let value = RandomRESP.value(depth: 0, using: &source)
            var buffer = ByteBuffer()
            value.encode(into: &buffer)
            let wire = Array(buffer.readableBytesView)
            // `try?`: a decoding error is a failed expectation too (nil is not the value).
            #expect((try? decodeAll(wire)) == [value])
            let split = cut % (wire.count + 1)
            #expect((try? decodeAll(wire, pieces: [split, 1, 3])) == [value], "split \(split)")
        }
    }
}

/// Random numbers read from a tape of choices, so that a value built from it shrinks with the
/// tape. Past its end come fixed pseudo-random numbers: a constant there would never end the
/// rejection sampling of `Int.random(in:using:)`.
struct ChoiceTape: RandomNumberGenerator {
    private var choices: ArraySlice<UInt64>
    private var rest = SplitMix64(seed: 0)

    init(_ choices: [UInt64]) {
        self.choices = choices[...]
    }

    mutating func next() -> UInt64 {
        choices.popFirst() ?? rest.next()
    }
}

enum RandomRESP {
    static func line<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let letters = Array("abcXYZ 019:_-é")
        return String((0..<Int.random(in: 0...12, using: &generator)).map { _ in letters.randomElement(using: &generator) ?? "a" })
    }

    static func bytes<G: RandomNumberGenerator>(using generator: inout G) -> ByteBuffer {
        ByteBuffer(bytes: (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    static func value<G: RandomNumberGenerator>(depth: Int, using generator: inout G) -> RESPValue {
        let kinds = depth >= 3 ? 12 : 16
        switch Int.random(in: 0..<kinds, using: &generator) {
        case 0: return .simpleString(line(using: &generator))
        case 1: return .error("ERR " + line(using: &generator))
        case 2: return .integer(Int64.random(in: -Int64.max...Int64.max, using: &generator))
        case 3: return .bulkString(bytes(using: &generator))
        case 4: return .bulkString(nil)
        case 5: return .array(nil)
        case 6: return .null
        case 7: return .boolean(Bool.random(using: &generator))
        case 8: return .double(Double.random(in: -1e12...1e12, using: &generator))
        case 9: return .bigNumber(String(UInt64.random(in: 0...UInt64.max, using: &generator)) + "123456789012")
        case 10: return .verbatimString(format: "txt", bytes(using: &generator))
        case 11: return .double([Double.infinity, -.infinity, 0, -0.5][Int.random(in: 0..<4, using: &generator)])
        case 12: return .array(children(depth: depth, using: &generator))
        case 13: return .set(children(depth: depth, using: &generator))
        case 14: return .push(children(depth: depth, using: &generator))
        default:
            let keys = children(depth: depth, using: &generator)
            return .map(keys.map { RESPMapEntry(key: $0, value: value(depth: depth + 1, using: &generator)) })
        }
    }

    static func children<G: RandomNumberGenerator>(depth: Int, using generator: inout G) -> [RESPValue] {
        (0..<Int.random(in: 0...4, using: &generator)).map { _ in value(depth: depth + 1, using: &generator) }
    }
}
