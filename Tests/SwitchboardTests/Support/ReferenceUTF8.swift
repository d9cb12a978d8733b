// Test support, shared with the libFuzzer target Fuzz/Sources/FuzzFrames (a symlink there): the
// UTF-8 check's reference model.

/// RFC 3629 section 4, written out.
func referenceIsValidUTF8(_ bytes: [UInt8]) -> Bool {
    var index = 0
    func continuation(_ offset: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
        index + offset < bytes.count && range.contains(bytes[index + offset])
    }
    while index < bytes.count {
        let length: Int
        switch bytes[index] {
        case 0x00...0x7F: length = 1
        case 0xC2...0xDF: guard continuation(1) else { return false }; length = 2
        case 0xE0: guard continuation(1, 0xA0...0xBF), continuation(2) else { return false }; length = 3
        case 0xE1...0xEC, 0xEE...0xEF: guard continuation(1), continuation(2) else { return false }; length = 3
        case 0xED: guard continuation(1, 0x80...0x9F), continuation(2) else { return false }; length = 3
        case 0xF0: guard continuation(1, 0x90...0xBF), continuation(2), continuation(3) else { return false }; length = 4
        case 0xF1...0xF3: guard continuation(1), continuation(2), continuation(3) else { return false }; length = 4
        case 0xF4: guard continuation(1, 0x80...0x8F), continuation(2), continuation(3) else { return false }; length = 4
        default: return false
        }
        index += length
    }
    return true
}
