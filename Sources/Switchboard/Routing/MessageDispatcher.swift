import Foundation
import Logging
import NIOCore

/// Turns complete inbound messages into handler calls and replies. Runs on the socket's event
/// loop; only app handlers registered with ``EventRouter/on(_:as:_:)-(_,_,(Payload,EventContext)->Result)``
/// leave it, in a task.
enum MessageDispatcher {
    static func text(_ payload: ByteBuffer, from socket: Socket, switchboard: Switchboard) {
        guard case .events(let router) = switchboard.mode else {
            socket.deliver(OutboundFrame.make(opcode: .text, payload: payload, allocator: socket.channel.allocator))
            return
        }
        let message = Data(payload.readableBytesView)
        let envelope: InboundEnvelope
        do {
            envelope = try InboundEnvelope.parse(message, decoder: socket.hub.decoder)
        } catch {
            switch error {
            case .notJSON:
                reject(socket, id: nil, EventError(code: EventError.Code.badJSON, message: "the message is not valid JSON"), switchboard: switchboard)
            case .notEnvelope(let reason):
                reject(socket, id: nil, EventError(code: EventError.Code.badEnvelope, message: reason), switchboard: switchboard)
            }
            return
        }
        if let id = envelope.id, id.utf8.count > switchboard.configuration.maxEnvelopeIDLength {
            reject(socket, id: nil, EventError(code: EventError.Code.badEnvelope, message: "\"id\" longer than \(switchboard.configuration.maxEnvelopeIDLength) bytes"), switchboard: switchboard)
            return
        }
        switchboard.logger.debug("message", metadata: ["socket": "\(socket.id)", "event": "\(envelope.event)"])
        guard let route = router.routes[envelope.event] else {
            reject(socket, id: envelope.id, EventError(code: EventError.Code.unknownEvent, message: "no handler for \"\(envelope.event)\""), switchboard: switchboard)
            return
        }
        let context = EventContext(socket: socket, switchboard: switchboard, id: envelope.id)
        switch route {
        case .onLoop(let handle):
            do {
                let result = try handle(message, envelope.hasData, context, socket.hub.decoder)
                accepted(socket)
                reply(to: socket, id: envelope.id, result: result)
            } catch let error as EventError {
                reject(socket, id: envelope.id, error, switchboard: switchboard)
            } catch {
                handlerFailed(socket, id: envelope.id, event: envelope.event, error: error, switchboard: switchboard)
            }
        case .task(let prepare):
            let run: EventRouter.Run
            do {
                run = try prepare(message, envelope.hasData, socket.hub.decoder)
            } catch {
                reject(socket, id: envelope.id, EventError(error), switchboard: switchboard)
                return
            }
            accepted(socket)
            Self.run(run, context, socket: socket, id: envelope.id, event: envelope.event, switchboard: switchboard)
        }
    }

    static func binary(_ payload: ByteBuffer, from socket: Socket, switchboard: Switchboard) {
        guard case .events(let router) = switchboard.mode else {
            socket.deliver(OutboundFrame.make(opcode: .binary, payload: payload, allocator: socket.channel.allocator))
            return
        }
        var payload = payload
        guard let headerLength = payload.readInteger(as: UInt32.self), Int(headerLength) <= payload.readableBytes,
            let headerBytes = payload.readBytes(length: Int(headerLength))
        else {
            reject(socket, id: nil, EventError(code: EventError.Code.badBinaryEnvelope, message: "a binary message starts with a 4-byte header length and a JSON header"), switchboard: switchboard)
            return
        }
        let header = Data(headerBytes)
        let envelope: InboundEnvelope
        do {
            envelope = try InboundEnvelope.parse(header, decoder: socket.hub.decoder)
        } catch {
            reject(socket, id: nil, EventError(code: EventError.Code.badBinaryEnvelope, message: "the binary header is not a JSON envelope"), switchboard: switchboard)
            return
        }
        guard let route = router.binaryRoutes[envelope.event] else {
            reject(socket, id: envelope.id, EventError(code: EventError.Code.unknownEvent, message: "no binary handler for \"\(envelope.event)\""), switchboard: switchboard)
            return
        }
        let run: EventRouter.BinaryRun
        do {
            run = try route(header, envelope.hasData, payload, socket.hub.decoder)
        } catch {
            reject(socket, id: envelope.id, EventError(error), switchboard: switchboard)
            return
        }
        accepted(socket)
        let context = EventContext(socket: socket, switchboard: switchboard, id: envelope.id)
        Self.run(run, context, socket: socket, id: envelope.id, event: envelope.event, switchboard: switchboard)
    }

    /// Joins the rooms of the handshake. Nothing is sent: the server speaks first only when
    /// asked (`session.hello`), so a client's first read is always a reply it expects.
    static func joinHandshakeRooms(_ socket: Socket, rooms: [String], switchboard: Switchboard) {
        guard case .events = switchboard.mode else { return }
        for room in rooms {
            switchboard.rooms.join(socket, room: room)
        }
    }

    // MARK: replies

    /// An ack for a handled message, when the client gave an id to answer to.
    static func reply(to socket: Socket, id: String?, result: Data?) {
        guard let id else { return }
        let header = OutboundMessage.Header(event: "ack", id: id)
        socket.deliver(OutboundMessage.frame(header, dataJSON: result, allocator: socket.channel.allocator))
    }

    /// An error reply for a message that was not handled; invalid messages count against the socket.
    static func reject(_ socket: Socket, id: String?, _ error: EventError, switchboard: Switchboard) {
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

    private static func accepted(_ socket: Socket) {
        if socket.invalidScore > 0 { socket.invalidScore -= 1 }
    }

    static func handlerFailed(_ socket: Socket, id: String?, event: String, error: any Error, switchboard: Switchboard) {
        switchboard.logger.error("handler failed", metadata: ["socket": "\(socket.id)", "event": "\(event)", "error": "\(error)"])
        socket.deliver(OutboundMessage.errorFrame(id: id, code: EventError.Code.handlerFailed, message: "the handler failed", allocator: socket.channel.allocator))
    }
}

extension MessageDispatcher {
    /// Runs an app handler in a task and sends its ack or error reply from there.
    fileprivate static func run(_ handler: @escaping EventRouter.Run, _ context: EventContext, socket: Socket, id: String?, event: String, switchboard: Switchboard) {
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
