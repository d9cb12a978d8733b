import Foundation

/// A ``MembershipStore`` kept in memory, for tests and for servers that load
/// their memberships from somewhere else at startup.
///
/// Nothing is persisted: the memberships are gone when the store is released.
/// It is safe to use from many tasks at once; every call holds a lock only
/// for an in-memory lookup or insertion, never across a suspension point.
/// Names are compared byte for byte (UTF-8), as ``MembershipStore`` requires,
/// so it behaves exactly like ``SQLiteMembershipStore``.
///
/// `@unchecked Sendable` is safe because the only mutable state,
/// `memberships`, is read and written exclusively inside `lock.withLock`,
/// and every other stored property is an immutable `let`.
public final class InMemoryMembershipStore: MembershipStore, @unchecked Sendable {
    private let lock = NSLock()
    /// Sorted by user id, then room, comparing UTF-8 bytes; no duplicates.
    /// Guarded by `lock`.
    private var memberships: [Membership] = []

    /// Creates a store holding `memberships`. Duplicates (byte-for-byte equal
    /// user id and room) are kept once.
    public init(_ memberships: [Membership] = []) {
        for membership in memberships {
            _ = insert(membership)
        }
    }

    /// Rooms `userID` is auto-joined to, sorted by name (UTF-8 bytes).
    public func rooms(of userID: String) async throws -> [String] {
        lock.withLock {
            memberships
                .filter { Self.same($0.userID, userID) }
                .map(\.room)
        }
    }

    /// Adds a membership; adding an existing one is not an error. Returns
    /// whether it was new.
    @discardableResult
    public func add(userID: String, room: String) async throws -> Bool {
        insert(Membership(userID: userID, room: room))
    }

    /// Removes a membership; returns whether it existed.
    @discardableResult
    public func remove(userID: String, room: String) async throws -> Bool {
        let membership = Membership(userID: userID, room: room)
        return lock.withLock {
            let index = insertionIndex(of: membership)
            guard index < memberships.endIndex, Self.same(memberships[index], membership) else {
                return false
            }
            memberships.remove(at: index)
            return true
        }
    }

    /// All memberships, or those of one user, sorted by user then room
    /// (UTF-8 bytes).
    public func list(userID: String?) async throws -> [Membership] {
        lock.withLock {
            guard let userID else { return memberships }
            return memberships.filter { Self.same($0.userID, userID) }
        }
    }

    // MARK: - Private

    /// Inserts `membership` at its sorted place unless it is already there.
    private func insert(_ membership: Membership) -> Bool {
        lock.withLock {
            let index = insertionIndex(of: membership)
            if index < memberships.endIndex, Self.same(memberships[index], membership) {
                return false
            }
            memberships.insert(membership, at: index)
            return true
        }
    }

    /// First index whose element does not sort before `membership` (binary
    /// search). Call with `lock` held.
    private func insertionIndex(of membership: Membership) -> Int {
        var low = memberships.startIndex
        var high = memberships.endIndex
        while low < high {
            let middle = low + (high - low) / 2
            if Self.precedes(memberships[middle], membership) {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return low
    }

    /// Byte-for-byte (UTF-8) equality, unlike `String.==`, which treats
    /// canonically equivalent strings as equal.
    private static func same(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.elementsEqual(rhs.utf8)
    }

    private static func same(_ lhs: Membership, _ rhs: Membership) -> Bool {
        same(lhs.userID, rhs.userID) && same(lhs.room, rhs.room)
    }

    /// Orders by user id then room, comparing UTF-8 bytes like SQLite's
    /// `BINARY` collation.
    private static func precedes(_ lhs: Membership, _ rhs: Membership) -> Bool {
        if same(lhs.userID, rhs.userID) {
            return lhs.room.utf8.lexicographicallyPrecedes(rhs.room.utf8)
        }
        return lhs.userID.utf8.lexicographicallyPrecedes(rhs.userID.utf8)
    }
}
