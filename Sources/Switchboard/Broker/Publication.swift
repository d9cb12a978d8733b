import NIOCore

/// An event to publish to a room, before it has a position.
public struct Publication: Sendable {
    /// The room.
    public var room: String
    /// The event name, e.g. `message.new`.
    public var event: String
    /// The event's `data` as JSON, or `nil` for none.
    public var dataJSON: ByteBuffer?
    /// Whether the event takes a position and is kept in history (`false`: ephemeral, such as
    /// `typing.start`).
    public var persistent: Bool
    /// The connection it came from, which does not receive it; `nil` for events from the server.
    public var origin: Socket?

    public init(room: String, event: String, dataJSON: ByteBuffer?, persistent: Bool = true, origin: Socket? = nil) {
        self.room = room
        self.event = event
        self.dataJSON = dataJSON
        self.persistent = persistent
        self.origin = origin
    }

    /// The event's WebSocket frame, with `position` as its `eid`: what every member receives, and
    /// what history keeps (replay sends these same bytes).
    public func frame(at position: EventID?, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        OutboundMessage.frame(OutboundMessage.Header(event: event, room: room, eventID: position), dataJSON: dataJSON, allocator: allocator)
    }
}
