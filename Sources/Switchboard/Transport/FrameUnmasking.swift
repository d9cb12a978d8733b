import NIOCore
import NIOWebSocket

extension WebSocketFrame {
    /// The payload with the client's mask removed, in a buffer of its own.
    ///
    /// NIO's `unmaskedData` copies the payload (it is a slice of the decoder's buffer) and then
    /// unmasks it a byte at a time; this copies and unmasks in one pass, eight bytes at a time.
    var unmaskedPayload: ByteBuffer {
        guard maskKey != nil, data.readableBytes > 0 else { return data }
        var unmasked = ByteBufferAllocator().buffer(capacity: data.readableBytes)
        appendUnmaskedPayload(to: &unmasked)
        return unmasked
    }

    /// Appends the payload, unmasked, to `target` (a fragment to the message it continues).
    func appendUnmaskedPayload(to target: inout ByteBuffer) {
        guard let key = maskKey else {
            var payload = data
            target.writeBuffer(&payload)
            return
        }
        let count = data.readableBytes
        guard count > 0 else { return }
        let keyBytes = (key[0], key[1], key[2], key[3])
        // Each frame's mask starts at its first payload byte; repeated over eight bytes (in
        // memory order), it lines up with any eight bytes that start at a multiple of four.
        let wideKey = withUnsafeBytes(of: (keyBytes, keyBytes)) { $0.loadUnaligned(as: UInt64.self) }
        _ = data.withUnsafeReadableBytes { source in
            target.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { output in
                var index = 0
                while index + 8 <= count {
                    let word = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    output.storeBytes(of: word ^ wideKey, toByteOffset: index, as: UInt64.self)
                    index += 8
                }
                while index < count {
                    output[index] = source[index] ^ key[index & 3]
                    index += 1
                }
                return count
            }
        }
    }
}
