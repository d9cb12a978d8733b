/// Rules by room-name pattern, in the manner of Centrifugo's namespaces: what clients may do in
/// each room (join, publish, see presence), plus an optional token claim listing further rooms a
/// user may join. The standalone server reads them from `--permissions FILE`; an app may build
/// them in code or load the same file with ``load(contentsOf:)``.
///
/// The first namespace whose pattern matches a room gives its permissions; a room that matches
/// none has ``defaultPermissions`` (by default nothing is allowed). A room listed in the user's
/// ``claim`` may be joined whatever its namespace says; publishing and presence there still
/// follow the namespace.
///
/// The rules are in memory: every answer is given on the event loop, without suspending.
public struct RoomRules: RoomAuthorizer {
    /// What clients may do in the rooms of a namespace. Every permission defaults to `false`.
    public struct Permissions: Sendable, Hashable {
        /// Joining, and so receiving the room's events.
        public var join: Bool
        /// Publishing (`message.send`, `typing.start`). `false` with `join` makes a broadcast-only
        /// room: clients receive, only the server publishes.
        public var publish: Bool
        /// `room.members`, and the members in the `room.join` ack.
        public var presence: Bool

        public init(join: Bool = false, publish: Bool = false, presence: Bool = false) {
            self.join = join
            self.publish = publish
            self.presence = presence
        }

        /// Nothing allowed.
        public static let nothing = Permissions()
        /// Everything allowed.
        public static let all = Permissions(join: true, publish: true, presence: true)

        /// Whether `action` is allowed.
        public func allows(_ action: RoomAction) -> Bool {
            switch action {
            case .join: join
            case .publish: publish
            case .presence: presence
            }
        }
    }

    /// Rooms whose names match `pattern`, and what clients may do in them.
    public struct Namespace: Sendable, Hashable {
        public var pattern: RoomPattern
        public var permissions: Permissions

        public init(_ pattern: RoomPattern, _ permissions: Permissions) {
            self.pattern = pattern
            self.permissions = permissions
        }
    }

    /// The namespaces, in the order they are tried.
    public var namespaces: [Namespace]
    /// The permissions in rooms no namespace matches.
    public var defaultPermissions: Permissions
    /// A token claim holding an array of room names the user may join (exact names; other values
    /// are ignored), e.g. `channels`; `nil` for none.
    public var claim: String?

    public init(namespaces: [Namespace], default defaultPermissions: Permissions = .nothing, claim: String? = nil) {
        self.namespaces = namespaces
        self.defaultPermissions = defaultPermissions
        self.claim = claim
    }

    /// The permissions of `room` for `user` from the namespaces (the claim aside).
    public func permissions(for room: String, user: AuthenticatedUser) -> Permissions {
        for namespace in namespaces where namespace.pattern.matches(room, subject: user.id) {
            return namespace.permissions
        }
        return defaultPermissions
    }

    /// Whether `user` may do `action` in `room`.
    public func allows(_ action: RoomAction, room: String, user: AuthenticatedUser) -> Bool {
        if permissions(for: room, user: user).allows(action) { return true }
        guard action == .join, let claim, let listed = user.claims[claim]?.arrayValue else { return false }
        return listed.contains { $0.stringValue == room }
    }

    public func authorize(_ action: RoomAction, room: String, socket: Socket) async throws -> Bool {
        allows(action, room: room, user: socket.user)
    }

    public func authorizeNow(_ action: RoomAction, room: String, socket: Socket) -> Bool? {
        allows(action, room: room, user: socket.user)
    }
}
