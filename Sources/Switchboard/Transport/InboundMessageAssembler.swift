import NIOCore
import NIOWebSocket

/// Checks each inbound frame against RFC 6455 and reassembles fragmented messages, with limits.
/// Pure state, no I/O, so the rules can be read (and tested) apart from the channel handler.
///
/// NIO's `NIOWebSocketFrameAggregator` is not used because it unmasks and merges continuation
/// frames before a later handler could check their mask and reserved bits, and it passes reserved
/// opcodes on as if they were control frames; doing the checks in front of it would cost another
/// handler per connection.
struct InboundMessageAssembler {
    enum Output {
        /// Nothing to do yet (a fragment was buffered).
        case none
        /// A complete text or binary message, unmasked; `compressed` when its first frame had RSV1
        /// set on a connection that negotiated permessage-deflate (it is still to be inflated).
        case message(WebSocketOpcode, ByteBuffer, compressed: Bool)
        /// A ping, pong or close frame, unmasked.
        case control(WebSocketOpcode, ByteBuffer)
        /// The frame breaks the protocol or a limit: close with `code`.
        case failure(code: UInt16, reason: String)
    }

    private var partialOpcode: WebSocketOpcode?
    private var partial: ByteBuffer?
    private var fragments: Int = 0
    private var partialCompressed = false

    /// Whether a fragmented message is being reassembled.
    var isAssembling: Bool { partial != nil }

    /// Takes the next frame. `deflate`: the connection negotiated permessage-deflate, which gives
    /// RSV1 a meaning on the first frame of a data message (RFC 7692 §6.1) and nowhere else.
    mutating func receive(_ frame: WebSocketFrame, maxMessageSize: Int, maxFragments: Int, deflate: Bool = false) -> Output {
        guard frame.maskKey != nil else {
            return .failure(code: CloseCode.protocolError, reason: "client frames must be masked")
        }
        let opcode = frame.opcode
        var compressed = false
        if !frame.reservedBits.isEmpty {
            guard deflate, frame.reservedBits == .rsv1 else {
                return .failure(code: CloseCode.protocolError, reason: "reserved bits set without an extension")
            }
            guard opcode == .text || opcode == .binary else {
                return .failure(code: CloseCode.protocolError, reason: "RSV1 set on a frame that is not the first of a message")
            }
            compressed = true
        }
        switch opcode {
        case .connectionClose, .ping, .pong:
            // NIO's decoder has already enforced the control-frame length and FIN rules.
            return .control(opcode, frame.unmaskedPayload)
        case .text, .binary:
            guard partial == nil else {
                return .failure(code: CloseCode.protocolError, reason: "new message before the previous one finished")
            }
            // With compression on, the frame decoder lets frames a little past the limit through
            // (a compressed message may be larger than its text): an uncompressed one is held to it
            // here, a compressed one when it is inflated.
            guard frame.length <= (compressed ? CompressionConfiguration.compressedLimit(maxMessageSize: maxMessageSize) : maxMessageSize) else {
                return .failure(code: CloseCode.messageTooBig, reason: "message larger than \(maxMessageSize) bytes")
            }
            if frame.fin {
                return .message(opcode, frame.unmaskedPayload, compressed: compressed)
            }
            guard maxFragments > 1 else {
                return .failure(code: CloseCode.messageTooBig, reason: "too many fragments")
            }
            partialOpcode = opcode
            partial = frame.unmaskedPayload
            partialCompressed = compressed
            fragments = 1
            return .none
        case .continuation:
            guard var buffer = partial, let messageOpcode = partialOpcode else {
                return .failure(code: CloseCode.protocolError, reason: "continuation frame without a message")
            }
            let limit = partialCompressed ? CompressionConfiguration.compressedLimit(maxMessageSize: maxMessageSize) : maxMessageSize
            guard buffer.readableBytes + frame.length <= limit else {
                reset()
                return .failure(code: CloseCode.messageTooBig, reason: "message larger than \(maxMessageSize) bytes")
            }
            guard fragments < maxFragments else {
                reset()
                return .failure(code: CloseCode.messageTooBig, reason: "too many fragments")
            }
            // Drop our reference first so the append below does not copy the buffer.
            partial = nil
            frame.appendUnmaskedPayload(to: &buffer)
            fragments += 1
            if frame.fin {
                let wasCompressed = partialCompressed
                reset()
                return .message(messageOpcode, buffer, compressed: wasCompressed)
            }
            partial = buffer
            return .none
        default:
            return .failure(code: CloseCode.protocolError, reason: "reserved opcode")
        }
    }

    private mutating func reset() {
        partialOpcode = nil
        partial = nil
        fragments = 0
        partialCompressed = false
    }
}
