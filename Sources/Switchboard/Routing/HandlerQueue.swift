import NIOCore
import NIOWebSocket

/// The messages of one connection that wait for their turn: a connection's handlers run one at a
/// time, in the order their messages arrived, so a `room.join` and the `message.send` after it are
/// handled in that order. Pipelined events (``EventRouter/Route/pipelined(_:)``) are the exception:
/// one may start while the replies of the ones before it still wait for the broker.
///
/// Confined to the connection's event loop. A connection holds one only while messages wait.
final class HandlerQueue {
    /// A message that arrived while the connection was busy.
    struct Waiting {
        let opcode: WebSocketOpcode
        let payload: ByteBuffer
        /// Whether its event is pipelined: it need not wait for the replies still outstanding.
        let pipelined: Bool
        /// The claim of its id, made on arrival for a pipelined message so that the claims of a
        /// burst overlap; `nil` when it is made at its turn (or it has no id to claim).
        let claim: EarlyClaim?
    }

    /// Messages that arrived while a handler ran, to be dispatched in order.
    var waiting = CircularBuffer<Waiting>()
    /// Whether reading from the connection was paused because too many messages wait.
    var readsPaused = false
}

/// The idempotency claim of a waiting message, made ahead of its turn.
///
/// `@unchecked Sendable`: created, completed and read only on the connection's event loop (the
/// store's futures complete there); the closures that carry it never leave that loop.
final class EarlyClaim: @unchecked Sendable {
    let key: IdempotencyKey
    /// The store's answer, once it has given it.
    var outcome: MessageDispatcher.ClaimOutcome?
    /// Set when the connection ended before the message's turn: a first attempt is released.
    var abandoned = false

    init(key: IdempotencyKey) {
        self.key = key
    }
}
