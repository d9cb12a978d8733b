import Foundation
import Logging
import NIOCore

/// Turns complete inbound messages into handler calls and replies. Runs on the socket's event
/// loop; only app handlers registered with ``EventRouter/on(_:as:_:)-(_,_,(Payload,EventContext)->Result)``
/// leave it, in a task.
enum MessageDispatcher {
    static func text(_ payload: ByteBuffer, from socket: Socket, switchboard: SwitchboardServer) {
        guard case .events(let router) = switchboard.mode else {
            socket.deliver(OutboundFrame.make(opcode: .text, payload: payload, allocator: socket.channel.allocator))
            return
        }
        payload.withUnsafeReadableBytes { message in
            guard let envelope = envelope(of: message, socket: socket, switchboard: switchboard, badCode: nil) else { return }
            switchboard.logger.debug("message", metadata: ["socket": "\(socket.id)", "event": "\(envelope.event)"])
            if socket.pendingRooms != nil, envelope.event != "session.hello" {
                joinPendingRooms(socket, switchboard: switchboard)
            }
            guard let route = router.routes[envelope.event] else {
                reject(socket, id: envelope.id, EventError(code: EventError.Code.unknownEvent, message: "no handler for \"\(envelope.event)\""), switchboard: switchboard)
                return
            }
            let data = InboundPayload(message: message, range: envelope.data)
            let context = EventContext(socket: socket, switchboard: switchboard, id: envelope.id)
            switch route {
            case .onLoop(let handle):
                do {
                    let result = try handle(data, context, socket.hub.decoder)
                    accepted(socket)
                    switch result {
                    case .now(let data):
                        reply(to: socket, id: envelope.id, result: data)
                    case .later(let future):
                        replyLater(future, to: socket, id: envelope.id, event: envelope.event, switchboard: switchboard)
                    }
                } catch let error as EventError {
                    reject(socket, id: envelope.id, error, switchboard: switchboard)
                } catch {
                    handlerFailed(socket, id: envelope.id, event: envelope.event, error: error, switchboard: switchboard)
                }
            case .task(let prepare):
                let run: EventRouter.Run
                do {
                    run = try prepare(data, socket.hub.decoder)
                } catch {
                    reject(socket, id: envelope.id, EventError(error), switchboard: switchboard)
                    return
                }
                accepted(socket)
                Self.run(run, context, socket: socket, id: envelope.id, event: envelope.event, switchboard: switchboard)
            }
        }
    }

    static func binary(_ payload: ByteBuffer, from socket: Socket, switchboard: SwitchboardServer) {
        guard case .events(let router) = switchboard.mode else {
            socket.deliver(OutboundFrame.make(opcode: .binary, payload: payload, allocator: socket.channel.allocator))
            return
        }
        var payload = payload
        guard let headerLength = payload.readInteger(as: UInt32.self), Int(headerLength) <= payload.readableBytes,
            let header = payload.readSlice(length: Int(headerLength))
        else {
            reject(socket, id: nil, EventError(code: EventError.Code.badBinaryEnvelope, message: "a binary message starts with a 4-byte header length and a JSON header"), switchboard: switchboard)
            return
        }
        header.withUnsafeReadableBytes { headerBytes in
            // The header is text inside a binary frame: the transport has not checked its UTF-8.
            guard header.isValidUTF8 else {
                reject(socket, id: nil, EventError(code: EventError.Code.badBinaryEnvelope, message: "the binary header is not UTF-8"), switchboard: switchboard)
                return
            }
            guard let envelope = envelope(of: headerBytes, socket: socket, switchboard: switchboard, badCode: EventError.Code.badBinaryEnvelope) else {
                return
            }
            if socket.pendingRooms != nil {
                joinPendingRooms(socket, switchboard: switchboard)
            }
            guard let route = router.binaryRoutes[envelope.event] else {
                reject(socket, id: envelope.id, EventError(code: EventError.Code.unknownEvent, message: "no binary handler for \"\(envelope.event)\""), switchboard: switchboard)
                return
            }
            let run: EventRouter.BinaryRun
            do {
                run = try route(InboundPayload(message: headerBytes, range: envelope.data), payload, socket.hub.decoder)
            } catch {
                reject(socket, id: envelope.id, EventError(error), switchboard: switchboard)
                return
            }
            accepted(socket)
            let context = EventContext(socket: socket, switchboard: switchboard, id: envelope.id)
            Self.run(run, context, socket: socket, id: envelope.id, event: envelope.event, switchboard: switchboard)
        }
    }

    /// The envelope of a message, or `nil` after replying with the error; `badCode` replaces the
    /// usual `bad_json`/`bad_envelope` codes (for binary headers).
    private static func envelope(
        of message: UnsafeRawBufferPointer,
        socket: Socket,
        switchboard: SwitchboardServer,
        badCode: String?
    ) -> (event: String, id: String?, data: Range<Int>?)? {
        switch JSONScanner.scanEnvelope(message) {
        case .notJSON:
            reject(socket, id: nil, EventError(code: badCode ?? EventError.Code.badJSON, message: "the message is not valid JSON"), switchboard: switchboard)
            return nil
        case .notEnvelope(let reason):
            reject(socket, id: nil, EventError(code: badCode ?? EventError.Code.badEnvelope, message: reason), switchboard: switchboard)
            return nil
        case .envelope(let event, let id, let data):
            let maxLength = switchboard.configuration.maxEnvelopeIDLength
            if let id, id.utf8.count > maxLength {
                reject(socket, id: nil, EventError(code: badCode ?? EventError.Code.badEnvelope, message: "\"id\" longer than \(maxLength) bytes"), switchboard: switchboard)
                return nil
            }
            return (event, id, data)
        }
    }

    /// Joins the rooms of the handshake, on the connection's first message (with the positions of
    /// `resume`, for `session.hello`). Returns the joins, each to be finished (``RoomManager/
    /// finish(_:)``) once its outcome has been reported; without a reply to wait for, pass
    /// `finishAtOnce`.
    @discardableResult
    static func joinPendingRooms(
        _ socket: Socket,
        resume: [String: EventID] = [:],
        finishAtOnce: Bool = true,
        switchboard: SwitchboardServer
    ) -> [(room: String, join: EventLoopFuture<RoomManager.PreparedJoin>)] {
        guard let rooms = socket.pendingRooms else { return [] }
        socket.pendingRooms = nil
        return rooms.map { room in
            let join = switchboard.rooms.prepareJoin(socket, room: room, since: resume[room], snapshot: switchboard.snapshot)
            if finishAtOnce {
                join.whenComplete { result in
                    switch result {
                    case .success(let prepared):
                        switchboard.rooms.finish(prepared)
                    case .failure(let error):
                        switchboard.logger.error("joining a room of the handshake failed", metadata: ["room": "\(room)", "socket": "\(socket.id)", "error": "\(error)"])
                    }
                }
            }
            return (room, join)
        }
    }

    // MARK: replies

    /// An ack for a handled message, when the client gave an id to answer to.
    static func reply(to socket: Socket, id: String?, result: Data?) {
        guard let id else { return }
        let header = OutboundMessage.Header(event: "ack", id: id)
        socket.deliver(OutboundMessage.frame(header, dataJSON: result, allocator: socket.channel.allocator))
    }

    /// An ack for a message handled on the event loop.
    static func reply(to socket: Socket, id: String?, result: ByteBuffer?) {
        guard let id else { return }
        let header = OutboundMessage.Header(event: "ack", id: id)
        socket.deliver(OutboundMessage.frame(header, dataJSON: result, allocator: socket.channel.allocator))
    }

    /// An error reply for a message that was not handled; invalid messages count against the socket.
    static func reject(_ socket: Socket, id: String?, _ error: EventError, switchboard: SwitchboardServer) {
        socket.deliver(OutboundMessage.errorFrame(id: id, code: error.code, message: error.message, allocator: socket.channel.allocator))
        switch error.code {
        case EventError.Code.badJSON, EventError.Code.badEnvelope, EventError.Code.unknownEvent,
            EventError.Code.invalidPayload, EventError.Code.validationFailed, EventError.Code.badBinaryEnvelope:
            socket.invalidScore += 1
            if socket.invalidScore >= switchboard.configuration.maxInvalidMessages {
                socket.closeOnLoop(code: CloseCode.policyViolation, reason: "too many invalid messages", waitForReply: true)
            }
        default:
            break
        }
    }

    /// Sends the ack of an on-loop handler whose answer waited for the broker, then its follow-up.
    private static func replyLater(_ future: EventLoopFuture<DeferredReply>, to socket: Socket, id: String?, event: String, switchboard: SwitchboardServer) {
        future.whenComplete { result in
            switch result {
            case .success(let deferred):
                reply(to: socket, id: id, result: deferred.data)
                deferred.followUp?()
            case .failure(let error as EventError):
                socket.deliver(OutboundMessage.errorFrame(id: id, code: error.code, message: error.message, allocator: socket.channel.allocator))
            case .failure(let error):
                switchboard.logger.error("a service failed", metadata: ["socket": "\(socket.id)", "event": "\(event)", "error": "\(error)"])
                socket.deliver(
                    OutboundMessage.errorFrame(id: id, code: EventError.Code.unavailable, message: "the server could not complete this now; try again", allocator: socket.channel.allocator))
            }
        }
    }

    private static func accepted(_ socket: Socket) {
        if socket.invalidScore > 0 { socket.invalidScore -= 1 }
    }

    static func handlerFailed(_ socket: Socket, id: String?, event: String, error: any Error, switchboard: SwitchboardServer) {
        switchboard.logger.error("handler failed", metadata: ["socket": "\(socket.id)", "event": "\(event)", "error": "\(error)"])
        socket.deliver(OutboundMessage.errorFrame(id: id, code: EventError.Code.handlerFailed, message: "the handler failed", allocator: socket.channel.allocator))
    }
}

extension MessageDispatcher {
    /// Runs an app handler in a task and sends its ack or error reply from there.
    fileprivate static func run(_ handler: @escaping EventRouter.Run, _ context: EventContext, socket: Socket, id: String?, event: String, switchboard: SwitchboardServer) {
        Task {
            do {
                let result = try await handler(context)
                MessageDispatcher.reply(to: socket, id: id, result: result)
            } catch let error as EventError {
                socket.deliver(OutboundMessage.errorFrame(id: id, code: error.code, message: error.message, allocator: socket.channel.allocator))
            } catch {
                MessageDispatcher.handlerFailed(socket, id: id, event: event, error: error, switchboard: switchboard)
            }
        }
    }
}
