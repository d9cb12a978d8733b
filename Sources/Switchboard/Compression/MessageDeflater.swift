import CompressNIO
import NIOCore
import NIOWebSocket

/// The zlib streams of one event loop: compresses outbound frames and inflates inbound messages
/// for every connection of the loop that negotiated permessage-deflate. Each message is
/// compressed and inflated on its own (no context takeover), so the streams are reset for each
/// and no connection holds one.
///
/// Confined to its loop, like the ``LoopHub`` that owns it. `package`: the bench's connections
/// inflate the server's messages with it too.
package final class MessageDeflater {
    let threshold: Int
    private let level: Int32
    /// One compressor per window size asked for (index: window bits - 9), made on first use.
    private var compressors: [ZlibCompressor?] = Array(repeating: nil, count: 7)
    private var decompressor: ZlibDecompressor?
    /// Frames compressed on this loop, for tests and figures: a broadcast adds one per window
    /// size its recipients here asked for, however many they are.
    private(set) var framesCompressed = 0
    /// Compressed messages inflated on this loop, for tests and figures.
    private(set) var messagesInflated = 0
    /// Where inflated bytes land before they are counted against the limit.
    private var window = ByteBuffer()

    package init(configuration: CompressionConfiguration) {
        self.threshold = configuration.threshold
        self.level = Int32(configuration.level)
        self.window = ByteBufferAllocator().buffer(capacity: Self.windowSize)
    }

    static let windowSize = 16 * 1024

    // MARK: outbound

    /// The compressed form of a complete unmasked text or binary frame built by ``OutboundFrame``
    /// (RSV1 set, the payload deflated with the trailing `00 00 FF FF` removed), or `nil` when it
    /// should go as it is: its payload is below the threshold, or would not get smaller.
    func compressed(_ frame: ByteBuffer, windowBits: UInt8, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard let first = frame.getInteger(at: frame.readerIndex, as: UInt8.self), first & 0x70 == 0,
            let opcode = WebSocketOpcode(encodedWebSocketOpcode: first & 0x0F), opcode == .text || opcode == .binary
        else { return nil }
        var payload = OutboundFrame.payload(of: frame)
        let length = payload.readableBytes
        guard length >= threshold, length > 0, let compressor = compressor(windowBits: windowBits) else { return nil }
        do {
            try compressor.reset()
            var output = OutboundFrame.begin(allocator: allocator, payloadCapacity: compressor.maxSize(from: payload))
            try compressor.deflate(from: &payload, to: &output, flush: .sync)
            // A sync flush ends with an empty stored block, 00 00 FF FF, which RFC 7692 §7.2.1 has
            // the sender remove (and the receiver put back).
            guard payload.readableBytes == 0, output.readableBytes >= 4,
                output.getInteger(at: output.writerIndex - 4, as: UInt32.self) == 0x0000_FFFF
            else { return nil }
            output.moveWriterIndex(to: output.writerIndex - 4)
            guard output.readableBytes < length else { return nil }
            OutboundFrame.finish(&output, opcode: opcode, compressed: true)
            framesCompressed &+= 1
            return output
        } catch {
            return nil
        }
    }

    private func compressor(windowBits: UInt8) -> ZlibCompressor? {
        let index = Int(min(15, max(9, windowBits))) - 9
        if let compressor = compressors[index] { return compressor }
        let configuration = ZlibConfiguration(windowSize: Int32(index + 9), compressionLevel: level, memoryLevel: 8, strategy: .default)
        let compressor = try? ZlibCompressor(algorithm: .deflate, configuration: configuration)
        compressors[index] = compressor
        return compressor
    }

    // MARK: inbound

    package enum Inflated {
        case message(ByteBuffer)
        /// It inflates to more than the limit: nothing beyond limit + 1 bytes was allocated.
        case tooBig
        /// Not a valid deflate stream.
        case corrupt
    }

    /// Inflates the payload of a message that arrived with RSV1 set. Output goes through a fixed
    /// window of this loop's and is kept only while it stays within `limit`, so a message that
    /// would inflate far beyond it (a compression bomb) costs no more memory than the limit.
    package func inflate(_ compressed: ByteBuffer, limit: Int, allocator: ByteBufferAllocator) -> Inflated {
        guard let decompressor = decompressor ?? (try? ZlibDecompressor(algorithm: .deflate, windowSize: 15)) else { return .corrupt }
        self.decompressor = decompressor
        var input = compressed
        input.writeInteger(UInt32(0x0000_FFFF))
        var output = allocator.buffer(capacity: min(limit, max(256, input.readableBytes * 3)))
        window.clear()
        do {
            try decompressor.reset()
            while true {
                do {
                    try decompressor.inflate(from: &input, to: &window)
                    // Z_OK with room left (all input used) or the end of a final block; past a
                    // final block only the tail put back above may remain.
                    guard input.readableBytes == 0 || input.readableBytes == 4 else { return .corrupt }
                    break
                } catch let error as CompressNIOError where error == .bufferOverflow {
                    guard output.readableBytes + window.readableBytes <= limit else { return .tooBig }
                    output.writeBuffer(&window)
                    window.clear()
                } catch let error as CompressNIOError where error == .inputBufferOverflow {
                    // Every byte was read and the stream waits for more: the message ends here.
                    break
                }
            }
        } catch {
            return .corrupt
        }
        guard output.readableBytes + window.readableBytes <= limit else { return .tooBig }
        output.writeBuffer(&window)
        messagesInflated &+= 1
        return .message(output)
    }
}
