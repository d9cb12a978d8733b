import NIOCore

/// Appends JSON tokens to a `ByteBuffer` without going through `JSONEncoder`: used for envelopes,
/// whose shape is fixed, so that the only general-purpose encode on a send is the app's `data`.
extension ByteBuffer {
    /// Writes `value` as a JSON string literal, quotes included.
    mutating func writeJSONString(_ value: String) {
        var value = value
        value.withUTF8 { bytes in
            // Most strings (ids, room names, chat text) need no escape: one copy, quotes included.
            guard let firstEscape = bytes.firstIndex(where: Self.needsJSONEscape) else {
                self.writeWithUnsafeMutableBytes(minimumWritableBytes: bytes.count + 2) { target in
                    target[0] = UInt8(ascii: "\"")
                    UnsafeMutableRawBufferPointer(rebasing: target[1..<(bytes.count + 1)]).copyMemory(from: UnsafeRawBufferPointer(bytes))
                    target[bytes.count + 1] = UInt8(ascii: "\"")
                    return bytes.count + 2
                }
                return
            }
            self.writeInteger(UInt8(ascii: "\""))
            var runStart = 0
            for index in firstEscape..<bytes.count {
                let byte = bytes[index]
                guard Self.needsJSONEscape(byte) else { continue }
                if index > runStart {
                    self.writeBytes(UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                }
                self.writeJSONEscape(for: byte)
                runStart = index + 1
            }
            if runStart < bytes.count {
                self.writeBytes(UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
            }
            self.writeInteger(UInt8(ascii: "\""))
        }
    }

    /// Writes an event id as a JSON string, `"<epoch>:<offset>"` (an epoch needs no escapes).
    mutating func writeJSONEventID(_ eventID: EventID) {
        self.writeInteger(UInt8(ascii: "\""))
        self.writeString(eventID.epoch)
        self.writeInteger(UInt8(ascii: ":"))
        self.writeJSONInteger(eventID.offset)
        self.writeInteger(UInt8(ascii: "\""))
    }

    /// Writes `value` as a JSON number, without making a `String` of it first.
    mutating func writeJSONInteger(_ value: Int64) {
        writeDecimal(value.magnitude, negative: value < 0)
    }

    /// Writes `value` as a JSON number, without making a `String` of it first.
    mutating func writeJSONInteger(_ value: UInt64) {
        writeDecimal(value, negative: false)
    }

    private mutating func writeDecimal(_ magnitude: UInt64, negative: Bool) {
        var digits = 1
        var rest = magnitude / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        let length = digits + (negative ? 1 : 0)
        // Digits are written from the last one back, straight into place.
        self.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { target in
            var value = magnitude
            var index = length - 1
            repeat {
                target[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
                index -= 1
            } while value > 0
            if negative {
                target[0] = UInt8(ascii: "-")
            }
            return length
        }
    }

    @inline(__always)
    private static func needsJSONEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    private mutating func writeJSONEscape(for byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): self.writeStaticString("\\\"")
        case UInt8(ascii: "\\"): self.writeStaticString("\\\\")
        case 0x0A: self.writeStaticString("\\n")
        case 0x0D: self.writeStaticString("\\r")
        case 0x09: self.writeStaticString("\\t")
        default:
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            self.writeStaticString("\\u00")
            self.writeInteger(hex[Int(byte >> 4)])
            self.writeInteger(hex[Int(byte & 0x0F)])
        }
    }
}
