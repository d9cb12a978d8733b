import Foundation
import GRDB

/// The chat's SQLite database (GRDB): users, channels, memberships and messages, with migrations.
///
/// Every method suspends the calling task while GRDB runs the SQL on its own queues, so handlers
/// may call them from any task; none blocks an event loop.
public final class ChatDatabase: Sendable {
    /// A `DatabasePool` for a file, a `DatabaseQueue` in memory (both `Sendable`).
    private let writer: any DatabaseWriter

    /// Opens (creating and migrating) the database at `path`; `nil` for a private in-memory one.
    /// Call it at startup: the migration runs synchronously.
    public init(path: String?) throws {
        var configuration = Configuration()
        configuration.label = "ChatExample"
        // Two processes on one file (a restart while the old one drains) wait for each other.
        configuration.busyMode = .timeout(5)
        // WAL with synchronous=NORMAL: a commit does not wait for the disk to flush (a crash of
        // the process loses nothing; a power cut may lose the last commits, never consistency),
        // so a send's latency is not one fsync on a busy disk.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        if let path {
            try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
            writer = try DatabasePool(path: path, configuration: configuration)
        } else {
            writer = try DatabaseQueue(configuration: configuration)
        }
        try Self.migrator.migrate(writer)
    }

    /// Append new migrations at the end; never edit a registered one (files in use have applied it).
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-schema") { db in
            try db.execute(
                sql: """
                    CREATE TABLE users (
                        id TEXT PRIMARY KEY NOT NULL,
                        display_name TEXT NOT NULL
                    );
                    CREATE TABLE channels (
                        name TEXT PRIMARY KEY NOT NULL,
                        topic TEXT NOT NULL DEFAULT ''
                    );
                    CREATE TABLE memberships (
                        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        channel TEXT NOT NULL REFERENCES channels(name) ON DELETE CASCADE,
                        PRIMARY KEY (user_id, channel)
                    );
                    CREATE INDEX memberships_on_channel ON memberships (channel);
                    CREATE TABLE messages (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        channel TEXT NOT NULL REFERENCES channels(name) ON DELETE CASCADE,
                        author TEXT NOT NULL REFERENCES users(id),
                        content TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        edited_at INTEGER,
                        -- The envelope id of the send: a retry after a lost reply stores nothing twice.
                        client_id TEXT,
                        UNIQUE (author, client_id)
                    );
                    CREATE INDEX messages_on_channel ON messages (channel, id);
                    """)
        }
        migrator.registerMigration("v2-demo-data") { db in
            let users = [("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")]
            let channels = [("general", "Everyone, everything"), ("random", "Off topic"), ("swift", "Server-side Swift")]
            let memberships = [
                ("alice", "general"), ("alice", "random"), ("alice", "swift"),
                ("bob", "general"), ("bob", "swift"),
                ("carol", "general"), ("carol", "random"),
            ]
            for (id, name) in users {
                try db.execute(sql: "INSERT INTO users (id, display_name) VALUES (?, ?)", arguments: [id, name])
            }
            for (name, topic) in channels {
                try db.execute(sql: "INSERT INTO channels (name, topic) VALUES (?, ?)", arguments: [name, topic])
            }
            for (user, channel) in memberships {
                try db.execute(sql: "INSERT INTO memberships (user_id, channel) VALUES (?, ?)", arguments: [user, channel])
            }
        }
        return migrator
    }

    // MARK: users and channels

    /// Every user, by id.
    public func users() async throws -> [ChatUser] {
        try await writer.read { db in try ChatUser.fetchAll(db, sql: "SELECT id, display_name FROM users ORDER BY id") }
    }

    /// The user `id`, or `nil`.
    public func user(_ id: String) async throws -> ChatUser? {
        try await writer.read { db in try ChatUser.fetchOne(db, sql: "SELECT id, display_name FROM users WHERE id = ?", arguments: [id]) }
    }

    /// The channels `userID` belongs to, by name.
    public func channels(of userID: String) async throws -> [ChatChannel] {
        try await writer.read { db in
            try ChatChannel.fetchAll(
                db,
                sql: "SELECT c.name, c.topic FROM channels c JOIN memberships m ON m.channel = c.name WHERE m.user_id = ? ORDER BY c.name",
                arguments: [userID])
        }
    }

    /// Whether `userID` belongs to `channel`.
    public func isMember(_ userID: String, of channel: String) async throws -> Bool {
        try await writer.read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM memberships WHERE user_id = ? AND channel = ?)", arguments: [userID, channel]) ?? false
        }
    }

    /// Adds `userID` to `channel`; returns whether that was new. Both must exist.
    @discardableResult
    public func addMember(_ userID: String, to channel: String) async throws -> Bool {
        try await writer.write { db in
            try db.execute(sql: "INSERT INTO memberships (user_id, channel) VALUES (?, ?) ON CONFLICT DO NOTHING", arguments: [userID, channel])
            return db.changesCount > 0
        }
    }

    /// Removes `userID` from `channel`; returns whether it was a member.
    @discardableResult
    public func removeMember(_ userID: String, from channel: String) async throws -> Bool {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM memberships WHERE user_id = ? AND channel = ?", arguments: [userID, channel])
            return db.changesCount > 0
        }
    }

    /// Every membership as (user, channel), or those of one user, sorted by user then channel.
    public func memberships(of userID: String?) async throws -> [(user: String, channel: String)] {
        try await writer.read { db in
            let rows =
                try userID.map { try Row.fetchAll(db, sql: "SELECT user_id, channel FROM memberships WHERE user_id = ? ORDER BY channel", arguments: [$0]) }
                ?? Row.fetchAll(db, sql: "SELECT user_id, channel FROM memberships ORDER BY user_id, channel")
            return try rows.map { (try $0.decode(String.self, atIndex: 0), try $0.decode(String.self, atIndex: 1)) }
        }
    }

    // MARK: messages

    /// Stores a message; a second call with the same author and `clientID` returns the first one.
    public func insertMessage(channel: String, author: String, content: String, at time: Date, clientID: String?) async throws -> StoredMessage {
        let milliseconds = Int64(time.timeIntervalSince1970 * 1000)
        return try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO messages (channel, author, content, created_at, client_id) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (author, client_id) DO NOTHING
                    """,
                arguments: [channel, author, content, milliseconds, clientID])
            let stored: StoredMessage?
            if db.changesCount > 0 {
                stored = try StoredMessage.fetchOne(db, sql: StoredMessage.select + " WHERE id = ?", arguments: [db.lastInsertedRowID])
            } else {
                stored = try StoredMessage.fetchOne(db, sql: StoredMessage.select + " WHERE author = ? AND client_id = ?", arguments: [author, clientID])
            }
            guard let stored else { throw DatabaseError(resultCode: .SQLITE_NOTFOUND, message: "the message just stored is missing") }
            return stored
        }
    }

    /// The message `id`, or `nil`.
    public func message(_ id: Int64) async throws -> StoredMessage? {
        try await writer.read { db in try StoredMessage.fetchOne(db, sql: StoredMessage.select + " WHERE id = ?", arguments: [id]) }
    }

    /// Replaces the content of message `id`; returns it as edited, or `nil` when there is none.
    public func editMessage(_ id: Int64, content: String, at time: Date) async throws -> StoredMessage? {
        let milliseconds = Int64(time.timeIntervalSince1970 * 1000)
        return try await writer.write { db in
            try db.execute(sql: "UPDATE messages SET content = ?, edited_at = ? WHERE id = ?", arguments: [content, milliseconds, id])
            return try StoredMessage.fetchOne(db, sql: StoredMessage.select + " WHERE id = ?", arguments: [id])
        }
    }

    /// The latest `limit` messages of `channel`, oldest first.
    public func latestMessages(in channel: String, limit: Int = 50) async throws -> [StoredMessage] {
        try await writer.read { db in
            try StoredMessage.fetchAll(db, sql: StoredMessage.select + " WHERE channel = ? ORDER BY id DESC LIMIT ?", arguments: [channel, limit]).reversed()
        }
    }

    /// Closes the database (a passive checkpoint first for a file). Afterwards every call throws.
    public func close() throws {
        if let pool = writer as? DatabasePool {
            _ = try? pool.writeWithoutTransaction { db in try db.checkpoint(.passive) }
        }
        try writer.close()
    }
}
