import NIOCore

/// What one connection has been sent in the current loop turn and not yet flushed.
///
/// Frames wait here until the end of the turn and then go to NIO in one write-and-flush, so a
/// connection's NIO objects (its context, channel and pending-writes queue) are touched once
/// per turn, not once per frame and again to flush:
/// - on a broadcast to a thousand sockets, a second pass over cold NIO state costs as much as
///   the frames themselves;
/// - under load, when one turn carries several frames for a socket, the small ones are copied
///   into one buffer of the socket's own (a copy of a few hundred bytes is far cheaper than one
///   more trip through the pipeline) and leave in one `write`.
enum PendingFrames {
    case none
    /// One frame this turn, shared with its other recipients.
    case one(ByteBuffer)
    /// Several small frames this turn, copied one after the other into this socket's buffer.
    case combined(ByteBuffer)
    /// Frames already handed to NIO (after a large one), waiting for the flush.
    case written

    /// Frames larger than this are not copied: they go to NIO as they are.
    static let largestCopied = 4096

    /// Adds `frame` after the others of this turn.
    mutating func append(_ frame: ByteBuffer, writer: ChannelHandlerContext) {
        switch self {
        case .none:
            self = .one(frame)
        case .one(let first):
            if frame.readableBytes > Self.largestCopied || first.readableBytes > Self.largestCopied {
                writer.write(NIOAny(first), promise: nil)
                writer.write(NIOAny(frame), promise: nil)
                self = .written
                return
            }
            var combined = writer.channel.allocator.buffer(capacity: max(512, 4 * (first.readableBytes + frame.readableBytes)))
            combined.writeImmutableBuffer(first)
            combined.writeImmutableBuffer(frame)
            self = .combined(combined)
        case .combined(var combined):
            if frame.readableBytes > Self.largestCopied {
                writer.write(NIOAny(combined), promise: nil)
                writer.write(NIOAny(frame), promise: nil)
                self = .written
                return
            }
            // Released first, so that the buffer is unique and the append does not copy it.
            self = .none
            combined.writeImmutableBuffer(frame)
            self = .combined(combined)
        case .written:
            writer.write(NIOAny(frame), promise: nil)
        }
    }

    /// Sends what this turn queued.
    func flush(to writer: ChannelHandlerContext) {
        switch self {
        case .none:
            return
        case .one(let frame):
            writer.writeAndFlush(NIOAny(frame), promise: nil)
        case .combined(let frame):
            writer.writeAndFlush(NIOAny(Self.compacted(frame, writer: writer)), promise: nil)
        case .written:
            writer.flush()
        }
    }

    /// A combined buffer is made with room to grow in its turn, often several times what it ends
    /// up holding. For a client that keeps up that costs nothing: the buffer goes to the kernel
    /// and is freed at once. For one that lags it would wait in NIO's queue, holding that spare
    /// room while the outbound high-water mark counts only its bytes, so a slow consumer could
    /// hold several times the mark before it is closed. So when data is already waiting for this
    /// connection (the one case where this buffer will wait too), the bytes are moved into a
    /// buffer of their own size.
    static func compacted(_ frame: ByteBuffer, writer: ChannelHandlerContext) -> ByteBuffer {
        guard frame.capacity >= 2 * frame.readableBytes + 256,
            let waiting = try? writer.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes), waiting > 0
        else { return frame }
        var tight = writer.channel.allocator.buffer(capacity: frame.readableBytes)
        tight.writeImmutableBuffer(frame)
        return tight
    }
}
