// Test support: an independent WebSocket client for integration tests.
//
// Frames are built and parsed by hand here (RFC 6455 section 5), deliberately NOT with
// NIOWebSocket's codec, so that the tests do not share the server's frame code. The client can
// send any frame, including invalid ones, and checks what the server sends: server frames must be
// unmasked, use minimal length encodings, have no RSV bits, and follow the control-frame rules.
//
//     let client = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(token)")
//     try await client.sendText(#"{"event":"join","room":"a"}"#)
//     let joined = try await client.next(event: "joined")
//     #expect(joined["room"]?.stringValue == "a")
//     await client.close()

import Foundation
import NIOCore
import NIOPosix
import Switchboard

/// The outcome of an upgrade request.
enum TestHandshake: Sendable {
    case upgraded(TestWebSocketClient)
    case rejected(TestHTTPResponse)
}

/// One WebSocket frame (or, from `nextMessage`, one reassembled message).
struct TestFrame: Sendable, Equatable, CustomStringConvertible {
    static let continuation: UInt8 = 0x0
    static let text: UInt8 = 0x1
    static let binary: UInt8 = 0x2
    static let close: UInt8 = 0x8
    static let ping: UInt8 = 0x9
    static let pong: UInt8 = 0xA

    var fin: Bool
    var rsv: UInt8 = 0
    var opcode: UInt8
    /// Whether the frame carried a masking key (never true for an accepted server frame).
    var masked: Bool = false
    /// The (unmasked) payload.
    var payload: [UInt8]

    init(fin: Bool = true, rsv: UInt8 = 0, opcode: UInt8, masked: Bool = false, payload: [UInt8]) {
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.masked = masked
        self.payload = payload
    }

    /// The payload as UTF-8, or nil if it is not valid UTF-8.
    var text: String? { testDecodeUTF8(payload) }

    var isControl: Bool { opcode & 0x8 != 0 }

    /// For a Close frame: the status code (nil if the payload is empty or 1 byte long).
    var closeCode: UInt16? {
        payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil
    }

    /// For a Close frame: the reason (nil if it is not valid UTF-8).
    var closeReason: String? {
        payload.count > 2 ? testDecodeUTF8(Array(payload[2...])) : ""
    }

    static func name(of opcode: UInt8) -> String {
        switch opcode {
        case continuation: return "continuation"
        case text: return "text"
        case binary: return "binary"
        case close: return "close"
        case ping: return "ping"
        case pong: return "pong"
        default: return String(format: "opcode 0x%X", opcode)
        }
    }

    var description: String {
        var parts = ["\(TestFrame.name(of: opcode))", "fin=\(fin)"]
        if rsv != 0 { parts.append("rsv=\(rsv)") }
        if masked { parts.append("MASKED") }
        switch opcode {
        case TestFrame.text:
            parts.append(text.map { "text=\(testPreview(Array($0.utf8), limit: 200))" } ?? "invalid UTF-8 \(testPreview(payload))")
        case TestFrame.close:
            parts.append("code=\(closeCode.map(String.init) ?? "none") reason=\((closeReason ?? "<invalid UTF-8>").debugDescription)")
        default:
            parts.append("payload=\(testPreview(payload, limit: 64))")
        }
        return "[" + parts.joined(separator: " ") + "]"
    }
}

/// Builds and parses WebSocket frames by hand (RFC 6455 5.2).
enum TestFrameCodec {
    /// Largest payload the client accepts from the server (a guard against buffering forever).
    static let maxServerPayload = 64 * 1024 * 1024

    /// Encodes one frame. `maskKey` nil sends it unmasked. `declaredLength` overrides the length
    /// written in the header (to send frames that lie about their size); the payload is still
    /// appended as given. `lengthEncoding` forces the 7-, 16- or 64-bit length form.
    static func encode(
        fin: Bool = true,
        rsv: UInt8 = 0,
        opcode: UInt8,
        payload: [UInt8],
        maskKey: [UInt8]?,
        declaredLength: UInt64? = nil,
        lengthEncoding: Int? = nil
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 14)
        out.append((fin ? 0x80 : 0) | ((rsv & 0x7) << 4) | (opcode & 0xF))
        let length = declaredLength ?? UInt64(payload.count)
        let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
        let form = lengthEncoding ?? (length <= 125 ? 7 : length <= 0xFFFF ? 16 : 64)
        switch form {
        case 7:
            out.append(maskBit | UInt8(truncatingIfNeeded: length & 0x7F))
        case 16:
            out.append(maskBit | 126)
            out.append(UInt8(truncatingIfNeeded: length >> 8))
            out.append(UInt8(truncatingIfNeeded: length))
        default:
            out.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: length >> UInt64(shift)))
            }
        }
        if let maskKey {
            precondition(maskKey.count == 4, "a masking key is 4 bytes")
            out.append(contentsOf: maskKey)
            for (index, byte) in payload.enumerated() {
                out.append(byte ^ maskKey[index & 3])
            }
        } else {
            out.append(contentsOf: payload)
        }
        return out
    }

    /// The payload of a Close frame.
    static func closePayload(code: UInt16?, reason: String) -> [UInt8] {
        guard let code else { return [] }
        return [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8)
    }

    /// A fresh random masking key.
    static func randomMaskKey() -> [UInt8] {
        (0..<4).map { _ in UInt8.random(in: 0...255) }
    }

    /// A decoded frame plus facts about its encoding that the client checks.
    struct Decoded {
        var frame: TestFrame
        var consumed: Int
        /// The length used a longer form than necessary (RFC 6455 5.2: minimal encoding is a MUST).
        var nonMinimalLength: Bool
    }

    /// Decodes one frame from the start of `bytes`; nil if the frame is not complete yet.
    static func decode(_ bytes: ArraySlice<UInt8>, maxPayload: Int = maxServerPayload) throws -> Decoded? {
        guard bytes.count >= 2 else { return nil }
        let base = bytes.startIndex
        let b0 = bytes[base]
        let b1 = bytes[base + 1]
        let masked = b1 & 0x80 != 0
        var length = UInt64(b1 & 0x7F)
        var headerLength = 2
        var nonMinimal = false
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = UInt64(bytes[base + 2]) << 8 | UInt64(bytes[base + 3])
            headerLength = 4
            nonMinimal = length <= 125
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = 0
            for offset in 2..<10 {
                length = length << 8 | UInt64(bytes[base + offset])
            }
            headerLength = 10
            if length >> 63 != 0 {
                throw TestClientError.protocolViolation("frame header declares a 64-bit length with the most significant bit set (\(length))")
            }
            nonMinimal = length <= 0xFFFF
        }
        if length > UInt64(maxPayload) {
            throw TestClientError.protocolViolation("frame header declares \(length) payload bytes, over the test client's limit of \(maxPayload)")
        }
        if masked { headerLength += 4 }
        let total = headerLength + Int(length)
        guard bytes.count >= total else { return nil }
        var payload = Array(bytes[(base + headerLength)..<(base + total)])
        if masked {
            let keyStart = base + headerLength - 4
            let key = Array(bytes[keyStart..<(keyStart + 4)])
            for index in payload.indices {
                payload[index] ^= key[index & 3]
            }
        }
        let frame = TestFrame(fin: b0 & 0x80 != 0, rsv: (b0 >> 4) & 0x7, opcode: b0 & 0xF, masked: masked, payload: payload)
        return Decoded(frame: frame, consumed: total, nonMinimalLength: nonMinimal)
    }
}

/// A WebSocket client for tests, on SwiftNIO but with its own frame code. All methods are safe to
/// call from any task; reads are meant to be done by one task at a time.
final class TestWebSocketClient: Sendable {
    private struct State {
        var autoPong = true
        var closeSent = false
        var closeReceived = false
        var receivedMaskedFrame = false
        var compressedMessagesReceived = 0
    }

    /// The server's 101 response.
    let handshakeResponse: TestHTTPResponse
    /// Whether the server accepted permessage-deflate (its 101 named it): RSV1 is then allowed on
    /// the first frame of a message, whose payload `nextMessage` inflates (each message on its
    /// own, as `server_no_context_takeover` promises).
    let deflate: Bool
    private let connection: TestTCPConnection
    private let state = TestLockedBox(State())

    private init(connection: TestTCPConnection, handshakeResponse: TestHTTPResponse) {
        self.connection = connection
        self.handshakeResponse = handshakeResponse
        self.deflate = handshakeResponse.headerValues("Sec-WebSocket-Extensions").contains { $0.lowercased().hasPrefix("permessage-deflate") }
    }

    /// How many messages arrived compressed (RSV1) and were inflated by `nextMessage`.
    var compressedMessagesReceived: Int { state.withLock { $0.compressedMessagesReceived } }

    deinit {
        connection.channel.close(promise: nil)
    }

    // MARK: Handshake

    /// Connects to 127.0.0.1:`port`, sends a GET upgrade request for `path` (which may include a
    /// query) and waits for the response. `headers` are added to the request; one whose name
    /// matches a default header (Host, Upgrade, Connection, Sec-WebSocket-Key,
    /// Sec-WebSocket-Version; case-insensitive) replaces it. A 101 is checked (Upgrade,
    /// Connection and Sec-WebSocket-Accept) and throws `.invalidHandshake` if wrong; any other
    /// status is returned as `.rejected` (the body is read using Content-Length or chunked
    /// encoding, otherwise until the server closes) and the connection is closed.
    static func connect(
        port: Int,
        path: String = "/ws",
        headers: [(String, String)] = [],
        timeout: Duration = .seconds(5),
        from localAddress: String? = nil
    ) async throws -> TestHandshake {
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let connection = try await TestTCPConnection.connect(port: port, timeout: timeout, from: localAddress)
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        var requestHeaders: [(String, String)] = [
            ("Host", "127.0.0.1:\(port)"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
        for (name, value) in headers {
            if let index = requestHeaders.firstIndex(where: { $0.0.lowercased() == name.lowercased() }) {
                requestHeaders[index] = (name, value)
            } else {
                requestHeaders.append((name, value))
            }
        }
        let sentKey = requestHeaders.first { $0.0.lowercased() == "sec-websocket-key" }?.1 ?? key
        var request = "GET \(path) HTTP/1.1\r\n"
        for (name, value) in requestHeaders {
            request += "\(name): \(value)\r\n"
        }
        request += "\r\n"

        let response: TestHTTPResponse
        do {
            try await connection.write(Array(request.utf8))
            response = try await connection.read(deadline: deadline, awaiting: "the HTTP response to the upgrade request for \(path)") {
                bytes, eof in
                guard let (response, consumed) = try TestHTTPParser.parseResponse(bytes, eof: eof) else { return nil }
                return (response, consumed)
            }
        } catch {
            await connection.close()
            throw error
        }

        guard response.status == 101 else {
            await connection.close()
            return .rejected(response)
        }
        var problems: [String] = []
        if !(response.header("Upgrade")?.lowercased().contains("websocket") ?? false) {
            problems.append("Upgrade header is \(response.header("Upgrade")?.debugDescription ?? "missing"), expected websocket")
        }
        let connectionTokens = response.headerValues("Connection")
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if !connectionTokens.contains("upgrade") {
            problems.append("Connection header \(response.headerValues("Connection")) lacks the upgrade token")
        }
        let expectedAccept = testWebSocketAccept(for: sentKey)
        if response.header("Sec-WebSocket-Accept") != expectedAccept {
            problems.append("Sec-WebSocket-Accept is \(response.header("Sec-WebSocket-Accept")?.debugDescription ?? "missing"), expected \(expectedAccept)")
        }
        guard problems.isEmpty else {
            await connection.close()
            throw TestClientError.invalidHandshake("101 response is not a valid upgrade: " + problems.joined(separator: "; ") + "; response: \(response)")
        }
        return .upgraded(TestWebSocketClient(connection: connection, handshakeResponse: response))
    }

    /// Like `connect`, but returns the client and throws `.handshakeRejected` (which shows the
    /// status, headers and body) when the server did not answer 101.
    static func open(
        port: Int,
        path: String = "/ws",
        headers: [(String, String)] = [],
        timeout: Duration = .seconds(5),
        from localAddress: String? = nil
    ) async throws -> TestWebSocketClient {
        switch try await connect(port: port, path: path, headers: headers, timeout: timeout, from: localAddress) {
        case .upgraded(let client): return client
        case .rejected(let response): throw TestClientError.handshakeRejected(response)
        }
    }

    // MARK: Settings and status

    /// Whether `nextMessage`, `nextJSON`, `next(event:)`, `expectClose` and `waitForDisconnect`
    /// answer pings with pongs. Default true. (`nextFrame` never answers anything.)
    var autoPong: Bool {
        get { state.withLock { $0.autoPong } }
        set { state.withLock { $0.autoPong = newValue } }
    }

    /// True once the client has sent a Close frame.
    var closeSent: Bool { state.withLock { $0.closeSent } }

    /// True once a Close frame from the server has been read.
    var closeReceived: Bool { state.withLock { $0.closeReceived } }

    /// True if the server ever sent a masked frame (such a frame also makes the read throw).
    var receivedMaskedFrame: Bool { state.withLock { $0.receivedMaskedFrame } }

    /// True once the TCP connection is closed (by the server, or by `close()`).
    var isDisconnected: Bool { connection.isClosed }

    // MARK: Sending

    func sendText(_ text: String) async throws {
        try await sendFrame(opcode: TestFrame.text, payload: Array(text.utf8))
    }

    func sendBinary(_ bytes: [UInt8]) async throws {
        try await sendFrame(opcode: TestFrame.binary, payload: bytes)
    }

    /// Sends any single frame, including invalid ones (reserved opcodes, RSV bits, unmasked,
    /// oversized control frames...). Masked with a fresh random key unless `masked` is false.
    /// Sending a Close frame this way also counts as having sent Close.
    func sendFrame(fin: Bool = true, opcode: UInt8, payload: [UInt8], masked: Bool = true, rsv: UInt8 = 0) async throws {
        let bytes = TestFrameCodec.encode(
            fin: fin, rsv: rsv, opcode: opcode, payload: payload, maskKey: masked ? TestFrameCodec.randomMaskKey() : nil)
        if opcode == TestFrame.close {
            state.withLock { $0.closeSent = true }
        }
        try await connection.write(bytes)
    }

    /// Sends bytes as they are (e.g. a frame header that declares more bytes than follow, or a
    /// frame split across several writes). See `TestFrameCodec.encode`.
    func sendRaw(_ bytes: [UInt8]) async throws {
        try await connection.write(bytes)
    }

    func ping(_ payload: [UInt8] = []) async throws {
        try await sendFrame(opcode: TestFrame.ping, payload: payload)
    }

    func pong(_ payload: [UInt8] = []) async throws {
        try await sendFrame(opcode: TestFrame.pong, payload: payload)
    }

    /// Sends a Close frame: empty if `code` is nil, else the code and the reason as UTF-8.
    func sendClose(code: UInt16?, reason: String = "") async throws {
        try await sendFrame(opcode: TestFrame.close, payload: TestFrameCodec.closePayload(code: code, reason: reason))
    }

    // MARK: Receiving

    /// The next frame from the server, of any opcode, exactly as sent (fragments are not joined,
    /// pings are not answered). Throws `.timeout` after `timeout`, `.connectionClosed` if the
    /// server closed TCP and no complete frame is buffered, and `.protocolViolation` if the frame
    /// is masked, uses a non-minimal length, has RSV bits set, or is a control frame that is
    /// fragmented or longer than 125 bytes.
    func nextFrame(timeout: Duration = .seconds(5)) async throws -> TestFrame {
        try await nextFrame(deadline: NIODeadline.now() + TimeAmount(timeout), timeout: timeout)
    }

    /// The next text or binary message, with fragments joined (the result has fin = true and the
    /// first fragment's opcode). Pings arriving meanwhile are answered when `autoPong` is true;
    /// pongs are skipped. A Close frame throws `.unexpectedFrame` (after answering it, so that the
    /// connection closes cleanly). A text message must be valid UTF-8.
    func nextMessage(timeout: Duration = .seconds(5)) async throws -> TestFrame {
        try await nextMessage(deadline: NIODeadline.now() + TimeAmount(timeout), timeout: timeout)
    }

    /// The next message, which must be a text message holding a JSON object.
    func nextJSON(timeout: Duration = .seconds(5)) async throws -> [String: JSONValue] {
        try await nextJSON(deadline: NIODeadline.now() + TimeAmount(timeout), timeout: timeout)
    }

    /// Reads JSON messages until one whose `field` (default "event") is the string `event`, and
    /// returns it. Others are skipped, at most `maxSkipped` of them; errors list what was skipped.
    func next(
        event: String,
        field: String = "event",
        timeout: Duration = .seconds(5),
        maxSkipped: Int = 100
    ) async throws -> [String: JSONValue] {
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        var skipped: [String] = []
        while true {
            let object: [String: JSONValue]
            do {
                object = try await nextJSON(deadline: deadline, timeout: timeout)
            } catch let error as TestClientError {
                throw error.adding("while waiting for a message with \(field) = \(event.debugDescription); skipped \(skipped.count): \(skipped)")
            }
            if object[field]?.stringValue == event { return object }
            skipped.append(object[field]?.stringValue ?? testCompactJSON(object))
            if skipped.count > maxSkipped {
                throw TestClientError.unexpectedFrame(
                    "skipped more than \(maxSkipped) messages without one with \(field) = \(event.debugDescription): \(skipped)")
            }
        }
    }

    /// Waits for a Close frame (skipping other frames, answering pings when `autoPong` is true),
    /// answers it with a Close frame carrying the same code if the client has not sent Close yet,
    /// and then waits (a fresh `timeout`) for the server to close TCP. Returns the code (nil for an
    /// empty payload) and the reason. Throws `.protocolViolation` for a 1-byte Close payload or a
    /// reason that is not UTF-8, `.connectionClosed` if TCP closed without a Close frame.
    @discardableResult
    func expectClose(timeout: Duration = .seconds(5)) async throws -> (code: UInt16?, reason: String) {
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        var skipped: [TestFrame] = []
        let close: TestFrame
        while true {
            let frame: TestFrame
            do {
                frame = try await nextFrame(deadline: deadline, timeout: timeout)
            } catch let error as TestClientError {
                throw error.adding("while waiting for a Close frame; frames skipped: \(testSummary(skipped))")
            }
            if frame.opcode == TestFrame.close {
                close = frame
                break
            }
            try await answerIfPing(frame)
            skipped.append(frame)
        }
        guard close.payload.count != 1 else {
            throw TestClientError.protocolViolation("Close frame with a 1-byte payload \(close.payload)")
        }
        guard let reason = close.closeReason else {
            throw TestClientError.protocolViolation("Close reason is not valid UTF-8: \(testPreview(close.payload))")
        }
        if !closeSent {
            try? await sendClose(code: close.closeCode, reason: "")
        }
        if await !connection.waitForEOF(deadline: NIODeadline.now() + TimeAmount(timeout)) {
            throw TestClientError.timeout(
                "the server sent \(close) but did not close the TCP connection within \(timeout) after the close handshake")
        }
        return (close.closeCode, reason)
    }

    /// Waits until the server closes TCP, with or without a Close frame. Frames that arrive
    /// meanwhile are returned; a Close is answered (if the client has not sent one), pings are
    /// answered when `autoPong` is true. Throws `.timeout` if TCP is still open after `timeout`.
    @discardableResult
    func waitForDisconnect(timeout: Duration = .seconds(5)) async throws -> [TestFrame] {
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        var frames: [TestFrame] = []
        while true {
            let frame: TestFrame
            do {
                frame = try await nextFrame(deadline: deadline, timeout: timeout)
            } catch TestClientError.connectionClosed {
                return frames
            } catch TestClientError.timeout {
                throw TestClientError.timeout(
                    "the server did not close the TCP connection within \(timeout); frames received meanwhile: \(testSummary(frames))")
            }
            frames.append(frame)
            if frame.opcode == TestFrame.close {
                if !closeSent { try? await sendClose(code: frame.closeCode, reason: "") }
            } else {
                try? await answerIfPing(frame)
            }
        }
    }

    /// Best-effort clean close: sends Close 1000 (unless Close was already sent), waits up to
    /// `timeout` for the server to close TCP, then closes the channel. Never throws; idempotent.
    func close(timeout: Duration = .seconds(2)) async {
        if !connection.isClosed {
            if !closeSent { try? await sendClose(code: 1000, reason: "") }
            _ = try? await waitForDisconnect(timeout: timeout)
        }
        await connection.close()
    }

    /// Ends TCP with a FIN and no Close frame (a killed process, a crashed app, most languages'
    /// plain `close()`); frames the server sends can still be read.
    func finishTCP() async throws {
        try await connection.finish()
    }

    /// Stops (`false`) or resumes reading from TCP: a client that does not read its events.
    func setReading(_ reading: Bool) async throws {
        try await connection.channel.setOption(ChannelOptions.autoRead, value: reading).get()
    }

    /// Whether the server aborted TCP with a reset (the client saw ECONNRESET).
    var wasReset: Bool { connection.wasReset }

    /// Aborts TCP with an RST and no Close frame.
    func resetTCP() async throws {
        try await connection.reset()
    }

    // MARK: Internals

    private func nextFrame(deadline: NIODeadline, timeout: Duration) async throws -> TestFrame {
        let decoded = try await connection.read(deadline: deadline, awaiting: "a frame from the server (timeout \(timeout))") {
            bytes, _ -> (TestFrameCodec.Decoded, Int)? in
            guard let decoded = try TestFrameCodec.decode(bytes) else { return nil }
            return (decoded, decoded.consumed)
        }
        let frame = decoded.frame
        if frame.masked {
            state.withLock { $0.receivedMaskedFrame = true }
            throw TestClientError.protocolViolation("the server sent a masked frame (RFC 6455 5.1 forbids it): \(frame)")
        }
        if decoded.nonMinimalLength {
            throw TestClientError.protocolViolation("the server used a non-minimal payload length encoding (RFC 6455 5.2): \(frame)")
        }
        if frame.rsv != 0, !(deflate && frame.rsv == 4 && (frame.opcode == TestFrame.text || frame.opcode == TestFrame.binary)) {
            throw TestClientError.protocolViolation("the server set RSV bits without a negotiated extension, or RSV1 outside a message's first frame: \(frame)")
        }
        if frame.isControl && (!frame.fin || frame.payload.count > 125) {
            throw TestClientError.protocolViolation("the server sent a fragmented or over-125-byte control frame: \(frame)")
        }
        if ![0x0, 0x1, 0x2, 0x8, 0x9, 0xA].contains(frame.opcode) {
            throw TestClientError.protocolViolation("the server sent a reserved opcode: \(frame)")
        }
        if frame.opcode == TestFrame.close {
            state.withLock { $0.closeReceived = true }
        }
        return frame
    }

    private func nextMessage(deadline: NIODeadline, timeout: Duration) async throws -> TestFrame {
        var message: TestFrame?
        while true {
            let frame = try await nextFrame(deadline: deadline, timeout: timeout)
            switch frame.opcode {
            case TestFrame.ping:
                try await answerIfPing(frame)
            case TestFrame.pong:
                continue
            case TestFrame.close:
                if !closeSent { try? await sendClose(code: frame.closeCode, reason: "") }
                throw TestClientError.unexpectedFrame("expected a message, but the server sent \(frame)")
            case TestFrame.text, TestFrame.binary:
                guard message == nil else {
                    throw TestClientError.protocolViolation("a new \(TestFrame.name(of: frame.opcode)) frame arrived inside a fragmented message")
                }
                if frame.fin { return try checked(inflated(frame)) }
                message = frame
            case TestFrame.continuation:
                guard var partial = message else {
                    throw TestClientError.protocolViolation("a continuation frame arrived with no message in progress: \(frame)")
                }
                partial.payload += frame.payload
                if frame.fin {
                    partial.fin = true
                    return try checked(inflated(partial))
                }
                message = partial
            default:
                throw TestClientError.protocolViolation("unexpected opcode: \(frame)")
            }
        }
    }

    /// A message as sent before compression: RSV1 messages are inflated with a fresh stream.
    private func inflated(_ message: TestFrame) throws -> TestFrame {
        guard message.rsv & 4 != 0 else { return message }
        var inflated = message
        inflated.rsv = 0
        do {
            inflated.payload = try TestDeflate.inflate(message.payload)
        } catch {
            throw TestClientError.protocolViolation("a compressed message does not inflate on its own (\(error)): \(testPreview(message.payload))")
        }
        state.withLock { $0.compressedMessagesReceived += 1 }
        return inflated
    }

    private func checked(_ message: TestFrame) throws -> TestFrame {
        if message.opcode == TestFrame.text, message.text == nil {
            throw TestClientError.protocolViolation("a text message is not valid UTF-8: \(testPreview(message.payload))")
        }
        return message
    }

    private func nextJSON(deadline: NIODeadline, timeout: Duration) async throws -> [String: JSONValue] {
        let message = try await nextMessage(deadline: deadline, timeout: timeout)
        guard message.opcode == TestFrame.text, let text = message.text else {
            throw TestClientError.unexpectedFrame("expected a JSON text message, got \(message)")
        }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch {
            throw TestClientError.unexpectedFrame("a text message is not JSON (\(error)): \(text.debugDescription)")
        }
        guard let object = value.objectValue else {
            throw TestClientError.unexpectedFrame("expected a JSON object, got \(text.debugDescription)")
        }
        return object
    }

    private func answerIfPing(_ frame: TestFrame) async throws {
        if frame.opcode == TestFrame.ping, autoPong, !closeSent {
            try await pong(frame.payload)
        }
    }
}

// MARK: - Helpers

extension TestClientError {
    /// The same error with more context appended.
    func adding(_ context: String) -> TestClientError {
        switch self {
        case .timeout(let message): return .timeout(message + "; " + context)
        case .connectionClosed(let message): return .connectionClosed(message + "; " + context)
        case .connectFailed(let message): return .connectFailed(message + "; " + context)
        case .invalidHandshake(let message): return .invalidHandshake(message + "; " + context)
        case .protocolViolation(let message): return .protocolViolation(message + "; " + context)
        case .unexpectedFrame(let message): return .unexpectedFrame(message + "; " + context)
        case .handshakeRejected: return self
        }
    }
}

/// Strict UTF-8 decoding (nil on any invalid sequence, including encoded surrogates).
func testDecodeUTF8(_ bytes: [UInt8]) -> String? {
    var iterator = bytes.makeIterator()
    var decoder = UTF8()
    var scalars = String.UnicodeScalarView()
    while true {
        switch decoder.decode(&iterator) {
        case .scalarValue(let scalar): scalars.append(scalar)
        case .emptyInput: return String(scalars)
        case .error: return nil
        }
    }
}

/// The Sec-WebSocket-Accept value for a key (RFC 6455 4.2.2), with a SHA-1 of our own.
func testWebSocketAccept(for key: String) -> String {
    Data(testSHA1(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
}

/// SHA-1 (FIPS 180-4), only for computing Sec-WebSocket-Accept.
func testSHA1(_ message: [UInt8]) -> [UInt8] {
    var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
    var data = message
    let bitLength = UInt64(message.count) * 8
    data.append(0x80)
    while data.count % 64 != 56 { data.append(0) }
    for shift in stride(from: 56, through: 0, by: -8) {
        data.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
    }
    var w = [UInt32](repeating: 0, count: 80)
    for chunk in stride(from: 0, to: data.count, by: 64) {
        for i in 0..<16 {
            let j = chunk + i * 4
            w[i] = UInt32(data[j]) << 24 | UInt32(data[j + 1]) << 16 | UInt32(data[j + 2]) << 8 | UInt32(data[j + 3])
        }
        for i in 16..<80 {
            let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
            w[i] = x << 1 | x >> 31
        }
        var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
        for i in 0..<80 {
            let f: UInt32
            let k: UInt32
            switch i {
            case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
            case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
            case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
            default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
            }
            let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
            e = d
            d = c
            c = b << 30 | b >> 2
            b = a
            a = temp
        }
        h[0] &+= a
        h[1] &+= b
        h[2] &+= c
        h[3] &+= d
        h[4] &+= e
    }
    return h.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> UInt32(24 - 8 * $0)) } }
}

private func testSummary(_ frames: [TestFrame]) -> String {
    if frames.isEmpty { return "none" }
    let shown = frames.prefix(10).map(\.description).joined(separator: ", ")
    return frames.count > 10 ? "\(shown), … (\(frames.count) in all)" : shown
}

private func testCompactJSON(_ object: [String: JSONValue]) -> String {
    guard let data = try? JSONEncoder().encode(JSONValue.object(object)) else { return "\(object)" }
    let text = String(decoding: data, as: UTF8.self)
    return text.count > 200 ? String(text.prefix(200)) + "…" : text
}
