import Foundation
import Testing
@testable import Switchboard

@Suite("Transport: RFC 6455 limits, heartbeats, expiry")
struct TransportTests {
    @Test func oversizeSingleFrameIs1009() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.maxMessageSize = 1024
        try await TestServers.with(configuration: configuration) { server in
            let client = try await server.open("alice")
            try await client.sendText(String(repeating: "x", count: 1025))
            #expect(try await client.expectClose().code == 1009)
        }
    }

    @Test func oversizeFragmentedMessageIs1009() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.maxMessageSize = 1024
        try await TestServers.with(configuration: configuration) { server in
            let client = try await server.open("alice")
            let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 400)
            try await client.sendFrame(fin: false, opcode: 0x1, payload: chunk)
            try await client.sendFrame(fin: false, opcode: 0x0, payload: chunk)
            try await client.sendFrame(fin: true, opcode: 0x0, payload: chunk)
            #expect(try await client.expectClose().code == 1009)
        }
    }

    /// Closing a socket with unread input makes the kernel send a reset, which can destroy the
    /// Close frame before the client reads it and fails the client's next write (the conformance
    /// suite died of SIGPIPE this way). The server shuts its side and reads on instead.
    @Test func aFailedConnectionIsShutNotReset() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.maxMessageSize = 1024
        try await TestServers.with(configuration: configuration) { server in
            let client = try await server.open("alice")
            // A message over the limit and, in the same write, what a client that has not seen
            // the Close yet goes on sending: input the server has not read when it fails.
            let kilobyte = [UInt8](repeating: UInt8(ascii: "x"), count: 1024)
            var bytes = TestFrameCodec.encode(opcode: 0x2, payload: kilobyte + kilobyte, maskKey: TestFrameCodec.randomMaskKey())
            for _ in 0..<128 {
                bytes += TestFrameCodec.encode(opcode: 0x2, payload: kilobyte, maskKey: TestFrameCodec.randomMaskKey())
            }
            try await client.sendRaw(bytes)
            let close = try await client.nextFrame()
            #expect(close.opcode == TestFrame.close)
            #expect(close.closeCode == 1009)
            // Then its side of TCP ends with a FIN, not a reset.
            try await client.waitForDisconnect()
            #expect(!client.wasReset)
        }
    }

    @Test func messageOfExactlyTheLimitIsAccepted() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.maxMessageSize = 1024
        try await TestServers.with(configuration: configuration) { server in
            let client = try await server.open("alice")
            let prefix = #"{"event":"presence.heartbeat","id":"x","pad":""#
            let text = prefix + String(repeating: "p", count: 1024 - prefix.utf8.count - 2) + #""}"#
            #expect(text.utf8.count == 1024)
            // In three fragments, to check reassembly too.
            let bytes = Array(text.utf8)
            try await client.sendFrame(fin: false, opcode: 0x1, payload: Array(bytes[0..<300]))
            try await client.sendFrame(fin: false, opcode: 0x0, payload: Array(bytes[300..<700]))
            try await client.sendFrame(fin: true, opcode: 0x0, payload: Array(bytes[700...]))
            #expect(try await client.next(event: "ack")["id"]?.stringValue == "x")
            await client.close()
        }
    }

    @Test func invalidUTF8Is1007() async throws {
        try await TestServers.with { server in
            let client = try await server.open("alice")
            try await client.sendFrame(opcode: 0x1, payload: [0x7B, 0xED, 0xA0, 0x80, 0x7D])
            #expect(try await client.expectClose().code == 1007)
        }
    }

    @Test func protocolErrorsAre1002() async throws {
        try await TestServers.with { server in
            let unmasked = try await server.open("alice")
            try await unmasked.sendFrame(opcode: 0x1, payload: Array("{}".utf8), masked: false)
            #expect(try await unmasked.expectClose().code == 1002)
            let reserved = try await server.open("alice")
            try await reserved.sendFrame(opcode: 0x1, payload: Array("{}".utf8), rsv: 0x4)
            #expect(try await reserved.expectClose().code == 1002)
            let opcode = try await server.open("alice")
            try await opcode.sendFrame(opcode: 0xB, payload: [])
            #expect(try await opcode.expectClose().code == 1002)
        }
    }

    @Test("replies queued in the same loop turn as a protocol error leave before the Close frame, none after")
    func repliesQueuedBeforeACloseLeaveFirst() async throws {
        try await TestServers.with { server in
            let client = try await server.open("alice")
            // Three requests and a frame with a reserved bit, in one TCP write: the server handles
            // all four in one read, so the acks are still queued when it closes.
            var bytes: [UInt8] = []
            for index in 0..<3 {
                let message = #"{"event":"presence.heartbeat","id":"h\#(index)"}"#
                bytes += TestFrameCodec.encode(opcode: 0x1, payload: Array(message.utf8), maskKey: TestFrameCodec.randomMaskKey())
            }
            bytes += TestFrameCodec.encode(rsv: 0x4, opcode: 0x1, payload: Array("{}".utf8), maskKey: TestFrameCodec.randomMaskKey())
            bytes += TestFrameCodec.encode(opcode: 0x1, payload: Array(#"{"event":"presence.heartbeat","id":"late"}"#.utf8), maskKey: TestFrameCodec.randomMaskKey())
            try await client.sendRaw(bytes)
            for index in 0..<3 {
                // nextJSON throws on a Close frame: the acks must come first.
                let ack = try await client.nextJSON()
                #expect(ack["event"]?.stringValue == "ack")
                #expect(ack["id"]?.stringValue == "h\(index)")
            }
            let close = try await client.nextFrame()
            #expect(close.opcode == TestFrame.close)
            #expect(close.closeCode == 1002)
            // Then TCP closes, with nothing (no ack of "late") after the Close frame.
            await #expect(throws: TestClientError.self) { try await client.nextFrame() }
        }
    }

    @Test func clientThatNeverAnswersPingsIsClosed() async throws {
        var configuration = SwitchboardConfiguration()
        // A pong timeout long enough for a live client on a loaded machine (two builds beside the
        // tests, say) to answer in time: only the silent one may be closed.
        configuration.pingInterval = .milliseconds(250)
        // 4 s: a CI run that had 500 example viewers, browsers and schemathesis beside this test
        // kept the live client's answers back for over 2 s.
        configuration.pongTimeout = .seconds(4)
        try await TestServers.with(configuration: configuration) { server in
            // A live client on the same server answers every ping, meanwhile, and stays open. It
            // connects first, so that it is there for the silent one's whole pong timeout however
            // long a handshake takes on a loaded machine.
            let live = try await server.open("live")
            let silent = try await server.open("silent")
            silent.autoPong = false
            let silentClosed = TestLockedBox(false)
            let answering = Task {
                var answered = 0
                while !silentClosed.withLock({ $0 }) {
                    let frame = try await live.nextFrame(timeout: .seconds(20))
                    if frame.opcode == 0x9 {
                        try await live.pong(frame.payload)
                        answered += 1
                    }
                }
                return answered
            }
            let close: (code: UInt16?, reason: String)
            do {
                close = try await silent.expectClose(timeout: .seconds(20))
            } catch {
                answering.cancel()
                throw error
            }
            silentClosed.withLock { $0 = true }
            let answered = try await answering.value
            #expect(close.code == 4000)
            #expect(answered >= 3, "the live client saw pings all along")
            // By now `live` has been connected longer than the pong timeout; it still works.
            try await live.sendText(#"{"event":"presence.heartbeat","id":"alive"}"#)
            #expect(try await live.next(event: "ack")["id"]?.stringValue == "alive")
            await live.close()
        }
    }

    @Test func expiredTokenClosesWith4001() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.pingInterval = .milliseconds(200)
        try await TestServers.with(configuration: configuration) { server in
            let token = try await server.token("alice", ttl: .seconds(1))
            let client = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=\(token)")
            let close = try await client.expectClose(timeout: .seconds(10))
            #expect(close.code == 4001)
        }
    }

    @Test func clientCloseIsEchoedAndTCPClosed() async throws {
        try await TestServers.with { server in
            let client = try await server.open("alice")
            try await client.sendClose(code: 4321, reason: "bye")
            #expect(try await client.expectClose().code == 4321)
            try await server.waitForConnections(0)
        }
    }
}
