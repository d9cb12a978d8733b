import Foundation
import NIOCore
import Testing
@testable import Switchboard

@Suite("Routing: envelopes, validation, acks, errors")
struct RoutingTests {
    struct Order: Codable, Sendable, ValidatablePayload {
        let item: String
        let quantity: Int

        func validate() throws {
            guard (1...10).contains(quantity) else { throw PayloadValidationError("quantity: 1 to 10") }
        }
    }

    struct Boom: Error {}

    static var router: EventRouter {
        var router = EventRouter.chat
        router.on("order.place", as: Order.self) { order, context in
            ["item": order.item, "user": context.user.id, "count": "\(order.quantity)"]
        }
        router.on("fail.generic", as: EmptyPayload.self) { _, _ in
            throw Boom()
        }
        router.on("fail.custom", as: EmptyPayload.self) { _, _ in
            throw EventError(code: "out_of_stock", message: "no more widgets")
        }
        router.on("fire.and.forget", as: EmptyPayload.self) { _, _ in }
        router.onBinary("file.upload", as: [String: String].self) { meta, bytes, _ in
            ["name": meta["name"] ?? "", "bytes": "\(bytes.readableBytes)", "last": "\(bytes.getInteger(at: bytes.writerIndex - 1, as: UInt8.self) ?? 0)"]
        }
        return router
    }

    static func expectError(_ client: TestWebSocketClient, send text: String, code: String, id: String? = nil, messageContains: String? = nil) async throws {
        try await client.sendText(text)
        let reply = try await client.next(event: "error")
        #expect(reply["data"]?["code"]?.stringValue == code, "reply to \(text): \(reply)")
        #expect(reply["id"]?.stringValue == id)
        if let messageContains {
            #expect(reply["data"]?["message"]?.stringValue?.contains(messageContains) == true, "\(reply)")
        }
    }

    @Test func everyValidationErrorHasItsCodeAndTheConnectionStaysOpen() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.maxInvalidMessages = 100
        try await TestServers.with(configuration: configuration, router: Self.router) { server in
            let client = try await server.open("alice")
            try await Self.expectError(client, send: "{not json", code: "bad_json")
            try await Self.expectError(client, send: #"{"data":{}}"#, code: "bad_envelope", messageContains: "event")
            try await Self.expectError(client, send: #"{"event":42}"#, code: "bad_envelope")
            try await Self.expectError(client, send: #"[1,2,3]"#, code: "bad_envelope")
            try await Self.expectError(client, send: #"{"event":"x","id":7}"#, code: "bad_envelope")
            try await Self.expectError(client, send: #"{"event":"nope","id":"u1"}"#, code: "unknown_event", id: "u1")
            try await Self.expectError(client, send: #"{"event":"order.place","data":{"item":"widget"},"id":"p1"}"#, code: "invalid_payload", id: "p1", messageContains: "data.quantity is required")
            try await Self.expectError(client, send: #"{"event":"order.place","data":{"item":"widget","quantity":"two"},"id":"p2"}"#, code: "invalid_payload", id: "p2", messageContains: "data.quantity")
            try await Self.expectError(client, send: #"{"event":"order.place","data":{"item":"widget","quantity":99},"id":"p3"}"#, code: "validation_failed", id: "p3", messageContains: "quantity")
            try await Self.expectError(client, send: #"{"event":"message.send","data":{"room":"","content":"x"},"id":"m1"}"#, code: "validation_failed", id: "m1", messageContains: "room")
            try await Self.expectError(client, send: #"{"event":"message.send","data":{"room":"lobby","content":"x"},"id":"m2"}"#, code: "forbidden", id: "m2")
            try await Self.expectError(client, send: #"{"event":"fail.generic","id":"f1"}"#, code: "handler_error", id: "f1")
            try await Self.expectError(client, send: #"{"event":"fail.custom","id":"f2"}"#, code: "out_of_stock", id: "f2", messageContains: "widgets")

            // Still open, and a valid message is acked with the handler's result.
            try await client.sendText(#"{"event":"order.place","data":{"item":"widget","quantity":2},"id":"ok"}"#)
            let ack = try await client.next(event: "ack")
            #expect(ack["id"]?.stringValue == "ok")
            #expect(ack["data"]?["user"]?.stringValue == "alice")
            #expect(ack["data"]?["count"]?.stringValue == "2")

            // A handler without a result: an ack without data; without an id: no ack at all.
            try await client.sendText(#"{"event":"fire.and.forget","id":"ff"}"#)
            let bare = try await client.next(event: "ack")
            #expect(bare["id"]?.stringValue == "ff" && bare["data"] == nil)
            try await client.sendText(#"{"event":"fire.and.forget"}"#)
            try await client.sendText(#"{"event":"presence.heartbeat","id":"hb"}"#)
            #expect(try await client.nextJSON()["id"]?.stringValue == "hb")
            await client.close()
        }
    }

    @Test func garbageSenderIsClosedWith1008() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.maxInvalidMessages = 3
        try await TestServers.with(configuration: configuration) { server in
            let client = try await server.open("alice")
            for _ in 0..<3 { try await client.sendText("garbage") }
            let close = try await client.expectClose()
            #expect(close.code == 1008)
        }
    }

    @Test func binaryEnvelopeReachesItsHandlerWithRawBytes() async throws {
        try await TestServers.with(router: Self.router) { server in
            let client = try await server.open("alice")
            let header = Array(#"{"event":"file.upload","id":"b1","data":{"name":"cat.png"}}"#.utf8)
            let payload: [UInt8] = (0..<40_000).map { UInt8(truncatingIfNeeded: $0) }
            var frame: [UInt8] = withUnsafeBytes(of: UInt32(header.count).bigEndian, Array.init)
            frame += header + payload
            try await client.sendBinary(frame)
            let ack = try await client.next(event: "ack")
            #expect(ack["id"]?.stringValue == "b1")
            #expect(ack["data"]?["bytes"]?.stringValue == "40000")
            #expect(ack["data"]?["name"]?.stringValue == "cat.png")
            #expect(ack["data"]?["last"]?.stringValue == "\(UInt8(truncatingIfNeeded: 39_999))")

            try await client.sendBinary([0, 0, 0, 200, 1, 2])
            #expect(try await client.next(event: "error")["data"]?["code"]?.stringValue == "bad_binary_envelope")
            await client.close()
        }
    }

    @Test func serverSendsBinaryEnvelopes() async throws {
        var router = EventRouter.chat
        router.on("file.get", as: EmptyPayload.self) { _, context in
            try context.socket.sendBinary(event: "file.data", data: ["name": "blob"], payload: ByteBuffer(bytes: [9, 8, 7]))
        }
        try await TestServers.with(router: router) { server in
            let client = try await server.open("alice")
            try await client.sendText(#"{"event":"file.get"}"#)
            var frame = try await client.nextMessage()
            while frame.opcode != 2 { frame = try await client.nextMessage() }
            let length = Int(UInt32(frame.payload[0]) << 24 | UInt32(frame.payload[1]) << 16 | UInt32(frame.payload[2]) << 8 | UInt32(frame.payload[3]))
            let header = try JSONDecoder().decode(JSONValue.self, from: Data(frame.payload[4..<(4 + length)]))
            #expect(header["event"]?.stringValue == "file.data")
            #expect(header["data"]?["name"]?.stringValue == "blob")
            #expect(Array(frame.payload[(4 + length)...]) == [9, 8, 7])
            await client.close()
        }
    }
}
