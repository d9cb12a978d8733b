import Foundation

/// The `data` of an inbound envelope: a byte range of the message, still undecoded.
///
/// Only valid while the message's bytes are (it borrows them): handlers decode it on the event loop
/// before anything leaves it.
struct InboundPayload {
    let message: UnsafeRawBufferPointer
    /// The byte range of the `data` value; `nil` when the envelope has no `data` (or `data: null`).
    let range: Range<Int>?

    init(message: UnsafeRawBufferPointer, range: Range<Int>?) {
        self.message = message
        // `"data": null` reads as no data, as `decodeIfPresent` would have it.
        if let range, range.count == 4, message[range.lowerBound] == UInt8(ascii: "n") {
            self.range = nil
        } else {
            self.range = range
        }
    }

    /// The JSON text of the value, `{}` when absent, for `JSONDecoder`.
    var json: Data {
        guard let range else { return Data("{}".utf8) }
        return Data(UnsafeRawBufferPointer(rebasing: message[range]))
    }

    /// The value as a flat object, when it is one (`{}` when absent).
    var flatObject: FlatObject? {
        JSONScanner.flatObject(message, range: range)
    }
}

/// A payload type that can be read straight from a ``FlatObject`` (an object whose members are
/// strings, numbers, booleans or null), skipping `JSONDecoder`: for the built-in events, whose
/// payloads are that simple. Its errors must read as `JSONDecoder`'s would (`data.room is required`).
protocol FlatDecodable {
    init(flat: FlatObject) throws(EventError)
}

extension FlatObject {
    /// The string member `key`, or the `invalid_payload` error JSONDecoder's path would give.
    func requiredString(_ key: String) throws(EventError) -> String {
        switch self[key] {
        case .string(let value):
            return value
        case .none:
            throw EventError(code: EventError.Code.invalidPayload, message: "data.\(key) is required")
        case .null:
            throw EventError(code: EventError.Code.invalidPayload, message: "data.\(key) must be a string, not null")
        default:
            throw EventError(code: EventError.Code.invalidPayload, message: "data.\(key) must be a string")
        }
    }
}

extension FlatObject {
    /// The string member `key`, `nil` when absent or null.
    func optionalString(_ key: String) throws(EventError) -> String? {
        switch self[key] {
        case .string(let value):
            return value
        case .none, .null:
            return nil
        default:
            throw EventError(code: EventError.Code.invalidPayload, message: "data.\(key) must be a string")
        }
    }
}
