/// One of a user's connection slots, held from an accepted handshake until its connection ends.
public struct ConnectionSlot: Sendable, Hashable {
    /// The user (token `sub`) the slot counts against.
    public let user: String
    /// Tells this slot from the user's others; the store that gave it out chooses it.
    public let token: UInt64

    public init(user: String, token: UInt64) {
        self.user = user
        self.token = token
    }
}

/// Counts each user's open connections against ``SwitchboardConfiguration/maxConnectionsPerUser``
/// (and, for a store shared by several nodes, over all nodes).
///
/// ``InMemoryConnectionSlotStore`` is the embedded default. The server calls ``acquire(_:limit:)``
/// in the handshake, within ``SwitchboardConfiguration/handshakeStoreTimeout``: an error or no
/// answer in time is HTTP 503 `store_unavailable`, `nil` is HTTP 429 `too_many_connections`.
public protocol ConnectionSlotStore: Sendable {
    /// Takes one of `user`'s slots; `nil` when the user already holds `limit`.
    func acquire(_ user: String, limit: Int) async throws -> ConnectionSlot?
    /// Gives a slot back. Never fails: a store that cannot reach its backend lets the slot expire.
    func release(_ slot: ConnectionSlot)
    /// How many slots `user` holds now.
    func count(of user: String) async throws -> Int
}
