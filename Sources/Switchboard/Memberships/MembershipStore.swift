/// A stored room membership: `userID` is auto-joined to `room` on connect.
///
/// Both fields are kept exactly as given. Stores compare them byte for byte
/// (UTF-8), so two canonically equivalent spellings such as `"é"` (U+00E9)
/// and `"e\u{301}"` are two different memberships in a store even though
/// Swift's `==` on `Membership` (and on `String`) calls them equal.
public struct Membership: Sendable, Hashable, Codable {
    /// The user who is auto-joined.
    public let userID: String
    /// The room the user is auto-joined to.
    public let room: String

    /// Creates a membership value. Nothing is validated or stored here; check
    /// names with ``RoomName/validate(_:)`` before storing them.
    public init(userID: String, room: String) {
        self.userID = userID
        self.room = room
    }
}

/// Where the server reads the rooms a user joins automatically on connect.
///
/// Contract shared by every implementation:
/// - User ids and room names are compared byte for byte (UTF-8), with no
///   Unicode normalization or case folding.
/// - "Sorted" means ordered by UTF-8 bytes (the order of SQLite's `BINARY`
///   collation), so `"Zoe"` comes before `"alice"`.
/// - Stores do not validate names; callers check them with
///   ``RoomName/validate(_:)`` first.
/// - All methods are safe to call concurrently from any task, and none of
///   them blocks the calling thread while waiting for storage.
public protocol MembershipStore: Sendable {
    /// Rooms `userID` is auto-joined to, sorted by name.
    ///
    /// Returns an empty array for an unknown user.
    func rooms(of userID: String) async throws -> [String]

    /// Adds a membership; adding an existing one is not an error. Returns whether it was new.
    @discardableResult func add(userID: String, room: String) async throws -> Bool

    /// Removes a membership; returns whether it existed.
    @discardableResult func remove(userID: String, room: String) async throws -> Bool

    /// All memberships, or those of one user, sorted by user then room.
    ///
    /// Pass `nil` for every membership in the store.
    func list(userID: String?) async throws -> [Membership]
}
