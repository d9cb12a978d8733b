import Foundation
import NIOCore

/// What a connection is sent as a room's state when its missed events cannot be replayed: the
/// `data` of `state.refresh`.
public struct RoomSnapshot: Sendable {
    enum Source: Sendable {
        case none
        case latestEvents(Int)
        case custom(@Sendable (String, Socket) async throws -> Foundation.Data?)
    }

    let source: Source
    /// Whether a join without a position (a first join, a late joiner) is sent the snapshot too.
    let sentOnJoin: Bool

    init(source: Source, sentOnJoin: Bool = false) {
        self.source = source
        self.sentOnJoin = sentOnJoin
    }

    /// This snapshot, also sent as `state.refresh` right after the ack of a join without a
    /// position (`room.join` without `since`, a room joined on connect without `resume`): the
    /// joiner's first view of the room (a chat's latest messages, a dashboard's current values),
    /// followed by the live events after the `eid` of the join. The snapshot is read after that
    /// position was taken, so it may already reflect events that then arrive live: give the state
    /// a version (an id, a sequence number) the client can compare. The ack still says
    /// `"recovered": true` (nothing was missed).
    public func sentOnJoin(_ value: Bool = true) -> RoomSnapshot {
        RoomSnapshot(source: source, sentOnJoin: value)
    }

    /// No snapshot: `state.refresh` carries `"data": null`, and the client reloads the room's state
    /// its own way (e.g. over HTTP).
    public static let none = RoomSnapshot(source: .none)

    /// The room's latest events still in history, at most `count`, oldest first, as
    /// `{"events":[<envelope>, …]}` with each envelope exactly as it was sent.
    public static func latestEvents(_ count: Int = 50) -> RoomSnapshot {
        RoomSnapshot(source: .latestEvents(count))
    }

    /// The app's own state of the room for this connection (the last 50 chat messages, the current
    /// dashboard values), encoded as JSON; `nil` sends `"data": null`. An error fails the join or
    /// resume of that room with `handler_error`.
    public static func custom<Snapshot: Encodable & Sendable>(
        _ make: @escaping @Sendable (_ room: String, _ socket: Socket) async throws -> Snapshot?
    ) -> RoomSnapshot {
        RoomSnapshot(
            source: .custom { room, socket in
                guard let snapshot = try await make(room, socket) else { return nil }
                return try JSONEncoder().encode(snapshot)
            })
    }

    /// The snapshot's JSON for `room`, on `eventLoop`.
    func data(for room: String, socket: Socket, broker: any Broker, on eventLoop: any EventLoop) -> EventLoopFuture<ByteBuffer?> {
        switch source {
        case .none:
            return eventLoop.makeSucceededFuture(nil)
        case .latestEvents(let count):
            return broker.latest(room, limit: count, on: eventLoop).map { events in
                var data = ByteBuffer()
                data.writeStaticString("{\"events\":[")
                for (index, event) in events.enumerated() {
                    if index > 0 { data.writeInteger(UInt8(ascii: ",")) }
                    var payload = OutboundFrame.payload(of: event.frame)
                    data.writeBuffer(&payload)
                }
                data.writeStaticString("]}")
                return data
            }
        case .custom(let make):
            let promise = eventLoop.makePromise(of: ByteBuffer?.self)
            promise.completeWithTask {
                try await make(room, socket).map { ByteBuffer(bytes: $0) }
            }
            return promise.futureResult
        }
    }
}
