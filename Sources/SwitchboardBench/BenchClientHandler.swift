import Foundation
import NIOCore

/// The whole client side of one bench connection, in one small inbound handler: it writes a
/// hand-made HTTP upgrade request, checks for `101`, then scans the server's frames in place
/// (``FrameParser``, ``MessageScanner``) and counts them in its loop's ``LoopStats``. It answers
/// pings and Close, sends masked frames, keeps at most one request (`room.join`) pending, and can
/// run a closed loop of `message.send` → `ack` (rtt).
///
/// Everything here runs on the channel's event loop; other threads reach it through
/// ``BenchConnection`` (a `NIOLoopBound`).
final class BenchClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case connecting, upgrading, open, closing, closed
    }

    private struct PendingRequest {
        var idPattern: [UInt8]
        var promise: EventLoopPromise<Void>
        var timeout: Scheduled<Void>?
    }

    private struct RoundTrips {
        var until: NIODeadline
        var sentAt: NIODeadline
        var promise: EventLoopPromise<Void>
        var watchdog: Scheduled<Void>?
    }

    /// Largest HTTP response head accepted.
    private static let maximumHeadBytes = 16 * 1024
    private static let headEnd: [UInt8] = Array("\r\n\r\n".utf8)
    private static let codeMarker: [UInt8] = Array(#""code":""#.utf8)

    private let stats: LoopStats
    private let upgradeRequest: String
    private let upgraded: EventLoopPromise<Void>
    private var state = State.connecting
    private var context: ChannelHandlerContext?
    private var head: ByteBuffer?
    private var cumulation: ByteBuffer?
    private var fragments: ByteBuffer?
    private var fragmentOpcode: UInt8 = 0
    private var random: UInt64
    private var nextRequestID: UInt64 = 0
    private var nextMessageID: UInt64 = 0
    private var pending: PendingRequest?
    private var roundTrips: RoundTrips?
    private var encoder: MessageSendEncoder?
    private var closeTimeout: Scheduled<Void>?
    /// `message.send` frames this connection wrote (all time).
    private(set) var messagesSent = 0

    init(stats: LoopStats, upgradeRequest: String, upgraded: EventLoopPromise<Void>) {
        self.stats = stats
        self.upgradeRequest = upgradeRequest
        self.upgraded = upgraded
        var seed: UInt64 = 0
        while seed == 0 { seed = UInt64.random(in: .min ... .max) }
        random = seed
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { sendUpgradeRequest(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        sendUpgradeRequest(context: context)
        context.fireChannelActive()
    }

    private func sendUpgradeRequest(context: ChannelHandlerContext) {
        guard state == .connecting else { return }
        state = .upgrading
        var buffer = context.channel.allocator.buffer(capacity: upgradeRequest.utf8.count)
        buffer.writeString(upgradeRequest)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if state == .open { stats.closedByServer += 1 }
        state = .closed
        closeTimeout?.cancel()
        let error = BenchError.connectionClosed("the server closed the connection")
        upgraded.fail(error)
        failPending(error)
        if let loop = roundTrips {
            roundTrips = nil
            loop.watchdog?.cancel()
            loop.promise.fail(error)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        upgraded.fail(error)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if state == .upgrading {
            guard readUpgradeResponse(context: context, &buffer) else { return }
        }
        guard state == .open || state == .closing else { return }
        let now = unixNanos()
        if var pendingBytes = cumulation {
            cumulation = nil
            pendingBytes.writeBuffer(&buffer)
            buffer = pendingBytes
        }
        let consumed: Int
        do {
            consumed = try buffer.withUnsafeReadableBytes { try readFrames($0, context: context, now: now) }
        } catch {
            stats.errors += 1
            stats.lastError = "unreadable frame from the server: \(error)"
            context.close(promise: nil)
            return
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        if buffer.readableBytes > 0 {
            // Keep only the incomplete frame (a copy, so the large read buffer can be released).
            var rest = context.channel.allocator.buffer(capacity: max(buffer.readableBytes, 1024))
            rest.writeBuffer(&buffer)
            cumulation = rest
        }
        if state == .closed { context.close(promise: nil) }
    }

    // MARK: Upgrade

    /// Collects the response head; true once the upgrade succeeded (with `buffer` holding what
    /// followed the head), false while incomplete or after a refusal.
    private func readUpgradeResponse(context: ChannelHandlerContext, _ buffer: inout ByteBuffer) -> Bool {
        var received = head ?? context.channel.allocator.buffer(capacity: 512)
        received.writeBuffer(&buffer)
        let endIndex = received.withUnsafeReadableBytes { MessageScanner.firstIndex(of: Self.headEnd, in: $0, from: 0) }
        guard let endIndex else {
            if received.readableBytes > Self.maximumHeadBytes {
                fail(context: context, BenchError.badHandshakeResponse("no end of the HTTP head within \(Self.maximumHeadBytes) bytes"))
            } else {
                head = received
            }
            return false
        }
        head = nil
        let headText = received.getString(at: received.readerIndex, length: endIndex) ?? ""
        received.moveReaderIndex(forwardBy: endIndex + Self.headEnd.count)
        let statusLine = headText.prefix { $0 != "\r" }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            fail(context: context, BenchError.badHandshakeResponse(String(statusLine.prefix(100))))
            return false
        }
        guard status == 101 else {
            // The body (JSON with "code") usually arrives with the head.
            let code = received.withUnsafeReadableBytes { body -> String? in
                guard let start = MessageScanner.firstIndex(of: Self.codeMarker, in: body, from: 0) else { return nil }
                let valueStart = start + Self.codeMarker.count
                var end = valueStart
                while end < body.count, body[end] != UInt8(ascii: "\""), end - valueStart < 64 { end += 1 }
                return String(decoding: UnsafeRawBufferPointer(rebasing: body[valueStart..<end]), as: UTF8.self)
            }
            fail(context: context, BenchError.handshakeRejected(status: status, code: code))
            return false
        }
        state = .open
        upgraded.succeed(())
        buffer = received
        return true
    }

    private func fail(context: ChannelHandlerContext, _ error: BenchError) {
        upgraded.fail(error)
        state = .closed
        context.close(promise: nil)
    }

    // MARK: Frames

    /// Handles every complete frame in `bytes`; returns the bytes consumed.
    private func readFrames(_ bytes: UnsafeRawBufferPointer, context: ChannelHandlerContext, now: Int64) throws -> Int {
        var offset = 0
        while offset < bytes.count, state != .closed {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            guard let frame = try FrameParser.parse(rest) else { break }
            let payload = UnsafeRawBufferPointer(rebasing: rest[frame.payloadOffset..<frame.totalLength])
            if frame.maskKey != nil {
                // Servers must not mask (RFC 6455 5.1).
                throw FrameParser.ParseError.reservedBits
            }
            handleFrame(frame, payload: payload, context: context, now: now)
            offset += frame.totalLength
        }
        return offset
    }

    private func handleFrame(_ frame: FrameParser.Frame, payload: UnsafeRawBufferPointer, context: ChannelHandlerContext, now: Int64) {
        switch frame.opcode {
        case FrameParser.text, FrameParser.binary:
            if frame.fin {
                handleMessage(opcode: frame.opcode, payload: payload, context: context, now: now)
            } else {
                fragmentOpcode = frame.opcode
                var buffer = context.channel.allocator.buffer(capacity: payload.count * 2)
                buffer.writeBytes(payload)
                fragments = buffer
            }
        case FrameParser.continuation:
            guard var buffer = fragments else { return }
            fragments = nil
            buffer.writeBytes(payload)
            if frame.fin {
                buffer.withUnsafeReadableBytes { handleMessage(opcode: fragmentOpcode, payload: $0, context: context, now: now) }
            } else {
                fragments = buffer
            }
        case FrameParser.ping:
            guard state == .open else { return }
            let pong = FrameWriter.maskedFrame(opcode: FrameParser.pong, payload: payload, maskKey: nextMaskKey(), allocator: context.channel.allocator)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case FrameParser.close:
            if state == .open {
                stats.closedByServer += 1
                // Echo the code (RFC 6455 5.5.1), then let the server close TCP.
                let code: UInt16 = payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : 1000
                let reply = FrameWriter.closeFrame(code: code, maskKey: nextMaskKey(), allocator: context.channel.allocator)
                context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
                state = .closing
                scheduleForcedClose(context: context, after: .seconds(2))
            } else {
                state = .closed
            }
        default:
            break
        }
    }

    private func handleMessage(opcode: UInt8, payload: UnsafeRawBufferPointer, context: ChannelHandlerContext, now: Int64) {
        stats.messagesReceived += 1
        guard opcode == FrameParser.text else { return }
        switch MessageScanner.classify(payload) {
        case .delivery(let sentAt):
            if let sentAt { stats.recordDelivery(sentAtNanos: sentAt, now: now) }
        case .ack:
            if let request = pending, MessageScanner.contains(request.idPattern, in: payload) {
                pending = nil
                request.timeout?.cancel()
                request.promise.succeed(())
            } else if roundTrips != nil {
                roundTripReply(ack: true, context: context)
            } else {
                stats.acks += 1
            }
        case .error:
            stats.errors += 1
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: payload.prefix(300)), as: UTF8.self)
            stats.lastError = text
            if let request = pending, MessageScanner.contains(request.idPattern, in: payload) {
                pending = nil
                request.timeout?.cancel()
                request.promise.fail(BenchError.errorReply(text))
            } else if roundTrips != nil {
                roundTripReply(ack: false, context: context)
            }
        case .other:
            break
        }
    }

    // MARK: Requests

    /// Sends `{"event":<event>,"data":<dataJSON>,"id":"q<n>"}` and completes when its `ack`
    /// arrives; fails on an `error` reply, on close, or after `timeout`.
    func sendRequest(event: String, dataJSON: String, timeout: TimeAmount) -> EventLoopFuture<Void> {
        guard let context, state == .open else {
            return upgraded.futureResult.eventLoop.makeFailedFuture(BenchError.connectionClosed("not open"))
        }
        guard pending == nil else {
            return context.eventLoop.makeFailedFuture(BenchError.invalidOption("a request is already pending"))
        }
        nextRequestID += 1
        let id = "q\(nextRequestID)"
        let promise = context.eventLoop.makePromise(of: Void.self)
        let timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, let request = self.pending, request.promise.futureResult === promise.futureResult else { return }
            self.pending = nil
            promise.fail(BenchError.timeout("no reply to \(event) within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        pending = PendingRequest(idPattern: Array(#""id":"\#(id)""#.utf8), promise: promise, timeout: timeoutTask)
        let text = #"{"event":"\#(event)","data":\#(dataJSON),"id":"\#(id)"}"#
        let frame = FrameWriter.maskedFrame(opcode: FrameParser.text, payload: Array(text.utf8), maskKey: nextMaskKey(), allocator: context.channel.allocator)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        return promise.futureResult
    }

    private func failPending(_ error: any Error) {
        guard let request = pending else { return }
        pending = nil
        request.timeout?.cancel()
        request.promise.fail(error)
    }

    // MARK: Messages

    /// Prepares ``writeMessage()`` to send `message.send` to `room`.
    func configureMessages(room: String, payloadBytes: Int) {
        encoder = MessageSendEncoder(room: room, payloadBytes: payloadBytes)
    }

    /// Whether a message written now would be sent soon (the channel is open and its outbound
    /// buffer is under the high-water mark).
    var canSend: Bool {
        guard let context, state == .open, encoder != nil else { return false }
        return context.channel.isWritable
    }

    /// Writes one `message.send` stamped with the current time (without flushing); false if the
    /// connection is not open.
    @discardableResult
    func writeMessage() -> Bool {
        guard let context, state == .open, let encoder else { return false }
        var buffer = context.channel.allocator.buffer(capacity: encoder.approximateFrameSize)
        nextMessageID += 1
        encoder.write(sentAtNanos: unixNanos(), id: nextMessageID, maskKey: nextMaskKey(), into: &buffer)
        context.write(wrapOutboundOut(buffer), promise: nil)
        messagesSent += 1
        stats.sent += 1
        return true
    }

    /// Flushes written messages.
    func flush() {
        context?.flush()
    }

    // MARK: Round trips

    /// Sends `message.send` (configured with ``configureMessages(room:payloadBytes:)``), and on
    /// each reply records the round trip and sends the next, until `until`. The future succeeds
    /// after the last reply; it fails if the connection closes, or if a reply has not come
    /// `timeout` after `until`.
    func startRoundTrips(until: NIODeadline, timeout: TimeAmount) -> EventLoopFuture<Void> {
        guard let context, state == .open, encoder != nil else {
            return upgraded.futureResult.eventLoop.makeFailedFuture(BenchError.connectionClosed("not open"))
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        let watchdog = context.eventLoop.assumeIsolated().scheduleTask(deadline: until + timeout) { [weak self] in
            guard let self, let loop = self.roundTrips, loop.promise.futureResult === promise.futureResult else { return }
            self.roundTrips = nil
            promise.fail(BenchError.timeout("no reply within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        roundTrips = RoundTrips(until: until, sentAt: .now(), promise: promise, watchdog: watchdog)
        sendRoundTrip()
        return promise.futureResult
    }

    private func sendRoundTrip() {
        roundTrips?.sentAt = .now()
        if writeMessage() { flush() }
    }

    private func roundTripReply(ack: Bool, context: ChannelHandlerContext) {
        guard var loop = roundTrips else { return }
        let now = NIODeadline.now()
        if ack {
            stats.roundTrips.record(nanoseconds: Int64(now.uptimeNanoseconds) - Int64(loop.sentAt.uptimeNanoseconds))
        }
        if now < loop.until {
            loop.sentAt = now
            roundTrips = loop
            sendRoundTrip()
        } else {
            roundTrips = nil
            loop.watchdog?.cancel()
            loop.promise.succeed(())
        }
    }

    // MARK: Closing

    /// Sends Close 1000 and lets the server close TCP; closes it ourselves after `timeout`.
    /// The future completes when the channel is closed.
    func closeGracefully(timeout: TimeAmount) -> EventLoopFuture<Void> {
        guard let context else { return upgraded.futureResult.eventLoop.makeSucceededVoidFuture() }
        let closed = context.channel.closeFuture
        switch state {
        case .open:
            state = .closing
            let frame = FrameWriter.closeFrame(code: 1000, maskKey: nextMaskKey(), allocator: context.channel.allocator)
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            scheduleForcedClose(context: context, after: timeout)
        case .connecting, .upgrading:
            state = .closed
            context.close(promise: nil)
        case .closing, .closed:
            break
        }
        return closed
    }

    private func scheduleForcedClose(context: ChannelHandlerContext, after timeout: TimeAmount) {
        closeTimeout?.cancel()
        let channel = context.channel
        closeTimeout = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    // MARK: Masks

    /// xorshift64: masking keys need to vary, not to be secret from the server.
    @inline(__always)
    private func nextMaskKey() -> UInt32 {
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        return UInt32(truncatingIfNeeded: random >> 16)
    }
}

@available(*, unavailable)
extension BenchClientHandler: Sendable {}
