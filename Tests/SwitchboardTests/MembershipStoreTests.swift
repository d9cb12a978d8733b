import Foundation
import Switchboard
import Testing

/// Behaviour every `MembershipStore` must share, run against each
/// implementation, plus SQLite persistence and the `RoomName` rule.
@Suite("Membership stores")
struct MembershipStoreTests {
    /// The implementations under test.
    enum Kind: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case inMemory
        case sqliteFile
        case sqliteInMemory

        var testDescription: String { rawValue }
    }

    // MARK: - Shared contract

    @Test("add is idempotent and reports whether the membership was new", arguments: Kind.allCases)
    func addIsIdempotent(kind: Kind) async throws {
        try await withStore(kind) { (store: any MembershipStore) async throws in
            #expect(try await store.add(userID: "alice", room: "lobby"))
            #expect(try await !store.add(userID: "alice", room: "lobby"))
            #expect(try await store.add(userID: "alice", room: "games"))
            #expect(try await store.add(userID: "bob", room: "lobby"))
            #expect(try await store.list(userID: nil) == [
                Membership(userID: "alice", room: "games"),
                Membership(userID: "alice", room: "lobby"),
                Membership(userID: "bob", room: "lobby"),
            ])
        }
    }

    @Test("remove reports whether the membership existed", arguments: Kind.allCases)
    func removeReportsExistence(kind: Kind) async throws {
        try await withStore(kind) { (store: any MembershipStore) async throws in
            #expect(try await !store.remove(userID: "alice", room: "lobby"))
            try await store.add(userID: "alice", room: "lobby")
            try await store.add(userID: "alice", room: "games")
            try await store.add(userID: "bob", room: "lobby")

            #expect(try await store.remove(userID: "alice", room: "lobby"))
            #expect(try await !store.remove(userID: "alice", room: "lobby"))
            #expect(try await !store.remove(userID: "carol", room: "games"))

            #expect(try await store.rooms(of: "alice") == ["games"])
            #expect(try await store.rooms(of: "bob") == ["lobby"])
            #expect(try await store.list(userID: nil) == [
                Membership(userID: "alice", room: "games"),
                Membership(userID: "bob", room: "lobby"),
            ])

            // A removed membership can be added again.
            #expect(try await store.add(userID: "alice", room: "lobby"))
        }
    }

    @Test("an empty store and an unknown user have no memberships", arguments: Kind.allCases)
    func emptyResults(kind: Kind) async throws {
        try await withStore(kind) { (store: any MembershipStore) async throws in
            #expect(try await store.list(userID: nil).isEmpty)
            try await store.add(userID: "alice", room: "lobby")
            #expect(try await store.rooms(of: "nobody").isEmpty)
            #expect(try await store.list(userID: "nobody").isEmpty)
            // Ids are case-sensitive.
            #expect(try await store.rooms(of: "Alice").isEmpty)
        }
    }

    @Test("results are sorted by user, then room, in UTF-8 byte order", arguments: Kind.allCases)
    func ordering(kind: Kind) async throws {
        try await withStore(kind) { (store: any MembershipStore) async throws in
            let scrambled = [
                ("bob", "lobby"), ("alice", "zoo"), ("Zed", "lobby"), ("alice", "Games"),
                ("alice", "äpfel"), ("alice", "a b"), ("bob", "annex"), ("alice", "ab"),
                ("alice", "a"),
            ]
            for (user, room) in scrambled {
                try await store.add(userID: user, room: room)
            }
            // Uppercase (0x41...) before space-free lowercase; "a" < "a b" < "ab";
            // "ä" (0xC3 0xA4) after every ASCII letter.
            let aliceRooms = ["Games", "a", "a b", "ab", "zoo", "äpfel"]
            #expect(try await store.rooms(of: "alice") == aliceRooms)
            #expect(try await store.list(userID: "alice") == aliceRooms.map {
                Membership(userID: "alice", room: $0)
            })
            #expect(try await store.list(userID: nil) == [
                Membership(userID: "Zed", room: "lobby")]
                + aliceRooms.map { Membership(userID: "alice", room: $0) }
                + [Membership(userID: "bob", room: "annex"), Membership(userID: "bob", room: "lobby")])
        }
    }

    @Test("names are compared byte for byte, without Unicode normalization", arguments: Kind.allCases)
    func byteExactNames(kind: Kind) async throws {
        let composed = "caf\u{E9}"  // "café", é as one scalar
        let decomposed = "cafe\u{301}"  // "café", e + combining acute
        #expect(composed == decomposed)  // Swift calls them equal; stores must not.

        try await withStore(kind) { (store: any MembershipStore) async throws in
            #expect(try await store.add(userID: "alice", room: composed))
            #expect(try await store.add(userID: "alice", room: decomposed))
            let rooms = try await store.rooms(of: "alice")
            // "e" (0x65) sorts before "é" (0xC3 0xA9).
            #expect(rooms.map { Array($0.utf8) } == [Array(decomposed.utf8), Array(composed.utf8)])

            #expect(try await store.remove(userID: "alice", room: composed))
            let left = try await store.rooms(of: "alice")
            #expect(left.map { Array($0.utf8) } == [Array(decomposed.utf8)])
            #expect(try await !store.remove(userID: "alice", room: composed))
        }
    }

    @Test("200 concurrent adds all land, each new one reported once", arguments: Kind.allCases)
    func concurrentAdds(kind: Kind) async throws {
        try await withStore(kind) { (store: any MembershipStore) async throws in
            // 100 distinct memberships, each added by two tasks.
            let newCount = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<200 {
                    let distinct = index % 100
                    group.addTask {
                        try await store.add(userID: "user\(distinct % 10)", room: "room\(distinct)")
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(newCount == 100)

            let all = try await store.list(userID: nil)
            #expect(all.count == 100)
            #expect(Set(all).count == 100)
            let user3 = try await store.rooms(of: "user3")
            #expect(user3 == (0..<100).filter { $0 % 10 == 3 }.map { "room\($0)" }.sorted())
        }
    }

    @Test("the in-memory store keeps its initial memberships once, sorted")
    func inMemoryInitialMemberships() async throws {
        let store = InMemoryMembershipStore([
            Membership(userID: "bob", room: "lobby"),
            Membership(userID: "alice", room: "lobby"),
            Membership(userID: "bob", room: "lobby"),
        ])
        #expect(try await store.list(userID: nil) == [
            Membership(userID: "alice", room: "lobby"),
            Membership(userID: "bob", room: "lobby"),
        ])
        #expect(try await !store.add(userID: "bob", room: "lobby"))
    }

    // MARK: - SQLite file

    @Test("memberships survive closing and reopening the file")
    func survivesReopen() async throws {
        try await withTemporaryDirectory { (folder: URL) async throws in
            let path = folder.appendingPathComponent("members.sqlite").path
            let first = try SQLiteMembershipStore(path: path)
            try await first.add(userID: "alice", room: "lobby")
            try await first.add(userID: "bob", room: "games")
            try await first.add(userID: "bob", room: "lobby")
            try await first.remove(userID: "bob", room: "lobby")
            try first.close()

            let second = try SQLiteMembershipStore(path: path)
            defer { try? second.close() }
            #expect(try await second.list(userID: nil) == [
                Membership(userID: "alice", room: "lobby"),
                Membership(userID: "bob", room: "games"),
            ])
            #expect(try await !second.add(userID: "alice", room: "lobby"))
        }
    }

    @Test("opening a file twice runs the migration once and shares the data")
    func migrationIsIdempotent() async throws {
        try await withTemporaryDirectory { (folder: URL) async throws in
            let path = folder.appendingPathComponent("members.sqlite").path
            let first = try SQLiteMembershipStore(path: path)
            defer { try? first.close() }
            try await first.add(userID: "alice", room: "lobby")

            // Opened while the first is still open, as the CLI does next to
            // a running server.
            let second = try SQLiteMembershipStore(path: path)
            defer { try? second.close() }
            #expect(try await second.rooms(of: "alice") == ["lobby"])
            #expect(try await second.add(userID: "bob", room: "lobby"))
            #expect(try await first.rooms(of: "bob") == ["lobby"])
        }
    }

    @Test("several stores opening the same new file at once all succeed")
    func concurrentOpensOfNewFile() async throws {
        // Ten fresh files, each opened by four tasks at once: the migration
        // must not fail when another connection applies it first.
        try await withTemporaryDirectory { (folder: URL) async throws in
            for attempt in 0..<10 {
                let path = folder.appendingPathComponent("race\(attempt).sqlite").path
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for opener in 0..<4 {
                        group.addTask {
                            let store = try SQLiteMembershipStore(path: path)
                            defer { try? store.close() }
                            try await store.add(userID: "user\(opener)", room: "lobby")
                        }
                    }
                    try await group.waitForAll()
                }
                let store = try SQLiteMembershipStore(path: path)
                defer { try? store.close() }
                #expect(try await store.list(userID: nil).count == 4)
            }
        }
    }

    @Test("missing parent folders are created")
    func createsParentFolders() async throws {
        try await withTemporaryDirectory { (folder: URL) async throws in
            let path = folder.appendingPathComponent("a/b/c/members.sqlite").path
            let store = try SQLiteMembershipStore(path: path)
            defer { try? store.close() }
            try await store.add(userID: "alice", room: "lobby")
            #expect(FileManager.default.fileExists(atPath: path))
        }
    }

    @Test("an empty path is rejected instead of opening a temporary database")
    func emptyPathThrows() {
        #expect(throws: (any Error).self) {
            _ = try SQLiteMembershipStore(path: "")
        }
    }

    @Test("a closed store throws instead of crashing")
    func closedStoreThrows() async throws {
        try await withTemporaryDirectory { (folder: URL) async throws in
            let store = try SQLiteMembershipStore(path: folder.appendingPathComponent("m.sqlite").path)
            try store.close()
            await #expect(throws: (any Error).self) {
                try await store.add(userID: "alice", room: "lobby")
            }
            await #expect(throws: (any Error).self) {
                try await store.rooms(of: "alice")
            }
        }
    }

    // MARK: - RoomName

    @Test(
        "valid names",
        arguments: [
            "lobby", "a", "Lobby 2", " padded ", "日本語", "🎉", "café", "e\u{301}",
            String(repeating: "x", count: RoomName.maximumByteCount),
            String(repeating: "é", count: RoomName.maximumByteCount / 2),  // 2 bytes each
        ]
    )
    func validNames(name: String) {
        #expect(RoomName.validate(name) == nil)
    }

    @Test(
        "invalid names give a reason",
        arguments: [
            ("", "is empty"),
            (String(repeating: "x", count: RoomName.maximumByteCount + 1), "is 129 bytes long"),
            (String(repeating: "é", count: RoomName.maximumByteCount / 2) + "x", "is 129 bytes long"),
            (String(repeating: "🎉", count: 33), "is 132 bytes long"),
            ("tab\there", "control character U+0009"),
            ("new\nline", "control character U+000A"),
            ("cr\r", "control character U+000D"),
            ("nul\u{0}", "control character U+0000"),
            ("\u{1B}[31mred", "control character U+001B"),
            ("del\u{7F}", "control character U+007F"),
            ("next\u{85}line", "control character U+0085"),
            ("line\u{2028}separator", "line break U+2028"),
            ("para\u{2029}graph", "line break U+2029"),
        ]
    )
    func invalidNames(name: String, reasonFragment: String) throws {
        let reason = try #require(RoomName.validate(name))
        #expect(reason.contains(reasonFragment))
        #expect(!reason.contains(name))
    }

    // MARK: - Helpers

    /// Runs `body` with a fresh, empty store of `kind`, then closes it and
    /// deletes its files.
    private func withStore(
        _ kind: Kind,
        _ body: (any MembershipStore) async throws -> Void
    ) async throws {
        switch kind {
        case .inMemory:
            try await body(InMemoryMembershipStore())
        case .sqliteInMemory:
            let store = try SQLiteMembershipStore.inMemory()
            defer { try? store.close() }
            try await body(store)
        case .sqliteFile:
            try await withTemporaryDirectory { (folder: URL) async throws in
                let store = try SQLiteMembershipStore(
                    path: folder.appendingPathComponent("members.sqlite").path
                )
                defer { try? store.close() }
                try await body(store)
            }
        }
    }

    /// Runs `body` with a new empty directory that is deleted afterwards,
    /// whether `body` throws or not.
    private func withTemporaryDirectory(_ body: (URL) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchboard-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try await body(folder)
    }
}
