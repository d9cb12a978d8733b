import NIOCore
import NIOWebSocket

/// Builds complete, unmasked server frames (header and payload in one buffer), so that one
/// broadcast is encoded once and the same bytes are written to every recipient.
///
/// NIO's `WebSocketFrameEncoder` writes the header per write (and copies a shared payload to
/// prepend it), which would put work per recipient on the broadcast path; frames built here are
/// written past the encoder. Control frames still go through NIO's encoder.
enum OutboundFrame {
    /// Room left in front of the payload for the largest header (2 + 8 bytes; servers don't mask).
    static let headerSpace = 10

    /// A buffer whose writer index sits where the payload starts. Write the payload, then call
    /// ``finish(_:opcode:)``.
    static func begin(allocator: ByteBufferAllocator, payloadCapacity: Int) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: headerSpace + payloadCapacity)
        buffer.moveWriterIndex(forwardBy: headerSpace)
        buffer.moveReaderIndex(forwardBy: headerSpace)
        return buffer
    }

    /// Puts the frame header in front of the payload written since ``begin(allocator:payloadCapacity:)``;
    /// `compressed` sets RSV1, which marks a permessage-deflate message (RFC 7692 §6).
    static func finish(_ buffer: inout ByteBuffer, opcode: WebSocketOpcode, compressed: Bool = false) {
        let length = buffer.readableBytes
        let first: UInt8 = 0x80 | (compressed ? 0x40 : 0) | UInt8(webSocketOpcode: opcode)
        var start = headerSpace
        switch length {
        case 0...125:
            start -= 2
            buffer.setInteger(first, at: start)
            buffer.setInteger(UInt8(length), at: start + 1)
        case 126...0xFFFF:
            start -= 4
            buffer.setInteger(first, at: start)
            buffer.setInteger(UInt8(126), at: start + 1)
            buffer.setInteger(UInt16(length), at: start + 2)
        default:
            start -= 10
            buffer.setInteger(first, at: start)
            buffer.setInteger(UInt8(127), at: start + 1)
            buffer.setInteger(UInt64(length), at: start + 2)
        }
        buffer.moveReaderIndex(to: start)
    }

    /// The payload of a complete unmasked frame built here (a view, not a copy): the envelope's
    /// JSON text, e.g. for a snapshot made of past events.
    static func payload(of frame: ByteBuffer) -> ByteBuffer {
        guard frame.readableBytes >= 2, let second = frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) else { return ByteBuffer() }
        let headerLength: Int
        switch second & 0x7F {
        case 126: headerLength = 4
        case 127: headerLength = 10
        default: headerLength = 2
        }
        return frame.getSlice(at: frame.readerIndex + headerLength, length: max(0, frame.readableBytes - headerLength)) ?? ByteBuffer()
    }

    /// A complete frame carrying a copy of `payload`.
    static func make(opcode: WebSocketOpcode, payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var payload = payload
        var buffer = begin(allocator: allocator, payloadCapacity: payload.readableBytes)
        buffer.writeBuffer(&payload)
        finish(&buffer, opcode: opcode)
        return buffer
    }
}
