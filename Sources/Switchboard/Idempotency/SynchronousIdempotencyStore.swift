import NIOCore

/// An ``IdempotencyStore`` that answers a claim in the caller's turn, with no I/O: the in-memory
/// one. The server claims through ``claimNow(_:fingerprint:on:)`` when its store is one, so that
/// the message path allocates no future or closure for the claim.
public protocol SynchronousIdempotencyStore: IdempotencyStore {
    /// ``IdempotencyStore/claim(_:fingerprint:on:)`` without a future; `eventLoop` is where an
    /// ``IdempotencyClaim/inProgress(_:)`` reply completes.
    func claimNow(_ key: IdempotencyKey, fingerprint: UInt64, on eventLoop: any EventLoop) -> IdempotencyClaim
}
