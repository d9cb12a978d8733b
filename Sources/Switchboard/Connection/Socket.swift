import Foundation
import NIOCore
import NIOWebSocket

/// One open WebSocket connection of an authenticated user.
///
/// Handlers receive it in their ``EventContext``; ``RoomManager`` takes it to join, leave and
/// exclude from broadcasts. Its methods may be called from any thread.
public final class Socket: @unchecked Sendable {
    // @unchecked Sendable: the `let` properties are immutable; `joinedRooms` and `departed` are only touched under
    // the RoomManager's lock for this socket; every other `var` is confined to `eventLoop` (each access either runs on
    // it or hops to it first), which is how NIO channel handlers keep their own state.

    /// This connection's id.
    public let id: SocketID
    /// The user the handshake authenticated.
    public let user: AuthenticatedUser
    /// The event loop this connection's I/O runs on.
    public let eventLoop: any EventLoop
    let channel: any Channel
    let hub: LoopHub

    // Guarded by the RoomManager's lock for this socket's list of rooms.
    var joinedRooms: [String] = []
    /// Set when the connection has left every room for good (it ended): a join that completes
    /// later (after an async authorization, say) must not add it back.
    var departed = false

    // Confined to `eventLoop`.
    enum State { case open, closing, closed }
    var state: State = .open
    /// The connection handler's context: control frames go through NIO's frame encoder from here.
    var context: ChannelHandlerContext?
    /// The frame encoder's context: pre-built frames written here skip the encoder.
    var frameWriter: ChannelHandlerContext?
    var assembler = InboundMessageAssembler()
    let connectedAt: NIODeadline
    var lastInbound: NIODeadline
    var lastMessage: NIODeadline
    var lastPing: NIODeadline
    let expiresAt: NIODeadline?
    var messagesIn: UInt32 = 0
    var messagesOut: UInt32 = 0
    var invalidScore: Int32 = 0
    /// Frames of this loop turn; the hub writes and flushes them at its end.
    var pending: PendingFrames = .none
    var hubIndex = -1
    var closeCode: UInt16?
    var closeReason: String?
    /// permessage-deflate: 0 when not negotiated, else the window bits the server compresses
    /// with (9...15). One byte, so that compression costs an idle connection nothing.
    var deflate: UInt8 = 0
    /// Whether a message of this connection is being handled off the loop (a handler task, a
    /// reply that waits for the broker): later messages wait in `handlers` until it is done.
    var busy = false
    /// Replies of pipelined messages (``EventRouter/Route/pipelined(_:)``) still waiting for the
    /// broker.
    var inFlight: UInt16 = 0
    /// The messages waiting for the one being handled; `nil` when none wait.
    var handlers: HandlerQueue?
    /// The rooms of the handshake (membership store, token claim), joined on the connection's first
    /// message, so that a `session.hello` can resume them; `nil` once joined.
    var pendingRooms: [String]?
    /// One token bucket per limited event class (``EventRateLimiter``); empty (no allocation)
    /// until the connection's first limited event.
    var rateBuckets: [Int64] = []

    init(id: SocketID, user: AuthenticatedUser, channel: any Channel, hub: LoopHub) {
        self.id = id
        self.user = user
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.hub = hub
        let now = NIODeadline.now()
        self.connectedAt = now
        self.lastInbound = now
        self.lastMessage = now
        self.lastPing = now
        if let expiry = user.expiresAt {
            let remaining = expiry.timeIntervalSinceNow
            self.expiresAt = now + .nanoseconds(Int64(max(0, min(remaining, 1e9)) * 1e9))
        } else {
            self.expiresAt = nil
        }
    }

    /// Sends one event to this connection only. `data` is encoded on the calling thread.
    public func send<Data: Encodable>(event: String, data: Data) throws {
        let frame = try OutboundMessage.frame(event: event, data: data, allocator: channel.allocator)
        deliver(frame)
    }

    /// Sends a binary message: a JSON header `{event, data}` followed by `payload`, as the binary
    /// envelope in `docs/protocol.md` describes.
    public func sendBinary<Data: Encodable>(event: String, data: Data, payload: ByteBuffer) throws {
        let frame = try OutboundMessage.binaryFrame(event: event, data: data, payload: payload, allocator: channel.allocator)
        deliver(frame)
    }

    /// Closes the connection with `code` (see ``CloseCode``) after a close handshake.
    public func close(code: UInt16 = CloseCode.normal, reason: String = "") {
        if eventLoop.inEventLoop {
            closeOnLoop(code: code, reason: reason, then: .awaitReply)
        } else {
            eventLoop.execute { self.closeOnLoop(code: code, reason: reason, then: .awaitReply) }
        }
    }

    /// Writes a complete frame, from any thread, and flushes it in this loop turn.
    func deliver(_ frame: ByteBuffer) {
        if eventLoop.inEventLoop {
            enqueue(frame)
            hub.scheduleFlush()
        } else {
            eventLoop.execute {
                self.enqueue(frame)
                self.hub.scheduleFlush()
            }
        }
    }

    /// On the loop: queues a complete frame made for this connection alone (a reply, a replay),
    /// compressed first if the connection negotiated permessage-deflate and it is large enough;
    /// the hub writes and flushes it at the end of the loop turn.
    func enqueue(_ frame: ByteBuffer) {
        if deflate != 0, let deflater = hub.deflater, let compressed = deflater.compressed(frame, windowBits: deflate, allocator: channel.allocator) {
            enqueueShared(compressed)
        } else {
            enqueueShared(frame)
        }
    }

    /// On the loop: queues a complete frame as it is (a broadcast's, already in the form this
    /// connection takes); the hub writes and flushes it at the end of the loop turn, with any
    /// other frame queued for this connection in the same turn.
    func enqueueShared(_ frame: ByteBuffer) {
        guard state == .open, let frameWriter else { return }
        if case .none = pending {
            hub.markNeedsFlush(self)
        }
        pending.append(frame, writer: frameWriter)
        messagesOut &+= 1
        hub.metrics.messagesOut &+= 1
        hub.metrics.bytesOut &+= frame.readableBytes
    }

    /// On the loop: hands the queued frames to NIO and flushes them.
    func flushPending() {
        let frames = pending
        pending = .none
        // After our Close frame no data may follow (RFC 6455 §5.5.1): whatever was queued
        // before it was flushed by closeOnLoop.
        guard state == .open, let frameWriter else { return }
        frames.flush(to: frameWriter)
    }

    /// On the loop: writes and flushes a control frame through NIO's encoder.
    func sendControl(_ opcode: WebSocketOpcode, payload: ByteBuffer) {
        guard let context else { return }
        let frame = WebSocketFrame(fin: true, opcode: opcode, data: payload)
        context.writeAndFlush(NIOAny(frame), promise: nil)
    }

    /// What follows a Close frame the server sends.
    enum CloseFollowUp {
        /// The close handshake: wait up to the close timeout for the client's Close.
        case awaitReply
        /// Failing the connection after a protocol error: our side of TCP is shut at once, and
        /// input is read and dropped until the client closes or the close timeout passes. Closing
        /// with unread input would make the kernel send a reset, which can destroy the Close frame
        /// before the client reads it and breaks the client's next write.
        case linger
        /// A peer that stopped answering: TCP is closed as soon as the Close frame is written.
        case closeNow
        /// A peer that does not read: the Close frame waits behind what it has not read, so TCP
        /// is closed once it is written or after `slowConsumerCloseDeadline`, whichever is first.
        case abandon
    }

    /// How long a slow consumer's Close frame may wait behind its unread events.
    static let slowConsumerCloseDeadline = TimeAmount.seconds(1)

    /// On the loop: sends a Close frame with `code` and `reason`, then goes on as `then` says.
    func closeOnLoop(code: UInt16, reason: String, then followUp: CloseFollowUp) {
        guard state == .open, let context else { return }
        // Data queued in this turn goes out before the Close frame, never after it.
        flushPending()
        state = .closing
        closeCode = code
        closeReason = reason
        var payload = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        payload.writeInteger(code)
        payload.writeString(String(decoding: reason.utf8.prefix(123), as: UTF8.self))
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)
        let channel = self.channel
        let written = context.writeAndFlush(NIOAny(frame))
        switch followUp {
        case .awaitReply, .linger:
            if handlers?.readsPaused == true {
                // The client's Close (or its FIN) must be read for the connection to end early.
                channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            }
            if case .linger = followUp {
                written.whenComplete { _ in
                    channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
                }
            }
            let timer = eventLoop.scheduleTask(in: hub.closeTimeout) { channel.close(promise: nil) }
            channel.closeFuture.whenComplete { _ in timer.cancel() }
        case .closeNow:
            written.whenComplete { _ in channel.close(promise: nil) }
        case .abandon:
            written.whenComplete { _ in channel.close(promise: nil) }
            let timer = eventLoop.scheduleTask(in: Self.slowConsumerCloseDeadline) { channel.close(promise: nil) }
            channel.closeFuture.whenComplete { _ in timer.cancel() }
        }
    }
}
