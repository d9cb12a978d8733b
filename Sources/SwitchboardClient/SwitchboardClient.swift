import Foundation

/// A client of a Switchboard server (protocol version 2) that keeps its rooms across
/// disconnections: it reconnects with backoff, resumes every room from its last event id, drops
/// events it has already seen, queues requests while offline and sends un-acknowledged ones again
/// with their original ids.
///
/// ```swift
/// let client = SwitchboardClient(url: "ws://127.0.0.1:8080/ws", token: .fixed(jwt))
/// _ = try await client.join("lobby")
/// let ack: MessageAck = try await client.send("message.send", SendMessage(room: "lobby", content: "hi"))
/// for await event in client.events {
///     if case .event(let message) = event { print(message.event, message.eid as Any, message.data) }
/// }
/// ```
///
/// It connects as soon as it is created and until ``close()`` (or a close that reconnecting cannot
/// help, reported as ``ConnectionState/closed(_:)``).
public final class SwitchboardClient: Sendable {
    /// Everything that happens, in order: server events (each room event with an `eid` once, in
    /// order, replayed ones flagged), state changes and room refreshes. Iterate it once (from one
    /// task); it ends when the client has closed. Events are buffered until read.
    public let events: AsyncStream<ClientEvent>

    private let core: ClientCore
    private let configuration: Configuration
    private let loop: Task<Void, Never>

    /// Creates a client and starts connecting to `url` (`ws://host:port/ws`, or `wss://`).
    /// - Parameters:
    ///   - url: the server's WebSocket URL.
    ///   - token: the JWT to connect with, or a provider called before every attempt.
    ///   - configuration: timers and limits.
    public init(url: String, token: TokenSource, configuration: Configuration = Configuration()) {
        let (events, continuation) = AsyncStream<ClientEvent>.makeStream(bufferingPolicy: .unbounded)
        let core = ClientCore(configuration: configuration, events: continuation)
        continuation.yield(.state(.connecting))
        let loop = ConnectionLoop(core: core, url: ParsedURL(url), urlText: url, token: token, configuration: configuration)
        self.events = events
        self.core = core
        self.configuration = configuration
        self.loop = Task { await loop.run() }
    }

    deinit {
        // Not closed by the app: stop connecting (requests cannot be waiting: each holds the client).
        loop.cancel()
    }

    /// The current connection state.
    public var state: ConnectionState {
        get async { await core.state }
    }

    /// The rooms the client is in (joined, resumed, or joined by the server on connect).
    public var rooms: [String] {
        get async { await core.rooms }
    }

    /// Requests waiting for their reply (queued or sent); for tests.
    var waitingRequests: Int {
        get async { await core.waitingRequests }
    }

    /// The last event id the client has seen in `room`: where it resumes from.
    public func position(of room: String) async -> EventPosition? {
        await core.position(of: room)
    }

    /// Sends `event` with `data` and returns the ack's `data` decoded as `Reply`.
    ///
    /// While disconnected the request waits in the offline queue (bounded: the oldest fails with
    /// `queue_full`); one sent but not acknowledged when the connection dropped is sent again after
    /// the resume with the same `id`, which the server handles once.
    /// - Parameters:
    ///   - id: the message id; default a random UUID. Pass the same one to retry a request whose
    ///     outcome is unknown (after a `timeout`).
    ///   - timeout: how long to wait for the reply, offline time included; default
    ///     ``Configuration/ackTimeout``.
    /// - Throws: ``SwitchboardClientError``: the server's error reply (`code`, `message`),
    ///   `timeout`, `queue_full`, `closed`, `invalid_reply`. A request the server refuses with
    ///   `rate_limited` is sent again (same id) after the reply's `retryAfter`, and throws
    ///   `rate_limited` only when that retry would come after `timeout`.
    public func send<Payload: Encodable, Reply: Decodable>(
        _ event: String, _ data: Payload, as reply: Reply.Type = Reply.self, id: String? = nil, timeout: Duration? = nil
    ) async throws -> Reply {
        let json = try Self.encode(data)
        let room = try? json.decode(RoomField.self).room
        let raw = try await request(event, json, kind: .event(room: room), id: id, timeout: timeout)
        return try Self.decode(raw, as: Reply.self)
    }

    /// Sends `event` with `data` (raw JSON text, or none) and returns the ack's `data` as sent.
    @discardableResult
    public func send(_ event: String, json data: RawJSON? = nil, id: String? = nil, timeout: Duration? = nil) async throws -> RawJSON {
        let room = data.flatMap { try? $0.decode(RoomField.self).room }
        return try await request(event, data, kind: .event(room: room), id: id, timeout: timeout)
    }

    /// Joins `room`; its events after the returned position follow. Joined rooms are resumed
    /// after every reconnect.
    @discardableResult
    public func join(_ room: String, timeout: Duration? = nil) async throws -> JoinResult {
        let raw = try await request("room.join", RawJSON(#"{"room":\#(JSONScanner.quote(room))}"#), kind: .join(room), id: nil, timeout: timeout)
        return try Self.decode(raw, as: JoinResult.self)
    }

    /// Leaves `room`; `false` when the client was not in it.
    @discardableResult
    public func leave(_ room: String, timeout: Duration? = nil) async throws -> Bool {
        let raw = try await request("room.leave", RawJSON(#"{"room":\#(JSONScanner.quote(room))}"#), kind: .leave(room), id: nil, timeout: timeout)
        return (try Self.decode(raw, as: LeaveResult.self)).left ?? false
    }

    /// The users in `room` (each once); the client must be in it.
    public func members(_ room: String, timeout: Duration? = nil) async throws -> [String] {
        let raw = try await request("room.members", RawJSON(#"{"room":\#(JSONScanner.quote(room))}"#), kind: .query, id: nil, timeout: timeout)
        return try Self.decode(raw, as: MembersResult.self).members
    }

    /// Closes the connection (with a Close frame) and stops reconnecting; waiting requests fail
    /// with `closed` and ``events`` ends. Returns once the connection has ended.
    public func close() async {
        await core.close(.closedByClient)
        loop.cancel()
        await loop.value
    }

    private func request(_ event: String, _ data: RawJSON?, kind: RequestKind, id: String?, timeout: Duration?) async throws -> RawJSON {
        let id = id ?? UUID().uuidString.lowercased()
        let text = Envelope.encode(event: event, data: data, id: id)
        return try await core.request(text: text, id: id, kind: kind, timeout: timeout ?? configuration.ackTimeout)
    }

    private static func encode<Payload: Encodable>(_ data: Payload) throws -> RawJSON {
        if let raw = data as? RawJSON { return raw }
        do {
            return RawJSON(String(decoding: try JSONEncoder().encode(data), as: UTF8.self))
        } catch {
            throw SwitchboardClientError(code: SwitchboardClientError.invalidRequest, message: "data could not be encoded: \(error)")
        }
    }

    private static func decode<Reply: Decodable>(_ raw: RawJSON, as type: Reply.Type) throws -> Reply {
        if let raw = raw as? Reply { return raw }
        do {
            return try raw.decode(Reply.self)
        } catch {
            throw SwitchboardClientError(code: SwitchboardClientError.invalidReply, message: "the reply \(raw.text) is not a \(Reply.self): \(error)")
        }
    }
}
