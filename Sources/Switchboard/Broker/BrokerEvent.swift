import NIOCore

/// An event as a ``Broker`` delivers it to a node: framed once, for every local recipient.
public struct BrokerEvent: Sendable {
    /// The room.
    public var room: String
    /// Its position, or `nil` for an ephemeral event.
    public var position: EventID?
    /// The complete WebSocket frame (`{"event","room","eid","data"}`), shared by every recipient.
    public var frame: ByteBuffer
    /// The local connection that published it, which does not receive it. A broker that delivers
    /// across nodes sets it only on the node the publication came from.
    public var origin: Socket?

    public init(room: String, position: EventID?, frame: ByteBuffer, origin: Socket?) {
        self.room = room
        self.position = position
        self.frame = frame
        self.origin = origin
    }

    /// The WebSocket text frame whose payload is `envelope` (the event's JSON text, such as
    /// ``Publication/envelopeAroundPosition()`` gives with a position in it): what a broker that
    /// keeps envelopes elsewhere builds once per node when an event comes back.
    public static func frame(envelope: ByteBufferView, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = OutboundFrame.begin(allocator: allocator, payloadCapacity: envelope.count)
        buffer.writeBytes(envelope)
        OutboundFrame.finish(&buffer, opcode: .text)
        return buffer
    }
}

/// One event kept in a room's history.
public struct HistoryEntry: Sendable {
    public var position: EventID
    /// The frame as it was first sent.
    public var frame: ByteBuffer

    public init(position: EventID, frame: ByteBuffer) {
        self.position = position
        self.frame = frame
    }
}

/// What a broker can say about the events after a position.
public enum Recovery: Sendable {
    /// Every event after the position, in order (none if it is current), and the room's position
    /// at the time of the read.
    case recovered(current: EventID, events: [HistoryEntry])
    /// Continuity cannot be proven: the position is from another epoch, older than what history
    /// keeps, ahead of the room, or more than the replay limit behind.
    case notRecoverable(current: EventID)

    /// The room's position at the time of the read.
    public var current: EventID {
        switch self {
        case .recovered(let current, _), .notRecoverable(let current): return current
        }
    }
}
