import CompressNIO
import Foundation
import NIOCore
import Testing

@testable import Switchboard
@testable import SwitchboardClient

/// permessage-deflate (RFC 7692): the negotiation, the per-loop compressor and inflater, and
/// compressed traffic through a running server.
@Suite("Compression: permessage-deflate")
struct CompressionTests {
    static var compressing: SwitchboardConfiguration {
        var configuration = SwitchboardConfiguration()
        configuration.compression = CompressionConfiguration()
        configuration.presence = false
        return configuration
    }

    static let offer = ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")

    // MARK: negotiation

    @Test(
        "offers RFC 7692 allows are accepted, with the window asked for",
        arguments: [
            ("permessage-deflate", 15, false),
            ("permessage-deflate; client_max_window_bits", 15, false),
            ("permessage-deflate; client_max_window_bits=10; server_no_context_takeover", 15, false),
            ("permessage-deflate; server_max_window_bits=10", 10, true),
            ("permessage-deflate; server_max_window_bits=\"12\"", 12, true),
            ("PERMESSAGE-DEFLATE ; Server_Max_Window_Bits = 9", 9, true),
            ("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=11", 11, true),
        ])
    func acceptedOffers(offer: String, bits: Int, named: Bool) {
        let accepted = DeflateNegotiation.accept(offers: [offer])
        #expect(accepted == DeflateParameters(serverWindowBits: UInt8(bits), windowBitsRequested: named), "\(offer)")
        let header = accepted?.responseHeader ?? ""
        #expect(header.hasPrefix("permessage-deflate; server_no_context_takeover; client_no_context_takeover"))
        #expect(header.contains("server_max_window_bits=\(bits)") == named)
    }

    @Test(
        "offers RFC 7692 says to decline are declined",
        arguments: [
            "x-webkit-deflate-frame",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=+9",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; mystery",
            "",
        ])
    func declinedOffers(offer: String) {
        #expect(DeflateNegotiation.accept(offers: [offer]) == nil, "\(offer)")
    }

    @Test("offers split over several header lines are read in order")
    func severalHeaderLines() {
        let accepted = DeflateNegotiation.accept(offers: ["permessage-deflate; foo", "permessage-deflate; server_max_window_bits=13"])
        #expect(accepted?.serverWindowBits == 13)
    }

    // MARK: the loop's compressor and inflater

    static func textFrame(_ text: String) -> ByteBuffer {
        OutboundFrame.make(opcode: .text, payload: ByteBuffer(string: text), allocator: ByteBufferAllocator())
    }

    @Test("a frame compresses to a frame with RSV1 whose payload inflates on its own to the original")
    func compressRoundTrip() throws {
        let deflater = MessageDeflater(configuration: .init())
        let text = #"{"event":"message.new","room":"lobby","data":{"content":"\#(String(repeating: "hello world ", count: 200))"}}"#
        let frame = try #require(deflater.compressed(Self.textFrame(text), windowBits: 15, allocator: ByteBufferAllocator()))
        let first = try #require(frame.getInteger(at: frame.readerIndex, as: UInt8.self))
        #expect(first == 0xC1, "FIN, RSV1, text")
        let payload = Array(OutboundFrame.payload(of: frame).readableBytesView)
        #expect(payload.count < text.utf8.count / 5)
        #expect(try TestDeflate.inflate(payload) == Array(text.utf8))
        // And again: the stream is reset between messages (no context takeover).
        let again = try #require(deflater.compressed(Self.textFrame(text), windowBits: 15, allocator: ByteBufferAllocator()))
        #expect(try TestDeflate.inflate(Array(OutboundFrame.payload(of: again).readableBytesView)) == Array(text.utf8))
        #expect(deflater.framesCompressed == 2)
    }

    @Test("a small window is honoured: a 2^9-byte inflater reads what was compressed for it")
    func smallWindow() throws {
        let deflater = MessageDeflater(configuration: .init())
        let block = (0..<300).map { _ in "\(Int.random(in: 0...9))" }.joined()
        let text = block + block + block + block
        let frame = try #require(deflater.compressed(Self.textFrame(text), windowBits: 9, allocator: ByteBufferAllocator()))
        #expect(try TestDeflate.inflate(Array(OutboundFrame.payload(of: frame).readableBytesView), windowBits: 9) == Array(text.utf8))
    }

    @Test("below the threshold, or not smaller once compressed, a frame is left as it is")
    func leftUncompressed() {
        let deflater = MessageDeflater(configuration: .init(threshold: 256))
        #expect(deflater.compressed(Self.textFrame(String(repeating: "a", count: 255)), windowBits: 15, allocator: ByteBufferAllocator()) == nil)
        #expect(deflater.compressed(Self.textFrame(String(repeating: "a", count: 256)), windowBits: 15, allocator: ByteBufferAllocator()) != nil)
        var random = SplitMix64(seed: 7)
        let noise = ByteBuffer(bytes: (0..<4096).map { _ in UInt8(truncatingIfNeeded: random.next()) })
        let binary = OutboundFrame.make(opcode: .binary, payload: noise, allocator: ByteBufferAllocator())
        #expect(deflater.compressed(binary, windowBits: 15, allocator: ByteBufferAllocator()) == nil)
        #expect(deflater.framesCompressed == 1)
    }

    @Test("a compression bomb is refused within the limit; corrupt data is reported; a message of exactly the limit passes")
    func inflateLimits() throws {
        let deflater = MessageDeflater(configuration: .init())
        let limit = 64 * 1024
        // 60 MB of zeros: about 60 KB on the wire, under the frame limit.
        let bomb = try TestDeflate.compress([UInt8](repeating: 0, count: 60_000_000))
        #expect(bomb.count < limit)
        guard case .tooBig = deflater.inflate(ByteBuffer(bytes: bomb), limit: limit, allocator: ByteBufferAllocator()) else {
            Issue.record("a bomb was not refused")
            return
        }
        let exact = try TestDeflate.compress([UInt8](repeating: 65, count: limit))
        guard case .message(let inflated) = deflater.inflate(ByteBuffer(bytes: exact), limit: limit, allocator: ByteBufferAllocator()) else {
            Issue.record("a message of exactly the limit was refused")
            return
        }
        #expect(inflated.readableBytes == limit)
        let over = try TestDeflate.compress([UInt8](repeating: 65, count: limit + 1))
        guard case .tooBig = deflater.inflate(ByteBuffer(bytes: over), limit: limit, allocator: ByteBufferAllocator()) else {
            Issue.record("one byte over the limit was not refused")
            return
        }
        guard case .corrupt = deflater.inflate(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x42]), limit: limit, allocator: ByteBufferAllocator()) else {
            Issue.record("corrupt data was not reported")
            return
        }
        // The inflater is reset after a failure: the next message is read as usual.
        guard case .message(let after) = deflater.inflate(ByteBuffer(bytes: try TestDeflate.compress(Array("after".utf8))), limit: limit, allocator: ByteBufferAllocator()) else {
            Issue.record("the inflater did not recover")
            return
        }
        #expect(String(buffer: after) == "after")
    }

    // MARK: through a server

    @Test("the 101 names the extension only when the server compresses and the client offered it")
    func handshake() async throws {
        try await TestServers.with(configuration: Self.compressing) { server in
            let token = try await server.token("alice")
            let offered = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=\(token)", headers: [Self.offer])
            #expect(offered.handshakeResponse.header("Sec-WebSocket-Extensions") == "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
            let plain = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=\(token)")
            #expect(plain.handshakeResponse.header("Sec-WebSocket-Extensions") == nil)
            await offered.close()
            await plain.close()
        }
        try await TestServers.with(configuration: .init()) { server in
            let token = try await server.token("alice")
            let offered = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=\(token)", headers: [Self.offer])
            #expect(offered.handshakeResponse.header("Sec-WebSocket-Extensions") == nil, "compression is off by default")
            await offered.close()
        }
    }

    @Test("a broadcast is compressed once per event loop for all its compressing members; the others get it plain, and every member reads the same event")
    func broadcastCompressedOncePerLoop() async throws {
        try await TestServers.with(configuration: Self.compressing) { server in
            let token = try await server.token("member")
            var compressing: [TestWebSocketClient] = []
            for _ in 0..<4 {
                let client = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=\(token)", headers: [Self.offer])
                _ = try await TestServer.hello(client)
                _ = try await RoomTests.join(client, "feed")
                compressing.append(client)
            }
            let smallWindow = try await TestWebSocketClient.open(
                port: server.port, path: "/ws?token=\(try await server.token("small"))",
                headers: [("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=10")])
            #expect(smallWindow.handshakeResponse.header("Sec-WebSocket-Extensions")?.hasSuffix("server_max_window_bits=10") == true)
            _ = try await TestServer.hello(smallWindow)
            _ = try await RoomTests.join(smallWindow, "feed")
            let plain = try await server.open("plain")
            _ = try await RoomTests.join(plain, "feed")
            let before = await Self.framesCompressed(server.switchboard)

            let content = String(repeating: "the same words again and again ", count: 60)
            let sent = try await RoomTests.request(compressing[0], "message.send", #"{"room":"feed","content":"\#(content)"}"#)
            #expect(sent["event"]?.stringValue == "ack", "\(sent)")
            for client in compressing.dropFirst() + [smallWindow, plain] {
                let event = try await client.next(event: "message.new")
                #expect(event["data"]?["content"]?.stringValue == content)
                #expect(event["eid"] == sent["data"]?["eid"])
            }
            for client in compressing.dropFirst() { #expect(client.compressedMessagesReceived == 1) }
            #expect(smallWindow.compressedMessagesReceived == 1)
            #expect(plain.compressedMessagesReceived == 0)
            // One compressed form per loop with members for each window size (15 and 10), not
            // one per member.
            let loops = server.switchboard.allHubs.filter { $0.count > 0 }.count
            let made = await Self.framesCompressed(server.switchboard) - before
            #expect(made >= 2 && made <= 2 * loops, "\(made) compressions for 5 compressing members on \(loops) loops")
            // A short message goes uncompressed.
            _ = try await RoomTests.request(compressing[0], "message.send", #"{"room":"feed","content":"hi"}"#)
            #expect(try await compressing[1].next(event: "message.new")["data"]?["content"]?.stringValue == "hi")
            #expect(compressing[1].compressedMessagesReceived == 1)
            for client in compressing + [smallWindow, plain] { await client.close() }
        }
    }

    @Test("a client's compressed messages are inflated and handled; fragmented ones too")
    func compressedFromClient() async throws {
        try await TestServers.with(configuration: Self.compressing) { server in
            let token = try await server.token("alice")
            let alice = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=\(token)", headers: [Self.offer])
            try await alice.sendFrame(opcode: TestFrame.text, payload: try TestDeflate.compress(Array(#"{"event":"session.hello","id":"hello"}"#.utf8)), rsv: 4)
            _ = try await alice.next(event: "hello", field: "id")
            let join = try TestDeflate.compress(Array(#"{"event":"room.join","data":{"room":"lobby"},"id":"j"}"#.utf8))
            try await alice.sendFrame(fin: false, opcode: TestFrame.text, payload: Array(join.prefix(5)), rsv: 4)
            try await alice.sendFrame(fin: true, opcode: TestFrame.continuation, payload: Array(join.dropFirst(5)))
            let joined = try await alice.next(event: "j", field: "id")
            #expect(joined["event"]?.stringValue == "ack", "\(joined)")
            await alice.close()
        }
    }

    @Test(
        "bad compressed input closes the connection with its code, and the server goes on",
        arguments: [
            ("RSV1 on a continuation frame", 1002 as UInt16),
            ("RSV1 on a ping", 1002),
            ("not deflate data", 1007),
            ("a compression bomb", 1009),
            ("invalid UTF-8 once inflated", 1007),
        ])
    func badCompressedInput(kind: String, code: UInt16) async throws {
        var configuration = Self.compressing
        configuration.maxMessageSize = 64 * 1024
        try await TestServers.with(configuration: configuration) { server in
            let token = try await server.token("mallory")
            let client = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=\(token)", headers: [Self.offer])
            switch kind {
            case "RSV1 on a continuation frame":
                try await client.sendFrame(fin: false, opcode: TestFrame.text, payload: try TestDeflate.compress(Array("abc".utf8)), rsv: 4)
                try await client.sendFrame(fin: true, opcode: TestFrame.continuation, payload: [0], rsv: 4)
            case "RSV1 on a ping":
                try await client.sendFrame(opcode: TestFrame.ping, payload: [1], rsv: 4)
            case "not deflate data":
                try await client.sendFrame(opcode: TestFrame.text, payload: [0xFF, 0xFF, 0xFF, 0xFF, 0x00], rsv: 4)
            case "a compression bomb":
                try await client.sendFrame(opcode: TestFrame.binary, payload: try TestDeflate.compress([UInt8](repeating: 0, count: 50_000_000)), rsv: 4)
            default:
                try await client.sendFrame(opcode: TestFrame.text, payload: try TestDeflate.compress([0x7B, 0xC3, 0x28, 0x7D]), rsv: 4)
            }
            let closed = try await client.expectClose()
            #expect(closed.code == code, "\(kind): \(closed)")
            let next = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=\(token)", headers: [Self.offer])
            _ = try await TestServer.hello(next)
            await next.close()
        }
    }

    /// The frames the server's loops have compressed so far, read on each loop.
    static func framesCompressed(_ switchboard: SwitchboardServer) async -> Int {
        await deflaterCount(switchboard, \.framesCompressed)
    }

    /// The compressed messages the server's loops have inflated so far, read on each loop.
    static func messagesInflated(_ switchboard: SwitchboardServer) async -> Int {
        await deflaterCount(switchboard, \.messagesInflated)
    }

    private static func deflaterCount(_ switchboard: SwitchboardServer, _ count: KeyPath<MessageDeflater, Int> & Sendable) async -> Int {
        var total = 0
        for hub in switchboard.allHubs {
            total += (try? await hub.eventLoop.submit { hub.deflater?[keyPath: count] ?? 0 }.get()) ?? 0
        }
        return total
    }
}

@Suite("Compression: the Swift client", .serialized)
struct ClientCompressionTests {
    @Test("the Swift client offers permessage-deflate by default: large messages both ways travel compressed and arrive intact; with compression off none is compressed", arguments: [true, false])
    func swiftClient(compression: Bool) async throws {
        try await TestServers.with(configuration: CompressionTests.compressing) { server in
            let bob = try await server.open("bob")
            _ = try await RoomTests.join(bob, "lobby")
            var configuration = ClientTesting.fast
            configuration.compression = compression
            let client = SwitchboardClient(url: "ws://127.0.0.1:\(server.port)/ws", token: .fixed(try await ClientTesting.token("alice")), configuration: configuration)
            let alice = CollectedEvents(client)
            _ = try await client.join("lobby")
            let fromBob = "from bob" + String(repeating: " and more", count: 100)
            _ = try await ResumeTests.send(bob, "lobby", fromBob)
            try await alice.waitForContents([fromBob])
            let fromAlice = "from alice" + String(repeating: " and more", count: 100)
            _ = try await client.send("message.send", ClientChatPost(room: "lobby", content: fromAlice), as: ClientChatPosted.self)
            let event = try await bob.next(event: "message.new")
            #expect(event["data"]?["content"]?.stringValue == fromAlice)
            // Bob did not offer compression: any compressed frame was alice's.
            let compressed = await CompressionTests.framesCompressed(server.switchboard)
            #expect(compression ? compressed >= 1 : compressed == 0, "\(compressed)")
            let inflated = await CompressionTests.messagesInflated(server.switchboard)
            #expect(compression ? inflated >= 1 : inflated == 0, "\(inflated)")
            await client.close()
            await bob.close()
        }
    }
}
