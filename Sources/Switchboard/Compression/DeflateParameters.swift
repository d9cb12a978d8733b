/// What a connection agreed to in its permessage-deflate negotiation (RFC 7692).
struct DeflateParameters: Sendable, Equatable {
    /// The LZ77 window the server compresses with, as a base-two logarithm (9...15): 15 unless the
    /// client asked for less with `server_max_window_bits`.
    var serverWindowBits: UInt8
    /// Whether the client named `server_max_window_bits`, which the response must then repeat.
    var windowBitsRequested: Bool

    /// The `Sec-WebSocket-Extensions` value of the upgrade response.
    var responseHeader: String {
        var header = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        if windowBitsRequested { header += "; server_max_window_bits=\(serverWindowBits)" }
        return header
    }
}
