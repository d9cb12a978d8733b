import NIOConcurrencyHelpers
import NIOCore

/// Presence in this process's memory: connections per user per room, in shards with a lock each.
public final class InMemoryPresenceStore: PresenceStore {
    private let shards: [NIOLockedValueBox<[String: [String: Int]]>]

    public init() {
        self.shards = (0..<64).map { _ in NIOLockedValueBox([:]) }
    }

    private func shard(of room: String) -> NIOLockedValueBox<[String: [String: Int]]> {
        var hasher = Hasher()
        hasher.combine(room)
        return shards[Int(UInt(bitPattern: hasher.finalize()) % UInt(shards.count))]
    }

    public func add(_ user: String, to room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        eventLoop.makeSucceededFuture(addNow(user, to: room))
    }

    public func remove(_ user: String, from room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        eventLoop.makeSucceededFuture(removeNow(user, from: room))
    }

    public func members(of room: String, on eventLoop: any EventLoop) -> EventLoopFuture<[String]> {
        eventLoop.makeSucceededFuture(membersNow(of: room))
    }

    /// ``add(_:to:on:)`` without a future.
    @discardableResult
    public func addNow(_ user: String, to room: String) -> Bool {
        shard(of: room).withLockedValue { rooms in
            let count = rooms[room, default: [:]][user, default: 0] + 1
            rooms[room, default: [:]][user] = count
            return count == 1
        }
    }

    /// ``remove(_:from:on:)`` without a future.
    @discardableResult
    public func removeNow(_ user: String, from room: String) -> Bool {
        shard(of: room).withLockedValue { rooms in
            guard let count = rooms[room]?[user] else { return false }
            if count > 1 {
                rooms[room]?[user] = count - 1
                return false
            }
            rooms[room]?.removeValue(forKey: user)
            if rooms[room]?.isEmpty == true { rooms.removeValue(forKey: room) }
            return true
        }
    }

    /// ``members(of:on:)`` without a future.
    public func membersNow(of room: String) -> [String] {
        shard(of: room).withLockedValue { rooms in rooms[room].map { $0.keys.sorted() } ?? [] }
    }

    /// Every room with members, and its users: for a shared store that refreshes this node's
    /// entries.
    public func allMembers() -> [(room: String, users: [String])] {
        shards.flatMap { shard in
            shard.withLockedValue { rooms in rooms.map { (room: $0.key, users: Array($0.value.keys)) } }
        }
    }
}
