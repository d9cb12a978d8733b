// Test support, shared with the libFuzzer target Fuzz/Sources/FuzzFrames (a symlink there): RFC
// 6455 5.2-5.5, RFC 7692 6.1 and the server's limits as a plain reference model of
// `InboundMessageAssembler`, and the assembler's output in the model's terms.

import NIOCore
import NIOWebSocket

#if canImport(Switchboard)
@testable import Switchboard
#endif

/// What a connection makes of one frame, in the model's terms.
enum AssemblerOutcome: Equatable {
    case none
    case message(UInt8, [UInt8], compressed: Bool)
    case control(UInt8, [UInt8])
    case failure(UInt16)

    init(_ output: InboundMessageAssembler.Output) {
        switch output {
        case .none: self = .none
        case .message(let opcode, let buffer, let compressed): self = .message(UInt8(webSocketOpcode: opcode), Array(buffer: buffer), compressed: compressed)
        case .control(let opcode, let buffer): self = .control(UInt8(webSocketOpcode: opcode), Array(buffer: buffer))
        case .failure(let code, _): self = .failure(code)
        }
    }
}

/// RFC 6455 5.2-5.5, RFC 7692 6.1 (RSV1 on a compressed message's first frame, where
/// permessage-deflate was negotiated) and the server's two limits, as plainly as they can be said.
/// A compressed message may be a little larger on the wire than the limit (deflate's worst case);
/// it is held to the limit once inflated, which is not the assembler's job.
struct ReferenceAssembler {
    var partial: (opcode: UInt8, bytes: [UInt8], fragments: Int, compressed: Bool)?

    /// The largest data frame the decoder lets through to the assembler.
    static func frameLimit(maxMessageSize: Int, deflate: Bool) -> Int {
        deflate ? CompressionConfiguration.compressedLimit(maxMessageSize: maxMessageSize) : maxMessageSize
    }

    mutating func receive(
        opcode: UInt8, fin: Bool, rsv: UInt8, masked: Bool, payload: [UInt8], maxMessageSize: Int, maxFragments: Int, deflate: Bool = false
    ) -> AssemblerOutcome {
        guard masked else { return .failure(1002) }
        let compressed = rsv == 0x4 && deflate && (opcode == 0x1 || opcode == 0x2)
        guard rsv == 0 || compressed else { return .failure(1002) }
        let wireLimit = Self.frameLimit(maxMessageSize: maxMessageSize, deflate: true)
        switch opcode {
        case 0x8, 0x9, 0xA:
            return .control(opcode, payload)
        case 0x1, 0x2:
            guard partial == nil else { return .failure(1002) }
            guard payload.count <= (compressed ? wireLimit : maxMessageSize) else { return .failure(1009) }
            if fin { return .message(opcode, payload, compressed: compressed) }
            guard maxFragments > 1 else { return .failure(1009) }
            partial = (opcode, payload, 1, compressed)
            return .none
        case 0x0:
            guard let current = partial else { return .failure(1002) }
            guard current.bytes.count + payload.count <= (current.compressed ? wireLimit : maxMessageSize), current.fragments < maxFragments else {
                partial = nil
                return .failure(1009)
            }
            if fin {
                partial = nil
                return .message(current.opcode, current.bytes + payload, compressed: current.compressed)
            }
            partial = (current.opcode, current.bytes + payload, current.fragments + 1, current.compressed)
            return .none
        default:
            return .failure(1002)
        }
    }
}
