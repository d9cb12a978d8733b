import Foundation
import Testing

@testable import Switchboard
@testable import SwitchboardCLI

/// `switchboard serve --redis`: two processes on one redis-server are one chat server.
@Suite("switchboard serve --redis", RedisServer.availability)
struct ServeWithRedisTests {
    @Test("two serve processes on one Redis: a message sent on one node reaches a member on the other, and a resume works across them")
    func twoNodes() async throws {
        let redis = try await RedisServer.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-redis-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let secret = "redis-cli-test-secret-of-at-least-32-bytes"
        func node(_ name: String) throws -> CLIProcess {
            try CLIProcess(
                ["serve", "--port", "0", "--presence", "false", "--database", directory.appendingPathComponent("\(name).sqlite").path,
                 "--redis", "redis://127.0.0.1:\(redis.port)/0"],
                environment: ["SWITCHBOARD_JWT_SECRET": secret])
        }
        let a = try node("a")
        defer { a.terminate() }
        let b = try node("b")
        defer { b.terminate() }
        let portA = try await Int(a.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)) ?? 0
        let portB = try await Int(b.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)) ?? 0
        let minter = TokenMinter(hs256Secret: secret)
        func open(_ user: String, port: Int) async throws -> TestWebSocketClient {
            let token = try await minter.mint(subject: user, ttl: .seconds(600))
            let client = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(token)")
            _ = try await TestServer.hello(client)
            return client
        }
        // Both nodes connect to Redis in the background: they say when they are ready.
        for port in [portA, portB] {
            try await waitUntil("node on port \(port) is ready", timeout: .seconds(10)) { try await Self.get("/readyz", port: port).hasPrefix("HTTP/1.1 200") }
        }
        let alice = try await open("alice", port: portA)
        let bob = try await open("bob", port: portB)
        let start = try await ResumeTests.joinPosition(alice, "lobby")
        _ = try await ResumeTests.joinPosition(bob, "lobby")
        let sent = try await ResumeTests.send(bob, "lobby", "across nodes")
        #expect(sent.epoch == start.epoch && sent.offset == start.offset + 1)
        let events = try await Resume.events(alice, room: "lobby", through: sent)
        #expect(events.compactMap { $0["data"]?["content"]?.stringValue } == ["across nodes"])
        await alice.close()
        // Alice comes back on node B and resumes.
        let missed = try await ResumeTests.send(bob, "lobby", "while away")
        let token = try await minter.mint(subject: "alice", ttl: .seconds(600))
        let resumed = try await TestWebSocketClient.open(port: portB, path: "/ws?token=\(token)")
        let ack = try await Resume.hello(resumed, ["lobby": sent.description])
        #expect(Resume.outcome(ack, "lobby")?["recovered"]?.boolValue == true, "\(ack)")
        #expect(try await Resume.events(resumed, room: "lobby", through: missed).compactMap { $0["data"]?["content"]?.stringValue } == ["while away"])
        await resumed.close()
        await bob.close()
        a.terminate()
        b.terminate()
        await redis.stop()
    }

    static func get(_ path: String, port: Int) async throws -> String {
        try await RawTCPClient.request(port: port, text: "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").response
    }

    @Test("Redis unreachable at start: the node starts, /readyz says 503 and joins get unavailable; once Redis is up, it is ready and serves")
    func startsWithoutRedis() async throws {
        let redisPort = try RedisServer.freePort()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-redis-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let secret = "redis-cli-test-secret-of-at-least-32-bytes"
        let node = try CLIProcess(
            ["serve", "--port", "0", "--presence", "false", "--database", directory.appendingPathComponent("n.sqlite").path,
             "--redis", "redis://127.0.0.1:\(redisPort)"],
            environment: ["SWITCHBOARD_JWT_SECRET": secret])
        defer { node.terminate() }
        let port = try await Int(node.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)) ?? 0
        func get(_ path: String) async throws -> String { try await Self.get(path, port: port) }
        #expect(try await get("/healthz").hasPrefix("HTTP/1.1 200"))
        let notReady = try await get("/readyz")
        #expect(notReady.hasPrefix("HTTP/1.1 503"), "\(notReady)")
        #expect(notReady.contains(#""reason":"redis unreachable""#), "\(notReady)")
        let token = try await TokenMinter(hs256Secret: secret).mint(subject: "alice", ttl: .seconds(600))
        let alice = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(token)")
        _ = try await TestServer.hello(alice)
        let refused = try await RoomTests.request(alice, "room.join", #"{"room":"lobby"}"#)
        #expect(refused["data"]?["code"]?.stringValue == "unavailable", "\(refused)")
        // Redis comes up: the node reconnects on its own.
        let redis = try await RedisServer.start(port: redisPort)
        try await waitUntil("the node is ready", timeout: .seconds(15)) { try await get("/readyz").hasPrefix("HTTP/1.1 200") }
        let joined = try await RoomTests.request(alice, "room.join", #"{"room":"lobby"}"#)
        #expect(joined["event"]?.stringValue == "ack", "\(joined)")
        await alice.close()
        node.terminate()
        await redis.stop()
    }

    @Test("a --redis that is not a redis:// URL is refused before anything starts")
    func badURL() throws {
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--redis", "rediss://example.com:6380"]) }
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--redis", "http://127.0.0.1"]) }
        let parsed = try ServeCommand.parse(["--redis", "redis://:secret@127.0.0.1:6390/2"])
        #expect(parsed.redis == "redis://:secret@127.0.0.1:6390/2")
    }

    @Test("--redis-node-ttl sets how long a dead node's presence and slots stay: 30s by default, at least 1s")
    func nodeTTL() throws {
        #expect(try ServeCommand.parse([]).redisNodeTTL.duration == .seconds(30))
        #expect(try ServeCommand.parse(["--redis-node-ttl", "3s"]).redisNodeTTL.duration == .seconds(3))
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--redis-node-ttl", "500ms"]) }
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--redis-node-ttl", "soon"]) }
    }
}
