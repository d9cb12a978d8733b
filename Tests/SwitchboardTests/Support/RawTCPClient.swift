// Test support: a raw TCP client for tests that need exact bytes on the wire (handshake tests,
// slowloris), plus the small connection layer that TestWebSocketClient is built on.
//
// Everything here talks to 127.0.0.1 only. Every wait has a deadline; when it passes, the wait
// throws `TestClientError.timeout` with a message that says what was awaited and what had arrived.

import Foundation
import NIOCore
import NIOPosix

// MARK: - Errors

/// Errors thrown by `RawTCPClient` and `TestWebSocketClient`. The descriptions are meant to make a
/// failing test explain itself.
enum TestClientError: Error, CustomStringConvertible {
    /// A bounded wait expired.
    case timeout(String)
    /// The server closed (or reset) the TCP connection while something else was expected.
    case connectionClosed(String)
    /// The TCP connection could not be established.
    case connectFailed(String)
    /// `TestWebSocketClient.open` got an HTTP response other than 101.
    case handshakeRejected(TestHTTPResponse)
    /// A 101 response that is not a valid WebSocket upgrade, or a malformed HTTP response.
    case invalidHandshake(String)
    /// The server broke RFC 6455 (masked frame, bad length encoding, bad close payload, ...).
    case protocolViolation(String)
    /// A well-formed frame or message that the call did not expect (e.g. a Close while waiting
    /// for a message, a binary message where JSON was expected).
    case unexpectedFrame(String)

    var description: String {
        switch self {
        case .timeout(let message): return "timeout: \(message)"
        case .connectionClosed(let message): return "connection closed: \(message)"
        case .connectFailed(let message): return "connect failed: \(message)"
        case .handshakeRejected(let response):
            return "WebSocket handshake rejected: expected 101 Switching Protocols, got \(response.status) "
                + "\(response.reason); headers: \(response.headers); body: \(testPreview(Array(response.body.utf8)))"
        case .invalidHandshake(let message): return "invalid handshake: \(message)"
        case .protocolViolation(let message): return "protocol violation by the server: \(message)"
        case .unexpectedFrame(let message): return "unexpected frame: \(message)"
        }
    }
}

// MARK: - Raw TCP client

/// A TCP client that sends exact bytes and reads whatever comes back.
///
///     let (response, closed) = try await RawTCPClient.request(port: port, text: "GET / HTTP/1.1\r\n\r\n")
///
///     let raw = try await RawTCPClient.connect(port: port)
///     let dropped = try await raw.trickle(Array("GET /ws HTTP/1.1\r\n".utf8), interval: .seconds(1), timeout: .seconds(40))
final class RawTCPClient: Sendable {
    /// When a read is complete. Every mode also completes when the server closes the connection.
    enum ReadUntil: Sendable, Equatable {
        /// Until the server closes the connection.
        case close
        /// Until the end of an HTTP head ("\r\n\r\n") has been received.
        case headersEnd
        /// Until a complete HTTP response has been received: the head, then a body delimited by
        /// Content-Length or chunked encoding (a 101, 1xx, 204 and 304 have no body). A response
        /// with neither is read until the server closes.
        case response
        /// Until at least this many bytes have been received.
        case byteCount(Int)
        /// Until this byte sequence has been received.
        case marker([UInt8])
    }

    private let connection: TestTCPConnection

    private init(connection: TestTCPConnection) {
        self.connection = connection
    }

    deinit {
        connection.channel.close(promise: nil)
    }

    /// Opens a TCP connection to 127.0.0.1:`port`.
    static func connect(port: Int, timeout: Duration = .seconds(5)) async throws -> RawTCPClient {
        RawTCPClient(connection: try await TestTCPConnection.connect(port: port, timeout: timeout))
    }

    /// Connects, sends `bytes`, reads until `until` (or until the server closes), then closes.
    ///
    /// `closed` is true if the server had closed the connection by the time the read completed.
    /// With `.close` it is always true; with the other modes it may be false even if the server
    /// closes a moment later: to assert that a server closes, use `connect`, `send`, `read` and
    /// `waitForDisconnect` instead. Throws `TestClientError.timeout` (showing what had arrived)
    /// if the read is not complete within `timeout`.
    static func request(
        port: Int,
        bytes: [UInt8],
        until: ReadUntil = .response,
        timeout: Duration = .seconds(5)
    ) async throws -> (response: String, closed: Bool) {
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let client = try await connect(port: port, timeout: timeout)
        do {
            try await client.send(bytes)
        } catch {
            // The server may close before it has read everything; what it sent still counts.
            if !client.isClosed { throw error }
        }
        let response: String
        do {
            response = try await client.read(until: until, deadline: deadline)
        } catch {
            await client.close()
            throw error
        }
        let closed = client.isClosed
        await client.close()
        return (response, closed)
    }

    /// `request(port:bytes:until:timeout:)` with the request given as a string (sent as UTF-8).
    static func request(
        port: Int,
        text: String,
        until: ReadUntil = .response,
        timeout: Duration = .seconds(5)
    ) async throws -> (response: String, closed: Bool) {
        try await request(port: port, bytes: Array(text.utf8), until: until, timeout: timeout)
    }

    /// Sends bytes as they are. Throws if the connection is closed.
    func send(_ bytes: [UInt8]) async throws {
        try await connection.write(bytes)
    }

    /// Sends a string as UTF-8.
    func send(_ text: String) async throws {
        try await connection.write(Array(text.utf8))
    }

    /// Reads (and consumes) received bytes until `until` is satisfied or the server closes; returns
    /// them decoded as UTF-8 (invalid sequences replaced). Throws `TestClientError.timeout` if
    /// neither happens within `timeout`.
    func read(until: ReadUntil = .response, timeout: Duration = .seconds(5)) async throws -> String {
        try await read(until: until, deadline: NIODeadline.now() + TimeAmount(timeout))
    }

    private func read(until: ReadUntil, deadline: NIODeadline) async throws -> String {
        let bytes = try await connection.read(deadline: deadline, awaiting: until.awaitedDescription) {
            bytes, eof -> ([UInt8], Int)? in
            if let end = try until.completeLength(of: bytes) {
                return (Array(bytes.prefix(end)), end)
            }
            // The server closed: whatever arrived is the answer (possibly nothing).
            return eof ? (Array(bytes), bytes.count) : nil
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// True once the server has closed (or reset) the connection, or `close()` was called.
    var isClosed: Bool { connection.isClosed }

    /// True if the server reset the connection (ECONNRESET) rather than closing it cleanly.
    var wasReset: Bool { connection.wasReset }

    /// Received bytes that no `read` has consumed yet, as UTF-8 (invalid sequences replaced).
    var unreadText: String { String(decoding: connection.unreadBytes, as: UTF8.self) }

    /// Waits until the server closes the connection. Returns true if it did within `timeout`, false
    /// if the connection was still open when `timeout` expired. Unread bytes are left in place.
    func waitForDisconnect(timeout: Duration = .seconds(5)) async throws -> Bool {
        await connection.waitForEOF(deadline: NIODeadline.now() + TimeAmount(timeout))
    }

    /// Sends `bytes` one byte at a time, pausing `interval` after each byte, and watches for the
    /// server dropping the connection (the pause is itself a bounded wait for the drop). After the
    /// last byte it keeps waiting for the drop. Returns true as soon as the server has closed the
    /// connection, false if it was still open when `timeout` (counted from the call) expired.
    func trickle(_ bytes: [UInt8], interval: Duration = .seconds(1), timeout: Duration) async throws -> Bool {
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        for byte in bytes {
            if connection.isClosed { return true }
            if NIODeadline.now() >= deadline { return false }
            do {
                try await connection.write([byte])
            } catch {
                // A failed write means the connection is gone or going; wait for the close event.
                return await connection.waitForEOF(deadline: deadline)
            }
            let pause = NIODeadline.now() + TimeAmount(interval)
            if await connection.waitForEOF(deadline: min(pause, deadline)) { return true }
        }
        return await connection.waitForEOF(deadline: deadline)
    }

    /// Ends the client's sending side with a FIN; see ``TestTCPConnection/finish()``.
    func finish() async throws {
        try await connection.finish()
    }

    /// Closes the connection (idempotent).
    func close() async {
        await connection.close()
    }
}

extension RawTCPClient.ReadUntil {
    fileprivate var awaitedDescription: String {
        switch self {
        case .close: return "the server to close the connection"
        case .headersEnd: return "the end of an HTTP head (\\r\\n\\r\\n)"
        case .response: return "a complete HTTP response"
        case .byteCount(let count): return "\(count) bytes"
        case .marker(let marker): return "the byte sequence \(testPreview(marker))"
        }
    }

    /// How many bytes of `bytes` make up a complete read, or nil if more are needed.
    fileprivate func completeLength(of bytes: ArraySlice<UInt8>) throws -> Int? {
        switch self {
        case .close:
            return nil
        case .headersEnd:
            return testFind([13, 10, 13, 10], in: bytes).map { $0 + 4 - bytes.startIndex }
        case .response:
            return try TestHTTPParser.parseResponse(bytes, eof: false)?.consumed
        case .byteCount(let count):
            return bytes.count >= count ? count : nil
        case .marker(let marker):
            return testFind(marker, in: bytes).map { $0 + marker.count - bytes.startIndex }
        }
    }
}

// MARK: - HTTP response parsing (shared with TestWebSocketClient)

/// An HTTP response as received by the test clients.
struct TestHTTPResponse: Sendable, CustomStringConvertible {
    let status: Int
    let reason: String
    /// Header fields in the order received, names as sent by the server.
    let headers: [(String, String)]
    let body: String

    /// The value of the first header called `name` (case-insensitive), or nil.
    func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.0.lowercased() == lowered }?.1
    }

    /// All values of headers called `name` (case-insensitive), in order.
    func headerValues(_ name: String) -> [String] {
        let lowered = name.lowercased()
        return headers.filter { $0.0.lowercased() == lowered }.map(\.1)
    }

    var description: String {
        "HTTP \(status) \(reason), headers: \(headers), body: \(testPreview(Array(body.utf8)))"
    }
}

enum TestHTTPParser {
    /// Maximum size of a response head the test clients accept.
    static let maxHeadSize = 64 * 1024

    /// Parses one HTTP/1.x response from the start of `bytes`. Returns nil if more bytes are
    /// needed (a response without Content-Length or chunked encoding completes only at `eof`).
    static func parseResponse(_ bytes: ArraySlice<UInt8>, eof: Bool) throws -> (response: TestHTTPResponse, consumed: Int)? {
        guard let headEnd = testFind([13, 10, 13, 10], in: bytes) else {
            if bytes.count > maxHeadSize {
                throw TestClientError.invalidHandshake("no end of HTTP head within \(maxHeadSize) bytes: \(testPreview(Array(bytes)))")
            }
            return nil
        }
        let head = String(decoding: bytes[bytes.startIndex..<headEnd], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]), (100...999).contains(status) else {
            throw TestClientError.invalidHandshake("malformed HTTP status line \(statusLine.debugDescription); received: \(testPreview(Array(bytes)))")
        }
        let reason = parts.count > 2 ? String(parts[2]) : ""
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else {
                throw TestClientError.invalidHandshake("malformed HTTP header line \(line.debugDescription)")
            }
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers.append((name, value))
        }
        let bodyStart = headEnd + 4
        let rest = bytes[bodyStart...]
        let noBody = status == 101 || (100..<200).contains(status) || status == 204 || status == 304
        func make(_ body: [UInt8], consumedBodyBytes: Int) -> (TestHTTPResponse, Int) {
            let response = TestHTTPResponse(
                status: status, reason: reason, headers: headers, body: String(decoding: body, as: UTF8.self))
            return (response, bodyStart - bytes.startIndex + consumedBodyBytes)
        }
        let probe = TestHTTPResponse(status: status, reason: reason, headers: headers, body: "")
        if noBody {
            return make([], consumedBodyBytes: 0)
        }
        if let encoding = probe.header("Transfer-Encoding"), encoding.lowercased().contains("chunked") {
            guard let (body, consumed) = try decodeChunked(rest) else {
                return eof ? make(Array(rest), consumedBodyBytes: rest.count) : nil
            }
            return make(body, consumedBodyBytes: consumed)
        }
        if let lengthText = probe.header("Content-Length") {
            guard let length = Int(lengthText.trimmingCharacters(in: .whitespaces)), length >= 0 else {
                throw TestClientError.invalidHandshake("malformed Content-Length \(lengthText.debugDescription)")
            }
            if rest.count >= length {
                return make(Array(rest.prefix(length)), consumedBodyBytes: length)
            }
            return eof ? make(Array(rest), consumedBodyBytes: rest.count) : nil
        }
        // No framing: the body runs until the server closes.
        return eof ? make(Array(rest), consumedBodyBytes: rest.count) : nil
    }

    /// Decodes a complete chunked body; nil if incomplete.
    private static func decodeChunked(_ bytes: ArraySlice<UInt8>) throws -> ([UInt8], Int)? {
        var body: [UInt8] = []
        var index = bytes.startIndex
        while true {
            guard let lineEnd = testFind([13, 10], in: bytes[index...]) else { return nil }
            let sizeLine = String(decoding: bytes[index..<lineEnd], as: UTF8.self)
            let sizeText = sizeLine.split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw TestClientError.invalidHandshake("malformed chunk size line \(sizeLine.debugDescription)")
            }
            index = lineEnd + 2
            if size == 0 {
                // Trailers (ignored) end with an empty line.
                guard let trailerEnd = testFind([13, 10, 13, 10], in: bytes[(index - 2)...]) else { return nil }
                return (body, trailerEnd + 4 - bytes.startIndex)
            }
            guard bytes.endIndex - index >= size + 2 else { return nil }
            body.append(contentsOf: bytes[index..<(index + size)])
            index += size + 2
        }
    }
}

// MARK: - Connection layer

/// A lock-protected value (Foundation's NSLock keeps this free of extra package products).
final class TestLockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// A TCP connection to 127.0.0.1 whose received bytes are collected in a buffer that callers parse
/// with deadlines. Parsing is done by the caller, so reads that split messages anywhere are fine.
final class TestTCPConnection: Sendable {
    let channel: any Channel
    private let inbound: TestInboundBytes

    private init(channel: any Channel, inbound: TestInboundBytes) {
        self.channel = channel
        self.inbound = inbound
    }

    /// Connects to 127.0.0.1:`port`, from `localAddress` when given (any 127.x.y.z on Linux: a
    /// second client address for per-address limits).
    static func connect(port: Int, timeout: Duration, from localAddress: String? = nil) async throws -> TestTCPConnection {
        let inbound = TestInboundBytes()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(TimeAmount(timeout))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TestInboundCollector(inbound: inbound))
                }
            }
        do {
            if let localAddress { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: localAddress, port: 0)) }
            let channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
            return TestTCPConnection(channel: channel, inbound: inbound)
        } catch {
            throw TestClientError.connectFailed("could not connect to 127.0.0.1:\(port) within \(timeout): \(error)")
        }
    }

    var isClosed: Bool { inbound.isClosed }
    var wasReset: Bool { inbound.wasReset }
    var unreadBytes: [UInt8] { inbound.unreadBytes }

    func write(_ bytes: [UInt8]) async throws {
        do {
            try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
        } catch {
            throw TestClientError.connectionClosed("writing \(bytes.count) bytes failed (\(error)); the connection is \(isClosed ? "closed" : "open")")
        }
    }

    /// Repeatedly offers the unread bytes to `parse` until it returns a value (the bytes it
    /// reports as consumed are removed). `parse` also sees whether the server has closed.
    /// Throws `.timeout` at `deadline`, `.connectionClosed` if the server closed and `parse`
    /// still needs more bytes.
    func read<T>(
        deadline: NIODeadline,
        awaiting: @autoclosure () -> String,
        _ parse: (ArraySlice<UInt8>, _ eof: Bool) throws -> (T, consumed: Int)?
    ) async throws -> T {
        try await inbound.read(deadline: deadline, eventLoop: channel.eventLoop, awaiting: awaiting(), parse)
    }

    /// Waits until the server closes the connection; true if it did before `deadline`.
    func waitForEOF(deadline: NIODeadline) async -> Bool {
        await inbound.waitForEOF(deadline: deadline, eventLoop: channel.eventLoop)
    }

    func close() async {
        inbound.markClosedLocally()
        channel.close(promise: nil)
        try? await channel.closeFuture.get()
    }

    /// Ends the sending side with a FIN (`shutdown(SHUT_WR)`), as a killed client or a plain
    /// `socket.close()` does; the read side stays open, so what the server sends can still be read.
    func finish() async throws {
        try await channel.close(mode: .output).get()
    }

    /// Aborts the connection with an RST (SO_LINGER 0, then close).
    func reset() async throws {
        guard let options = channel as? any SocketOptionProvider else {
            throw TestClientError.connectFailed("the channel has no socket options")
        }
        try await options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        await close()
    }
}

/// Collects the bytes a channel receives and wakes up waiters whenever something changes.
final class TestInboundBytes: Sendable {
    private struct Waiter {
        var continuation: CheckedContinuation<Void, Never>
        var timer: Scheduled<Void>?
    }

    private struct State {
        var bytes: [UInt8] = []
        var start = 0
        var eof = false
        var closedLocally = false
        var reset = false
        var closeReason: String?
        var version: UInt64 = 0
        var nextWaiterID = 0
        var waiters: [Int: Waiter] = [:]
        var unread: ArraySlice<UInt8> { bytes[start...] }
    }

    private let state = TestLockedBox(State())

    var isClosed: Bool { state.withLock { $0.eof } }
    var wasReset: Bool { state.withLock { $0.reset } }
    var unreadBytes: [UInt8] { state.withLock { Array($0.unread) } }

    // Called on the event loop.
    func append(_ buffer: ByteBuffer) {
        changeState { state in
            state.bytes.append(contentsOf: buffer.readableBytesView)
        }
    }

    // Called on the event loop.
    func finish(error: (any Error)?) {
        changeState { state in
            if let error {
                if state.closeReason == nil { state.closeReason = "\(error)" }
                if let ioError = error as? IOError, ioError.errnoCode == ECONNRESET { state.reset = true }
            }
            state.eof = true
        }
    }

    func markClosedLocally() {
        changeState { state in
            state.closedLocally = true
            state.eof = true
        }
    }

    private func changeState(_ body: (inout State) -> Void) {
        let waiters = state.withLock { state -> [Waiter] in
            body(&state)
            state.version &+= 1
            let waiters = Array(state.waiters.values)
            state.waiters.removeAll()
            return waiters
        }
        for waiter in waiters {
            waiter.timer?.cancel()
            waiter.continuation.resume()
        }
    }

    func read<T>(
        deadline: NIODeadline,
        eventLoop: any EventLoop,
        awaiting: @autoclosure () -> String,
        _ parse: (ArraySlice<UInt8>, Bool) throws -> (T, consumed: Int)?
    ) async throws -> T {
        while true {
            let (result, version, eof, unread, locally) = try state.withLock { state -> (T?, UInt64, Bool, [UInt8], Bool) in
                if let (value, consumed) = try parse(state.unread, state.eof) {
                    state.start += consumed
                    if state.start == state.bytes.count {
                        state.bytes.removeAll(keepingCapacity: true)
                        state.start = 0
                    } else if state.start > 1 << 16, state.start > state.bytes.count / 2 {
                        state.bytes.removeFirst(state.start)
                        state.start = 0
                    }
                    return (value, state.version, state.eof, [], state.closedLocally)
                }
                return (nil, state.version, state.eof, Array(state.unread), state.closedLocally)
            }
            if let result { return result }
            if eof {
                let who = locally ? "the connection was closed by the test" : "the server closed the connection"
                throw TestClientError.connectionClosed(
                    "\(who) while waiting for \(awaiting()); unread bytes: \(testPreview(unread))")
            }
            if NIODeadline.now() >= deadline {
                throw TestClientError.timeout(
                    "nothing satisfied the wait for \(awaiting()) in time; connection still open; unread bytes: \(testPreview(unread))")
            }
            try Task.checkCancellation()
            await waitForChange(since: version, deadline: deadline, eventLoop: eventLoop)
        }
    }

    func waitForEOF(deadline: NIODeadline, eventLoop: any EventLoop) async -> Bool {
        while true {
            let (eof, version) = state.withLock { ($0.eof, $0.version) }
            if eof { return true }
            if NIODeadline.now() >= deadline || Task.isCancelled { return false }
            await waitForChange(since: version, deadline: deadline, eventLoop: eventLoop)
        }
    }

    /// Returns when the state changed after `version`, at `deadline`, or on task cancellation.
    private func waitForChange(since version: UInt64, deadline: NIODeadline, eventLoop: any EventLoop) async {
        let id = state.withLock { state -> Int in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let registered = state.withLock { state -> Bool in
                    if state.version != version || Task.isCancelled { return false }
                    state.waiters[id] = Waiter(continuation: continuation, timer: nil)
                    return true
                }
                guard registered else {
                    continuation.resume()
                    return
                }
                let timer = eventLoop.scheduleTask(deadline: deadline) { self.wake(id) }
                let stillWaiting = state.withLock { state -> Bool in
                    guard state.waiters[id] != nil else { return false }
                    state.waiters[id]?.timer = timer
                    return true
                }
                if !stillWaiting { timer.cancel() }
            }
        } onCancel: {
            self.wake(id)
        }
    }

    private func wake(_ id: Int) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.timer?.cancel()
        waiter?.continuation.resume()
    }
}

/// The channel handler that feeds `TestInboundBytes`.
final class TestInboundCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let inbound: TestInboundBytes

    init(inbound: TestInboundBytes) {
        self.inbound = inbound
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inbound.append(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbound.finish(error: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        inbound.finish(error: error)
        context.close(promise: nil)
    }
}

// MARK: - Small helpers

/// Index of the first occurrence of `needle` in `haystack`, or nil.
func testFind(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
    guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
    var index = haystack.startIndex
    let last = haystack.endIndex - needle.count
    while index <= last {
        if haystack[index] == needle[0], haystack[index..<(index + needle.count)].elementsEqual(needle) {
            return index
        }
        index += 1
    }
    return nil
}

/// A short printable rendering of bytes for error messages.
func testPreview(_ bytes: [UInt8], limit: Int = 300) -> String {
    if bytes.isEmpty { return "(none)" }
    let shown = bytes.prefix(limit)
    var text = ""
    for byte in shown {
        switch byte {
        case 13: text += "\\r"
        case 10: text += "\\n"
        case 9: text += "\\t"
        case 0x20...0x7E: text += String(UnicodeScalar(byte))
        default: text += String(format: "\\x%02X", byte)
        }
    }
    let more = bytes.count > limit ? "… (\(bytes.count) bytes in all)" : " (\(bytes.count) bytes)"
    return "\"\(text)\"" + more
}
