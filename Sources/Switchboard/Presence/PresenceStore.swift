import NIOCore

/// Who is in each room, counted per user over all of a user's connections (and, for a store
/// shared by several nodes, over all nodes), so that presence is announced once per user.
///
/// ``InMemoryPresenceStore`` is the embedded default. Results complete on the event loop passed in.
public protocol PresenceStore: Sendable {
    /// One more connection of `user` is in `room`; `true` when it is the user's first there.
    func add(_ user: String, to room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Bool>
    /// One connection of `user` left `room`; `true` when it was the user's last there.
    func remove(_ user: String, from room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Bool>
    /// The distinct users in `room`, sorted.
    func members(of room: String, on eventLoop: any EventLoop) -> EventLoopFuture<[String]>
    /// Called once by the rooms layer, so that a store whose entries can change without a call
    /// (a shared store, where a dead node's entries expire) reports those changes. The default
    /// does nothing: the in-memory store's entries change only through the calls above.
    func observe(_ observer: any PresenceObserver)
}

extension PresenceStore {
    public func observe(_ observer: any PresenceObserver) {}
}

/// Told of presence changes that no call of this node made: the rooms layer announces them.
public protocol PresenceObserver: AnyObject, Sendable {
    /// `users` are no longer in `room` (their entries expired: their node stopped refreshing them).
    func presenceExpired(_ users: [String], in room: String)
    /// `users` are in `room` again (this node refreshed entries that had expired, e.g. after it
    /// could not reach the store for a while).
    func presenceRestored(_ users: [String], in room: String)
}
