// Test support: raw deflate as permessage-deflate (RFC 7692) uses it, through compress-nio, for
// tests that send compressed messages or read the server's.

import CompressNIO
import NIOCore

enum TestDeflate {
    /// `bytes` deflated on their own with a sync flush, the trailing 00 00 FF FF removed
    /// (RFC 7692 §7.2.1), with a window of `windowBits`.
    static func compress(_ bytes: [UInt8], windowBits: Int32 = 15) throws -> [UInt8] {
        let compressor = try ZlibCompressor(algorithm: .deflate, configuration: ZlibConfiguration(windowSize: windowBits))
        var input = ByteBuffer(bytes: bytes)
        var output = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: input))
        try compressor.deflate(from: &input, to: &output, flush: .sync)
        var result = Array(output.readableBytesView)
        if result.suffix(4) == [0, 0, 0xFF, 0xFF] { result.removeLast(4) }
        return result
    }

    /// The payload of one compressed message inflated with a fresh stream of `windowBits`, the
    /// tail put back first; throws if it is not valid deflate data.
    static func inflate(_ bytes: [UInt8], windowBits: Int32 = 15) throws -> [UInt8] {
        let decompressor = try ZlibDecompressor(algorithm: .deflate, windowSize: windowBits)
        var input = ByteBuffer(bytes: bytes + [0, 0, 0xFF, 0xFF])
        var output = ByteBuffer()
        var window = ByteBufferAllocator().buffer(capacity: 1 << 16)
        while true {
            do {
                try decompressor.inflate(from: &input, to: &window)
                output.writeBuffer(&window)
                return Array(output.readableBytesView)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                output.writeBuffer(&window)
                window.clear()
            } catch let error as CompressNIOError where error == .inputBufferOverflow {
                output.writeBuffer(&window)
                return Array(output.readableBytesView)
            }
        }
    }
}
