import Foundation
import Logging
import NIOCore
import NIOWebSocket

/// Turns complete inbound messages into handler calls and replies. Runs on the socket's event
/// loop; only app handlers registered with ``EventRouter/on(_:as:_:)-(_,_,(Payload,EventContext)->Result)``
/// leave it, in a task.
enum MessageDispatcher {
    /// Built-in events that act on the connection itself: their ids are not remembered, since a
    /// retry on another connection must act again.
    static let connectionEvents: Set<String> = ["session.hello", "room.join", "room.leave", "room.members", "presence.heartbeat"]

    /// How a message reaches ``text(_:from:switchboard:dispatch:)`` or ``binary(_:from:switchboard:dispatch:)``.
    enum Dispatch {
        /// Just read from the connection: it waits if the connection is busy.
        case arrived
        /// Its turn has come (from the queue), with the answer of the claim made on its arrival, if one was.
        case turn(ClaimOutcome?)
        /// The claim made at its turn has answered.
        case claimed(ClaimOutcome)

        /// The claim's answer when there is one already.
        var claimed: ClaimOutcome? {
            switch self {
            case .arrived: nil
            case .turn(let outcome): outcome
            case .claimed(let outcome): outcome
            }
        }
    }

    static func text(_ payload: ByteBuffer, from socket: Socket, switchboard: SwitchboardServer, dispatch: Dispatch = .arrived) {
        guard case .events(let router) = switchboard.mode else {
            socket.deliver(OutboundFrame.make(opcode: .text, payload: payload, allocator: socket.channel.allocator))
            return
        }
        payload.withUnsafeReadableBytes { message in
            guard let envelope = envelope(of: message, socket: socket, switchboard: switchboard, badCode: nil) else { return }
            switchboard.logger.debug("message", metadata: ["socket": "\(socket.id)", "event": "\(envelope.event)"])
            let route = router.routes[envelope.event]
            let data = InboundPayload(message: message, range: envelope.data)
            var responder = Responder(socket: socket, id: envelope.id, event: envelope.event, switchboard: switchboard)
            // Limited on arrival, before the message waits for its turn or its id is claimed: a
            // refused message is not handled, and its id stays free for the retry.
            if case .arrived = dispatch, route != nil, !withinRateLimit(envelope.event, id: envelope.id, socket: socket, switchboard: switchboard) { return }
            // One message at a time per connection, in arrival order, but for pipelined events;
            // heartbeats are answered at once, so that a slow handler never makes a live
            // connection look dead.
            if case .arrived = dispatch, envelope.event != "presence.heartbeat" {
                let pipelined = route?.isPipelined ?? false
                // A pipelined message's id is claimed on arrival when the store answers later:
                // the claims of a burst then overlap instead of taking a round trip each.
                let key = pipelined && switchboard.synchronousIdempotency == nil ? responder.idempotencyKey : nil
                if key != nil || mustWait(socket, pipelined: pipelined, switchboard: switchboard) {
                    let early = key.map { EarlyClaim(key: $0) }
                    wait(.text, payload, pipelined: pipelined, claim: early, socket: socket, switchboard: switchboard)
                    if let early {
                        let fingerprint = MessageFingerprint.of(event: envelope.event, data: data.range.map { UnsafeRawBufferPointer(rebasing: message[$0]) })
                        claimAhead(early, fingerprint: fingerprint, socket: socket, switchboard: switchboard)
                    }
                    return
                }
            }
            if socket.pendingRooms != nil, envelope.event != "session.hello" {
                joinPendingRooms(socket, switchboard: switchboard)
            }
            guard let route else {
                reject(socket, id: envelope.id, EventError(code: EventError.Code.unknownEvent, message: "no handler for \"\(envelope.event)\""), switchboard: switchboard)
                return
            }
            if let claimed = dispatch.claimed {
                guard responder.proceed(after: claimed) else { return }
            } else if let key = responder.idempotencyKey {
                let fingerprint = MessageFingerprint.of(event: envelope.event, data: data.range.map { UnsafeRawBufferPointer(rebasing: message[$0]) })
                // The `resume` closure is only made when the store cannot answer in this turn.
                guard
                    let outcome = claimNow(key, fingerprint: fingerprint, socket: socket, switchboard: switchboard)
                        ?? claim(key, fingerprint: fingerprint, socket: socket, switchboard: switchboard, resume: { outcome in
                            text(payload, from: socket, switchboard: switchboard, dispatch: .claimed(outcome))
                        })
                else { return }
                guard responder.proceed(after: outcome) else { return }
            }
            let context = EventContext(socket: socket, switchboard: switchboard, id: envelope.id)
            let started = NIODeadline.now()
            switch route {
            case .onLoop(let handle), .pipelined(let handle):
                do {
                    let result = try handle(data, context, socket.hub.decoder)
                    accepted(socket)
                    switch result {
                    case .now(let data):
                        responder.ack(data)
                        socket.hub.recordHandlerLatency(since: started)
                    case .later(let future), .published(let future):
                        // A pipelined event whose handler has issued its publish: the next message
                        // may go on. Anything else holds the connection until it is answered.
                        let pipelined: Bool
                        if route.isPipelined, case .published = result { pipelined = true } else { pipelined = false }
                        let responder = responder
                        if pipelined {
                            socket.inFlight += 1
                        } else {
                            socket.busy = true
                        }
                        future.whenComplete { result in
                            switch result {
                            case .success(let deferred):
                                responder.ack(deferred.data)
                                deferred.followUp?()
                            case .failure(let error):
                                responder.fail(error, otherwise: EventError.Code.unavailable)
                            }
                            socket.hub.recordHandlerLatency(since: started)
                            if pipelined {
                                socket.inFlight -= 1
                                advance(socket, switchboard: switchboard)
                            } else {
                                finished(socket, switchboard: switchboard)
                            }
                        }
                    }
                } catch let error as EventError {
                    responder.reject(error)
                } catch {
                    responder.fail(error)
                }
            case .task(let prepare):
                let run: EventRouter.Run
                do {
                    run = try prepare(data, socket.hub.decoder)
                } catch {
                    responder.reject(EventError(error))
                    return
                }
                accepted(socket)
                Self.run(run, context, responder: responder, switchboard: switchboard, started: started)
            }
        }
    }

    static func binary(_ payload: ByteBuffer, from socket: Socket, switchboard: SwitchboardServer, dispatch: Dispatch = .arrived) {
        guard case .events(let router) = switchboard.mode else {
            socket.deliver(OutboundFrame.make(opcode: .binary, payload: payload, allocator: socket.channel.allocator))
            return
        }
        var bytes = payload
        guard let headerLength = bytes.readInteger(as: UInt32.self), Int(headerLength) <= bytes.readableBytes,
            let header = bytes.readSlice(length: Int(headerLength))
        else {
            reject(socket, id: nil, EventError(code: EventError.Code.badBinaryEnvelope, message: "a binary message starts with a 4-byte header length and a JSON header"), switchboard: switchboard)
            return
        }
        let body = bytes
        header.withUnsafeReadableBytes { headerBytes in
            // The header is text inside a binary frame: the transport has not checked its UTF-8.
            guard header.isValidUTF8 else {
                reject(socket, id: nil, EventError(code: EventError.Code.badBinaryEnvelope, message: "the binary header is not UTF-8"), switchboard: switchboard)
                return
            }
            guard let envelope = envelope(of: headerBytes, socket: socket, switchboard: switchboard, badCode: EventError.Code.badBinaryEnvelope) else {
                return
            }
            if case .arrived = dispatch {
                // Limited on arrival, as text messages are.
                if router.binaryRoutes[envelope.event] != nil, !withinRateLimit(envelope.event, id: envelope.id, socket: socket, switchboard: switchboard) { return }
                if mustWait(socket, pipelined: false, switchboard: switchboard) {
                    wait(.binary, payload, pipelined: false, claim: nil, socket: socket, switchboard: switchboard)
                    return
                }
            }
            if socket.pendingRooms != nil {
                joinPendingRooms(socket, switchboard: switchboard)
            }
            guard let route = router.binaryRoutes[envelope.event] else {
                reject(socket, id: envelope.id, EventError(code: EventError.Code.unknownEvent, message: "no binary handler for \"\(envelope.event)\""), switchboard: switchboard)
                return
            }
            let data = InboundPayload(message: headerBytes, range: envelope.data)
            var responder = Responder(socket: socket, id: envelope.id, event: envelope.event, switchboard: switchboard)
            if let claimed = dispatch.claimed {
                guard responder.proceed(after: claimed) else { return }
            } else if let key = responder.idempotencyKey {
                // The header's data and the body's length: hashing a large body on the loop would
                // cost more than the check is worth.
                var fingerprint = MessageFingerprint.of(event: envelope.event, data: data.range.map { UnsafeRawBufferPointer(rebasing: headerBytes[$0]) })
                fingerprint ^= UInt64(body.readableBytes) &* 0x9E37_79B9_7F4A_7C15
                guard
                    let outcome = claimNow(key, fingerprint: fingerprint, socket: socket, switchboard: switchboard)
                        ?? claim(key, fingerprint: fingerprint, socket: socket, switchboard: switchboard, resume: { outcome in
                            binary(payload, from: socket, switchboard: switchboard, dispatch: .claimed(outcome))
                        })
                else { return }
                guard responder.proceed(after: outcome) else { return }
            }
            let run: EventRouter.BinaryRun
            do {
                run = try route(data, body, socket.hub.decoder)
            } catch {
                responder.reject(EventError(error))
                return
            }
            accepted(socket)
            let context = EventContext(socket: socket, switchboard: switchboard, id: envelope.id)
            Self.run(run, context, responder: responder, switchboard: switchboard)
        }
    }

    // MARK: one message at a time

    /// Whether a message that just arrived must wait for its turn: something before it is still
    /// being handled. A pipelined one need not wait for replies that only wait for the broker,
    /// up to the bound of `maxHandlersInFlight`.
    private static func mustWait(_ socket: Socket, pipelined: Bool, switchboard: SwitchboardServer) -> Bool {
        if socket.busy { return true }
        if let queue = socket.handlers, !queue.waiting.isEmpty { return true }
        guard socket.inFlight > 0 else { return false }
        return !pipelined || Int(socket.inFlight) >= switchboard.configuration.maxHandlersInFlight
    }

    /// Keeps a message until its turn; past the bound, stops reading from the connection until
    /// the queue drains.
    private static func wait(
        _ opcode: WebSocketOpcode, _ payload: ByteBuffer, pipelined: Bool, claim: EarlyClaim?, socket: Socket, switchboard: SwitchboardServer
    ) {
        let queue = socket.handlers ?? HandlerQueue()
        socket.handlers = queue
        queue.waiting.append(HandlerQueue.Waiting(opcode: opcode, payload: payload, pipelined: pipelined, claim: claim))
        if !queue.readsPaused, queue.waiting.count + Int(socket.inFlight) + 1 >= switchboard.configuration.maxHandlersInFlight {
            queue.readsPaused = true
            socket.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        }
    }

    /// On the loop, when the connection's current message has been handled: the messages whose
    /// turn it is are dispatched.
    static func finished(_ socket: Socket, switchboard: SwitchboardServer) {
        socket.busy = false
        advance(socket, switchboard: switchboard)
    }

    /// On the loop: dispatches waiting messages, in order, while nothing holds them back (a busy
    /// connection, a claim not answered yet, replies a message that is not pipelined must wait
    /// for). Whatever holds them back calls this again when it is done.
    static func advance(_ socket: Socket, switchboard: SwitchboardServer) {
        guard let queue = socket.handlers else { return }
        let maxInFlight = switchboard.configuration.maxHandlersInFlight
        while !socket.busy, socket.state == .open, let next = queue.waiting.first {
            if let claim = next.claim, claim.outcome == nil { return }
            if socket.inFlight > 0, !next.pipelined || Int(socket.inFlight) >= maxInFlight { return }
            queue.waiting.removeFirst()
            let dispatch = Dispatch.turn(next.claim?.outcome)
            if next.opcode == .text {
                text(next.payload, from: socket, switchboard: switchboard, dispatch: dispatch)
            } else {
                binary(next.payload, from: socket, switchboard: switchboard, dispatch: dispatch)
            }
        }
        // A dispatch above may have run this already (a reply that was ready at once).
        guard !socket.busy, queue.waiting.isEmpty, socket.handlers === queue else { return }
        socket.handlers = nil
        if queue.readsPaused, socket.state == .open {
            socket.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        }
    }

    /// The connection ended: its waiting messages are dropped, and the ids claimed ahead for them
    /// are given back, so that a retry on another connection is handled anew.
    static func dropWaiting(_ socket: Socket, switchboard: SwitchboardServer) {
        guard let queue = socket.handlers else { return }
        socket.handlers = nil
        for waiting in queue.waiting {
            guard let claim = waiting.claim else { continue }
            claim.abandoned = true
            release(claim, socket: socket, switchboard: switchboard)
        }
    }

    // MARK: idempotency

    /// The result of claiming a message's id, or of a store that failed.
    typealias ClaimOutcome = Result<IdempotencyClaim, any Error>

    /// Claims a waiting message's id ahead of its turn; its answer moves the queue on.
    private static func claimAhead(_ claim: EarlyClaim, fingerprint: UInt64, socket: Socket, switchboard: SwitchboardServer) {
        switchboard.idempotency.claim(claim.key, fingerprint: fingerprint, on: socket.eventLoop).whenComplete { outcome in
            claim.outcome = outcome
            if claim.abandoned {
                release(claim, socket: socket, switchboard: switchboard)
            } else {
                advance(socket, switchboard: switchboard)
            }
        }
    }

    /// Gives back an id claimed ahead whose message will not be handled: retries waiting on it
    /// get `unavailable`, and a later one is handled anew.
    private static func release(_ claim: EarlyClaim, socket: Socket, switchboard: SwitchboardServer) {
        guard case .success(.first) = claim.outcome else { return }
        claim.outcome = nil
        switchboard.idempotency.complete(claim.key, reply: Responder.unavailableFrame(id: claim.key.id, socket: socket), remember: false)
    }

    /// Claims `key` in this turn when the store is a ``SynchronousIdempotencyStore``; `nil`
    /// otherwise.
    private static func claimNow(_ key: IdempotencyKey, fingerprint: UInt64, socket: Socket, switchboard: SwitchboardServer) -> ClaimOutcome? {
        guard let store = switchboard.synchronousIdempotency else { return nil }
        return .success(store.claimNow(key, fingerprint: fingerprint, on: socket.eventLoop))
    }

    /// Claims `key`. Returns the outcome when the store answered at once (a completed future);
    /// otherwise marks the connection busy, returns `nil`, and calls `resume` on the loop with the
    /// outcome later.
    private static func claim(
        _ key: IdempotencyKey,
        fingerprint: UInt64,
        socket: Socket,
        switchboard: SwitchboardServer,
        resume: @escaping @Sendable (ClaimOutcome) -> Void
    ) -> ClaimOutcome? {
        let hub = socket.hub
        let future = switchboard.idempotency.claim(key, fingerprint: fingerprint, on: socket.eventLoop)
        // A future that is already complete calls back before `whenComplete` returns; the hub's
        // slot carries the outcome out without an allocation per message.
        hub.inlineClaim = nil
        hub.awaitingInlineClaim = true
        future.whenComplete { outcome in
            if hub.awaitingInlineClaim {
                hub.inlineClaim = outcome
            } else {
                socket.busy = false
                resume(outcome)
                if !socket.busy { finished(socket, switchboard: switchboard) }
            }
        }
        hub.awaitingInlineClaim = false
        if let outcome = hub.inlineClaim {
            hub.inlineClaim = nil
            return outcome
        }
        socket.busy = true
        return nil
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

    /// Why a room of the handshake was not joined: the authorizer refused it.
    struct HandshakeRoomDenied: Error {}

    /// Joins the rooms of the handshake, on the connection's first message (with the positions of
    /// `resume`, for `session.hello`). Returns the joins, each to be finished (``RoomManager/
    /// finish(_:)``) once its outcome has been reported; without a reply to wait for, pass
    /// `finishAtOnce`.
    ///
    /// A room the authorizer refuses is skipped and logged, as Centrifugo does with a denied
    /// server-side subscription: the connection goes on without it. When the refusal is known at
    /// once the room is left out of the result; otherwise its join fails with
    /// ``HandshakeRoomDenied``.
    @discardableResult
    static func joinPendingRooms(
        _ socket: Socket,
        resume: [String: EventID] = [:],
        finishAtOnce: Bool = true,
        switchboard: SwitchboardServer
    ) -> [(room: String, join: EventLoopFuture<RoomManager.PreparedJoin>)] {
        guard let rooms = socket.pendingRooms else { return [] }
        socket.pendingRooms = nil
        @Sendable func skipped(_ room: String) {
            switchboard.logger.info("room of the handshake not allowed; skipped", metadata: ["room": "\(room)", "socket": "\(socket.id)", "user": "\(socket.user.id)"])
        }
        return rooms.compactMap { room -> (room: String, join: EventLoopFuture<RoomManager.PreparedJoin>)? in
            let join: EventLoopFuture<RoomManager.PreparedJoin>
            switch switchboard.permissionNow(.join, room: room, socket: socket) {
            case true?:
                join = switchboard.rooms.prepareJoin(socket, room: room, since: resume[room], snapshot: switchboard.snapshot)
            case false?:
                skipped(room)
                return nil
            case nil:
                join = switchboard.permission(.join, room: room, socket: socket).flatMap { allowed in
                    guard allowed else {
                        skipped(room)
                        return socket.eventLoop.makeFailedFuture(HandshakeRoomDenied())
                    }
                    return switchboard.rooms.prepareJoin(socket, room: room, since: resume[room], snapshot: switchboard.snapshot)
                }
            }
            if finishAtOnce {
                join.whenComplete { result in
                    switch result {
                    case .success(let prepared):
                        switchboard.rooms.finish(prepared)
                    case .failure(is HandshakeRoomDenied):
                        break
                    case .failure(let error):
                        switchboard.logger.error("joining a room of the handshake failed", metadata: ["room": "\(room)", "socket": "\(socket.id)", "error": "\(error)"])
                    }
                }
            }
            return (room, join)
        }
    }

    // MARK: rate limits

    /// Takes a token for `event` from the connection's buckets. When there is none, the event is
    /// not handled: the client gets `rate_limited` with the milliseconds until there is one, or,
    /// past ``RateLimits/closeAfterLimited``, the connection is closed with 1008. Checked when the
    /// message arrives, before it waits for its turn and before its id is claimed, so that a retry
    /// of a limited event is handled; its reply may therefore come before those of earlier
    /// messages still being handled.
    private static func withinRateLimit(_ event: String, id: String?, socket: Socket, switchboard: SwitchboardServer) -> Bool {
        let limiting = switchboard.rateLimiting
        switch limiting.events.check(event, buckets: &socket.rateBuckets, now: limiting.now) {
        case .allowed:
            return true
        case .limited(let retryAfter):
            let milliseconds = TokenSchedule.milliseconds(retryAfter)
            socket.deliver(
                OutboundMessage.errorFrame(
                    id: id, code: EventError.Code.rateLimited, message: "too many \(event); retry after \(milliseconds) ms", retryAfter: milliseconds,
                    allocator: socket.channel.allocator))
            limiting.limited(event, socket: socket, retryAfterMilliseconds: milliseconds, logger: switchboard.logger)
            return false
        case .abusive:
            limiting.closed(socket, event: event, logger: switchboard.logger)
            socket.closeOnLoop(code: CloseCode.policyViolation, reason: "rate limit exceeded", then: .awaitReply)
            return false
        }
    }

    // MARK: replies

    /// An error reply for a message that was not handled; invalid messages count against the socket.
    static func reject(_ socket: Socket, id: String?, _ error: EventError, switchboard: SwitchboardServer) {
        socket.deliver(OutboundMessage.errorFrame(id: id, code: error.code, message: error.message, allocator: socket.channel.allocator))
        countInvalid(socket, code: error.code, switchboard: switchboard)
    }

    /// Counts an invalid message against the connection; past the limit it is closed with 1008.
    static func countInvalid(_ socket: Socket, code: String, switchboard: SwitchboardServer) {
        switch code {
        case EventError.Code.badJSON, EventError.Code.badEnvelope, EventError.Code.unknownEvent,
            EventError.Code.invalidPayload, EventError.Code.validationFailed, EventError.Code.badBinaryEnvelope:
            socket.invalidScore += 1
            if socket.invalidScore >= switchboard.configuration.maxInvalidMessages {
                socket.closeOnLoop(code: CloseCode.policyViolation, reason: "too many invalid messages", then: .awaitReply)
            }
        default:
            break
        }
    }

    private static func accepted(_ socket: Socket) {
        if socket.invalidScore > 0 { socket.invalidScore -= 1 }
    }
}

extension MessageDispatcher {
    /// Runs an app handler in a task; its reply goes out from the connection's loop, and the
    /// connection's next message is dispatched after it. A handler whose connection ends goes on
    /// to its end (its reply is remembered for a retry on another connection, and not sent).
    fileprivate static func run(
        _ handler: @escaping EventRouter.Run, _ context: EventContext, responder: Responder, switchboard: SwitchboardServer, started: NIODeadline = .now()
    ) {
        let socket = context.socket
        socket.busy = true
        Task {
            let result: Result<Data?, any Error>
            do {
                result = .success(try await handler(context))
            } catch {
                result = .failure(error)
            }
            socket.eventLoop.execute {
                switch result {
                case .success(let data): responder.ack(data)
                case .failure(let error): responder.fail(error)
                }
                socket.hub.recordHandlerLatency(since: started)
                finished(socket, switchboard: switchboard)
            }
        }
    }
}
