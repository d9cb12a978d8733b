/// The rule for room names and user ids that Switchboard stores and routes:
/// not empty, at most ``maximumByteCount`` bytes of UTF-8, and no control
/// characters or line breaks.
///
/// The rule keeps names safe to print one per line (the `rooms list` output
/// is `user<TAB>room` lines) and to use as storage keys. It does not trim,
/// normalize or case-fold: `"Lobby"`, `"lobby"` and `" lobby"` are three
/// valid, different names.
public enum RoomName {
    /// The longest accepted name, in UTF-8 bytes (not characters): 128 ASCII
    /// letters, but only 32 four-byte emoji.
    public static let maximumByteCount = 128

    /// Checks `name` against the rule.
    ///
    /// - Returns: `nil` when `name` is valid, else a short lowercase reason
    ///   such as `"is empty"`, meant to follow the name of the field in a
    ///   message (`"room \(reason)"`). The reason never repeats `name`, so it
    ///   is safe to print even when `name` contains escape sequences.
    public static func validate(_ name: String) -> String? {
        if name.isEmpty {
            return "is empty"
        }
        let byteCount = name.utf8.count
        if byteCount > maximumByteCount {
            return "is \(byteCount) bytes long; at most \(maximumByteCount) bytes of UTF-8 are allowed"
        }
        // Printable ASCII has no control or line-break character: skip the Unicode tables.
        if name.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            return nil
        }
        for scalar in name.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control:
                // C0 and C1 controls, DEL, and so tab, newline, NUL and ESC.
                return "contains the control character \(codePoint(scalar))"
            case .lineSeparator, .paragraphSeparator:
                // U+2028 and U+2029 break lines in many tools as well.
                return "contains the line break \(codePoint(scalar))"
            default:
                continue
            }
        }
        return nil
    }

    /// `U+000A` style notation, at least four hex digits.
    private static func codePoint(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
