import NIOCore

/// What a handler that runs on the event loop answers: the ack's `data` now, or later.
enum LoopReply: Sendable {
    /// The ack's `data` as JSON (or none).
    case now(ByteBuffer?)
    /// The ack once `future` completes (on the connection's loop); its `followUp` then runs on the
    /// loop right after the ack is queued, in the same loop turn (a join's replay, say).
    case later(EventLoopFuture<DeferredReply>)
    /// The ack once `future` completes, for a publish the handler has already issued: a pipelined
    /// event's next message need not wait for it (``EventRouter/Route/pipelined(_:)``).
    case published(EventLoopFuture<DeferredReply>)
}

/// A reply that was not ready at once.
struct DeferredReply: Sendable {
    var data: ByteBuffer?
    var followUp: (@Sendable () -> Void)?

    init(data: ByteBuffer?, followUp: (@Sendable () -> Void)? = nil) {
        self.data = data
        self.followUp = followUp
    }
}
