import Foundation
import GRDB

/// A ``MembershipStore`` persisted in an SQLite file through GRDB.
///
/// What a caller must know:
/// - ``init(path:)`` opens (creating if needed) the file and migrates its
///   schema synchronously: call it at startup, not on an event loop thread.
///   After that, every method suspends the calling task instead of blocking
///   its thread; the SQL runs on GRDB's own dispatch queues.
/// - Several processes may use the same file at once (for instance the
///   server reading while `switchboard rooms add` writes). A writer that finds
///   the file locked by another process waits up to five seconds before
///   failing with `SQLITE_BUSY`.
/// - The file's folder also receives SQLite's `-wal` and `-shm` companion
///   files; back up or move all three together, or close the store first.
/// - Errors are GRDB's `DatabaseError` (or `CancellationError` when the
///   calling task is cancelled before the database is reached).
public final class SQLiteMembershipStore: MembershipStore {
    /// A `DatabasePool` for files, a `DatabaseQueue` for ``inMemory()``.
    /// Both are `Sendable`, so this class is `Sendable` without
    /// `@unchecked`.
    private let writer: any DatabaseWriter

    /// Opens the membership database at `path`, creating the file and any
    /// missing parent folders, and brings its schema up to date.
    ///
    /// A relative `path` is resolved against the current directory; `~` is
    /// not expanded. Opening a file that is already up to date is cheap and
    /// changes nothing, so it is fine to open the same file from several
    /// processes.
    ///
    /// - Throws: `DatabaseError` when `path` is empty, when its folder cannot
    ///   be created (`SQLITE_CANTOPEN`), when the file cannot be opened as an
    ///   SQLite database, or when the migration fails.
    public init(path: String) throws {
        guard !path.isEmpty else {
            // SQLite would silently open a private temporary database.
            throw DatabaseError(resultCode: .SQLITE_CANTOPEN, message: "empty database path")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw DatabaseError(
                resultCode: .SQLITE_CANTOPEN,
                message: "cannot create folder \(folder.path): \(error.localizedDescription)"
            )
        }

        var configuration = Self.configuration()
        // Another process (the CLI, or a second server) may hold the write
        // lock for a moment; wait for it rather than failing at once.
        configuration.busyMode = .timeout(5)
        // A DatabasePool rather than a DatabaseQueue: the pool puts the file
        // in WAL mode and keeps several reader connections, so the hot path
        // (`rooms(of:)` on every connect) runs in parallel with other reads
        // and is never queued behind a write, while writes stay serialized
        // on one connection. A queue would serialize every connect's read
        // behind all other accesses to the file.
        let pool = try Self.openPool(path: path, configuration: configuration)
        try Self.migrate(pool)
        self.writer = pool
    }

    private init(writer: any DatabaseWriter) {
        self.writer = writer
    }

    /// Returns a store in a private in-memory SQLite database, with the same
    /// schema and SQL as a file-backed store. Nothing is persisted, and the
    /// database is not shared with any other store.
    public static func inMemory() throws -> SQLiteMembershipStore {
        let queue = try DatabaseQueue(configuration: configuration())
        try migrate(queue)
        return SQLiteMembershipStore(writer: queue)
    }

    /// Rooms `userID` is auto-joined to, sorted by name (UTF-8 bytes).
    public func rooms(of userID: String) async throws -> [String] {
        try await writer.read { db in
            try String.fetchAll(
                db,
                sql: "SELECT room FROM memberships WHERE user_id = ? ORDER BY room",
                arguments: [userID]
            )
        }
    }

    /// Adds a membership; adding an existing one is not an error. Returns
    /// whether it was new. A new membership records the current time in
    /// `created_at`; re-adding an existing one keeps its original time.
    @discardableResult
    public func add(userID: String, room: String) async throws -> Bool {
        let now = Date()
        return try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO memberships (user_id, room, created_at) VALUES (?, ?, ?)
                    ON CONFLICT (user_id, room) DO NOTHING
                    """,
                arguments: [userID, room, now]
            )
            return db.changesCount > 0
        }
    }

    /// Removes a membership; returns whether it existed.
    @discardableResult
    public func remove(userID: String, room: String) async throws -> Bool {
        try await writer.write { db in
            try db.execute(
                sql: "DELETE FROM memberships WHERE user_id = ? AND room = ?",
                arguments: [userID, room]
            )
            return db.changesCount > 0
        }
    }

    /// All memberships, or those of one user, sorted by user then room
    /// (UTF-8 bytes).
    public func list(userID: String?) async throws -> [Membership] {
        try await writer.read { db in
            let rows: [Row]
            if let userID {
                rows = try Row.fetchAll(
                    db,
                    sql: "SELECT user_id, room FROM memberships WHERE user_id = ? ORDER BY user_id, room",
                    arguments: [userID]
                )
            } else {
                rows = try Row.fetchAll(
                    db,
                    sql: "SELECT user_id, room FROM memberships ORDER BY user_id, room"
                )
            }
            return try rows.map { row in
                // Throwing decode: a file edited by hand with a NULL or a
                // blob in these columns fails the call instead of crashing.
                try Membership(
                    userID: row.decode(String.self, atIndex: 0),
                    room: row.decode(String.self, atIndex: 1)
                )
            }
        }
    }

    /// Copies what it can of the `-wal` file into the main file, without
    /// waiting for other processes, then closes the database connections.
    ///
    /// Call it before deleting or moving the file, and when a process is done
    /// with the store; afterwards every method throws. Releasing the store
    /// closes the connections too, but skips the copy. The `-wal` and `-shm`
    /// files may remain afterwards; SQLite reuses them on the next open.
    /// It blocks the calling thread for the copy, so call it at shutdown,
    /// not on an event loop thread.
    public func close() throws {
        if let pool = writer as? DatabasePool {
            // Passive: never blocks; a failure here loses nothing, since the
            // data is still in the -wal file.
            _ = try? pool.writeWithoutTransaction { db in try db.checkpoint(.passive) }
        }
        try writer.close()
    }

    // MARK: - Schema

    private static func configuration() -> Configuration {
        var configuration = Configuration()
        configuration.label = "Switchboard.memberships"
        return configuration
    }

    /// Opens the pool, retrying for up to five seconds while another
    /// connection holds the file busy.
    ///
    /// Opening a pool switches a new file to WAL mode, which needs an
    /// exclusive lock; when two processes open a new file at the same moment,
    /// SQLite can fail the slower one with `SQLITE_BUSY` at once, without
    /// waiting through the busy timeout. The switch is quick and happens once
    /// per file, so a short retry loop is enough. This blocks the thread, like
    /// the rest of ``init(path:)``.
    private static func openPool(path: String, configuration: Configuration) throws -> DatabasePool {
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            do {
                return try DatabasePool(path: path, configuration: configuration)
            } catch let error as DatabaseError
                where error.resultCode == .SQLITE_BUSY && ContinuousClock.now < deadline
            {
                Thread.sleep(forTimeInterval: 0.005)
            }
        }
    }

    /// Runs the migrations that `writer` lacks.
    ///
    /// GRDB reads which migrations are applied before it takes the write
    /// lock, so when two processes open a new file at the same moment, the
    /// slower one replays a migration the other has just committed and fails
    /// ("table memberships already exists"), its transaction rolled back.
    /// Such a failure is retried as long as another connection has made
    /// progress since the previous attempt; any other failure is thrown.
    private static func migrate(_ writer: any DatabaseWriter) throws {
        let migrator = migrator
        var applied = try writer.read { db in try migrator.appliedIdentifiers(db) }
        while true {
            do {
                try migrator.migrate(writer)
                return
            } catch {
                let nowApplied = try writer.read { db in try migrator.appliedIdentifiers(db) }
                guard nowApplied.isStrictSuperset(of: applied) else {
                    throw error
                }
                applied = nowApplied
            }
        }
    }

    /// Append new migrations at the end; never edit a registered one, since
    /// files in the field have already applied it.
    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-memberships") { db in
            try db.execute(sql: """
                CREATE TABLE memberships (
                    user_id TEXT NOT NULL,
                    room TEXT NOT NULL,
                    created_at DATETIME NOT NULL,
                    PRIMARY KEY (user_id, room)
                );
                CREATE INDEX memberships_on_room ON memberships (room);
                """)
        }
        return migrator
    }
}
