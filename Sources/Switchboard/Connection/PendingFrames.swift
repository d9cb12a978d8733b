import NIOCore

/// The frames written to one connection in the current loop turn, not yet handed to NIO.
///
/// Keeping them here until the end of the turn means a connection's NIO objects (its context,
/// channel and pending-writes queue) are touched once per turn, in one write-and-flush, instead
/// of once per frame and again to flush: on a broadcast to a thousand sockets the second pass
/// over cold NIO state costs as much as the frames themselves.
enum PendingFrames {
    case none
    /// The usual case: one frame this turn.
    case one(ByteBuffer)
    /// Several frames for one connection in one turn, in order; they leave in one `writev`.
    case many([ByteBuffer])

    mutating func append(_ frame: ByteBuffer) {
        switch self {
        case .none:
            self = .one(frame)
        case .one(let first):
            self = .many([first, frame])
        case .many(var frames):
            // Release our copy first so that the append does not copy the array.
            self = .none
            frames.append(frame)
            self = .many(frames)
        }
    }

    /// Writes the frames to `context` and flushes.
    func write(to context: ChannelHandlerContext) {
        switch self {
        case .none:
            return
        case .one(let frame):
            context.writeAndFlush(NIOAny(frame), promise: nil)
        case .many(let frames):
            for frame in frames {
                context.write(NIOAny(frame), promise: nil)
            }
            context.flush()
        }
    }
}
