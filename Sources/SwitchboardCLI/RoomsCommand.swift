import ArgumentParser
import Foundation
import Switchboard

/// `switchboard rooms`: edits the memberships the server reads on connect to
/// auto-join users to rooms.
struct RoomsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rooms",
        abstract: "Manage stored room memberships (auto-joined on connect).",
        discussion: """
            Memberships live in an SQLite file (see --database) that the server \
            may have open at the same time. User ids and room names must be \
            non-empty, at most \(RoomName.maximumByteCount) bytes of UTF-8, and \
            free of control characters; they are case-sensitive and compared \
            exactly.

            Exit status: 0 on success; 1 when `remove` finds no such membership; \
            2 when the database cannot be opened, read or written; 64 for invalid \
            arguments.
            """,
        subcommands: [Add.self, Remove.self, List.self]
    )
}

extension RoomsCommand {
    /// `switchboard rooms add <user> <room>`.
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Auto-join a user to a room on connect.",
            discussion: """
                Prints "added <user> → <room>", or "<user> is already in <room>" \
                when the membership exists; both exit with status 0.
                """
        )

        @Argument(help: "The user id.")
        var user: String

        @Argument(help: "The room name.")
        var room: String

        @OptionGroup
        var database: DatabaseOption

        func validate() throws {
            try checkName(user, field: "user id")
            try checkName(room, field: "room name")
        }

        func run() async throws {
            let (user, room) = (user, room)
            let added = try await database.withStore { store in
                try await store.add(userID: user, room: room)
            }
            print(added ? "added \(user) → \(room)" : "\(user) is already in \(room)")
        }
    }

    /// `switchboard rooms remove <user> <room>`.
    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop auto-joining a user to a room.",
            discussion: """
                Prints "removed <user> from <room>" and exits with status 0. When \
                there was no such membership, prints "<user> was not in <room>" to \
                standard error and exits with status 1, so scripts can tell the \
                two cases apart. Users already connected stay in the room.
                """
        )

        @Argument(help: "The user id.")
        var user: String

        @Argument(help: "The room name.")
        var room: String

        @OptionGroup
        var database: DatabaseOption

        func validate() throws {
            try checkName(user, field: "user id")
            try checkName(room, field: "room name")
        }

        func run() async throws {
            let (user, room) = (user, room)
            let removed = try await database.withStore { store in
                try await store.remove(userID: user, room: room)
            }
            guard removed else {
                printToStandardError("\(user) was not in \(room)")
                throw ExitCode(1)
            }
            print("removed \(user) from \(room)")
        }
    }

    /// `switchboard rooms list [<user>]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List stored memberships.",
            discussion: """
                Prints one "<user><TAB><room>" line per membership, sorted by user \
                then room (byte order, so uppercase sorts before lowercase). \
                Prints nothing when there are none.
                """
        )

        @Argument(help: "Only list this user's memberships.")
        var user: String?

        @OptionGroup
        var database: DatabaseOption

        func validate() throws {
            if let user {
                try checkName(user, field: "user id")
            }
        }

        func run() async throws {
            let user = user
            let memberships = try await database.withStore { store in
                try await store.list(userID: user)
            }
            for membership in memberships {
                print("\(membership.userID)\t\(membership.room)")
            }
        }
    }
}

/// The `--database <path>` option, shared by every command that opens the
/// membership store.
struct DatabaseOption: ParsableArguments {
    /// Environment variable consulted when `--database` is not given.
    static let environmentVariable = "SWITCHBOARD_DATABASE"
    /// Used when neither `--database` nor the environment variable is set.
    static let fallbackPath = "switchboard.sqlite"

    /// The SQLite file to open: `--database`, else `$SWITCHBOARD_DATABASE`
    /// when set and non-empty, else `switchboard.sqlite`. Relative paths are
    /// resolved against the current directory.
    @Option(
        name: .customLong("database"),
        help: ArgumentHelp(
            "The SQLite file holding memberships; created, with its folder, if missing. "
                + "Defaults to $\(DatabaseOption.environmentVariable) when set, else "
                + "\(DatabaseOption.fallbackPath) in the current directory.",
            valueName: "path"
        )
    )
    var path: String = DatabaseOption.defaultPath(
        environment: ProcessInfo.processInfo.environment
    )

    /// The default for `path` given an environment; an empty variable counts
    /// as unset.
    static func defaultPath(environment: [String: String]) -> String {
        if let path = environment[environmentVariable], !path.isEmpty {
            return path
        }
        return fallbackPath
    }

    func validate() throws {
        if path.isEmpty {
            throw ValidationError("--database must not be empty")
        }
    }

    /// Opens the store at `path`, runs `body` with it, and closes it.
    ///
    /// Any failure is printed to standard error with the path and turned into
    /// exit status 2, so it cannot be mistaken for `remove`'s status 1.
    func withStore<Result>(
        _ body: (SQLiteMembershipStore) async throws -> Result
    ) async throws -> Result {
        let store: SQLiteMembershipStore
        do {
            store = try SQLiteMembershipStore(path: path)
        } catch {
            printToStandardError("error: cannot open membership database \(path): \(error)")
            throw ExitCode(2)
        }
        defer { try? store.close() }
        do {
            return try await body(store)
        } catch {
            printToStandardError("error: membership database \(path): \(error)")
            throw ExitCode(2)
        }
    }
}

/// Throws a `ValidationError` (exit status 64, with usage) when `value` breaks
/// the ``RoomName`` rule. The message does not echo `value`, which may hold
/// terminal escape sequences.
private func checkName(_ value: String, field: String) throws {
    if let reason = RoomName.validate(value) {
        throw ValidationError("invalid \(field): it \(reason)")
    }
}

private func printToStandardError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
