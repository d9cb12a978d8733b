import NIOCore

/// A client's id for one of its messages, per user: a retry of the message carries the same one.
public struct IdempotencyKey: Hashable, Sendable {
    public var user: String
    public var id: String

    public init(user: String, id: String) {
        self.user = user
        self.id = id
    }
}

/// What an ``IdempotencyStore`` knows of a message id when a message with it arrives.
public enum IdempotencyClaim: Sendable {
    /// Nothing: this is the first attempt. Handle it, then ``IdempotencyStore/complete(_:reply:remember:)``.
    case first
    /// The first attempt's reply (its complete frame), to send again as it is.
    case replied(ByteBuffer)
    /// The first attempt is still being handled: its reply, once there is one.
    case inProgress(EventLoopFuture<ByteBuffer>)
    /// The id was used within the window for another event or other `data`.
    case conflict
}

/// Remembers, per user and for a window, the reply to each message id that reached a handler, so
/// that a retry (on any connection of the user) gets the same reply and the handler runs once.
///
/// ``InMemoryIdempotencyStore`` is the embedded default. Results complete on the event loop passed in.
public protocol IdempotencyStore: Sendable {
    /// Records the first attempt of `key`, or says what is known of an earlier one. `fingerprint`
    /// identifies the message's event and `data`; the same key with another fingerprint is a
    /// ``IdempotencyClaim/conflict``.
    func claim(_ key: IdempotencyKey, fingerprint: UInt64, on eventLoop: any EventLoop) -> EventLoopFuture<IdempotencyClaim>

    /// The reply to the first attempt of `key`, which retries waiting on it get too. With
    /// `remember` `false` the key is forgotten afterwards (the message did not reach its handler,
    /// or its handling could not finish), so that a later retry is handled anew.
    func complete(_ key: IdempotencyKey, reply: ByteBuffer, remember: Bool)
}

/// The fingerprint of a message for ``IdempotencyStore/claim(_:fingerprint:on:)``: FNV-1a (64-bit)
/// of the event name, a separator and the `data` text as received. Stable across processes, so a
/// store shared by several nodes compares it as well.
public enum MessageFingerprint {
    public static func of(event: String, data: UnsafeRawBufferPointer?) -> UInt64 {
        var hash = FNV1a()
        hash.add(event)
        hash.add(0xFF)
        if let data { hash.add(data) }
        return hash.value
    }
}
