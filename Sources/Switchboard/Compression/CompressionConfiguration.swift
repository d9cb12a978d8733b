/// Settings of permessage-deflate (RFC 7692), the WebSocket compression browsers offer by
/// default. Off unless ``SwitchboardConfiguration/compression`` is set.
///
/// The server always answers an offer with `server_no_context_takeover` and
/// `client_no_context_takeover`: every message is compressed on its own, so a connection holds no
/// compression state (zlib's is about 300 KiB a stream), a broadcast is compressed once for all
/// its recipients on an event loop, and the inflater one loop shares with its connections is reset
/// for each message. A compressed message that inflates beyond
/// ``SwitchboardConfiguration/maxMessageSize`` closes its connection with 1009 before more than
/// that much is allocated for it.
public struct CompressionConfiguration: Sendable, Equatable {
    /// Messages whose payload is shorter than this, in bytes, go out uncompressed: below a few
    /// hundred bytes deflate saves little and costs as much CPU as the rest of the delivery. A
    /// message that does not get smaller also goes out uncompressed. Default 256; at least 1.
    public var threshold: Int
    /// zlib's compression level, 1 (fastest) to 9 (smallest). Default 1, as Centrifugo's and
    /// Gorilla's defaults: JSON compresses well at it, and each level up costs more CPU per
    /// broadcast than it saves in bytes.
    public var level: Int

    public init(threshold: Int = 256, level: Int = 1) {
        self.threshold = max(1, threshold)
        self.level = min(9, max(1, level))
    }

    /// The largest compressed message (on the wire) accepted for a message limit of
    /// `maxMessageSize`: the limit plus the most deflate can add to incompressible data (zlib's
    /// `deflateBound` is about 0.03 % plus a few bytes), rounded up generously.
    static func compressedLimit(maxMessageSize: Int) -> Int {
        maxMessageSize + maxMessageSize / 256 + 64
    }
}
