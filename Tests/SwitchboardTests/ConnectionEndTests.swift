import Foundation
import NIOCore
import NIOPosix
import NIOHTTP1
import Testing
@testable import Switchboard

/// Every way a connection can end gives back, at once, what it held: the user's connection slot,
/// its rooms, and its presence (the other members get `presence.leave`). The per-user limit is 1
/// here, so a slot that is not given back refuses the next connection; every wait is bounded far
/// below the 90 s heartbeat timeout that used to be the only way out.
@Suite("Connections end: slot, rooms and presence are released at once")
struct ConnectionEndTests {
    enum Ending: String, CaseIterable, Sendable {
        case closeFrame, fin, rst, finInTheMiddleOfAFrame
    }

    static var configuration: SwitchboardConfiguration {
        var configuration = SwitchboardConfiguration()
        configuration.maxConnectionsPerUser = 1
        // Announced at once (the grace period for reconnects is tested in RoomTests).
        configuration.presenceGracePeriod = .zero
        return configuration
    }

    /// Bob watches the lobby while alice (in it from her token) ends her connection.
    @Test("the slot, the rooms and presence are released when the connection ends", arguments: Ending.allCases)
    func endingReleasesEverything(ending: Ending) async throws {
        try await TestServers.with(configuration: Self.configuration) { server in
            let bob = try await server.open("bob", claims: ["rooms": .array([.string("lobby")])])
            let alice = try await server.open("alice", claims: ["rooms": .array([.string("lobby")])])
            #expect(try await bob.next(event: "presence.join")["data"]?["user"]?.stringValue == "alice")
            try await Self.end(alice, ending)

            let leave = try await bob.next(event: "presence.leave")
            #expect(leave["room"]?.stringValue == "lobby")
            #expect(leave["data"]?["user"]?.stringValue == "alice")
            #expect(try await server.switchboard.rooms.members(of: "lobby") == ["bob"])
            try await server.waitForConnections(1)
            #expect(try await server.switchboard.connectionSlots.count(of: "alice") == 0)
            // The one slot alice has is free again.
            let again = try await server.open("alice", claims: ["rooms": .array([.string("lobby")])])
            #expect(try await bob.next(event: "presence.join")["data"]?["user"]?.stringValue == "alice")
            await again.close()
            await bob.close()
        }
    }

    static func end(_ client: TestWebSocketClient, _ ending: Ending) async throws {
        switch ending {
        case .closeFrame:
            await client.close()
        case .fin:
            try await client.finishTCP()
            // The server answers the FIN by closing, without a Close frame of its own.
            let frames = try await client.waitForDisconnect()
            #expect(!frames.contains { $0.opcode == TestFrame.close }, "\(frames)")
        case .rst:
            try await client.resetTCP()
        case .finInTheMiddleOfAFrame:
            let frame = TestFrameCodec.encode(opcode: TestFrame.text, payload: Array(#"{"event":"presence.heartbeat","id":"half"}"#.utf8), maskKey: TestFrameCodec.randomMaskKey())
            try await client.sendRaw(Array(frame.prefix(frame.count / 2)))
            try await client.finishTCP()
            try await client.waitForDisconnect()
        }
    }

    @Test("a FIN right after the upgrade request, before the upgrade is decided, gives the slot back")
    func finBeforeTheUpgradeCompletes() async throws {
        try await TestServers.with(configuration: Self.configuration) { server in
            let bob = try await server.open("bob", claims: ["rooms": .array([.string("lobby")])])
            let token = try await server.token("alice", claims: ["rooms": .array([.string("lobby")])])
            for _ in 0..<3 {
                let raw = try await RawTCPClient.connect(port: server.port)
                let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
                try await raw.send(
                    "GET /ws?token=\(token) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n")
                try await raw.finish()
                #expect(try await raw.waitForDisconnect())
                await raw.close()
                try await waitUntil("alice's slot given back") { try await server.switchboard.connectionSlots.count(of: "alice") == 0 }
            }
            try await server.waitForConnections(1)
            #expect(try await server.switchboard.rooms.members(of: "lobby") == ["bob"])
            let alice = try await server.open("alice")
            await alice.close()
            await bob.close()
        }
    }

    @Test("a FIN while the connection's handler is still running: released at once, the late reply goes nowhere")
    func finWhileAHandlerRuns() async throws {
        let started = TestSignal()
        let release = TestSignal()
        let finished = TestSignal()
        var router = EventRouter.chat
        router.on("slow.op", as: EmptyPayload.self) { _, _ in
            started.fire()
            try await release.wait("the test to release the handler", timeout: .seconds(10))
            finished.fire()
            return ["done": true]
        }
        try await TestServers.with(configuration: Self.configuration, router: router) { server in
            let bob = try await server.open("bob", claims: ["rooms": .array([.string("lobby")])])
            let alice = try await server.open("alice", claims: ["rooms": .array([.string("lobby")])])
            _ = try await bob.next(event: "presence.join")
            try await alice.sendText(#"{"event":"slow.op","id":"s1"}"#)
            try await started.wait("the handler to start")
            try await alice.finishTCP()
            try await alice.waitForDisconnect()

            #expect(try await bob.next(event: "presence.leave")["data"]?["user"]?.stringValue == "alice")
            try await server.waitForConnections(1)
            #expect(try await server.switchboard.connectionSlots.count(of: "alice") == 0)
            #expect(!finished.hasFired)
            release.fire()
            try await finished.wait("the handler to finish")
            // The server goes on serving: a new connection of alice, and bob's requests.
            let again = try await server.open("alice")
            await again.close()
            try await bob.sendText(#"{"event":"presence.heartbeat","id":"b1"}"#)
            #expect(try await bob.next(event: "b1", field: "id")["event"]?.stringValue == "ack")
            await bob.close()
        }
    }

    @Test("a join that completes after its connection ended does not add the closed socket to the room")
    func lateJoinAfterTheConnectionEnded() async throws {
        let asked = TestSignal()
        let release = TestSignal()
        let socketBox = TestLockedBox<Socket?>(nil)
        let joined = TestLockedBox<RoomManager.JoinResult?>(nil)
        let answered = TestSignal()
        var router = EventRouter.chat
        // The same call the built-in room.join makes after an async authorizeJoin said yes.
        router.on("late.join", as: EmptyPayload.self) { _, context in
            socketBox.withLock { $0 = context.socket }
            asked.fire()
            try await release.wait("the test to release the join", timeout: .seconds(10))
            let result = try await context.rooms.join(context.socket, room: "lobby")
            joined.withLock { $0 = result }
            answered.fire()
        }
        try await TestServers.with(configuration: Self.configuration, router: router) { server in
            let bob = try await server.open("bob", claims: ["rooms": .array([.string("lobby")])])
            let alice = try await server.open("alice")
            try await alice.sendText(#"{"event":"late.join","id":"j1"}"#)
            try await asked.wait("the join to start")
            await alice.close()
            try await server.waitForConnections(1)
            release.fire()
            try await answered.wait("the late join to return")

            #expect(joined.withLock { $0 }?.joined == false)
            #expect(try await server.switchboard.rooms.members(of: "lobby") == ["bob"])
            let socket = try #require(socketBox.withLock { $0 })
            #expect(server.switchboard.rooms.rooms(of: socket).isEmpty)
            // Bob heard of no join: the next thing he gets is the answer to his own request.
            try await bob.sendText(#"{"event":"presence.heartbeat","id":"b1"}"#)
            let next = try await bob.nextJSON()
            #expect(next["id"]?.stringValue == "b1", "\(next)")
            await bob.close()
        }
    }

    @Test("install on a channel that already closed gives the handshake's slot back")
    func installThatThrowsGivesTheSlotBack() async throws {
        try await TestServers.with(configuration: Self.configuration) { server in
            let switchboard = server.switchboard
            let decision = await switchboard.evaluateHandshake(
                uri: "/ws?token=\(try await server.token("alice"))", headers: [:], remoteAddress: nil)
            guard case .accept(let accepted) = decision else {
                Issue.record("expected the handshake to be accepted: \(decision)")
                return
            }
            #expect(try await switchboard.connectionSlots.count(of: "alice") == 1)
            // A real channel, closed: its pipeline takes no more handlers.
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: server.port).get()
            try await channel.close().get()
            await #expect(throws: (any Error).self) {
                try await channel.eventLoop.submit { try switchboard.install(accepted, on: channel) }.get()
            }
            #expect(try await switchboard.connectionSlots.count(of: "alice") == 0)
        }
    }
}
