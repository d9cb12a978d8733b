import CompressNIO
import NIOCore

/// Inflates the permessage-deflate messages of one event loop's bench connections: the server
/// compresses each message on its own (no context takeover), so one raw-deflate stream, reset for
/// each message, reads them all.
final class BenchInflater {
    private var decompressor: ZlibDecompressor?
    private var output = ByteBufferAllocator().buffer(capacity: 64 * 1024)

    /// The inflated message, or `nil` if `payload` is not valid deflate data.
    func inflate(_ payload: UnsafeRawBufferPointer) -> ByteBuffer? {
        guard let decompressor = decompressor ?? (try? ZlibDecompressor(algorithm: .deflate, windowSize: 15)) else { return nil }
        self.decompressor = decompressor
        var input = ByteBufferAllocator().buffer(capacity: payload.count + 4)
        input.writeBytes(payload)
        input.writeInteger(UInt32(0x0000_FFFF))
        output.clear()
        do {
            try decompressor.reset()
            while true {
                do {
                    try decompressor.inflate(from: &input, to: &output)
                    return output
                } catch let error as CompressNIOError where error == .bufferOverflow {
                    output.reserveCapacity(minimumWritableBytes: output.capacity)
                } catch let error as CompressNIOError where error == .inputBufferOverflow {
                    return output
                }
            }
        } catch {
            return nil
        }
    }
}
