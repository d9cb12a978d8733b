import NIOCore
import NIOPosix

extension SwitchboardServer: UserEventReceiver {
    /// Sends `event` with `data` (JSON text) to every connection of `user`: `{"event","data"}`,
    /// without `room` or `eid` (it is not part of any room's history, and is not replayed on
    /// resume). The frame is encoded once for all of this node's connections; a broker that is a
    /// ``UserEventBroker`` (Redis) carries it to the other nodes, which deliver it to theirs.
    /// Returns the number of this node's connections it was queued for.
    ///
    /// Each event loop looks through its own connections (no index by user is kept, so the cost is
    /// one pass over a node's connections per call): for notifications, not for a hot path.
    public func send(toUser user: String, event: String, dataJSON: ByteBuffer?) async throws -> Int {
        let header = OutboundMessage.Header(event: event)
        var envelope = ByteBuffer()
        if let dataJSON {
            dataJSON.withUnsafeReadableBytes { OutboundMessage.writeEnvelope(header, dataJSON: $0, into: &envelope) }
        } else {
            OutboundMessage.writeEnvelope(header, dataJSON: nil, into: &envelope)
        }
        if let userEvents = rooms.broker as? any UserEventBroker {
            try await userEvents.publish(toUser: user, envelope: envelope, on: MultiThreadedEventLoopGroup.singleton.any()).get()
        }
        let frame = BrokerEvent.frame(envelope: envelope.readableBytesView)
        var sent = 0
        for hub in allHubs {
            sent += (try? await hub.eventLoop.submit { hub.deliver(frame, toUser: user) }.get()) ?? 0
        }
        return sent
    }

    /// A user event from another node: to this node's connections of `user`.
    public func deliver(toUser user: String, frame: ByteBuffer) {
        for hub in allHubs {
            hub.eventLoop.execute { _ = hub.deliver(frame, toUser: user) }
        }
    }
}
