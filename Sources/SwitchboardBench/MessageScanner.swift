#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Classifies server envelopes by scanning their bytes, without decoding JSON.
///
/// A delivery is a text message containing `"message.new"`; its send time is the number after
/// `ts=`, which the publisher put at the start of `content` (the server passes `content` through
/// unchanged). Replies contain `"event":"ack"` or `"event":"error"`. Room events carry their
/// position as `"eid":"<epoch>:<offset>"` (``eventID(in:)``).
enum MessageScanner {
    enum Kind: Equatable {
        /// `message.new`, with the publisher's timestamp (unix ns) if found.
        case delivery(sentAtNanos: Int64?)
        case ack
        case error
        /// `state.refresh`: a resume that could not be replayed (its snapshot may hold
        /// `message.new` frames, which are not deliveries).
        case refresh
        case other
    }

    private static let eventPrefix: [UInt8] = Array(#"{"event":""#.utf8)
    private static let messageNew: [UInt8] = Array(#""message.new""#.utf8)
    private static let ackEvent: [UInt8] = Array(#""event":"ack""#.utf8)
    private static let errorEvent: [UInt8] = Array(#""event":"error""#.utf8)
    private static let ackName: [UInt8] = Array(#"ack""#.utf8)
    private static let errorName: [UInt8] = Array(#"error""#.utf8)
    private static let refreshName: [UInt8] = Array(#"state.refresh""#.utf8)
    private static let refreshEvent: [UInt8] = Array(#""event":"state.refresh""#.utf8)
    private static let eidField: [UInt8] = Array(#""eid":""#.utf8)
    private static let roomField: [UInt8] = Array(#""room":""#.utf8)

    static func classify(_ payload: UnsafeRawBufferPointer) -> Kind {
        // Fast path: the server writes `event` first, so the name follows `{"event":"`.
        if hasPrefix(payload, eventPrefix, at: 0) {
            let name = eventPrefix.count
            if hasPrefix(payload, messageNew, at: name - 1) {
                return .delivery(sentAtNanos: timestamp(in: payload, from: name + messageNew.count))
            }
            if hasPrefix(payload, ackName, at: name) { return .ack }
            if hasPrefix(payload, errorName, at: name) { return .error }
            if hasPrefix(payload, refreshName, at: name) { return .refresh }
            // Another event (presence, typing): no need to scan the rest.
            return .other
        }
        // Any other field order; a snapshot inside state.refresh may hold "message.new".
        if firstIndex(of: refreshEvent, in: payload, from: 0) != nil { return .refresh }
        if let index = firstIndex(of: messageNew, in: payload, from: 0) {
            return .delivery(sentAtNanos: timestamp(in: payload, from: index + messageNew.count))
        }
        if firstIndex(of: ackEvent, in: payload, from: 0) != nil { return .ack }
        if firstIndex(of: errorEvent, in: payload, from: 0) != nil { return .error }
        return .other
    }

    /// The digits after the first `ts=` at or after `start`, as a number.
    static func timestamp(in payload: UnsafeRawBufferPointer, from start: Int) -> Int64? {
        // '=' is rare in JSON envelopes, so look for it (memchr) and check the "ts" before it.
        var equals = max(start, 2)
        while true {
            guard let found = firstIndex(of: UInt8(ascii: "="), in: payload, from: equals) else { return nil }
            if payload[found - 2] == UInt8(ascii: "t"), payload[found - 1] == UInt8(ascii: "s") {
                equals = found
                break
            }
            equals = found + 1
        }
        var index = equals + 1
        var value: Int64 = 0
        var digits = 0
        while index < payload.count, digits < 19 {
            let byte = payload[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { break }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            digits += 1
            index += 1
        }
        return digits > 0 ? value : nil
    }

    /// The envelope's position: the first `"eid":"<epoch>:<offset>"` of `payload` (the server
    /// writes `eid` before `data`, so a first one inside `data` means the envelope has none, as in
    /// an ack, whose `data.eid` is what is wanted), as the epoch's byte range and the offset.
    /// `nil` without one, or when it is not `<non-empty epoch>:<decimal offset>`.
    static func eventID(in payload: UnsafeRawBufferPointer) -> (epoch: Range<Int>, offset: UInt64)? {
        guard let field = firstIndex(of: eidField, in: payload, from: 0) else { return nil }
        let epochStart = field + eidField.count
        guard let colon = firstIndex(of: UInt8(ascii: ":"), in: payload, from: epochStart), colon > epochStart else { return nil }
        // An epoch is letters and digits: a quote before the colon means a malformed id.
        if let quote = firstIndex(of: UInt8(ascii: "\""), in: payload, from: epochStart), quote < colon { return nil }
        var index = colon + 1
        var offset: UInt64 = 0
        var digits = 0
        while index < payload.count, digits < 19 {
            let byte = payload[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { break }
            offset = offset * 10 + UInt64(byte - UInt8(ascii: "0"))
            digits += 1
            index += 1
        }
        guard digits > 0, index < payload.count, payload[index] == UInt8(ascii: "\"") else { return nil }
        return (epochStart..<colon, offset)
    }

    /// Whether the envelope's room (the first `"room":"…"`, which the server writes before
    /// `data`) is `room`, given as its bytes followed by a quote (`r1"`).
    static func isRoom(_ quotedRoom: [UInt8], in payload: UnsafeRawBufferPointer) -> Bool {
        guard let field = firstIndex(of: roomField, in: payload, from: 0) else { return false }
        return hasPrefix(payload, quotedRoom, at: field + roomField.count)
    }

    /// Whether `payload` contains `pattern`.
    static func contains(_ pattern: [UInt8], in payload: UnsafeRawBufferPointer) -> Bool {
        firstIndex(of: pattern, in: payload, from: 0) != nil
    }

    @inline(__always)
    static func hasPrefix(_ payload: UnsafeRawBufferPointer, _ pattern: [UInt8], at offset: Int) -> Bool {
        guard offset >= 0, payload.count - offset >= pattern.count else { return false }
        for index in 0..<pattern.count where payload[offset + index] != pattern[index] {
            return false
        }
        return true
    }

    /// The offset of the first occurrence of `pattern` at or after `start`.
    static func firstIndex(of pattern: [UInt8], in payload: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard let first = pattern.first, payload.count >= pattern.count else { return nil }
        var index = max(0, start)
        let last = payload.count - pattern.count
        while index <= last {
            // memchr finds candidates for the first byte (vectorised), then the rest is compared.
            guard let candidate = firstIndex(of: first, in: payload, from: index), candidate <= last else { return nil }
            if hasPrefix(payload, pattern, at: candidate) { return candidate }
            index = candidate + 1
        }
        return nil
    }

    /// The offset of the first `byte` at or after `start`.
    @inline(__always)
    static func firstIndex(of byte: UInt8, in payload: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < payload.count, let base = payload.baseAddress else { return nil }
        guard let found = memchr(base + start, Int32(byte), payload.count - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }
}
