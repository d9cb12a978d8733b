import Foundation
import Logging
import NIOCore
import NIOWebSocket

/// The last handler of an upgraded channel: applies RFC 6455 to inbound frames (through the
/// ``InboundMessageAssembler``), answers pings, runs the close handshake, and hands complete
/// messages to the ``MessageDispatcher``.
final class WebSocketConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let socket: Socket
    let switchboard: SwitchboardServer
    /// The handshake, until the connection is open; only what must outlive it is kept after.
    private var handshake: AcceptedHandshake?
    private let slot: ConnectionSlot?
    private var registered = false
    /// Set once the connection failed (a protocol error): what still arrives is dropped.
    private var failed = false

    init(socket: Socket, switchboard: SwitchboardServer, accepted: AcceptedHandshake) {
        self.socket = socket
        self.switchboard = switchboard
        self.handshake = accepted
        self.slot = accepted.slot
    }

    func handlerAdded(context: ChannelHandlerContext) {
        socket.context = context
        socket.frameWriter = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        if context.channel.isActive {
            open(context: context)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        open(context: context)
        context.fireChannelActive()
    }

    private func open(context: ChannelHandlerContext) {
        guard !registered, let handshake else { return }
        registered = true
        self.handshake = nil
        socket.hub.add(socket)
        socket.hub.metrics.connectionsOpened &+= 1
        switchboard.logger.info(
            "connected",
            metadata: [
                "socket": "\(socket.id)", "user": "\(socket.user.id)",
                "remote": "\(context.channel.remoteAddress.map { "\($0)" } ?? "-")",
                "uri": "\(handshake.redactedURI)",
            ]
        )
        if case .events = switchboard.mode, !handshake.rooms.isEmpty {
            socket.pendingRooms = handshake.rooms
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        disconnected()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disconnected()
        socket.context = nil
        socket.frameWriter = nil
    }

    private func disconnected() {
        if !registered, let handshake {
            // Closed before it ever opened: only the connection slot is to be given back.
            self.handshake = nil
            switchboard.abandon(handshake)
            return
        }
        guard registered, socket.state != .closed else { return }
        let wasClosing = socket.state == .closing
        socket.state = .closed
        // Messages still waiting for their turn are dropped (the client resends what it has no
        // reply for); a handler already running goes on to its end.
        MessageDispatcher.dropWaiting(socket, switchboard: switchboard)
        socket.hub.remove(socket)
        // 1006: no Close frame was exchanged (RFC 6455 §7.1.5).
        socket.hub.metrics.closes[socket.closeCode ?? 1006, default: 0] += 1
        switchboard.rooms.leaveAll(socket)
        if let slot { switchboard.connectionSlots.release(slot) }
        let seconds = Double((NIODeadline.now() - socket.connectedAt).nanoseconds) / 1e9
        switchboard.logger.info(
            "disconnected",
            metadata: [
                "socket": "\(socket.id)", "user": "\(socket.user.id)",
                "code": "\(socket.closeCode.map(String.init) ?? "1006")",
                "reason": "\(socket.closeReason ?? (wasClosing ? "" : "connection lost"))",
                "duration_s": "\(String(format: "%.3f", seconds))",
                "messages_in": "\(socket.messagesIn)", "messages_out": "\(socket.messagesOut)",
            ]
        )
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard socket.state != .closed else { return }
        if failed {
            // The client answering our Close ends the linger early; anything else is dropped.
            if frame.opcode == .connectionClose { context.close(promise: nil) }
            return
        }
        socket.lastInbound = .now()
        let output = socket.assembler.receive(
            frame,
            maxMessageSize: switchboard.configuration.maxMessageSize,
            maxFragments: switchboard.configuration.maxFragments,
            deflate: socket.deflate != 0
        )
        switch output {
        case .none:
            break
        case .failure(let code, let reason):
            fail(code: code, reason: reason)
        case .control(let opcode, let payload):
            control(opcode, payload: payload, context: context)
        case .message(let opcode, var payload, let compressed):
            // After our Close, data is no longer processed (RFC 6455 §1.4).
            guard socket.state == .open else { return }
            if compressed {
                guard let inflated = inflate(payload, context: context) else { return }
                payload = inflated
            }
            socket.messagesIn &+= 1
            socket.hub.metrics.messagesIn &+= 1
            socket.lastMessage = socket.lastInbound
            if opcode == .text {
                guard payload.isValidUTF8 else {
                    fail(code: CloseCode.invalidPayload, reason: "text is not valid UTF-8")
                    return
                }
                MessageDispatcher.text(payload, from: socket, switchboard: switchboard)
            } else {
                MessageDispatcher.binary(payload, from: socket, switchboard: switchboard)
            }
        }
    }

    /// The inflated payload of a compressed message, or `nil` after failing the connection: 1009
    /// when it inflates beyond the message size limit, 1007 when it is not valid deflate data.
    private func inflate(_ payload: ByteBuffer, context: ChannelHandlerContext) -> ByteBuffer? {
        let limit = switchboard.configuration.maxMessageSize
        switch socket.hub.deflater?.inflate(payload, limit: limit, allocator: context.channel.allocator) {
        case .message(let inflated):
            return inflated
        case .tooBig:
            fail(code: CloseCode.messageTooBig, reason: "message larger than \(limit) bytes once inflated")
        case .corrupt, nil:
            fail(code: CloseCode.invalidPayload, reason: "invalid compressed data")
        }
        return nil
    }

    private func control(_ opcode: WebSocketOpcode, payload: ByteBuffer, context: ChannelHandlerContext) {
        switch opcode {
        case .ping:
            // Written and flushed at once, not queued behind the hub's batched data.
            socket.sendControl(.pong, payload: payload)
        case .pong:
            break
        default:
            receivedClose(payload, context: context)
        }
    }

    private func receivedClose(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        var payload = payload
        let channel = context.channel
        if socket.state == .closing {
            // The client answered our Close: the handshake is complete.
            channel.close(promise: nil)
            return
        }
        var replyCode = CloseCode.normal
        switch payload.readableBytes {
        case 0:
            socket.closeCode = nil
        case 1:
            fail(code: CloseCode.protocolError, reason: "close payload of one byte")
            return
        default:
            let code = payload.readInteger(as: UInt16.self) ?? 0
            guard Self.isValidCloseCode(code) else {
                fail(code: CloseCode.protocolError, reason: "invalid close code")
                return
            }
            guard payload.isValidUTF8 else {
                fail(code: CloseCode.invalidPayload, reason: "close reason is not valid UTF-8")
                return
            }
            replyCode = code
        }
        // Data queued in this turn still goes out, ahead of our Close.
        socket.flushPending()
        socket.state = .closing
        socket.closeCode = replyCode
        socket.closeReason = Self.closedByClient
        var reply = channel.allocator.buffer(capacity: 2)
        reply.writeInteger(replyCode)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reply))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// Fails the connection: a Close frame with `code`, our side of TCP shut, and what the client
    /// still sends read and dropped until it closes (see ``Socket/CloseFollowUp/linger``).
    private func fail(code: UInt16, reason: String) {
        guard !failed else { return }
        failed = true
        switchboard.logger.debug("protocol error", metadata: ["socket": "\(socket.id)", "code": "\(code)", "reason": "\(reason)"])
        if socket.state == .open {
            socket.closeOnLoop(code: code, reason: reason, then: .linger)
        } else {
            socket.channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failed, error is NIOWebSocketError || error is ByteToMessageDecoderError {
            // The frame decoder stopped at the first error and now reports the bytes it drops.
            return
        }
        if let error = error as? NIOWebSocketError {
            switch error {
            case .invalidFrameLength:
                fail(code: CloseCode.messageTooBig, reason: "message larger than \(switchboard.configuration.maxMessageSize) bytes")
            case .fragmentedControlFrame, .multiByteControlFrameLength:
                fail(code: CloseCode.protocolError, reason: "invalid control frame")
            }
        } else if error is ByteToMessageDecoderError {
            fail(code: CloseCode.protocolError, reason: "undecodable frame")
        } else {
            switchboard.logger.debug("connection error", metadata: ["socket": "\(socket.id)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    /// NIO reports the connection not writable once more than the outbound high-water mark waits
    /// in its buffer: the client reads slower than its events come. Waiting for it would let its
    /// buffer grow without bound, so it is closed as a slow consumer (4008); it resumes from
    /// history when it reconnects. The fan-out never waits on it either way.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !context.channel.isWritable, registered, socket.state == .open {
            // Not from here: this runs inside the write that crossed the mark, while the socket is
            // still appending to its pending frames; closing now would flush them mid-append.
            let (socket, switchboard, channel) = (self.socket, self.switchboard, context.channel)
            context.eventLoop.execute {
                guard socket.state == .open, !channel.isWritable else { return }
                let buffered = (try? channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? -1
                switchboard.closedSlowConsumer(socket, bufferedBytes: buffered)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // The HTTP server's graceful shutdown (Hummingbird's, on SIGTERM): the connection is
            // closed by the server's drain, at its place in the window, not with all the others
            // in this moment. The drain ends within its timeout, so the shutdown does too.
            switchboard.startDrain()
        } else if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed(context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// The client ended its side of TCP (FIN). The server runs with remote half-closure allowed
    /// (Hummingbird's HTTP needs it), so this arrives as an event, not as a close: without this
    /// handler the socket would hold its slot, rooms and presence until the heartbeat timeout.
    /// Nothing more can arrive, so no Close frame is awaited: the connection ended abnormally
    /// (1006) unless a close handshake was already under way.
    private func inputClosed(context: ChannelHandlerContext) {
        if socket.state == .closing, socket.closeReason == Self.closedByClient {
            // The client's Close came first; our reply is being written and closes the channel.
            return
        }
        if socket.state == .open {
            socket.closeReason = "connection lost (TCP closed without a Close frame)"
        }
        // Queued frames are dropped: the peer that half-closed rarely reads, and a full close
        // must not wait on it.
        socket.pending = .none
        context.close(promise: nil)
    }

    static let closedByClient = "closed by client"

    /// RFC 6455 §7.4: codes a peer may send.
    static func isValidCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014: return true
        case 3000...4999: return true
        default: return false
        }
    }
}
