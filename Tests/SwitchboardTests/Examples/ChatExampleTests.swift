import ChatExampleApp
import Foundation
import Hummingbird
import NIOCore
import HummingbirdTesting
import Testing
@testable import Switchboard

/// The chat example's app on 127.0.0.1 with an ephemeral port, built by the example's own code,
/// plus test routes that drop and restore the network of connections through a `ChaosProxy`.
private struct ChatTestServer: Sendable {
    let port: Int
    let database: ChatDatabase
    let proxy: TestLockedBox<ChaosProxy?>
    let http: any TestClientProtocol

    static func with(databasePath: String?, rateLimits: RateLimits = .init(), _ body: @Sendable (ChatTestServer) async throws -> Void) async throws {
        var configuration = ChatConfiguration(port: 0, databasePath: databasePath, jwtSecret: TestServer.secret)
        // Presence announcements without the grace period's 5 s, so a test sees a leave at once.
        configuration.switchboard.presenceGracePeriod = .zero
        configuration.switchboard.rateLimits = rateLimits
        let app = try await ChatApp(configuration: configuration, logger: TestServers.defaultLogger)
        let proxy = TestLockedBox<ChaosProxy?>(nil)
        // A network drop for the connections through the proxy: open ones are closed, new ones
        // are cut at once, until /test/network/up.
        app.router.get("/test/network/down") { _, _ -> String in
            let proxy = proxy.withLock { $0 }
            proxy?.cutConnections(afterServerBytes: 0)
            proxy?.closeOpenConnections()
            return "down"
        }
        app.router.get("/test/network/up") { _, _ -> String in
            proxy.withLock { $0 }?.cutConnections(afterServerBytes: nil)
            return "up"
        }
        let database = app.database
        try await app.application(logger: TestServers.defaultLogger).test(.live) { client in
            guard let port = client.port else { throw TestClientError.connectFailed("no port") }
            try await body(ChatTestServer(port: port, database: database, proxy: proxy, http: client))
        }
        try app.database.close()
    }

    /// POSTs `json` to `path`: the status and the body's JSON object.
    func post(_ path: String, json: String) async throws -> (status: Int, body: [String: JSONValue]) {
        let response = try await http.execute(uri: path, method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: json))
        let body = try? JSONDecoder().decode(JSONValue.self, from: Data(response.body.readableBytesView))
        return (Int(response.status.code), body?.objectValue ?? [:])
    }

    /// A connection as `user`, after `session.hello` (which joins the user's channels): the hello's
    /// ack and the channels' snapshots (`state.refresh`), by room.
    func connect(_ user: String) async throws -> (client: TestWebSocketClient, hello: [String: JSONValue], snapshots: [String: [JSONValue]]) {
        let token = try await TokenMinter(hs256Secret: TestServer.secret).mint(subject: user)
        let client = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(token)", timeout: .seconds(20))
        // Bounded generously: the suites run beside 500 viewers and two browsers on a busy machine.
        try await client.sendText(#"{"event":"session.hello","id":"hello"}"#)
        let hello = try await client.next(event: "hello", field: "id", timeout: .seconds(20))
        let rooms = hello["data"]?["rooms"]?.arrayValue?.compactMap { $0["room"]?.stringValue } ?? []
        var snapshots: [String: [JSONValue]] = [:]
        while snapshots.count < rooms.count {
            let refresh = try await client.next(event: "state.refresh", timeout: .seconds(20))
            let room = try #require(refresh["room"]?.stringValue)
            snapshots[room] = refresh["data"]?["messages"]?.arrayValue ?? []
        }
        return (client, hello, snapshots)
    }
}

@Suite("Example: chat", .serialized)
struct ChatExampleTests {
    @Test func loginIssuesATokenForDemoUsersOnly() async throws {
        try await ChatTestServer.with(databasePath: nil) { server in
            let (status, body) = try await server.post("/api/login", json: #"{"user":"alice"}"#)
            #expect(status == 200)
            let token = try #require(body["token"]?.stringValue)
            let verified = try await TokenVerifier(keys: [.hmacSecret(TestServer.secret)]).verify(token)
            #expect(verified.subject == "alice")
            #expect(body["channels"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["general", "random", "swift"])
            let (unknown, unknownBody) = try await server.post("/api/login", json: #"{"user":"mallory"}"#)
            #expect(unknown == 401)
            #expect(unknownBody["error"] != nil)
            let (bad, _) = try await server.post("/api/login", json: #"{"name":1}"#)
            #expect(bad == 400)
        }
    }

    @Test func channelsAreJoinedFromTheDatabaseAndMessagesStoredBroadcastAndEditedByTheirAuthorOnly() async throws {
        try await ChatTestServer.with(databasePath: nil) { server in
            let alice = try await server.connect("alice")
            // Auto-joined from the memberships table, each with its (empty) snapshot.
            #expect(Set(alice.snapshots.keys) == ["general", "random", "swift"])
            let bob = try await server.connect("bob")
            #expect(Set(bob.snapshots.keys) == ["general", "swift"])
            _ = try await alice.client.next(event: "presence.join")

            // message.send: stored, then broadcast with an eid; the ack carries the stored message.
            try await alice.client.sendText(#"{"event":"message.send","data":{"room":"general","content":"hello bob"},"id":"s1"}"#)
            let ack = try await alice.client.next(event: "s1", field: "id")
            #expect(ack["event"]?.stringValue == "ack")
            let id = try #require(ack["data"]?["message"]?["id"]?.numberValue)
            let new = try await bob.client.next(event: "message.new")
            #expect(new["eid"]?.stringValue == ack["data"]?["eid"]?.stringValue)
            #expect(new["data"]?["id"]?.numberValue == id)
            #expect(new["data"]?["from"]?.stringValue == "alice")
            #expect(new["data"]?["content"]?.stringValue == "hello bob")
            #expect(try await server.database.latestMessages(in: "general").map(\.content) == ["hello bob"])

            // message.edit by someone else: forbidden, nothing changed.
            try await bob.client.sendText(#"{"event":"message.edit","data":{"id":\#(Int(id)),"content":"hacked"},"id":"e1"}"#)
            let refused = try await bob.client.next(event: "e1", field: "id")
            #expect(refused["event"]?.stringValue == "error")
            #expect(refused["data"]?["code"]?.stringValue == "forbidden")
            #expect(try await server.database.message(Int64(id))?.content == "hello bob")
            // An unknown message: not_found.
            try await bob.client.sendText(#"{"event":"message.edit","data":{"id":999999,"content":"x"},"id":"e2"}"#)
            #expect(try await bob.client.next(event: "e2", field: "id")["data"]?["code"]?.stringValue == "not_found")

            // message.edit by the author: stored and broadcast.
            try await alice.client.sendText(#"{"event":"message.edit","data":{"id":\#(Int(id)),"content":"hello bob!"},"id":"e3"}"#)
            #expect(try await alice.client.next(event: "e3", field: "id")["event"]?.stringValue == "ack")
            let edited = try await bob.client.next(event: "message.edited")
            #expect(edited["data"]?["content"]?.stringValue == "hello bob!")
            #expect(edited["data"]?["editedAt"]?.numberValue != nil)
            #expect(edited["eid"] != nil)

            // typing.start: broadcast without an eid, not stored.
            try await bob.client.sendText(#"{"event":"typing.start","data":{"room":"general"},"id":"t1"}"#)
            let typing = try await alice.client.next(event: "typing.start")
            #expect(typing["data"]?["from"]?.stringValue == "bob")
            #expect(typing["eid"] == nil)
            #expect(try await server.database.latestMessages(in: "general").count == 1)

            // A channel bob is not a member of: neither joined nor written to.
            try await bob.client.sendText(#"{"event":"room.join","data":{"room":"random"},"id":"j1"}"#)
            #expect(try await bob.client.next(event: "j1", field: "id")["data"]?["code"]?.stringValue == "forbidden")
            try await bob.client.sendText(#"{"event":"message.send","data":{"room":"random","content":"hi"},"id":"s2"}"#)
            #expect(try await bob.client.next(event: "s2", field: "id")["data"]?["code"]?.stringValue == "forbidden")
            // Bad input gets a clear error reply.
            try await bob.client.sendText(#"{"event":"message.send","data":{"room":"general","content":"   "},"id":"s3"}"#)
            #expect(try await bob.client.next(event: "s3", field: "id")["data"]?["code"]?.stringValue == "validation_failed")

            await alice.client.close()
            await bob.client.close()
        }
    }

    @Test func presenceCountsEachUserOnceAcrossTabs() async throws {
        try await ChatTestServer.with(databasePath: nil) { server in
            let bob = try await server.connect("bob")
            let aliceTab1 = try await server.connect("alice")
            // Announced once in each channel they share: general and swift.
            var announced: [String] = []
            for _ in 0..<2 {
                let join = try await bob.client.next(event: "presence.join")
                #expect(join["data"]?["user"]?.stringValue == "alice")
                announced.append(join["room"]?.stringValue ?? "")
            }
            #expect(announced.sorted() == ["general", "swift"])
            let aliceTab2 = try await server.connect("alice")
            try await bob.client.sendText(#"{"event":"room.members","data":{"room":"general"},"id":"m1"}"#)
            // The second tab was not announced: the next thing bob gets is his reply.
            let members = try await bob.client.nextJSON()
            #expect(members["id"]?.stringValue == "m1")
            #expect(members["data"]?["members"]?.arrayValue?.compactMap(\.stringValue).sorted() == ["alice", "bob"])
            await aliceTab1.client.close()
            await aliceTab2.client.close()
            #expect(try await bob.client.next(event: "presence.leave")["data"]?["user"]?.stringValue == "alice")
            await bob.client.close()
        }
    }

    @Test func messagesSurviveARestartAndComeBackAsTheSnapshot() async throws {
        let folder = try ExampleArtifacts.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("chat.sqlite").path
        // 55 sends at once: past message.send's burst of 40.
        let lastEID = TestLockedBox<String?>(nil)
        try await ChatTestServer.with(databasePath: path, rateLimits: .off) { server in
            let alice = try await server.connect("alice")
            for index in 1...55 {
                try await alice.client.sendText(#"{"event":"message.send","data":{"room":"swift","content":"message \#(index)"},"id":"s\#(index)"}"#)
                let ack = try await alice.client.next(event: "s\(index)", field: "id", timeout: .seconds(20))
                #expect(ack["event"]?.stringValue == "ack")
                lastEID.withLock { $0 = ack["data"]?["eid"]?.stringValue }
            }
            await alice.client.close()
        }
        let eid = try #require(lastEID.withLock { $0 })
        // A new process on the same file: migrations find it up to date, the messages are there,
        // and a joiner's snapshot is the channel's latest 50.
        try await ChatTestServer.with(databasePath: path) { server in
            let bob = try await server.connect("bob")
            let snapshot = try #require(bob.snapshots["swift"])
            #expect(snapshot.compactMap { $0["content"]?.stringValue } == (6...55).map { "message \($0)" })
            #expect(snapshot.allSatisfy { $0["from"]?.stringValue == "alice" })

            // Alice's page resumes from before the restart: the room's history is gone (a new
            // epoch), so she gets the snapshot from the database instead of a silent gap.
            let token = try await TokenMinter(hs256Secret: TestServer.secret).mint(subject: "alice")
            let alice = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=\(token)", timeout: .seconds(20))
            try await alice.sendText(#"{"event":"session.hello","data":{"resume":{"swift":"\#(eid)"}},"id":"hello"}"#)
            let hello = try await alice.next(event: "hello", field: "id", timeout: .seconds(20))
            let swift = hello["data"]?["rooms"]?.arrayValue?.first { $0["room"]?.stringValue == "swift" }
            #expect(swift?["recovered"]?.boolValue == false)
            var refreshed: [String: [String]] = [:]
            while refreshed.count < 3 {
                let refresh = try await alice.next(event: "state.refresh", timeout: .seconds(20))
                refreshed[refresh["room"]?.stringValue ?? ""] = refresh["data"]?["messages"]?.arrayValue?.compactMap { $0["content"]?.stringValue }
            }
            #expect(refreshed["swift"] == (6...55).map { "message \($0)" })
            #expect(refreshed["general"] == [])
            await alice.close()
            await bob.client.close()
        }
    }

    @Test(ExternalTool.browserAvailability) func twoBrowsersChatThroughANetworkDrop() async throws {
        if let missing = ExternalTool.browserMissing { throw ExternalToolError.missing(missing) }
        guard let python = ExternalTool.which("python3") else { throw ExternalToolError.missing("python3") }
        try await ChatTestServer.with(databasePath: nil) { server in
            let proxy = try await ChaosProxy.start(upstreamPort: server.port, reset: false)
            server.proxy.withLock { $0 = proxy }
            let screenshot = try ExampleArtifacts.file("chat.png")
            let run = try await ExternalTool.run(
                python,
                [
                    ExampleArtifacts.script("Chat", "two_browsers.py"), "http://127.0.0.1:\(server.port)", "ws://127.0.0.1:\(proxy.port)/ws",
                    "--screenshot", screenshot.path, "--timeout", "30",
                ],
                timeout: .seconds(150)
            )
            await proxy.stop()
            let result = try #require(ExampleArtifacts.lastJSONLine(of: run.output), "no result from the driver:\n\(run.output)")
            try #require(run.exitCode == 0 && result["ok"]?.boolValue == true, "the scenario failed:\n\(run.output)")
            // Alice's page, after the drop: every message once, in order, the edit applied.
            let conversation = [
                "hello bob (edited)", "hi alice", "while you were away 1", "while you were away 2", "while you were away 3", "sent while offline",
            ]
            #expect(result["alice"]?.arrayValue?.compactMap(\.stringValue) == conversation)
            #expect(result["bob"]?.arrayValue?.compactMap(\.stringValue) == conversation)
            #expect(result["bobEditButtons"]?.numberValue == 0)
            #expect(result["bobEditOfAlice"]?.stringValue == "forbidden")
            #expect(result["bannerWhileDown"]?.boolValue == true)
            #expect(proxy.accepted >= 2, "alice reconnected through the proxy")
            #expect(FileManager.default.fileExists(atPath: screenshot.path))
        }
    }
}
