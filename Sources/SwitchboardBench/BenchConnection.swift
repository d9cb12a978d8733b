import Foundation
import NIOCore
import NIOPosix

/// One WebSocket client connection of the bench: a raw NIO TCP channel with a
/// ``BenchClientHandler``, reachable from any thread. Every call here hops to the channel's
/// event loop; every wait has a deadline.
struct BenchConnection: Sendable {
    /// The client's index (its user is `bench-<index>`).
    let index: Int
    let channel: any Channel
    let handler: NIOLoopBound<BenchClientHandler>

    var eventLoop: any EventLoop { channel.eventLoop }

    /// Whether the TCP connection is still open.
    var isActive: Bool { channel.isActive }

    /// Connects to `target` on `loop`, sends the upgrade request with `token`, and returns once
    /// the server answered `101`. Throws ``BenchError/handshakeRejected(status:code:)`` for any
    /// other status and ``BenchError/timeout(_:)`` after `timeout`.
    static func connect(
        index: Int, token: String, target: BenchTarget, loop: any EventLoop, stats: EventLoopStats, timeout: Duration, compression: Bool = false
    ) async throws -> BenchConnection {
        let upgraded = loop.makePromise(of: Void.self)
        let handlerPromise = loop.makePromise(of: NIOLoopBound<BenchClientHandler>.self)
        let request = upgradeRequest(target: target, token: token, compression: compression)
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(TimeAmount(timeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 64 * 1024, high: 256 * 1024))
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 8192, maximum: 256 * 1024))
            .channelInitializer { channel in
                let handler = BenchClientHandler(stats: stats.stats(on: channel.eventLoop), upgradeRequest: request, upgraded: upgraded)
                do {
                    try channel.pipeline.syncOperations.addHandler(handler)
                } catch {
                    upgraded.fail(error)
                    handlerPromise.fail(error)
                    return channel.eventLoop.makeFailedFuture(error)
                }
                handlerPromise.succeed(NIOLoopBound(handler, eventLoop: channel.eventLoop))
                return channel.eventLoop.makeSucceededVoidFuture()
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(to: target.socketAddress()).get()
        } catch {
            upgraded.fail(error)
            handlerPromise.fail(error)
            throw error
        }
        let deadline = loop.scheduleTask(in: TimeAmount(timeout)) {
            upgraded.fail(BenchError.timeout("no upgrade response within \(secondsText(timeout))"))
            channel.close(promise: nil)
        }
        do {
            try await upgraded.futureResult.get()
        } catch {
            deadline.cancel()
            handlerPromise.fail(error)
            channel.close(promise: nil)
            throw error
        }
        deadline.cancel()
        let handler = try await handlerPromise.futureResult.get()
        return BenchConnection(index: index, channel: channel, handler: handler)
    }

    /// The HTTP/1.1 upgrade request (RFC 6455 4.1), with the token in the query.
    static func upgradeRequest(target: BenchTarget, token: String, compression: Bool = false) -> String {
        var keyBytes = [UInt8](repeating: 0, count: 16)
        for index in keyBytes.indices { keyBytes[index] = UInt8.random(in: 0...255) }
        let key = Data(keyBytes).base64EncodedString()
        return "GET \(target.requestTarget(token: token)) HTTP/1.1\r\n"
            + "Host: \(target.hostHeader)\r\n"
            + "Upgrade: websocket\r\n"
            + "Connection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\n"
            + "Sec-WebSocket-Version: 13\r\n"
            + (compression ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "")
            + "User-Agent: switchboard-bench\r\n\r\n"
    }

    /// Sends `room.join` and waits for its ack; returns the ack's `eid` (the position from which
    /// the room's events reach this connection). With `tracksPositions` the connection follows
    /// the room's positions from there (``positions()``).
    @discardableResult
    func join(room: String, timeout: Duration, tracksPositions: Bool = false) async throws -> RoomPosition? {
        let handler = self.handler
        let reply = try await eventLoop.flatSubmit {
            if tracksPositions { handler.value.trackPositions(room: room) }
            return handler.value.sendRequest(
                event: "room.join", dataJSON: #"{"room":"\#(room)"}"#, timeout: TimeAmount(timeout), startsPositions: tracksPositions)
        }.get()
        return RoomPosition(firstIn: reply)
    }

    /// Sends a request envelope and waits for its ack (an `error` reply throws); returns the
    /// ack's text.
    @discardableResult
    func request(event: String, dataJSON: String, timeout: Duration) async throws -> [UInt8] {
        let handler = self.handler
        return try await eventLoop.flatSubmit {
            handler.value.sendRequest(event: event, dataJSON: dataJSON, timeout: TimeAmount(timeout))
        }.get()
    }

    /// Prepares the connection to send `message.send` to `room` (pacers, round trips).
    func configureMessages(room: String, payloadBytes: Int) async throws {
        let handler = self.handler
        try await eventLoop.submit { handler.value.configureMessages(room: room, payloadBytes: payloadBytes) }.get()
    }

    /// Runs the closed loop of `message.send` → reply until `until` (see
    /// ``BenchClientHandler/startRoundTrips(until:timeout:)``).
    func roundTrips(until: NIODeadline, timeout: Duration) async throws {
        let handler = self.handler
        try await eventLoop.flatSubmit { handler.value.startRoundTrips(until: until, timeout: TimeAmount(timeout)) }.get()
    }

    /// Sends `count` `message.send`, at most `window` awaiting their reply (see
    /// ``BenchClientHandler/sendBurst(count:window:timeout:)``).
    func sendBurst(count: Int, window: Int, timeout: Duration) async throws -> BurstOutcome {
        let handler = self.handler
        return try await eventLoop.flatSubmit {
            handler.value.sendBurst(count: count, window: window, timeout: TimeAmount(timeout))
        }.get()
    }

    /// The positions this connection has seen of its tracked room; `nil` if it tracks none.
    func positions() async -> PositionTracker? {
        let handler = self.handler
        return try? await eventLoop.submit { handler.value.positions }.get()
    }

    /// Sends `session.hello` resuming `room` from `previous` and waits for its ack (returned as
    /// text); then ``caughtUp()`` waits for the room's event at `target` (see
    /// ``BenchClientHandler/resume(room:from:target:replyTimeout:catchUpTimeout:)``).
    @discardableResult
    func resume(room: String, from previous: PositionTracker, target: RoomPosition, timeout: Duration, catchUpTimeout: Duration) async throws -> [UInt8] {
        let handler = self.handler
        return try await eventLoop.flatSubmit {
            handler.value.resume(
                room: room, from: previous, target: target, replyTimeout: TimeAmount(timeout), catchUpTimeout: TimeAmount(catchUpTimeout))
        }.get()
    }

    /// Waits until the resume has caught up; throws if it did not (closed, timed out, or no
    /// resume was started).
    func caughtUp() async throws -> CatchUp {
        let handler = self.handler
        let loop = eventLoop
        return try await loop.flatSubmit { () -> EventLoopFuture<CatchUp> in
            handler.value.catchUp ?? loop.makeFailedFuture(BenchError.invalidOption("no resume started"))
        }.get()
    }

    /// Joins (first time) or resumes (after that) `room` as a soak user whose view so far is
    /// `tracker`; returns the ack's text (see ``BenchClientHandler/soakEnter(room:tracker:timeout:)``).
    @discardableResult
    func soakEnter(room: String, tracker: SoakTracker, timeout: Duration) async throws -> [UInt8] {
        let handler = self.handler
        return try await eventLoop.flatSubmit { handler.value.soakEnter(room: room, tracker: tracker, timeout: TimeAmount(timeout)) }.get()
    }

    /// The soak user's view of its room as this connection left it; `nil` outside the soak.
    func soakTracker() async -> SoakTracker? {
        let handler = self.handler
        return try? await eventLoop.submit { handler.value.soak }.get()
    }

    /// Writes half a `message.send` frame, then closes TCP (see ``BenchClientHandler/dropWriting(half:)``).
    func dropMidFrame() -> EventLoopFuture<Void> {
        let handler = self.handler
        return eventLoop.flatSubmit { handler.value.dropWriting(half: true) }
    }

    /// Writes a whole `message.send` frame, then closes TCP before its ack can arrive.
    func dropAfterSend() -> EventLoopFuture<Void> {
        let handler = self.handler
        return eventLoop.flatSubmit { handler.value.dropWriting(half: false) }
    }

    /// Closes TCP without a Close frame (see ``BenchClientHandler/drop()``).
    func drop() -> EventLoopFuture<Void> {
        let handler = self.handler
        return eventLoop.flatSubmit { handler.value.drop() }
    }

    /// Drops every connection at once (all closes issued before any is awaited) and waits until
    /// all are closed.
    static func dropAll(_ connections: [BenchConnection]) async {
        let futures = connections.map { $0.drop() }
        for future in futures {
            try? await future.get()
        }
    }

    /// Starts the close handshake; the future completes once TCP is closed (at the latest after
    /// `timeout`, when the bench closes it itself).
    func close(timeout: Duration = .seconds(2)) -> EventLoopFuture<Void> {
        let handler = self.handler
        return eventLoop.flatSubmit { handler.value.closeGracefully(timeout: TimeAmount(timeout)) }
    }

    /// Closes every connection (close handshake, bounded by `timeout`) and waits for all of them.
    static func closeAll(_ connections: [BenchConnection], timeout: Duration = .seconds(2)) async {
        let futures = connections.map { $0.close(timeout: timeout) }
        for future in futures {
            try? await future.get()
        }
    }
}
