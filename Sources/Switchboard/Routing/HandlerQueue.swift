import NIOCore
import NIOWebSocket

/// The messages of one connection that wait while one of its app handlers runs: a connection's
/// handlers run one at a time, in the order their messages arrived, so a `message.send` and the
/// `message.edit` after it are handled in that order.
///
/// Confined to the connection's event loop. A connection holds one only while a handler runs.
final class HandlerQueue {
    /// Messages that arrived while a handler ran, to be dispatched in order.
    var waiting = CircularBuffer<(opcode: WebSocketOpcode, payload: ByteBuffer)>()
    /// Whether reading from the connection was paused because too many messages wait.
    var readsPaused = false
}
