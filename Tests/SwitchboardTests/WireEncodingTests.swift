import Foundation
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import Switchboard

/// The hand-written encoders of the message path, checked against Foundation and NIO.
@Suite("Wire encoding")
struct WireEncodingTests {
    @Test("writeJSONString: what JSONSerialization reads back is the string written, escapes included")
    func jsonStringRoundTrips() throws {
        let samples = [
            "", "plain", "ts=1764000000000000000 " + String(repeating: "x", count: 100), "quote \" and \\ back",
            "line\nbreak\ttab\r", "nul\u{0} bell\u{7} esc\u{1B} us\u{1F}", "é ü 中文 🎉", "\u{7F} del", "/slash/",
        ]
        for sample in samples {
            var buffer = ByteBuffer()
            buffer.writeJSONString(sample)
            let text = try #require(buffer.getString(at: 0, length: buffer.readableBytes))
            let decoded = try JSONSerialization.jsonObject(with: Data("[\(text)]".utf8)) as? [String]
            #expect(decoded == [sample], "\(text)")
            #expect(!text.utf8.contains(where: { $0 < 0x20 }), "raw control byte in \(text)")
        }
    }

    @Test(
        "a publication's envelope around a position, framed by BrokerEvent.frame(envelope:), is the frame it has at that position",
        arguments: [
            Publication(room: "chat:1", event: "message.new", dataJSON: ByteBuffer(string: #"{"content":"hi \"you\""}"#)),
            Publication(room: "r\"oom", event: "ping", dataJSON: nil),
            Publication(room: "big", event: "blob", dataJSON: ByteBuffer(string: "\"" + String(repeating: "x", count: 70_000) + "\"")),
        ])
    func envelopeAroundPosition(_ publication: Publication) {
        let position = EventID(epoch: "lq2x8kf3a", offset: 12345)
        var (prefix, suffix) = publication.envelopeAroundPosition()
        var envelope = prefix
        envelope.writeString(position.description)
        envelope.writeBuffer(&suffix)
        let framed = BrokerEvent.frame(envelope: envelope.readableBytesView)
        #expect(framed == publication.frame(at: position))
        let ephemeral = publication.envelopeWithoutPosition()
        #expect(BrokerEvent.frame(envelope: ephemeral.readableBytesView) == publication.frame(at: nil))
    }

    @Test("writeJSONInteger: the same digits as String(describing:)")
    func integers() {
        let signed: [Int64] = [0, 1, -1, 9, 10, 99, 100, 1_764_000_000_000, -1_764_000_000_000, .max, .min]
        for value in signed {
            var buffer = ByteBuffer(string: "x")
            buffer.writeJSONInteger(value)
            #expect(buffer.getString(at: 0, length: buffer.readableBytes) == "x\(value)")
        }
        let unsigned: [UInt64] = [0, 7, 10, 12_345, .max]
        for value in unsigned {
            var buffer = ByteBuffer()
            buffer.writeJSONInteger(value)
            #expect(buffer.getString(at: 0, length: buffer.readableBytes) == "\(value)")
        }
    }

    @Test("unmaskedPayload equals NIO's unmaskedData for every length from 0 to 40 and for fragments")
    func unmasking() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...40 {
            for _ in 0..<8 {
                let key = WebSocketMaskingKey((0..<4).map { _ in UInt8.random(in: 0...255, using: &generator) })!
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                // A slice that does not start at 0, as the decoder's frames are.
                var backing = ByteBuffer(bytes: [0xAA, 0xBB, 0xCC] + bytes)
                backing.moveReaderIndex(forwardBy: 3)
                let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: key, data: backing)
                #expect(frame.unmaskedPayload == frame.unmaskedData, "length \(length)")
                var appended = ByteBuffer(bytes: [1, 2, 3])
                frame.appendUnmaskedPayload(to: &appended)
                var expected = ByteBuffer(bytes: [1, 2, 3])
                var unmasked = frame.unmaskedData
                expected.writeBuffer(&unmasked)
                #expect(appended == expected, "length \(length)")
            }
        }
    }

    @Test("message.send content: at most 4000 characters, however many bytes they take")
    func contentLength() throws {
        let atLimit = ChatMessage(room: "r", content: String(repeating: "é", count: ChatMessage.maxContentLength))
        #expect(atLimit.content.utf8.count > ChatMessage.maxContentLength)
        try atLimit.validate()
        let emoji = ChatMessage(room: "r", content: String(repeating: "👩‍👩‍👧", count: ChatMessage.maxContentLength))
        try emoji.validate()
        let over = ChatMessage(room: "r", content: String(repeating: "a", count: ChatMessage.maxContentLength + 1))
        #expect(throws: PayloadValidationError.self) { try over.validate() }
        let overWide = ChatMessage(room: "r", content: String(repeating: "é", count: ChatMessage.maxContentLength + 1))
        #expect(throws: PayloadValidationError.self) { try overWide.validate() }
    }

    @Test("pending frames: one turn's frames reach NIO in order, small ones in one buffer, large ones as they are")
    func pendingFramesKeepOrder() throws {
        final class Probe: ChannelOutboundHandler {
            typealias OutboundIn = ByteBuffer
        }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(Probe())
        let writer = try channel.pipeline.syncOperations.context(handlerType: Probe.self)
        func frame(_ byte: UInt8, _ count: Int) -> ByteBuffer { ByteBuffer(bytes: [UInt8](repeating: byte, count: count)) }
        let small1 = frame(1, 100), small2 = frame(2, 100), small3 = frame(3, 50)
        let large = frame(4, PendingFrames.largestCopied + 1)
        let cases: [(frames: [ByteBuffer], writes: Int)] = [
            ([small1], 1),
            ([small1, small2, small3], 1),
            ([small1, small2, large, small3], 3),
            ([large, small1], 2),
        ]
        for (frames, writes) in cases {
            var pending = PendingFrames.none
            for frame in frames { pending.append(frame, writer: writer) }
            pending.flush(to: writer)
            var received: [ByteBuffer] = []
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { received.append(buffer) }
            #expect(received.count == writes)
            var expected = ByteBuffer(), actual = ByteBuffer()
            for frame in frames { expected.writeImmutableBuffer(frame) }
            for buffer in received { actual.writeImmutableBuffer(buffer) }
            #expect(actual == expected)
        }
        _ = try channel.finish()
    }
}
