/// FNV-1a, 64-bit: a fast hash of bytes that is the same in every process and on every node, for
/// fingerprints and keys that a client can only collide with its own (never for anything that an
/// attacker could exploit to reach another user's data).
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
    }

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes { add(byte) }
    }

    /// The string's UTF-8 bytes, read from its contiguous storage.
    mutating func add(_ string: String) {
        var string = string
        string.withUTF8 { add(UnsafeRawBufferPointer($0)) }
    }
}
