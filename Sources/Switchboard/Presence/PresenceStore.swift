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
}
