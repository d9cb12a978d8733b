import Foundation
import Testing
@testable import Switchboard

/// Room permissions end to end on real sockets: for every kind of rule, the allowed client gets
/// the room's events and the denied one gets `forbidden` and none of them.
///
/// "None of them" is checked without sleeping: the room's events are followed by a marker in the
/// `control` room, published by the same publisher after them; a socket receives one publisher's
/// events in order, so a client that gets the marker without the events before it never got
/// them. The allowed clients read the same sequence and do see the events first, which shows the
/// check would catch a leak.
@Suite("Room permissions: join, publish, presence")
struct PermissionsTests {
    /// Every rule kind: open, broadcast-only, per user, by claim; anything else is denied.
    static var rules: RoomRules {
        get throws {
            RoomRules(
                namespaces: [
                    .init(try RoomPattern("chat:*"), .all),
                    .init(try RoomPattern("dashboard:*"), .init(join: true)),
                    .init(try RoomPattern("user:{sub}"), .init(join: true)),
                    .init(try RoomPattern("team:*"), .init(publish: true, presence: true)),
                    .init(try RoomPattern("control"), .init(join: true, publish: true)),
                ],
                claim: "channels"
            )
        }
    }

    static func request(_ client: TestWebSocketClient, _ event: String, _ data: String) async throws -> [String: JSONValue] {
        try await RoomTests.request(client, event, data)
    }

    /// The `members` of a join or `room.members` ack.
    static func members(_ reply: [String: JSONValue]) -> Set<String>? {
        reply["data"]?["members"]?.arrayValue.map { Set($0.compactMap(\.stringValue)) }
    }

    static func expectForbidden(_ reply: [String: JSONValue], _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply["event"]?.stringValue == "error", comment ?? "\(reply)", sourceLocation: sourceLocation)
        #expect(reply["data"]?["code"]?.stringValue == "forbidden", comment ?? "\(reply)", sourceLocation: sourceLocation)
    }

    /// Reads `client`'s messages up to the marker `marker` in `control` and returns the `content`
    /// (or `data.text`) of every other room event it got before it.
    static func contentsBeforeMarker(_ client: TestWebSocketClient, _ marker: String) async throws -> [String] {
        var contents: [String] = []
        for _ in 0..<100 {
            let message = try await client.nextJSON()
            let content = message["data"]?["content"]?.stringValue ?? message["data"]?["text"]?.stringValue
            if message["room"]?.stringValue == "control", content == marker { return contents }
            if message["room"] != nil, let content { contents.append(content) }
        }
        throw TestClientError.timeout("no marker \(marker)")
    }

    /// The server publishes `text` to `room`, then the marker to `control`.
    static func serverPublishes(_ server: TestServer, _ room: String, _ text: String, marker: String) async throws {
        _ = try await server.switchboard.rooms.broadcast(room: room, event: "note", data: ["text": text])
        _ = try await server.switchboard.rooms.broadcast(room: "control", event: "note", data: ["text": marker])
    }

    @Test("open namespace: members join, publish, see members and each other's messages")
    func openNamespace() async throws {
        try await TestServers.with(authorizer: try Self.rules) { server in
            let alice = try await server.open("alice")
            let bob = try await server.open("bob")
            _ = try await RoomTests.join(alice, "chat:general")
            let join = try await RoomTests.join(bob, "chat:general")
            #expect(Self.members(join) == ["alice", "bob"])
            let ack = try await Self.request(bob, "message.send", #"{"room":"chat:general","content":"hi"}"#)
            #expect(ack["event"]?.stringValue == "ack", "\(ack)")
            #expect(try await alice.next(event: "message.new")["data"]?["content"]?.stringValue == "hi")
            let members = try await Self.request(alice, "room.members", #"{"room":"chat:general"}"#)
            #expect(Self.members(members) == ["alice", "bob"], "\(members)")
            await alice.close()
            await bob.close()
        }
    }

    @Test("broadcast-only: clients join and receive, their publishes get forbidden and reach no one")
    func broadcastOnly() async throws {
        try await TestServers.with(authorizer: try Self.rules) { server in
            let viewer = try await server.open("viewer")
            let other = try await server.open("other")
            for client in [viewer, other] {
                _ = try await RoomTests.join(client, "control")
            }
            let join = try await RoomTests.join(viewer, "dashboard:sales")
            #expect(join["data"]?["members"] == .array([]), "no presence permission: no members in the ack")
            _ = try await RoomTests.join(other, "dashboard:sales")
            Self.expectForbidden(try await Self.request(viewer, "message.send", #"{"room":"dashboard:sales","content":"sneaky"}"#))
            Self.expectForbidden(try await Self.request(viewer, "typing.start", #"{"room":"dashboard:sales"}"#))
            Self.expectForbidden(try await Self.request(viewer, "room.members", #"{"room":"dashboard:sales"}"#))
            // The refused publish reached no one: other's next room event is the marker.
            _ = try await Self.request(viewer, "message.send", #"{"room":"control","content":"m1"}"#)
            #expect(try await Self.contentsBeforeMarker(other, "m1") == [])
            // The server side publishes regardless, and members receive it.
            try await Self.serverPublishes(server, "dashboard:sales", "revenue up", marker: "m2")
            #expect(try await Self.contentsBeforeMarker(other, "m2") == ["revenue up"])
            #expect(try await Self.contentsBeforeMarker(viewer, "m2") == ["revenue up"])
            await viewer.close()
            await other.close()
        }
    }

    @Test("user:{sub}: only that user joins; another gets forbidden and none of its events")
    func personalRooms() async throws {
        try await TestServers.with(authorizer: try Self.rules) { server in
            let alice = try await server.open("alice")
            let mallory = try await server.open("mallory")
            for client in [alice, mallory] {
                _ = try await RoomTests.join(client, "control")
            }
            _ = try await RoomTests.join(alice, "user:alice")
            Self.expectForbidden(try await Self.request(mallory, "room.join", #"{"room":"user:alice"}"#))
            _ = try await RoomTests.join(mallory, "user:mallory")
            Self.expectForbidden(try await Self.request(alice, "message.send", #"{"room":"user:alice","content":"x"}"#), "publish is off in user rooms")
            try await Self.serverPublishes(server, "user:alice", "your invoice", marker: "m1")
            #expect(try await Self.contentsBeforeMarker(alice, "m1") == ["your invoice"])
            #expect(try await Self.contentsBeforeMarker(mallory, "m1") == [])
            #expect(try await server.switchboard.rooms.members(of: "user:alice") == ["alice"])
            await alice.close()
            await mallory.close()
        }
    }

    @Test("claim list: a room listed in the token's claim may be joined, others not")
    func claimList() async throws {
        try await TestServers.with(authorizer: try Self.rules) { server in
            let carol = try await server.open("carol", claims: ["channels": .array([.string("team:red")])])
            let dave = try await server.open("dave", claims: ["channels": .array([.string("team:blue")])])
            for client in [carol, dave] {
                _ = try await RoomTests.join(client, "control")
            }
            _ = try await RoomTests.join(carol, "team:red")
            Self.expectForbidden(try await Self.request(carol, "room.join", #"{"room":"team:blue"}"#))
            Self.expectForbidden(try await Self.request(dave, "room.join", #"{"room":"team:red"}"#))
            // Not joined, so not allowed to publish there either, whatever the namespace says.
            Self.expectForbidden(try await Self.request(dave, "message.send", #"{"room":"team:red","content":"x"}"#))
            let ack = try await Self.request(carol, "message.send", #"{"room":"team:red","content":"red only"}"#)
            #expect(ack["event"]?.stringValue == "ack", "publish follows the namespace: \(ack)")
            _ = try await Self.request(carol, "message.send", #"{"room":"control","content":"m1"}"#)
            #expect(try await Self.contentsBeforeMarker(dave, "m1") == [])
            let members = try await Self.request(carol, "room.members", #"{"room":"team:red"}"#)
            #expect(members["data"]?["members"] == .array([.string("carol")]), "\(members)")
            await carol.close()
            await dave.close()
        }
    }

    @Test("denied: rooms no rule allows are refused on join, on resume and on connect (skipped)")
    func deniedEverywhere() async throws {
        let memberships = InMemoryMembershipStore([Membership(userID: "eve", room: "vault"), Membership(userID: "eve", room: "chat:kept")])
        let logs = CapturedLogs()
        try await TestServers.with(memberships: memberships, authorizer: try Self.rules, logger: logs.logger) { server in
            let watcher = try await server.open("watcher")
            _ = try await RoomTests.join(watcher, "control")
            let (eve, welcome) = try await server.connect("eve", claims: ["rooms": .array([.string("secret"), .string("chat:lobby")])])
            let joined = Set(welcome["data"]?["rooms"]?.arrayValue?.compactMap { $0["room"]?.stringValue } ?? [])
            #expect(joined == ["chat:kept", "chat:lobby"], "denied rooms of the token and the store are skipped: \(welcome)")
            #expect(try await server.switchboard.rooms.members(of: "secret").isEmpty)
            #expect(try await server.switchboard.rooms.members(of: "vault").isEmpty)
            #expect(logs.lines.contains { $0.contains("room of the handshake not allowed; skipped") && $0.contains("room=vault") && $0.contains("user=eve") })
            _ = try await RoomTests.join(eve, "control")
            Self.expectForbidden(try await Self.request(eve, "room.join", #"{"room":"vault"}"#))
            try await Self.serverPublishes(server, "vault", "gold", marker: "m1")
            try await Self.serverPublishes(server, "secret", "plans", marker: "m2")
            #expect(try await Self.contentsBeforeMarker(eve, "m1") == [])
            #expect(try await Self.contentsBeforeMarker(eve, "m2") == [])
            // Resuming a denied room on a new connection: forbidden for that room only.
            let again = try await server.openQuiet("eve")
            let ack = try await Resume.hello(again, ["vault": "abc:1", "chat:lobby": "abc:1"])
            #expect(Resume.outcome(ack, "vault")?["error"]?["code"]?.stringValue == "forbidden", "\(ack)")
            #expect(Resume.outcome(ack, "chat:lobby")?["recovered"] != nil, "resumed: \(ack)")
            #expect(try await server.switchboard.rooms.members(of: "vault").isEmpty)
            await eve.close()
            await again.close()
            await watcher.close()
        }
    }

    @Test("an authorizer that must be awaited: the same refusals, through the asynchronous path")
    func asynchronousAuthorizer() async throws {
        let authorizer = ClosureRoomAuthorizer { action, room, socket in
            await Task.yield()
            switch action {
            case .join: return room != "closed" || socket.user.id == "admin"
            case .publish: return !room.hasPrefix("news")
            case .presence: return socket.user.id == "admin"
            }
        }
        try await TestServers.with(authorizer: authorizer) { server in
            let admin = try await server.open("admin")
            let (user, welcome) = try await server.connect("user", claims: ["rooms": .array([.string("closed"), .string("news")])])
            let joined = welcome["data"]?["rooms"]?.arrayValue?.compactMap { $0["room"]?.stringValue }
            #expect(joined == ["news"], "\(welcome)")
            for client in [admin, user] {
                _ = try await RoomTests.join(client, "control")
            }
            _ = try await RoomTests.join(admin, "closed")
            _ = try await RoomTests.join(admin, "news")
            Self.expectForbidden(try await Self.request(user, "room.join", #"{"room":"closed"}"#))
            Self.expectForbidden(try await Self.request(user, "message.send", #"{"room":"news","content":"x"}"#))
            Self.expectForbidden(try await Self.request(user, "typing.start", #"{"room":"news"}"#))
            Self.expectForbidden(try await Self.request(user, "room.members", #"{"room":"news"}"#))
            let members = try await Self.request(admin, "room.members", #"{"room":"news"}"#)
            #expect(Self.members(members) == ["admin", "user"], "\(members)")
            let ack = try await Self.request(admin, "message.send", #"{"room":"closed","content":"inside"}"#)
            #expect(ack["event"]?.stringValue == "ack", "\(ack)")
            _ = try await Self.request(admin, "message.send", #"{"room":"control","content":"m1"}"#)
            #expect(try await Self.contentsBeforeMarker(user, "m1") == [])
            // A resumed handshake room that is refused asynchronously is reported, not skipped.
            let again = try await server.openQuiet("user", claims: ["rooms": .array([.string("closed")])])
            let hello = try await Resume.hello(again, ["closed": "abc:1"])
            #expect(Resume.outcome(hello, "closed")?["error"]?["code"]?.stringValue == "forbidden", "\(hello)")
            await admin.close()
            await user.close()
            await again.close()
        }
    }

    @Test("an app handler applies the same rules with EventContext.authorize")
    func appHandlersAskTheAuthorizer() async throws {
        var router = EventRouter.chat
        struct Edit: Codable, Sendable { let room: String }
        router.on("doc.edit", as: Edit.self) { edit, context in
            try await context.authorize(.publish, room: edit.room)
            try await context.broadcast(to: edit.room, event: "doc.edited", data: edit)
        }
        try await TestServers.with(router: router, authorizer: try Self.rules) { server in
            let alice = try await server.open("alice")
            _ = try await RoomTests.join(alice, "dashboard:ops")
            Self.expectForbidden(try await Self.request(alice, "doc.edit", #"{"room":"dashboard:ops"}"#))
            _ = try await RoomTests.join(alice, "chat:ops")
            #expect(try await Self.request(alice, "doc.edit", #"{"room":"chat:ops"}"#)["event"]?.stringValue == "ack")
            await alice.close()
        }
    }

    @Test("authorizeJoin and an authorizer together: a join needs both; publishing follows the authorizer")
    func joinHookAndAuthorizerTogether() async throws {
        let rules = RoomRules(namespaces: [.init(try RoomPattern("news"), .init(join: true))], default: .all)
        try await TestServers.with(authorizeJoin: { _, room in room != "vip" }, authorizer: rules) { server in
            let alice = try await server.open("alice")
            Self.expectForbidden(try await Self.request(alice, "room.join", #"{"room":"vip"}"#), "refused by authorizeJoin")
            _ = try await RoomTests.join(alice, "news")
            Self.expectForbidden(try await Self.request(alice, "message.send", #"{"room":"news","content":"x"}"#), "refused by the rules")
            _ = try await RoomTests.join(alice, "lobby")
            #expect(try await Self.request(alice, "message.send", #"{"room":"lobby","content":"x"}"#)["event"]?.stringValue == "ack")
            await alice.close()
        }
    }

    @Test("an authorizer that throws: its EventError reaches the client, any other error is unavailable")
    func throwingAuthorizer() async throws {
        struct Outage: Error {}
        let authorizer = ClosureRoomAuthorizer { action, room, _ in
            switch room {
            case "banned": throw EventError(code: "banned", message: "you are banned")
            case "flaky": throw Outage()
            default: return true
            }
        }
        try await TestServers.with(authorizer: authorizer) { server in
            let alice = try await server.open("alice")
            let banned = try await Self.request(alice, "room.join", #"{"room":"banned"}"#)
            #expect(banned["data"]?["code"]?.stringValue == "banned", "\(banned)")
            let flaky = try await Self.request(alice, "room.join", #"{"room":"flaky"}"#)
            #expect(flaky["data"]?["code"]?.stringValue == "unavailable", "\(flaky)")
            #expect(try await server.switchboard.rooms.members(of: "flaky").isEmpty)
            _ = try await RoomTests.join(alice, "fine")
            await alice.close()
        }
    }
}
