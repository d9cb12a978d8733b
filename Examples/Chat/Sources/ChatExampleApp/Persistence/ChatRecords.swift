import GRDB

/// A demo user: `id` is the token's `sub`.
public struct ChatUser: Codable, Sendable, Equatable, FetchableRecord {
    public let id: String
    public let displayName: String

    public init(row: Row) throws {
        id = try row.decode(String.self, atIndex: 0)
        displayName = try row.decode(String.self, atIndex: 1)
    }
}

/// A channel: its name is the Switchboard room's name.
public struct ChatChannel: Codable, Sendable, Equatable, FetchableRecord {
    public let name: String
    public let topic: String

    public init(row: Row) throws {
        name = try row.decode(String.self, atIndex: 0)
        topic = try row.decode(String.self, atIndex: 1)
    }
}

/// A stored message, as clients see it (`message.new`, `message.edited`, the snapshot):
/// `{"id","room","from","content","ts","editedAt"}`, times in milliseconds since 1970.
public struct StoredMessage: Codable, Sendable, Equatable, FetchableRecord {
    public let id: Int64
    public let room: String
    public let from: String
    public let content: String
    public let ts: Int64
    public let editedAt: Int64?

    static let select = "SELECT id, channel, author, content, created_at, edited_at FROM messages"

    public init(row: Row) throws {
        // Throwing decodes: a row edited by hand with a NULL fails the call instead of crashing.
        id = try row.decode(Int64.self, atIndex: 0)
        room = try row.decode(String.self, atIndex: 1)
        from = try row.decode(String.self, atIndex: 2)
        content = try row.decode(String.self, atIndex: 3)
        ts = try row.decode(Int64.self, atIndex: 4)
        editedAt = try row.decode(Int64?.self, atIndex: 5)
    }
}
