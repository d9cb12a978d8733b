/// A request that failed: the server's `error` reply (its `code` and `message`, e.g. `forbidden`,
/// `validation_failed`), or a failure on the client's side with one of the codes below.
public struct SwitchboardClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server's stable error code, or one of the client's own (``timeout``, ``queueFull``,
    /// ``closed``, ``cancelled``, ``invalidReply``, ``invalidRequest``).
    public let code: String
    /// A human-readable explanation.
    public let message: String

    /// Creates an error.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// No reply within the request's timeout. The server may still have handled it; resending the
    /// same `id` (``SwitchboardClient/send(_:_:as:id:timeout:)``) is safe.
    public static let timeout = "timeout"
    /// The offline queue was full: the oldest waiting request was given up.
    public static let queueFull = "queue_full"
    /// The client was closed (by ``SwitchboardClient/close()`` or a close that ends reconnecting).
    public static let closed = "closed"
    /// The task waiting for the reply was cancelled.
    public static let cancelled = "cancelled"
    /// The reply could not be decoded as the requested type.
    public static let invalidReply = "invalid_reply"
    /// The request's data could not be encoded.
    public static let invalidRequest = "invalid_request"

    public var description: String { "\(code): \(message)" }
}
