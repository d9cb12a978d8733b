import NIOCore

/// Appends JSON tokens to a `ByteBuffer` without going through `JSONEncoder`: used for envelopes,
/// whose shape is fixed, so that the only general-purpose encode on a send is the app's `data`.
extension ByteBuffer {
    /// Writes `value` as a JSON string literal, quotes included.
    mutating func writeJSONString(_ value: String) {
        self.writeInteger(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { bytes in
            var runStart = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                if index > runStart {
                    self.writeBytes(UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                }
                self.writeJSONEscape(for: byte)
                runStart = index + 1
            }
            if runStart < bytes.count {
                self.writeBytes(UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
            }
        }
        self.writeInteger(UInt8(ascii: "\""))
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
