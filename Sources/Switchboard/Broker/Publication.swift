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

    /// The event's envelope (the JSON text of its frame) split where its position goes:
    /// `prefix + "<epoch>:<offset>" + suffix` is the envelope of the event at that position. For a
    /// broker that assigns positions elsewhere (a script on Redis) and frames the text with
    /// ``BrokerEvent/frame(envelope:allocator:)`` when it comes back.
    public func envelopeAroundPosition() -> (prefix: ByteBuffer, suffix: ByteBuffer) {
        var prefix = ByteBuffer()
        prefix.reserveCapacity(32 + event.utf8.count + room.utf8.count)
        OutboundMessage.writeEnvelopeHead(event: event, id: nil, room: room, into: &prefix)
        prefix.writeStaticString(",\"eid\":\"")
        var suffix = ByteBuffer()
        suffix.reserveCapacity(12 + (dataJSON?.readableBytes ?? 0))
        suffix.writeInteger(UInt8(ascii: "\""))
        if let dataJSON {
            dataJSON.withUnsafeReadableBytes { OutboundMessage.writeEnvelopeTail(dataJSON: $0, into: &suffix) }
        } else {
            OutboundMessage.writeEnvelopeTail(dataJSON: nil, into: &suffix)
        }
        return (prefix, suffix)
    }

    /// The envelope of the event without a position (an ephemeral event).
    public func envelopeWithoutPosition() -> ByteBuffer {
        var buffer = ByteBuffer()
        let header = OutboundMessage.Header(event: event, room: room, eventID: nil)
        if let dataJSON {
            dataJSON.withUnsafeReadableBytes { OutboundMessage.writeEnvelope(header, dataJSON: $0, into: &buffer) }
        } else {
            OutboundMessage.writeEnvelope(header, dataJSON: nil, into: &buffer)
        }
        return buffer
    }
}
