import NIOCore

extension ByteBuffer {
    /// Whether the readable bytes are valid UTF-8. Most messages are ASCII JSON: those are checked
    /// eight bytes at a time without allocating; others go through the standard library's decoder.
    var isValidUTF8: Bool {
        withUnsafeReadableBytes { bytes in
            var index = 0
            let count = bytes.count
            while index + 8 <= count {
                if bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 {
                    return Self.isValidUTF8Slow(bytes)
                }
                index += 8
            }
            while index < count {
                if bytes[index] >= 0x80 { return Self.isValidUTF8Slow(bytes) }
                index += 1
            }
            return true
        }
    }

    private static func isValidUTF8Slow(_ bytes: UnsafeRawBufferPointer) -> Bool {
        String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) != nil
    }
}
