import Foundation
import Testing
@testable import Switchboard

@Suite("Room rules: patterns, the rules file, decisions")
struct RoomRulesTests {
    static let example = #"""
        {
          "claim": "channels",
          "namespaces": [
            {"pattern": "chat:*", "join": true, "publish": true, "presence": true},
            {"pattern": "dashboard:*", "join": true},
            {"pattern": "user:{sub}", "join": true},
            {"pattern": "team:*", "publish": true, "presence": true},
            {"pattern": "lobby", "join": true, "publish": true}
          ],
          "default": {"join": false}
        }
        """#

    static func rules(_ json: String = example) throws -> RoomRules {
        try RoomRules(json: Data(json.utf8))
    }

    static func refusal(_ json: String) -> String? {
        do {
            _ = try rules(json)
            return nil
        } catch {
            return (error as? RoomRulesError)?.message ?? "\(error)"
        }
    }

    @Test func patternsMatchExactPrefixAndSubject() throws {
        let exact = try RoomPattern("lobby")
        #expect(exact.matches("lobby", subject: "a"))
        #expect(!exact.matches("lobby2", subject: "a"))
        #expect(!exact.matches("lobb", subject: "a"))
        let prefix = try RoomPattern("chat:*")
        #expect(prefix.matches("chat:general", subject: "a"))
        #expect(prefix.matches("chat:", subject: "a"))
        #expect(!prefix.matches("chat", subject: "a"))
        #expect(!prefix.matches("xchat:general", subject: "a"))
        let everything = try RoomPattern("*")
        #expect(everything.matches("anything", subject: "a"))
        let personal = try RoomPattern("user:{sub}")
        #expect(personal.matches("user:alice", subject: "alice"))
        #expect(!personal.matches("user:alice", subject: "bob"))
        #expect(!personal.matches("user:alice2", subject: "alice"), "{sub} without * is exact")
        #expect(!personal.matches("user:", subject: ""), "an empty subject matches no {sub}")
        let nested = try RoomPattern("files:{sub}:*")
        #expect(nested.matches("files:alice:doc", subject: "alice"))
        #expect(!nested.matches("files:bob:doc", subject: "alice"))
        let unicode = try RoomPattern("salon:é*")
        #expect(unicode.matches("salon:été", subject: "a"))
        #expect(!unicode.matches("salon:e", subject: "a"))
    }

    @Test func badPatternsAreRefused() {
        for text in ["", "chat:*:x", "**", "user:{user}", "user:{sub", "a}b", "bad\nname"] {
            #expect(throws: RoomRulesError.self, "\(text.debugDescription)") { try RoomPattern(text) }
        }
    }

    @Test("the first matching namespace decides; the claim grants joins only")
    func decisions() throws {
        let rules = try Self.rules()
        let alice = AuthenticatedUser(id: "alice", claims: ["channels": .array([.string("team:red"), .number(3)])])
        let bob = AuthenticatedUser(id: "bob")
        #expect(rules.allows(.join, room: "chat:x", user: bob) && rules.allows(.publish, room: "chat:x", user: bob) && rules.allows(.presence, room: "chat:x", user: bob))
        #expect(rules.allows(.join, room: "dashboard:sales", user: bob))
        #expect(!rules.allows(.publish, room: "dashboard:sales", user: bob), "broadcast-only")
        #expect(!rules.allows(.presence, room: "dashboard:sales", user: bob))
        #expect(rules.allows(.join, room: "user:bob", user: bob))
        #expect(!rules.allows(.join, room: "user:alice", user: bob), "another user's room falls to the default")
        #expect(!rules.allows(.publish, room: "user:bob", user: bob))
        #expect(rules.allows(.join, room: "team:red", user: alice), "listed in the claim")
        #expect(!rules.allows(.join, room: "team:blue", user: alice))
        #expect(!rules.allows(.join, room: "team:red", user: bob))
        #expect(rules.allows(.publish, room: "team:red", user: alice), "publish follows the namespace")
        #expect(!rules.allows(.join, room: "random", user: alice), "the default allows nothing")
        #expect(rules.allows(.join, room: "lobby", user: bob) && !rules.allows(.presence, room: "lobby", user: bob))
        #expect(rules.claim == "channels")
        #expect(rules.namespaces.count == 5)
    }

    @Test("an empty document allows nothing; a default may open every other room")
    func defaults() throws {
        let none = try Self.rules("{}")
        #expect(!none.allows(.join, room: "lobby", user: .anonymous))
        let open = try Self.rules(#"{"namespaces":[{"pattern":"admin:*"}],"default":{"join":true,"publish":true,"presence":true}}"#)
        #expect(open.allows(.publish, room: "lobby", user: .anonymous))
        #expect(!open.allows(.join, room: "admin:ops", user: .anonymous))
        #expect(open.permissions(for: "admin:ops", user: .anonymous) == .nothing)
    }

    @Test("mistakes in the document are refused with where they are")
    func badDocuments() {
        #expect(Self.refusal("not json") == "not valid JSON")
        #expect(Self.refusal("[]") == "the rules must be a JSON object")
        #expect(Self.refusal(#"{"namespace":[]}"#)?.hasPrefix("unknown key \"namespace\"") == true)
        #expect(Self.refusal(#"{"namespaces":{}}"#) == "namespaces must be an array")
        #expect(Self.refusal(#"{"namespaces":[1]}"#) == "namespaces[0] must be an object")
        #expect(Self.refusal(#"{"namespaces":[{"join":true}]}"#) == "namespaces[0].pattern is required and must be a string")
        #expect(Self.refusal(#"{"namespaces":[{"pattern":"a","publsh":true}]}"#)?.hasPrefix("namespaces[0]: unknown key \"publsh\"") == true)
        #expect(Self.refusal(#"{"namespaces":[{"pattern":"a","join":"yes"}]}"#) == "namespaces[0].join must be true or false")
        #expect(Self.refusal(#"{"namespaces":[{"pattern":"a","join":1}]}"#) == "namespaces[0].join must be true or false")
        #expect(Self.refusal(#"{"namespaces":[{"pattern":"a*b"}]}"#)?.hasPrefix("namespaces[0].pattern: ") == true)
        #expect(Self.refusal(#"{"namespaces":[{"pattern":"a:*"},{"pattern":"a:*","join":true}]}"#)?.contains("repeats namespaces[0]") == true)
        #expect(Self.refusal(#"{"claim":""}"#) == "claim must be a non-empty string")
        #expect(Self.refusal(#"{"default":[]}"#) == "default must be an object")
        #expect(Self.refusal(#"{"default":{"pattern":"x"}}"#)?.hasPrefix("default: unknown key") == true)
    }

    @Test func loadingAFileNamesIt() throws {
        let missing = "/nonexistent/switchboard-rules-\(UUID().uuidString).json"
        #expect(throws: RoomRulesError("\(missing): cannot be read")) { try RoomRules.load(contentsOf: missing) }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rules-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data("{\"namespaces\":5}".utf8).write(to: url)
        #expect(throws: RoomRulesError("\(url.path): namespaces must be an array")) { try RoomRules.load(contentsOf: url.path) }
        try Data(Self.example.utf8).write(to: url)
        #expect(try RoomRules.load(contentsOf: url.path).namespaces.count == 5)
    }

    @Test("the README's example rules file is valid and means what the README says")
    func readmeExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "### Room permissions"))
        let start = try #require(readme.range(of: "```json\n", range: section.upperBound..<readme.endIndex))
        let end = try #require(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        let rules = try RoomRules(json: Data(readme[start.upperBound..<end.lowerBound].utf8))
        let alice = AuthenticatedUser(id: "alice", claims: ["channels": .array([.string("team:red")])])
        #expect(rules.allows(.publish, room: "chat:x", user: alice))
        #expect(rules.allows(.join, room: "dashboard:x", user: alice) && !rules.allows(.publish, room: "dashboard:x", user: alice))
        #expect(rules.allows(.join, room: "user:alice", user: alice) && !rules.allows(.join, room: "user:bob", user: alice))
        #expect(rules.allows(.join, room: "team:red", user: alice) && rules.allows(.publish, room: "team:red", user: alice))
        #expect(!rules.allows(.join, room: "team:blue", user: alice))
    }
}
