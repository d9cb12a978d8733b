import Foundation
import NIOCore

/// Sends the reply to one client message, and hands it to the idempotency store when the
/// message's id is remembered, so that a retry gets the same bytes.
///
/// Only acks are remembered: after an error reply a retry is handled anew (the error may have been
/// passing, and a handler that failed did not finish its work).
struct Responder: Sendable {
    let socket: Socket
    let id: String?
    let event: String
    let switchboard: SwitchboardServer
    /// The key this attempt holds as the first, once the store has said so.
    private(set) var claimedKey: IdempotencyKey?

    init(socket: Socket, id: String?, event: String, switchboard: SwitchboardServer) {
        self.socket = socket
        self.id = id
        self.event = event
        self.switchboard = switchboard
    }

    /// The key to claim for this message, `nil` when its id is not remembered.
    var idempotencyKey: IdempotencyKey? {
        guard let id, !MessageDispatcher.connectionEvents.contains(event) else { return nil }
        return IdempotencyKey(user: socket.user.id, id: id)
    }

    /// After the claim: `true` when this is the first attempt and its handler is to run; otherwise
    /// the reply has been (or, for an attempt still running elsewhere, will be) sent from here.
    mutating func proceed(after outcome: MessageDispatcher.ClaimOutcome) -> Bool {
        let socket = self.socket
        let switchboard = self.switchboard
        switch outcome {
        case .success(.first):
            claimedKey = idempotencyKey
            return true
        case .success(.replied(let frame)):
            socket.deliver(frame)
        case .success(.inProgress(let reply)):
            socket.busy = true
            let id = self.id
            reply.whenComplete { result in
                switch result {
                case .success(let frame):
                    socket.deliver(frame)
                case .failure:
                    socket.deliver(Self.unavailableFrame(id: id, socket: socket))
                }
                MessageDispatcher.finished(socket, switchboard: switchboard)
            }
        case .success(.conflict):
            socket.deliver(
                OutboundMessage.errorFrame(
                    id: id, code: EventError.Code.idempotencyConflict,
                    message: "this id was used for another message; ids must be unique per user", allocator: socket.channel.allocator))
        case .failure(let error):
            switchboard.logger.error("idempotency store failed", metadata: ["socket": "\(socket.id)", "event": "\(event)", "error": "\(error)"])
            socket.deliver(Self.unavailableFrame(id: id, socket: socket))
        }
        return false
    }

    /// The ack, with the handler's result as its `data` (JSON bytes).
    func ack(_ data: ByteBuffer?) {
        guard let id else { return }
        send(OutboundMessage.frame(OutboundMessage.Header(event: "ack", id: id), dataJSON: data, allocator: socket.channel.allocator), remember: true)
    }

    /// The ack, with the handler's result as its `data` (JSON from an app handler).
    func ack(_ data: Foundation.Data?) {
        guard let id else { return }
        send(OutboundMessage.frame(OutboundMessage.Header(event: "ack", id: id), dataJSON: data, allocator: socket.channel.allocator), remember: true)
    }

    /// An error reply for a message that was refused before or by its handler; invalid messages
    /// count against the connection (``MessageDispatcher/reject(_:id:_:switchboard:)``).
    func reject(_ error: EventError) {
        send(OutboundMessage.errorFrame(id: id, code: error.code, message: error.message, allocator: socket.channel.allocator), remember: false)
        MessageDispatcher.countInvalid(socket, code: error.code, switchboard: switchboard)
    }

    /// The reply for a handler or service that failed: an ``EventError`` as it is; anything else
    /// is logged and reported as `otherwise` (`handler_error` for app code, `unavailable` for the
    /// broker and the stores).
    func fail(_ error: any Error, otherwise code: String = EventError.Code.handlerFailed) {
        if let error = error as? EventError {
            send(OutboundMessage.errorFrame(id: id, code: error.code, message: error.message, allocator: socket.channel.allocator), remember: false)
            return
        }
        switchboard.logger.error("handler failed", metadata: ["socket": "\(socket.id)", "event": "\(event)", "error": "\(error)"])
        let message = code == EventError.Code.unavailable ? "the server could not complete this now; try again" : "the handler failed"
        send(OutboundMessage.errorFrame(id: id, code: code, message: message, allocator: socket.channel.allocator), remember: false)
    }

    private func send(_ frame: ByteBuffer, remember: Bool) {
        if let claimedKey {
            switchboard.idempotency.complete(claimedKey, reply: frame, remember: remember)
        }
        socket.deliver(frame)
    }

    static func unavailableFrame(id: String?, socket: Socket) -> ByteBuffer {
        OutboundMessage.errorFrame(
            id: id, code: EventError.Code.unavailable, message: "the server could not complete this now; try again", allocator: socket.channel.allocator)
    }
}
