import Foundation
import Logging

/// The client's state, on one actor: rooms and positions, the requests waiting for replies, the
/// current connection. The connection loop, the connection's reader, the timer and the app's calls
/// all come here; nothing here does I/O but yield to the current connection's writer.
actor ClientCore {
    typealias Waiter = CheckedContinuation<RawJSON, any Error>

    /// One connection attempt, from the WebSocket handshake to its end.
    struct Connection {
        let attempt: Int
        let started: ContinuousClock.Instant
        var writer: AsyncStream<String>.Continuation?
        let abort: AsyncStream<AttemptOutcome>.Continuation
        var helloID: String?
        var openedAt: ContinuousClock.Instant?
        var lastReceived: ContinuousClock.Instant
        var lastHeartbeat: ContinuousClock.Instant
        var heartbeatInterval: Duration
        var heartbeatTimeout: Duration
        /// Per resumed room, the last offset of the replay announced by the hello ack.
        var replayUntil: [String: Int] = [:]
    }

    let configuration: SwitchboardClient.Configuration
    let events: AsyncStream<ClientEvent>.Continuation
    private(set) var positions = RoomPositions()
    private var outbox: RequestOutbox<Waiter>
    private var connection: Connection?
    private(set) var state: ConnectionState = .connecting
    private(set) var isClosed = false
    private var attempts = 0
    private var heartbeats = 0

    init(configuration: SwitchboardClient.Configuration, events: AsyncStream<ClientEvent>.Continuation) {
        self.configuration = configuration
        self.events = events
        self.outbox = RequestOutbox(limit: configuration.offlineQueueLimit)
    }

    private var logger: Logger { configuration.logger }
    private var isOpen: Bool { connection?.openedAt != nil }

    // MARK: - Requests from the app

    /// Sends a request (at once when open, else queued) and waits for its reply's `data`.
    func request(text: String, id: String, kind: RequestKind, timeout: Duration) async throws -> RawJSON {
        guard !isClosed else { throw SwitchboardClientError(code: SwitchboardClientError.closed, message: "the client is closed") }
        guard !outbox.contains(id) else {
            throw SwitchboardClientError(code: SwitchboardClientError.invalidRequest, message: "a request with id \(id) is still waiting for its reply")
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: Waiter) in
                guard !Task.isCancelled else {
                    waiter.resume(throwing: SwitchboardClientError(code: SwitchboardClientError.cancelled, message: "cancelled"))
                    return
                }
                let online = isOpen
                let dropped = outbox.add(id: id, text: text, kind: kind, deadline: .now + timeout, waiter: waiter, online: online)
                for entry in dropped {
                    entry.waiter.resume(throwing: SwitchboardClientError(code: SwitchboardClientError.queueFull, message: "the offline queue is full (\(outbox.limit)); oldest request given up"))
                }
                if online { connection?.writer?.yield(text) }
            }
        } onCancel: {
            Task { await self.cancel(id) }
        }
    }

    private func cancel(_ id: String) {
        outbox.remove(id)?.waiter.resume(throwing: SwitchboardClientError(code: SwitchboardClientError.cancelled, message: "cancelled"))
    }

    /// Stops for good: fails every waiting request, ends the connection and the event stream.
    func close(_ reason: DisconnectReason) {
        guard !isClosed else { return }
        isClosed = true
        for entry in outbox.removeAll() {
            entry.waiter.resume(throwing: SwitchboardClientError(code: SwitchboardClientError.closed, message: "the client closed: \(reason)"))
        }
        connection?.abort.yield(.aborted(reason))
        publish(state: .closed(reason))
        events.finish()
    }

    var rooms: [String] { positions.joined }

    var waitingRequests: Int { outbox.count }

    func position(of room: String) -> EventPosition? { positions.position(of: room) }

    // MARK: - The connection loop

    /// Starts an attempt; `nil` when the client is closed.
    func beginAttempt(abort: AsyncStream<AttemptOutcome>.Continuation) -> Int? {
        guard !isClosed else { return nil }
        attempts += 1
        let now = ContinuousClock.now
        connection = Connection(
            attempt: attempts, started: now, writer: nil, abort: abort, helloID: nil, openedAt: nil, lastReceived: now, lastHeartbeat: now,
            heartbeatInterval: configuration.heartbeatInterval ?? .seconds(30), heartbeatTimeout: configuration.heartbeatTimeout ?? .seconds(90))
        return attempts
    }

    /// The WebSocket is up: says hello (resuming every room with its position). `false` when the
    /// attempt is no longer current.
    func opened(attempt: Int, writer: AsyncStream<String>.Continuation) -> Bool {
        guard !isClosed, connection?.attempt == attempt else { return false }
        let id = "hello-\(UUID().uuidString)"
        connection?.writer = writer
        connection?.helloID = id
        connection?.lastReceived = .now
        let resume = positions.resume.sorted { $0.key < $1.key }
        let data: RawJSON? =
            resume.isEmpty
            ? nil
            : RawJSON(#"{"resume":{"# + resume.map { JSONScanner.quote($0.key) + ":" + JSONScanner.quote($0.value.description) }.joined(separator: ",") + "}}")
        writer.yield(Envelope.encode(event: "session.hello", data: data, id: id))
        logger.debug("switchboard client: connected, hello sent", metadata: ["attempt": "\(attempt)", "resume": "\(resume.count)"])
        return true
    }

    /// The attempt ended: what the loop needs to decide the next one.
    struct Ended {
        let wasOpen: Bool
        let openFor: Duration
        /// Whether the WebSocket handler ran (so that cancelling it ends the connection at once).
        let handlerStarted: Bool
    }

    func ended(attempt: Int) -> Ended {
        guard let current = connection, current.attempt == attempt else { return Ended(wasOpen: false, openFor: .zero, handlerStarted: false) }
        current.writer?.finish()
        current.abort.finish()
        connection = nil
        outbox.markAllUnwritten()
        let openFor = current.openedAt.map { ContinuousClock.now - $0 } ?? .zero
        return Ended(wasOpen: current.openedAt != nil, openFor: openFor, handlerStarted: current.writer != nil)
    }

    func publish(state: ConnectionState) {
        self.state = state
        events.yield(.state(state))
    }

    // MARK: - Messages from the server

    func received(_ text: String, attempt: Int) {
        guard connection?.attempt == attempt else { return }
        connection?.lastReceived = .now
        guard let envelope = Envelope(parsing: text) else {
            logger.debug("switchboard client: ignored a message that is not an envelope")
            return
        }
        switch envelope.event {
        case "ack", "error":
            guard let id = envelope.id else {
                if envelope.event == "error" { logger.info("switchboard client: error reply without id", metadata: ["data": "\(envelope.data?.text ?? "")"]) }
                return
            }
            reply(id: id, isError: envelope.event == "error", data: envelope.data ?? .null)
        case "state.refresh":
            guard let room = envelope.room else { return }
            let eid = envelope.eid.flatMap { EventPosition($0) }
            positions.reset(room, to: eid)
            events.yield(.refresh(RoomRefresh(room: room, eid: eid, snapshot: envelope.data)))
        default:
            deliver(envelope)
        }
    }

    private func deliver(_ envelope: Envelope) {
        let data = envelope.data ?? .null
        guard let room = envelope.room, let eid = envelope.eid.flatMap({ EventPosition($0) }) else {
            events.yield(.event(ReceivedEvent(event: envelope.event, room: envelope.room, eid: nil, data: data, replayed: false)))
            return
        }
        // Only events with an eid are positions; no event is special-cased by name (presence
        // announcements are positions where the server gives them an eid, and not where it
        // makes them ephemeral).
        switch positions.receive(room, eid) {
        case .duplicate:
            return
        case .newEpoch:
            events.yield(.refresh(RoomRefresh(room: room, eid: nil, snapshot: nil)))
        case .deliver:
            break
        }
        let replayed = connection?.replayUntil[room].map { eid.offset <= $0 } ?? false
        events.yield(.event(ReceivedEvent(event: envelope.event, room: room, eid: eid, data: data, replayed: replayed)))
    }

    private func reply(id: String, isError: Bool, data: RawJSON) {
        if id == connection?.helloID {
            hello(isError: isError, data: data)
            return
        }
        let error = isError ? ((try? data.decode(ErrorReply.self)) ?? ErrorReply(code: "unknown", message: data.text)) : nil
        if let error, error.code == "rate_limited", let retryAfter = error.retryAfter,
            outbox.retry(id, at: .now + .milliseconds(max(1, retryAfter)))
        {
            // Not handled by the server: sent again, with its id, once its bucket has a token.
            logger.debug("switchboard client: rate limited; retrying", metadata: ["id": "\(id)", "retryAfter": "\(retryAfter)"])
            return
        }
        guard let entry = outbox.remove(id) else { return }  // a heartbeat's, or a request that timed out
        if let error {
            entry.waiter.resume(throwing: SwitchboardClientError(code: error.code, message: error.message ?? ""))
            return
        }
        switch entry.kind {
        case .event(let room?):
            if let eid = (try? data.decode(PublishAck.self))?.eid.flatMap({ EventPosition($0) }) {
                positions.acknowledged(room, eid)
            }
        case .join(let room):
            // Events after the join's position follow; those before are not coming. Joining a
            // room the client is in changes nothing: its own position stays (the events between
            // it and the ack's may still be on their way).
            if positions.position(of: room) == nil {
                positions.reset(room, to: (try? data.decode(JoinResult.self))?.position)
            }
        case .leave(let room):
            positions.remove(room)
        case .event(nil), .query:
            break
        }
        entry.waiter.resume(returning: data)
    }

    private func hello(isError: Bool, data: RawJSON) {
        guard !isError, let ack = try? data.decode(HelloAck.self) else {
            let error = (try? data.decode(ErrorReply.self))?.code ?? "invalid hello ack"
            connection?.abort.yield(.aborted(.connectionLost("session.hello failed: \(error)")))
            return
        }
        var replayUntil: [String: Int] = [:]
        for outcome in ack.rooms ?? [] {
            if let failure = outcome.error {
                positions.remove(outcome.room)
                events.yield(.roomRefused(room: outcome.room, error: SwitchboardClientError(code: failure.code, message: failure.message ?? "")))
                continue
            }
            let eid = outcome.eid.flatMap { EventPosition($0) }
            guard let known = positions.position(of: outcome.room) else {
                // Joined by the server (memberships, the token's rooms) or first seen now.
                positions.reset(outcome.room, to: eid)
                continue
            }
            if outcome.recovered == true, let eid, eid.epoch == known.epoch {
                replayUntil[outcome.room] = eid.offset
            }
            // recovered: false: `state.refresh` follows, and resets the room.
        }
        let now = ContinuousClock.now
        connection?.openedAt = now
        connection?.replayUntil = replayUntil
        if configuration.heartbeatInterval == nil, let interval = ack.pingInterval, interval > 0 {
            connection?.heartbeatInterval = .milliseconds(interval)
        }
        if configuration.heartbeatTimeout == nil, let timeout = ack.pongTimeout, timeout > 0 {
            connection?.heartbeatTimeout = .milliseconds(timeout)
        }
        publish(state: .open)
        // Un-acked and queued requests, in their order, with their original ids.
        for entry in outbox.takeUnwritten() { connection?.writer?.yield(entry.text) }
        logger.debug("switchboard client: session open", metadata: ["rooms": "\(positions.joined.count)", "resent": "\(outbox.count)"])
    }

    // MARK: - Timers

    /// Fails the requests whose time is up; checks the connection's liveness. Returns when to
    /// look again.
    func tick() -> ContinuousClock.Instant {
        let now = ContinuousClock.now
        for entry in outbox.expire(now: now) {
            entry.waiter.resume(throwing: SwitchboardClientError(code: SwitchboardClientError.timeout, message: "no reply within the timeout"))
        }
        if isOpen {
            for entry in outbox.takeDueRetries(now: now) { connection?.writer?.yield(entry.text) }
        }
        var next = now + .milliseconds(250)
        if let deadline = outbox.nextDeadline { next = min(next, deadline) }
        if let retry = outbox.nextRetry { next = min(next, retry) }
        guard let current = connection else { return next }
        if current.openedAt == nil {
            let deadline = current.started + configuration.connectTimeout
            if now >= deadline {
                current.abort.yield(.aborted(.connectionLost("no session within \(configuration.connectTimeout)")))
            }
            return min(next, deadline)
        }
        let silent = now - current.lastReceived
        if silent >= current.heartbeatTimeout {
            logger.info("switchboard client: nothing from the server; reconnecting", metadata: ["silent": "\(silent)"])
            current.abort.yield(.aborted(.heartbeatTimeout))
            return next
        }
        if silent >= current.heartbeatInterval, now - current.lastHeartbeat >= current.heartbeatInterval {
            heartbeats += 1
            connection?.lastHeartbeat = now
            current.writer?.yield(#"{"event":"presence.heartbeat","id":"heartbeat-\#(heartbeats)"}"#)
        }
        let heartbeatDue = max(current.lastReceived, current.lastHeartbeat) + current.heartbeatInterval
        return min(next, heartbeatDue, current.lastReceived + current.heartbeatTimeout)
    }
}
