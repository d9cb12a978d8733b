import NIOCore

/// What the server decided about a WebSocket handshake, before any upgrade.
public enum HandshakeDecision: Sendable {
    case accept(AcceptedHandshake)
    case reject(HandshakeRejection)
}

/// A handshake that passed every check. It holds one of the user's connection slots: pass it to
/// ``SwitchboardServer/install(_:on:)`` once upgraded, or to ``SwitchboardServer/abandon(_:)`` if the
/// upgrade does not happen, so the slot is given back.
public struct AcceptedHandshake: Sendable {
    /// The authenticated user.
    public let user: AuthenticatedUser
    /// Rooms to join on connect: from the membership store and the rooms claim.
    public let rooms: [String]
    /// The request path and query with any token redacted, for logs.
    public let redactedURI: String
    /// The connection slot it holds (none without authentication or for a check).
    let slot: ConnectionSlot?
    /// The permessage-deflate offer accepted, if the server compresses and the client offered it.
    var deflate: DeflateParameters? = nil

    /// Headers the upgrade response must carry besides NIO's: `Sec-WebSocket-Extensions` when
    /// permessage-deflate was negotiated. An integration that builds its own upgrade adds them.
    public var responseHeaders: [(name: String, value: String)] {
        deflate.map { [("Sec-WebSocket-Extensions", $0.responseHeader)] } ?? []
    }
}
