/// An error reply `{"event":"error","id":…,"data":{"code":…,"message":…}}`.
///
/// Throw it from a handler to choose the code and message the client sees; any other error a
/// handler throws is logged and reported as ``Code/handlerFailed`` with a generic message.
public struct EventError: Error, Sendable, Equatable {
    /// A stable, machine-readable code (snake_case).
    public var code: String
    /// A short human-readable explanation.
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// The codes the server itself uses. `docs/protocol.md` lists them.
    public enum Code {
        /// The text message is not JSON.
        public static let badJSON = "bad_json"
        /// JSON, but not an envelope: not an object, `event` missing or not a string, `id` not a string or too long.
        public static let badEnvelope = "bad_envelope"
        /// No handler for this event name.
        public static let unknownEvent = "unknown_event"
        /// `data` does not decode to the handler's payload type.
        public static let invalidPayload = "invalid_payload"
        /// `data` decoded but failed the payload's validation.
        public static let validationFailed = "validation_failed"
        /// The handler failed.
        public static let handlerFailed = "handler_error"
        /// The action is not allowed (joining a room the app refuses, sending to a room one is not in).
        public static let forbidden = "forbidden"
        /// A binary message without a valid binary envelope.
        public static let badBinaryEnvelope = "bad_binary_envelope"
        /// A service the server depends on (its broker, a store) failed or did not answer in
        /// time; nothing was done, and the same message may be sent again.
        public static let unavailable = "unavailable"
        /// The `id` was used before by this user for another event or other `data` (within the
        /// idempotency window); the message was not handled.
        public static let idempotencyConflict = "idempotency_conflict"
        /// The connection sent this event faster than its rate limit allows; the error's data
        /// carries `retryAfter` (milliseconds). The event was not handled.
        public static let rateLimited = "rate_limited"
    }

    /// `error` itself when it is an ``EventError``, else `invalid_payload` (decoding is the only
    /// other thing that throws before a handler runs).
    init(_ error: any Error) {
        self = error as? EventError ?? EventError(code: Code.invalidPayload, message: "data does not decode")
    }

    public static func forbidden(_ message: String) -> EventError {
        EventError(code: Code.forbidden, message: message)
    }
}

/// Thrown by ``ValidatablePayload/validate()`` when a payload is well-formed JSON of the right
/// shape but its values are not acceptable; the client gets `validation_failed` with `message`.
public struct PayloadValidationError: Error, Sendable, Equatable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }
}

/// A payload that checks its own values after decoding (lengths, ranges, formats).
public protocol ValidatablePayload {
    /// Throws ``PayloadValidationError`` describing the first problem found.
    func validate() throws
}

/// A payload for events that carry no data (or data the handler ignores).
public struct EmptyPayload: Codable, Sendable, Equatable, FlatDecodable {
    public init() {}
    init(flat: FlatObject) {}
    public init(from decoder: any Decoder) throws {}
    public func encode(to encoder: any Encoder) throws {
        _ = encoder.container(keyedBy: EmptyKeys.self)
    }
    private enum EmptyKeys: CodingKey {}
}
