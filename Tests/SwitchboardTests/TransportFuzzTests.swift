import NIOCore
import NIOWebSocket
import PropertyBased
import Testing

@testable import Switchboard

/// The frame assembler, the unmasking and the UTF-8 check against simple reference models, on
/// random frame sequences and byte strings (bounded counts, so that they run in CI; `Fuzz/` has
/// the libFuzzer targets for long runs).
@Suite("Transport: property tests against reference models")
struct TransportFuzzTests {
    // MARK: Unmasking

    @Test("unmasking: any payload, key and buffer offset gives the byte-by-byte XOR, alone and appended")
    func unmasking() async {
        let choices = Gen<UInt64>.value(in: 0...UInt64.max).array(of: 0...80)
        await propertyCheck(count: 2000, input: choices) { tape in
            var source = ChoiceTape(tape)
            let payload = (0..<Int.random(in: 0...70, using: &source)).map { _ in UInt8.random(in: 0...255, using: &source) }
            let key = (0..<4).map { _ in UInt8.random(in: 0...255, using: &source) }
            let offset = Int.random(in: 0...9, using: &source)
            let frame = Self.maskedFrame(opcode: .binary, fin: true, payload: payload, key: key, offset: offset)
            #expect(Array(buffer: frame.unmaskedPayload) == payload)
            let prefix = (0..<Int.random(in: 0...9, using: &source)).map { _ in UInt8.random(in: 0...255, using: &source) }
            var target = ByteBuffer(bytes: prefix)
            frame.appendUnmaskedPayload(to: &target)
            #expect(Array(buffer: target) == prefix + payload)
        }
    }

    // MARK: UTF-8

    @Test("UTF-8: byte strings built from valid and broken sequences at every alignment are judged as RFC 3629 does")
    func utf8() async {
        let choices = Gen<UInt64>.value(in: 0...UInt64.max).array(of: 0...60)
        await propertyCheck(count: 4000, input: choices) { tape in
            var source = ChoiceTape(tape)
            var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: Int.random(in: 0...17, using: &source))
            for _ in 0..<Int.random(in: 0...6, using: &source) {
                bytes += Self.utf8Pieces.randomElement(using: &source) ?? []
                bytes += [UInt8](repeating: UInt8(ascii: "{"), count: Int.random(in: 0...9, using: &source))
            }
            let offset = Int.random(in: 0...7, using: &source)
            var buffer = ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: offset) + bytes)
            buffer.moveReaderIndex(forwardBy: offset)
            #expect(buffer.isValidUTF8 == referenceIsValidUTF8(bytes), "\(bytes)")
        }
    }

    @Test("UTF-8: arbitrary bytes")
    func utf8ArbitraryBytes() async {
        await propertyCheck(count: 3000, input: Gen<UInt8>.uint8().array(of: 0...40)) { bytes in
            #expect(ByteBuffer(bytes: bytes).isValidUTF8 == referenceIsValidUTF8(bytes), "\(bytes)")
        }
    }

    /// Valid sequences at the edges of each length, and the classic invalid ones: lone and
    /// surplus continuation bytes, overlong forms, surrogates, past U+10FFFF, truncated sequences.
    static let utf8Pieces: [[UInt8]] = [
        [0x00], [0x7F], [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF],
        [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], Array("é😀€".utf8),
        [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],
        [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xF8], [0xFE], [0xFF],
        [0xC2], [0xE0, 0xA0], [0xF0, 0x90, 0x80], [0xC2, 0xC2, 0x80], [0xE2, 0x82], [0xE2, 0x28, 0xA1],
    ]

    // MARK: The assembler

    @Test("assembler: random frame sequences (fragments, control frames between them, unmasked, reserved bits and opcodes) give what the reference model gives, until the first failure")
    func assembler() async {
        let choices = Gen<UInt64>.value(in: 0...UInt64.max).array(of: 0...200)
        await propertyCheck(count: 3000, input: choices) { tape in
            var source = ChoiceTape(tape)
            let maxMessageSize = Int.random(in: 1...64, using: &source)
            let maxFragments = Int.random(in: 1...6, using: &source)
            // Half the sequences on a connection that negotiated permessage-deflate.
            let deflate = Bool.random(using: &source)
            var assembler = InboundMessageAssembler()
            var model = ReferenceAssembler()
            var trace: [String] = []
            for _ in 0..<Int.random(in: 1...24, using: &source) {
                // Mostly what a client sends (data and continuation frames, pings), sometimes not.
                let opcode: UInt8 = [0x0, 0x0, 0x0, 0x1, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3, 0xB, 0xF].randomElement(using: &source) ?? 0
                let isControl = opcode >= 0x8
                // The decoder before the assembler enforces FIN on control frames, their 125-byte
                // limit and the frame size limit (RFC 6455 5.5, `maxMessageSize` per frame).
                let fin = isControl ? true : Bool.random(using: &source)
                // With compression on, the decoder lets frames a little past the limit through.
                let length = Int.random(in: 0...(isControl ? 20 : ReferenceAssembler.frameLimit(maxMessageSize: maxMessageSize, deflate: deflate)), using: &source)
                let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &source) }
                let masked = Int.random(in: 0..<40, using: &source) != 0
                let rsv: UInt8 =
                    Int.random(in: 0..<(deflate ? 4 : 40), using: &source) == 0 ? [0x1, 0x2, 0x4, 0x4, 0x4, 0x6].randomElement(using: &source) ?? 0x4 : 0
                let key = (0..<4).map { _ in UInt8.random(in: 0...255, using: &source) }
                let frame = Self.frame(opcode: opcode, fin: fin, rsv: rsv, payload: payload, key: masked ? key : nil)
                let actual = AssemblerOutcome(assembler.receive(frame, maxMessageSize: maxMessageSize, maxFragments: maxFragments, deflate: deflate))
                let expected = model.receive(
                    opcode: opcode, fin: fin, rsv: rsv, masked: masked, payload: payload, maxMessageSize: maxMessageSize, maxFragments: maxFragments,
                    deflate: deflate)
                trace.append("deflate \(deflate) op \(opcode) fin \(fin) rsv \(rsv) masked \(masked) \(length) bytes → \(expected)")
                #expect(actual == expected, "max \(maxMessageSize) bytes, \(maxFragments) fragments: \(trace.joined(separator: "; "))")
                #expect(assembler.isAssembling == (model.partial != nil))
                // The connection closes at the first failure: nothing follows it.
                if case .failure = expected { break }
                if actual != expected { break }
            }
        }
    }

    /// A frame as NIO's decoder hands it over: masked data in a slice that may not start at 0.
    static func frame(opcode: UInt8, fin: Bool, rsv: UInt8, payload: [UInt8], key: [UInt8]?, offset: Int = 3) -> WebSocketFrame {
        let wire = key.map { key in payload.enumerated().map { $0.element ^ key[$0.offset % 4] } } ?? payload
        var backing = ByteBuffer(bytes: [UInt8](repeating: 0xEE, count: offset) + wire)
        backing.moveReaderIndex(forwardBy: offset)
        return WebSocketFrame(
            fin: fin, rsv1: rsv & 0x4 != 0, rsv2: rsv & 0x2 != 0, rsv3: rsv & 0x1 != 0,
            opcode: WebSocketOpcode(encodedWebSocketOpcode: opcode) ?? .continuation,
            maskKey: key.flatMap(WebSocketMaskingKey.init), data: backing)
    }

    static func maskedFrame(opcode: WebSocketOpcode, fin: Bool, payload: [UInt8], key: [UInt8], offset: Int) -> WebSocketFrame {
        frame(opcode: UInt8(webSocketOpcode: opcode), fin: fin, rsv: 0, payload: payload, key: key, offset: offset)
    }
}
