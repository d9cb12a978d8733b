/// Parses WebSocket frames sent by a server (RFC 6455 5.2) straight from received bytes, without
/// copying payloads: ``parse(_:)`` reads one header and says where its payload lies.
enum FrameParser {
    static let continuation: UInt8 = 0x0
    static let text: UInt8 = 0x1
    static let binary: UInt8 = 0x2
    static let close: UInt8 = 0x8
    static let ping: UInt8 = 0x9
    static let pong: UInt8 = 0xA

    /// The largest frame accepted (the server's own limit is far lower).
    static let maximumPayload = 64 << 20

    /// One frame's header: its opcode, FIN bit, and where its payload is.
    struct Frame: Equatable {
        var fin: Bool
        /// RSV1: a permessage-deflate message's first frame (only where it was negotiated).
        var compressed = false
        var opcode: UInt8
        /// Offset of the payload from the start of the frame.
        var payloadOffset: Int
        var payloadLength: Int
        /// Masking key, if the frame was masked (servers must not mask; the bench unmasks anyway).
        var maskKey: UInt32?
        /// Header plus payload.
        var totalLength: Int { payloadOffset + payloadLength }
    }

    enum ParseError: Error, Equatable {
        case frameTooLarge(Int)
        case reservedBits
    }

    /// The frame at the start of `bytes`, or nil when its header or payload is not complete yet.
    /// `deflate`: permessage-deflate was negotiated, so RSV1 may be set.
    static func parse(_ bytes: UnsafeRawBufferPointer, deflate: Bool = false) throws -> Frame? {
        guard bytes.count >= 2 else { return nil }
        let first = bytes[0]
        let second = bytes[1]
        guard first & (deflate ? 0x30 : 0x70) == 0 else { throw ParseError.reservedBits }
        var offset = 2
        var length = Int(second & 0x7F)
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            var value: UInt64 = 0
            for index in 2..<10 { value = value << 8 | UInt64(bytes[index]) }
            guard value <= UInt64(maximumPayload) else { throw ParseError.frameTooLarge(Int(clamping: value)) }
            length = Int(value)
            offset = 10
        }
        guard length <= maximumPayload else { throw ParseError.frameTooLarge(length) }
        var maskKey: UInt32?
        if second & 0x80 != 0 {
            guard bytes.count >= offset + 4 else { return nil }
            maskKey = UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
            offset += 4
        }
        guard bytes.count >= offset + length else { return nil }
        return Frame(fin: first & 0x80 != 0, compressed: first & 0x40 != 0, opcode: first & 0x0F, payloadOffset: offset, payloadLength: length, maskKey: maskKey)
    }
}
