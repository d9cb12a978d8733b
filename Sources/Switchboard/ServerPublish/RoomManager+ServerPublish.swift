import NIOCore
import NIOPosix

extension RoomManager {
    /// Publishes a server event whose `data` is already JSON text (an HTTP API's body, say) to
    /// `room`: through the broker, as a client's `message.send` is (a position, the room's history,
    /// every node's members, the frame encoded once), so clients resume it like any event.
    /// Returns its position.
    public func publish(room: String, event: String, dataJSON: ByteBuffer?) async throws -> EventID {
        let publication = Publication(room: room, event: event, dataJSON: dataJSON)
        guard let position = try await publish(publication, on: MultiThreadedEventLoopGroup.singleton.any()).get() else {
            throw EventError(code: EventError.Code.handlerFailed, message: "the broker gave the event no position")
        }
        return position
    }

    /// The events of `room` kept in history: after `since` (at most `limit`), or the latest
    /// `limit` without it.
    public func history(of room: String, since: EventID?, limit: Int) async throws -> RoomHistory {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.any()
        if let since {
            switch try await broker.recover(room, after: since, limit: limit, on: eventLoop).get() {
            case .recovered(let current, let events):
                return RoomHistory(current: current, recovered: true, events: events)
            case .notRecoverable(let current):
                return RoomHistory(current: current, recovered: false, events: [])
            }
        }
        let events = try await broker.latest(room, limit: limit, on: eventLoop).get()
        return RoomHistory(current: events.last?.position, recovered: true, events: events)
    }
}

/// What ``RoomManager/history(of:since:limit:)`` read.
public struct RoomHistory: Sendable {
    /// The room's position at the time of the read (`nil` without `since` and without events).
    public var current: EventID?
    /// `false` when the events after `since` cannot all be had any more (another epoch, too old,
    /// or more than the limit behind): `events` is then empty, as a client would get
    /// `state.refresh`.
    public var recovered: Bool
    /// The events, oldest first.
    public var events: [HistoryEntry]

    /// The JSON text of each event, as clients received it (`{"event","room","eid","data"}`).
    public var envelopes: [ByteBuffer] {
        events.map { OutboundFrame.payload(of: $0.frame) }
    }
}
