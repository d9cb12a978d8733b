/// Chooses the permessage-deflate offer to accept from a handshake's `Sec-WebSocket-Extensions`
/// headers (RFC 7692 §5 and §7.1).
///
/// Offers are tried in the client's order; the first valid one the server can honour is accepted.
/// An offer is declined when it repeats a parameter, names one RFC 7692 does not define, gives a
/// parameter a value it may not have, or asks for `server_max_window_bits=8` (zlib cannot write a
/// raw deflate stream with a 256-byte window). Declining every offer is not an error: the
/// connection is opened without compression, as RFC 6455 §9.1 has it.
enum DeflateNegotiation {
    static func accept(offers headerValues: [String]) -> DeflateParameters? {
        for offer in headerValues.flatMap(splitOutsideQuotes(separator: ",")) {
            let parts = splitOutsideQuotes(separator: ";")(offer).map { $0.trimmingSpaces() }
            guard let name = parts.first, name.lowercased() == "permessage-deflate" else { continue }
            if let parameters = parameters(of: parts.dropFirst()) { return parameters }
        }
        return nil
    }

    /// The parameters of one permessage-deflate offer, or `nil` if it must be declined.
    private static func parameters(of parts: ArraySlice<String>) -> DeflateParameters? {
        var seen = Set<String>()
        var result = DeflateParameters(serverWindowBits: 15, windowBitsRequested: false)
        for part in parts {
            let (name, value) = split(parameter: part)
            guard seen.insert(name).inserted else { return nil }
            switch name {
            case "server_no_context_takeover", "client_no_context_takeover":
                // The server works without context takeover either way.
                guard value == nil else { return nil }
            case "server_max_window_bits":
                guard let value, let bits = windowBits(value), bits >= 9 else { return nil }
                result.serverWindowBits = bits
                result.windowBitsRequested = true
            case "client_max_window_bits":
                // The client may compress with any window up to its own maximum: the server's
                // inflater uses 15 bits, which reads them all, so the response need not name it.
                if let value, windowBits(value) == nil { return nil }
            default:
                return nil
            }
        }
        return result
    }

    private static func split(parameter: String) -> (name: String, value: String?) {
        guard let equals = parameter.firstIndex(of: "=") else { return (parameter.lowercased(), nil) }
        let name = parameter[..<equals].trimmingSpaces().lowercased()
        var value = parameter[parameter.index(after: equals)...].trimmingSpaces()
        if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
            value = String(value.dropFirst().dropLast())
        }
        return (name, value)
    }

    /// 8...15 written without sign or leading zero (RFC 7692 §7.1.2).
    private static func windowBits(_ text: String) -> UInt8? {
        guard (1...2).contains(text.utf8.count), text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            !text.hasPrefix("0"), let bits = UInt8(text), (8...15).contains(bits)
        else { return nil }
        return bits
    }

    /// Splits on `separator` where it is not inside a quoted string, and drops empty pieces.
    private static func splitOutsideQuotes(separator: Character) -> (String) -> [String] {
        { text in
            var pieces: [String] = []
            var current = ""
            var quoted = false
            for character in text {
                if character == "\"" { quoted.toggle() }
                if character == separator, !quoted {
                    pieces.append(current)
                    current = ""
                } else {
                    current.append(character)
                }
            }
            pieces.append(current)
            return pieces.map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
        }
    }
}

extension StringProtocol {
    fileprivate func trimmingSpaces() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return String(slice)
    }
}
