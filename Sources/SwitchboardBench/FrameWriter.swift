import NIOCore

/// Writes client frames (RFC 6455 5.2): always masked, never fragmented.
enum FrameWriter {
    /// Appends a masked frame whose payload `writePayload` appends; `payloadLength` must be the
    /// number of bytes it writes. The payload is masked in place afterwards.
    @inline(__always)
    static func writeMaskedFrame(
        opcode: UInt8, payloadLength: Int, maskKey: UInt32, into buffer: inout ByteBuffer,
        _ writePayload: (inout ByteBuffer) -> Void
    ) {
        buffer.writeInteger(0x80 | opcode)
        if payloadLength < 126 {
            buffer.writeInteger(UInt8(0x80 | payloadLength))
        } else if payloadLength <= 0xFFFF {
            buffer.writeInteger(UInt8(0x80 | 126))
            buffer.writeInteger(UInt16(payloadLength))
        } else {
            buffer.writeInteger(UInt8(0x80 | 127))
            buffer.writeInteger(UInt64(payloadLength))
        }
        buffer.writeInteger(maskKey)
        let start = buffer.writerIndex
        writePayload(&buffer)
        let end = buffer.writerIndex
        assert(end - start == payloadLength, "payload length \(end - start), announced \(payloadLength)")
        let readerIndex = buffer.readerIndex
        buffer.withUnsafeMutableReadableBytes { bytes in
            mask(UnsafeMutableRawBufferPointer(rebasing: bytes[(start - readerIndex)..<(end - readerIndex)]), key: maskKey)
        }
    }

    /// A masked frame holding `payload`.
    static func maskedFrame(opcode: UInt8, payload: some Collection<UInt8>, maskKey: UInt32, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: payload.count + 14)
        writeMaskedFrame(opcode: opcode, payloadLength: payload.count, maskKey: maskKey, into: &buffer) { $0.writeBytes(payload) }
        return buffer
    }

    /// A masked Close frame with `code` and no reason.
    static func closeFrame(code: UInt16, maskKey: UInt32, allocator: ByteBufferAllocator) -> ByteBuffer {
        maskedFrame(opcode: FrameParser.close, payload: [UInt8(code >> 8), UInt8(code & 0xFF)], maskKey: maskKey, allocator: allocator)
    }

    /// XORs `bytes` with the big-endian key, repeated (also unmasks).
    @inline(__always)
    static func mask(_ bytes: UnsafeMutableRawBufferPointer, key: UInt32) {
        let keyBytes: (UInt8, UInt8, UInt8, UInt8) = (UInt8(key >> 24), UInt8((key >> 16) & 0xFF), UInt8((key >> 8) & 0xFF), UInt8(key & 0xFF))
        var index = 0
        let count = bytes.count
        while index + 4 <= count {
            bytes[index] ^= keyBytes.0
            bytes[index + 1] ^= keyBytes.1
            bytes[index + 2] ^= keyBytes.2
            bytes[index + 3] ^= keyBytes.3
            index += 4
        }
        if index < count { bytes[index] ^= keyBytes.0 }
        if index + 1 < count { bytes[index + 1] ^= keyBytes.1 }
        if index + 2 < count { bytes[index + 2] ^= keyBytes.2 }
    }
}

extension ByteBuffer {
    /// Appends the decimal digits of `value`, without allocating a string.
    @inline(__always)
    mutating func writeDecimal(_ value: UInt64) {
        var digits: (UInt64, Int) = (value, 0)
        var reversed: UInt64 = 0
        // Up to 20 digits do not fit one UInt64 reversal; write the rare huge value via String.
        guard value < 10_000_000_000_000_000_000 else {
            writeString(String(value))
            return
        }
        repeat {
            reversed = reversed * 10 + digits.0 % 10
            digits.0 /= 10
            digits.1 += 1
        } while digits.0 > 0
        for _ in 0..<digits.1 {
            writeInteger(UInt8(ascii: "0") + UInt8(reversed % 10))
            reversed /= 10
        }
    }

    /// Number of decimal digits of `value`.
    static func decimalDigitCount(_ value: UInt64) -> Int {
        var count = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            count += 1
        }
        return count
    }
}
