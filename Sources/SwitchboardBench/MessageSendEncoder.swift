import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds masked `message.send` frames for one room with a fixed content size:
///
///     {"event":"message.send","data":{"room":"r","content":"ts=<unix ns> xxxx…"},"id":"m<n>"}
///
/// The content starts with `ts=<unix ns>`, the send time, which the receivers read back.
/// Everything but the timestamp and the id is prepared once.
struct MessageSendEncoder {
    private let prefix: [UInt8]
    private let middle: [UInt8]
    private let tail: [UInt8] = Array("\"}".utf8)
    private let payloadBytes: Int

    /// `room` must need no JSON escaping (the bench's own room names).
    init(room: String, payloadBytes: Int) {
        prefix = Array(#"{"event":"message.send","data":{"room":""#.utf8) + Array(room.utf8) + Array(#"","content":"ts="#.utf8)
        self.payloadBytes = payloadBytes
        // "ts=" + 19 digits + " " leaves the rest of the content for padding (a shorter content
        // is just the marker).
        let padding = payloadBytes - 23
        middle = (padding >= 0 ? [UInt8(ascii: " ")] + Self.text(count: padding) : [])
            + Array(#""},"id":"m"#.utf8)
    }

    /// `count` bytes of English-like words, the same for every message: it compresses about as
    /// chat text does (a run of one letter would compress to nothing and flatter compression).
    static func text(count: Int) -> [UInt8] {
        let words = [
            "the", "room", "message", "is", "on", "its", "way", "to", "every", "member", "of", "a", "live", "dashboard",
            "with", "numbers", "that", "change", "each", "second", "and", "people", "who", "chat", "about", "them", "while",
            "switchboard", "keeps", "order", "presence", "history", "reconnect", "after", "network", "drops", "quickly",
        ]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 16)
        while bytes.count < count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            bytes += Array(words[Int((state >> 33) % UInt64(words.count))].utf8)
            bytes.append(UInt8(ascii: " "))
        }
        return Array(bytes.prefix(count))
    }

    /// Appends one masked frame stamped `sentAtNanos` with id `m<id>`.
    @inline(__always)
    func write(sentAtNanos: Int64, id: UInt64, maskKey: UInt32, into buffer: inout ByteBuffer) {
        let stamp = UInt64(max(0, sentAtNanos))
        let length = prefix.count + ByteBuffer.decimalDigitCount(stamp) + middle.count + ByteBuffer.decimalDigitCount(id) + tail.count
        FrameWriter.writeMaskedFrame(opcode: FrameParser.text, payloadLength: length, maskKey: maskKey, into: &buffer) { buffer in
            buffer.writeBytes(prefix)
            buffer.writeDecimal(stamp)
            buffer.writeBytes(middle)
            buffer.writeDecimal(id)
            buffer.writeBytes(tail)
        }
    }

    /// The frame's size, for reserving buffer capacity.
    var approximateFrameSize: Int { prefix.count + middle.count + 60 }
}

/// Wall-clock time in nanoseconds since 1970 (the timestamp embedded in messages).
@inline(__always)
func unixNanos() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
}
