import NIOCore
import NIOWebSocket

// libFuzzer target (main.swift starts the driver): the input is a sequence of frames, each as
//   [flags: FIN 0x80, RSV 0x70, unmasked 0x08 | opcode in the low bits 0x87 masked off ...]
// see `nextFrame`. They go through `InboundMessageAssembler` and, beside it, the reference model of
// RFC 6455 5.2-5.5, RFC 7692 6.1 and the server's limits (`ReferenceAssembler`, shared with the
// property tests); unmasking is checked against a byte-wise XOR and the UTF-8 check of every text
// message against RFC 3629's table. Any difference is a crash. The first byte sets the limits, and
// its 0x40 bit whether the connection negotiated permessage-deflate.

func fuzzFrames(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = Array(UnsafeBufferPointer(start: data, count: size))[...]
    guard let limits = input.popFirst() else { return 0 }
    let maxMessageSize = Int(limits & 0x3F) + 1
    let deflate = limits & 0x40 != 0
    let maxFragments = Int(limits >> 7) * 3 + 1
    var assembler = InboundMessageAssembler()
    var model = ReferenceAssembler()
    while let frame = nextFrame(&input, frameLimit: ReferenceAssembler.frameLimit(maxMessageSize: maxMessageSize, deflate: deflate)) {
        let actual = AssemblerOutcome(assembler.receive(frame.frame, maxMessageSize: maxMessageSize, maxFragments: maxFragments, deflate: deflate))
        let expected = model.receive(
            opcode: frame.opcode, fin: frame.fin, rsv: frame.rsv, masked: frame.masked, payload: frame.payload, maxMessageSize: maxMessageSize,
            maxFragments: maxFragments, deflate: deflate)
        precondition(actual == expected, "assembler \(actual), model \(expected)")
        precondition(assembler.isAssembling == (model.partial != nil))
        if case .message(0x1, let bytes, false) = actual {
            precondition(ByteBuffer(bytes: bytes).isValidUTF8 == referenceIsValidUTF8(bytes), "UTF-8 of \(bytes)")
        }
        if case .failure = expected { break }
    }
    // The UTF-8 check on the rest of the input, at any alignment.
    let rest = Array(input)
    for offset in 0..<min(8, rest.count + 1) {
        var buffer = ByteBuffer(bytes: rest)
        buffer.moveReaderIndex(forwardBy: offset)
        precondition(buffer.isValidUTF8 == referenceIsValidUTF8(Array(rest[offset...])), "UTF-8 of \(rest[offset...])")
    }
    return 0
}

struct FuzzFrame {
    var frame: WebSocketFrame
    var opcode: UInt8
    var fin: Bool
    var rsv: UInt8
    var masked: Bool
    var payload: [UInt8]
}

/// One frame from the input: a flags byte (FIN 0x80, RSV 0x70, opcode 0x0F), a length byte (the
/// payload length, at most 125 for control frames as the decoder enforces, and at most the
/// decoder's frame limit for data frames), a mask flag in the length byte's top bit (set: unmasked),
/// four key bytes for masked frames, then the payload.
func nextFrame(_ input: inout ArraySlice<UInt8>, frameLimit: Int) -> FuzzFrame? {
    guard input.count >= 2, let flags = input.popFirst(), let lengthByte = input.popFirst() else { return nil }
    let opcode = flags & 0x0F
    let isControl = opcode >= 0x8
    // The decoder in front of the assembler rejects fragmented control frames.
    let fin = isControl || flags & 0x80 != 0
    let rsv = (flags >> 4) & 0x7
    let masked = lengthByte & 0x80 == 0
    var key: [UInt8]?
    if masked {
        guard input.count >= 4 else { return nil }
        key = Array(input.prefix(4))
        input.removeFirst(4)
    }
    let length = min(Int(lengthByte & 0x7F), input.count, isControl ? 125 : frameLimit)
    let payload = Array(input.prefix(length))
    input.removeFirst(length)
    let wire = key.map { key in payload.enumerated().map { $0.element ^ key[$0.offset % 4] } } ?? payload
    var backing = ByteBuffer(bytes: [0xEE, 0xEE, 0xEE] + wire)
    backing.moveReaderIndex(forwardBy: 3)
    let frame = WebSocketFrame(
        fin: fin, rsv1: rsv & 0x4 != 0, rsv2: rsv & 0x2 != 0, rsv3: rsv & 0x1 != 0,
        opcode: WebSocketOpcode(encodedWebSocketOpcode: opcode) ?? .continuation,
        maskKey: key.flatMap(WebSocketMaskingKey.init), data: backing)
    if let key {
        precondition(Array(buffer: frame.unmaskedPayload) == payload, "unmasking with \(key)")
    }
    return FuzzFrame(frame: frame, opcode: opcode, fin: fin, rsv: rsv, masked: masked, payload: payload)
}
