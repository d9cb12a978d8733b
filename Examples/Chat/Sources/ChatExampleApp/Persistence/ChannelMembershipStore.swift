import Switchboard

/// Switchboard's ``MembershipStore`` seam over the chat's own `memberships` table: on connect, a
/// user is joined to every channel they belong to.
public struct ChannelMembershipStore: MembershipStore {
    let database: ChatDatabase

    public init(database: ChatDatabase) {
        self.database = database
    }

    public func rooms(of userID: String) async throws -> [String] {
        try await database.channels(of: userID).map(\.name)
    }

    @discardableResult
    public func add(userID: String, room: String) async throws -> Bool {
        try await database.addMember(userID, to: room)
    }

    @discardableResult
    public func remove(userID: String, room: String) async throws -> Bool {
        try await database.removeMember(userID, from: room)
    }

    public func list(userID: String?) async throws -> [Membership] {
        try await database.memberships(of: userID).map { Membership(userID: $0.user, room: $0.channel) }
    }
}
