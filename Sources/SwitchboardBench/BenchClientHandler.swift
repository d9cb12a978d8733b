import Foundation
import NIOCore

/// The whole client side of one bench connection, in one small inbound handler: it writes a
/// hand-made HTTP upgrade request, checks for `101`, then scans the server's frames in place
/// (``FrameParser``, ``MessageScanner``) and counts them in its loop's ``LoopStats``. It answers
/// pings and Close, sends masked frames, keeps at most one request (`room.join`) pending, and can
/// run a closed loop of `message.send` → `ack` (rtt) or a bounded burst of them (resume). For
/// resume it can also follow one room's positions (``PositionTracker``), resume it with
/// `session.hello`, and drop the connection without a Close frame.
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
        var promise: EventLoopPromise<[UInt8]>
        var timeout: Scheduled<Void>?
        /// A `room.join` whose ack's `eid` starts the tracker.
        var startsPositions: Bool
        /// A `room.join` whose ack's `eid` starts (or restarts) the soak tracker.
        var startsSoak = false
    }

    private struct Burst {
        /// `message.send` still to write.
        var toWrite: Int
        /// Written, reply not yet received.
        var awaiting: Int
        let window: Int
        let timeout: TimeAmount
        var outcome = BurstOutcome()
        var promise: EventLoopPromise<BurstOutcome>
        var watchdog: Scheduled<Void>?
    }

    private struct CatchUpWait {
        var target: RoomPosition
        var helloSentAtNanos: Int64
        var promise: EventLoopPromise<CatchUp>
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
    private var fragmentCompressed = false
    /// The server accepted permessage-deflate.
    private var deflate = false
    private var random: UInt64
    private var nextRequestID: UInt64 = 0
    private var nextMessageID: UInt64 = 0
    private var pending: PendingRequest?
    private var roundTrips: RoundTrips?
    private var encoder: MessageSendEncoder?
    private var closeTimeout: Scheduled<Void>?
    private var burst: Burst?
    /// The room whose positions are followed, as its bytes and a quote (see ``MessageScanner/isRoom(_:in:)``).
    private var trackedRoom: [UInt8] = []
    /// The positions seen of `trackedRoom`; `nil` when no room is followed (no scanning for `eid`).
    private(set) var positions: PositionTracker?
    /// The soak user's view of its room (``SoakTracker``); `nil` outside the soak.
    private(set) var soak: SoakTracker?
    private var catchUpWait: CatchUpWait?
    /// Completes when a resume has caught up (see ``resume(room:from:target:replyTimeout:catchUpTimeout:)``).
    private(set) var catchUp: EventLoopFuture<CatchUp>?
    /// The code of the server's Close frame, if it sent one.
    private(set) var serverCloseCode: UInt16?
    /// `message.send` frames this connection wrote (all time).
    private(set) var messagesSent = 0

    init(stats: LoopStats, upgradeRequest: String, upgraded: EventLoopPromise<Void>) {
        self.stats = stats
        self.upgradeRequest = upgradeRequest
        self.upgraded = upgraded
        var seed: UInt64 = 0
        while seed == 0 { seed = UInt64.random(in: .min ... .max) }
        random = seed
        // Message ids start at a random point: the server remembers ids per user for its
        // idempotency window, so a second run against the same server must not reuse the first's.
        nextMessageID = UInt64.random(in: 0 ..< (1 << 48))
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
        if let burst {
            self.burst = nil
            burst.watchdog?.cancel()
            burst.promise.fail(error)
        }
        if let wait = catchUpWait {
            catchUpWait = nil
            wait.timeout?.cancel()
            let reason = serverCloseCode.map { "the server closed the connection with \($0) before it caught up" } ?? "the connection closed before it caught up"
            wait.promise.fail(BenchError.connectionClosed(reason))
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
        deflate = headText.lowercased().contains("sec-websocket-extensions: permessage-deflate")
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
            guard let frame = try FrameParser.parse(rest, deflate: deflate) else { break }
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
                if frame.compressed {
                    handleCompressed(opcode: frame.opcode, payload: payload, context: context, now: now)
                } else {
                    handleMessage(opcode: frame.opcode, payload: payload, context: context, now: now)
                }
            } else {
                fragmentOpcode = frame.opcode
                fragmentCompressed = frame.compressed
                var buffer = context.channel.allocator.buffer(capacity: payload.count * 2)
                buffer.writeBytes(payload)
                fragments = buffer
            }
        case FrameParser.continuation:
            guard var buffer = fragments else { return }
            fragments = nil
            buffer.writeBytes(payload)
            if frame.fin {
                if fragmentCompressed {
                    buffer.withUnsafeReadableBytes { handleCompressed(opcode: fragmentOpcode, payload: $0, context: context, now: now) }
                } else {
                    buffer.withUnsafeReadableBytes { handleMessage(opcode: fragmentOpcode, payload: $0, context: context, now: now) }
                }
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
                serverCloseCode = code
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

    private func handleCompressed(opcode: UInt8, payload: UnsafeRawBufferPointer, context: ChannelHandlerContext, now: Int64) {
        var compressed = context.channel.allocator.buffer(capacity: payload.count + 4)
        compressed.writeBytes(payload)
        guard case .message(let inflated) = stats.inflater.inflate(compressed, limit: FrameParser.maximumPayload, allocator: context.channel.allocator) else {
            // Not valid deflate data from the server (or past the frame limit): counted like a server error.
            stats.errors += 1
            stats.lastError = "a compressed message did not inflate"
            return
        }
        stats.inflated += 1
        inflated.withUnsafeReadableBytes { handleMessage(opcode: opcode, payload: $0, context: context, now: now) }
    }

    private func handleMessage(opcode: UInt8, payload: UnsafeRawBufferPointer, context: ChannelHandlerContext, now: Int64) {
        stats.messagesReceived += 1
        guard opcode == FrameParser.text else { return }
        switch MessageScanner.classify(payload) {
        case .delivery(let sentAt):
            if let sentAt { stats.recordDelivery(sentAtNanos: sentAt, now: now) }
            if positions != nil { trackPosition(payload, isMessage: true, now: now) }
            if soak != nil { soakObserve(payload) }
        case .ack:
            if let request = pending, MessageScanner.contains(request.idPattern, in: payload) {
                pending = nil
                request.timeout?.cancel()
                // Here, not in a callback: the room's events may follow in this very read.
                if request.startsPositions, let position = RoomPosition(firstIn: payload) {
                    positions?.start(at: position)
                }
                if request.startsSoak, let position = RoomPosition(firstIn: payload) {
                    soak?.joined(at: position)
                }
                request.promise.succeed(Array(payload))
            } else if roundTrips != nil {
                roundTripReply(ack: true, context: context)
            } else if burst != nil {
                stats.acks += 1
                let position = RoomPosition(firstIn: payload)
                if let position, soak != nil { soak?.ownAck(position) }
                burstReply(ack: true, position: position)
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
            } else if burst != nil {
                burstReply(ack: false, position: nil)
            }
        case .refresh:
            if positions != nil { trackRefresh(payload, now: now) }
            if soak != nil, MessageScanner.isRoom(trackedRoom, in: payload), let id = MessageScanner.eventID(in: payload) {
                soak?.refresh(epoch: UnsafeRawBufferPointer(rebasing: payload[id.epoch]), offset: id.offset)
            }
        case .other:
            // App broadcasts take positions too; presence carries no eid and is skipped.
            if positions != nil { trackPosition(payload, isMessage: false, now: now) }
            if soak != nil { soakObserve(payload) }
        }
    }

    // MARK: Requests

    /// Sends `{"event":<event>,"data":<dataJSON>,"id":"q<n>"}` and completes with the text of its
    /// `ack` when it arrives; fails on an `error` reply, on close, or after `timeout`. With
    /// `startsPositions` (a `room.join` after ``trackPositions(room:)``) the ack's `eid` becomes
    /// the tracker's first position, before any later message is read.
    func sendRequest(
        event: String, dataJSON: String, timeout: TimeAmount, startsPositions: Bool = false, startsSoak: Bool = false
    ) -> EventLoopFuture<[UInt8]> {
        guard let context, state == .open else {
            return upgraded.futureResult.eventLoop.makeFailedFuture(BenchError.connectionClosed("not open"))
        }
        guard pending == nil else {
            return context.eventLoop.makeFailedFuture(BenchError.invalidOption("a request is already pending"))
        }
        nextRequestID += 1
        let id = "q\(nextRequestID)"
        let promise = context.eventLoop.makePromise(of: [UInt8].self)
        let timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, let request = self.pending, request.promise.futureResult === promise.futureResult else { return }
            self.pending = nil
            promise.fail(BenchError.timeout("no reply to \(event) within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        pending = PendingRequest(
            idPattern: Array(#""id":"\#(id)""#.utf8), promise: promise, timeout: timeoutTask, startsPositions: startsPositions,
            startsSoak: startsSoak)
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

    // MARK: Bursts

    /// Writes `count` `message.send` (configured with ``configureMessages(room:payloadBytes:)``),
    /// at most `window` of them awaiting their reply at a time. The future succeeds once every one
    /// has had its reply (an `ack` or an `error`), with the `eid` of the last ack; it fails if the
    /// connection closes, or if no reply comes for `timeout`.
    func sendBurst(count: Int, window: Int, timeout: TimeAmount) -> EventLoopFuture<BurstOutcome> {
        guard let context, state == .open, encoder != nil, burst == nil, roundTrips == nil else {
            return upgraded.futureResult.eventLoop.makeFailedFuture(BenchError.connectionClosed("not open, or already sending"))
        }
        let promise = context.eventLoop.makePromise(of: BurstOutcome.self)
        burst = Burst(toWrite: count, awaiting: 0, window: max(1, window), timeout: timeout, promise: promise)
        fillBurst()
        return promise.futureResult
    }

    private func burstReply(ack: Bool, position: RoomPosition?) {
        guard var current = burst else { return }
        current.awaiting -= 1
        if ack {
            current.outcome.acks += 1
            // Replies come in the order of the messages: the last ack is the latest position.
            if let position { current.outcome.lastAck = position }
        } else {
            current.outcome.errors += 1
        }
        burst = current
        fillBurst()
    }

    /// Writes up to the window, (re)arms the watchdog, or completes the burst.
    private func fillBurst() {
        guard var current = burst, let context else { return }
        if current.toWrite == 0, current.awaiting <= 0 {
            burst = nil
            current.watchdog?.cancel()
            current.promise.succeed(current.outcome)
            return
        }
        var wrote = false
        while current.toWrite > 0, current.awaiting < current.window {
            guard writeMessage() else {
                burst = nil
                current.watchdog?.cancel()
                current.promise.fail(BenchError.connectionClosed("the publisher's connection closed"))
                return
            }
            current.toWrite -= 1
            current.awaiting += 1
            wrote = true
        }
        if wrote { flush() }
        current.watchdog?.cancel()
        let promise = current.promise
        let timeout = current.timeout
        current.watchdog = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, let burst = self.burst, burst.promise.futureResult === promise.futureResult else { return }
            self.burst = nil
            promise.fail(BenchError.timeout("no reply to message.send within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        burst = current
    }

    // MARK: Positions and resume

    /// Follows `room`'s positions from the `eid` of the next `room.join` sent with
    /// `startsPositions` (see ``sendRequest(event:dataJSON:timeout:startsPositions:)``).
    func trackPositions(room: String) {
        trackedRoom = Array(room.utf8) + [UInt8(ascii: "\"")]
        positions = PositionTracker()
    }

    /// Sends `session.hello` resuming `room` from `previous`'s position and follows the room from
    /// there (``PositionTracker/init(resuming:)``). The future gives the text of the hello's ack
    /// (it fails like any request, after `replyTimeout`); ``catchUp`` completes once the room's
    /// event at `target` has arrived (or a `state.refresh` at or after it), and fails if the
    /// connection closes first or `catchUpTimeout` after the hello.
    func resume(
        room: String, from previous: PositionTracker, target: RoomPosition, replyTimeout: TimeAmount, catchUpTimeout: TimeAmount
    ) -> EventLoopFuture<[UInt8]> {
        guard let context, state == .open, catchUpWait == nil else {
            return upgraded.futureResult.eventLoop.makeFailedFuture(BenchError.connectionClosed("not open"))
        }
        guard let position = previous.position else {
            return context.eventLoop.makeFailedFuture(BenchError.invalidOption("nothing to resume from: no position seen"))
        }
        trackedRoom = Array(room.utf8) + [UInt8(ascii: "\"")]
        positions = PositionTracker(resuming: previous)
        let promise = context.eventLoop.makePromise(of: CatchUp.self)
        let timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: catchUpTimeout) { [weak self] in
            guard let self, let wait = self.catchUpWait, wait.promise.futureResult === promise.futureResult else { return }
            self.catchUpWait = nil
            promise.fail(BenchError.timeout("not caught up within \(catchUpTimeout.nanoseconds / 1_000_000) ms of the hello"))
        }
        catchUpWait = CatchUpWait(target: target, helloSentAtNanos: unixNanos(), promise: promise, timeout: timeoutTask)
        catchUp = promise.futureResult
        // The room name is the bench's own (validated, no escaping needed); so is the epoch.
        let data = #"{"resume":{"\#(room)":"\#(position)"}}"#
        return sendRequest(event: "session.hello", dataJSON: data, timeout: replyTimeout)
    }

    private func trackPosition(_ payload: UnsafeRawBufferPointer, isMessage: Bool, now: Int64) {
        guard MessageScanner.isRoom(trackedRoom, in: payload), let id = MessageScanner.eventID(in: payload) else { return }
        positions?.observe(epoch: UnsafeRawBufferPointer(rebasing: payload[id.epoch]), offset: id.offset, isMessage: isMessage)
        checkCatchUp(now: now)
    }

    private func trackRefresh(_ payload: UnsafeRawBufferPointer, now: Int64) {
        guard MessageScanner.isRoom(trackedRoom, in: payload), let id = MessageScanner.eventID(in: payload) else { return }
        positions?.refresh(epoch: UnsafeRawBufferPointer(rebasing: payload[id.epoch]), offset: id.offset)
        checkCatchUp(now: now)
    }

    private func checkCatchUp(now: Int64) {
        guard let wait = catchUpWait, positions?.hasReached(wait.target) == true else { return }
        catchUpWait = nil
        wait.timeout?.cancel()
        wait.promise.succeed(CatchUp(helloSentAtNanos: wait.helloSentAtNanos, caughtUpAtNanos: now))
    }

    // MARK: Soak

    /// Follows `room` as a soak user whose view so far is `tracker`: joins it (`room.join`) the
    /// first time, resumes it from the tracker's position (`session.hello`) after that. The
    /// future gives the ack's text.
    func soakEnter(room: String, tracker: SoakTracker, timeout: TimeAmount) -> EventLoopFuture<[UInt8]> {
        trackedRoom = Array(room.utf8) + [UInt8(ascii: "\"")]
        var tracker = tracker
        guard tracker.hasJoined, let epoch = tracker.epoch else {
            soak = tracker
            return sendRequest(event: "room.join", dataJSON: #"{"room":"\#(room)"}"#, timeout: timeout, startsSoak: true)
        }
        tracker.resumed()
        soak = tracker
        // The room name is the bench's own (validated, no escaping needed); so is the epoch.
        let position = String(decoding: epoch, as: UTF8.self) + ":" + String(tracker.base)
        return sendRequest(event: "session.hello", dataJSON: #"{"resume":{"\#(room)":"\#(position)"}}"#, timeout: timeout)
    }

    private func soakObserve(_ payload: UnsafeRawBufferPointer) {
        guard MessageScanner.isRoom(trackedRoom, in: payload), let id = MessageScanner.eventID(in: payload) else { return }
        soak?.observe(epoch: UnsafeRawBufferPointer(rebasing: payload[id.epoch]), offset: id.offset)
    }

    /// Writes a `message.send` frame, or only its first half with `half`, then closes TCP: a
    /// client that vanishes before the ack, or in the middle of a frame. The future completes when
    /// the channel is closed.
    func dropWriting(half: Bool) -> EventLoopFuture<Void> {
        guard let context else { return upgraded.futureResult.eventLoop.makeSucceededVoidFuture() }
        guard state == .open, let encoder else { return drop() }
        var frame = context.channel.allocator.buffer(capacity: encoder.approximateFrameSize)
        nextMessageID += 1
        encoder.write(sentAtNanos: unixNanos(), id: nextMessageID, maskKey: nextMaskKey(), into: &frame)
        if half { frame = frame.getSlice(at: frame.readerIndex, length: max(1, frame.readableBytes / 2)) ?? frame }
        state = .closed
        let channel = context.channel
        // Closed once the half is on the wire, so that the server reads it before the end.
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in channel.close(promise: nil) }
        return channel.closeFuture
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

    /// Closes TCP at once, without a Close frame: a client that vanished (the server notices at
    /// once, protocol §4). Nothing more is read. The future completes when the channel is closed.
    func drop() -> EventLoopFuture<Void> {
        guard let context else { return upgraded.futureResult.eventLoop.makeSucceededVoidFuture() }
        // Not .open any more, so the close is not counted as the server's.
        state = .closed
        let closed = context.channel.closeFuture
        context.close(promise: nil)
        return closed
    }

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

/// What a burst of `message.send` got back (``BenchClientHandler/sendBurst(count:window:timeout:)``).
struct BurstOutcome: Sendable {
    var acks = 0
    var errors = 0
    /// The `eid` of the last ack: the position of the burst's last message.
    var lastAck: RoomPosition?
}
