/// Limits and timers of a Switchboard server. Every value has a production default.
public struct SwitchboardConfiguration: Sendable {
    /// Path of the WebSocket endpoint on the app's HTTP port. Default `/ws`.
    public var path: String
    /// Largest message accepted after reassembling fragments, in bytes; larger closes with 1009. Default 64 KiB.
    public var maxMessageSize: Int
    /// Most fragments one message may arrive in; more closes with 1009. Default 1024.
    public var maxFragments: Int
    /// How often the server pings an open connection. Default 30 s.
    public var pingInterval: Duration
    /// A connection that has sent nothing at all (no pong, no message) for this long is closed
    /// with ``CloseCode/heartbeatTimeout``. Default 90 s.
    public var pongTimeout: Duration
    /// When set, a connection that has sent no message (pings and pongs do not count) for this long
    /// is closed with ``CloseCode/idleTimeout``. Default `nil`: off.
    public var idleTimeout: Duration?
    /// A client must complete its HTTP upgrade request within this time, or the TCP connection is
    /// dropped (slow-loris defence). Default 10 s.
    public var handshakeTimeout: Duration
    /// The membership store and the connection-slot store must each answer a handshake within
    /// this time, or the handshake gets HTTP 503 `store_unavailable`. Default 5 s.
    public var handshakeStoreTimeout: Duration
    /// After the server sends a Close frame, how long it waits for the client's Close before it
    /// drops TCP. Default 5 s.
    public var closeTimeout: Duration
    /// Concurrent connections one user (token `sub`) may hold; the next handshake gets HTTP 429.
    /// Default 5.
    public var maxConnectionsPerUser: Int
    /// A connection whose invalid messages outnumber its valid ones by this many is closed with
    /// 1008. Each invalid message adds one, each valid message takes one off. Default 10.
    public var maxInvalidMessages: Int
    /// Browser origins allowed to open a WebSocket (exact match on the `Origin` header, e.g.
    /// `https://app.example.com`). Empty: any origin, and requests without `Origin`, are allowed.
    /// When not empty, a request whose `Origin` is absent or not listed gets HTTP 403.
    public var allowedOrigins: [String]
    /// Name of a token claim holding an array of room names to auto-join on connect. Default `rooms`;
    /// `nil` turns it off.
    public var roomsClaim: String?
    /// Bytes that may wait in one connection's outbound buffer (events the client has not read
    /// yet, beyond what the kernel holds); past it the client is a slow consumer and is closed
    /// with 4008, so that it resumes from history instead of holding memory. Default 1 MiB.
    public var outboundHighWaterMark: Int
    /// Longest `id` a client may put in an envelope, in UTF-8 bytes. Default 128.
    public var maxEnvelopeIDLength: Int
    /// Whether the members of a room get `presence.join` when a user's first connection joins it
    /// and `presence.leave` when the user's last one leaves. Default `true`. Turn it off where
    /// members are many and passive (a live dashboard's viewers): each join is a message to every
    /// member, so filling a room of N costs N² messages.
    public var presence: Bool
    /// How long a user whose connection ended stays present in its rooms: when a connection of
    /// the same user joins the room again within it (a reconnect, a page reload), the members see
    /// neither `presence.leave` nor `presence.join`; otherwise `presence.leave` goes out when it
    /// has passed. `room.leave` is announced at once. Default 5 seconds; `.zero` announces every
    /// disconnect at once. Without it, a room of N whose members all reconnect (a deploy, a
    /// network blip) costs N² presence messages on top of the reconnects.
    public var presenceGracePeriod: Duration
    /// How much room history the in-memory broker keeps and how far back clients may resume.
    public var history: HistoryConfiguration
    /// How long the client `id` of a handled event is remembered per user, so that a retry gets
    /// the first reply again instead of running the handler twice. Default 10 minutes.
    public var idempotencyWindow: Duration
    /// Most remembered ids per user (the oldest are forgotten first). Default 1000.
    public var idempotencyKeysPerUser: Int
    /// Most app handlers (those that run in a task) one connection may have queued or running;
    /// at the bound the server stops reading from that connection until one finishes. Default 16.
    public var maxHandlersInFlight: Int
    /// Path at which the app's port serves the JavaScript client (`switchboard.js`, with
    /// `Cache-Control` and an `ETag`); its TypeScript declarations are served beside it, at the
    /// same path with `.d.ts` instead of `.js`. Default `/switchboard.js`; `nil` serves neither.
    public var clientScriptPath: String?
    /// Rate limits of client events per connection and of handshakes per remote address. Default:
    /// see ``RateLimits``; ``RateLimits/off`` for none.
    public var rateLimits: RateLimits
    /// During a drain (``SwitchboardServer/drain()``, `SIGTERM` in `serve`), the open connections
    /// are closed with 1012 at times spread evenly over this window, so that their clients do not
    /// all reconnect to the other nodes in the same moment. Default 5 s; `.zero` closes them all
    /// at once.
    public var drainWindow: Duration
    /// A drain ends within this time of its start: connections still open then (a handler that
    /// did not finish, a client that did not answer the Close) are dropped. Default 10 s; at
    /// least ``drainWindow`` plus a little for the close handshakes is sensible.
    public var drainTimeout: Duration
    /// permessage-deflate (RFC 7692), accepted when a client offers it (browsers do). Default
    /// `nil`: off, every message goes uncompressed. See ``CompressionConfiguration``.
    public var compression: CompressionConfiguration?

    /// The largest frame an integration's frame decoder should accept: ``maxMessageSize``, plus,
    /// with compression on, room for deflate's worst case (incompressible data grows a little), so
    /// that a message of the limit that a client compressed is not refused for its wire size. The
    /// limit on the message itself, inflated or not, stays ``maxMessageSize``.
    public var maxFrameSize: Int {
        compression == nil ? maxMessageSize : CompressionConfiguration.compressedLimit(maxMessageSize: maxMessageSize)
    }

    /// Creates a configuration; every parameter has the default documented on its property.
    public init(
        path: String = "/ws",
        maxMessageSize: Int = 64 * 1024,
        maxFragments: Int = 1024,
        pingInterval: Duration = .seconds(30),
        pongTimeout: Duration = .seconds(90),
        idleTimeout: Duration? = nil,
        handshakeTimeout: Duration = .seconds(10),
        handshakeStoreTimeout: Duration = .seconds(5),
        closeTimeout: Duration = .seconds(5),
        maxConnectionsPerUser: Int = 5,
        maxInvalidMessages: Int = 10,
        allowedOrigins: [String] = [],
        roomsClaim: String? = "rooms",
        outboundHighWaterMark: Int = 1 << 20,
        maxEnvelopeIDLength: Int = 128,
        presence: Bool = true,
        presenceGracePeriod: Duration = .seconds(5),
        history: HistoryConfiguration = .init(),
        idempotencyWindow: Duration = .seconds(600),
        idempotencyKeysPerUser: Int = 1000,
        maxHandlersInFlight: Int = 16,
        clientScriptPath: String? = "/switchboard.js",
        rateLimits: RateLimits = .init(),
        drainWindow: Duration = .seconds(5),
        drainTimeout: Duration = .seconds(10),
        compression: CompressionConfiguration? = nil
    ) {
        self.path = path
        self.maxMessageSize = maxMessageSize
        self.maxFragments = maxFragments
        self.pingInterval = pingInterval
        self.pongTimeout = pongTimeout
        self.idleTimeout = idleTimeout
        self.handshakeTimeout = handshakeTimeout
        self.handshakeStoreTimeout = handshakeStoreTimeout
        self.closeTimeout = closeTimeout
        self.maxConnectionsPerUser = maxConnectionsPerUser
        self.maxInvalidMessages = maxInvalidMessages
        self.allowedOrigins = allowedOrigins
        self.roomsClaim = roomsClaim
        self.outboundHighWaterMark = outboundHighWaterMark
        self.maxEnvelopeIDLength = maxEnvelopeIDLength
        self.presence = presence
        self.presenceGracePeriod = presenceGracePeriod
        self.history = history
        self.idempotencyWindow = idempotencyWindow
        self.idempotencyKeysPerUser = idempotencyKeysPerUser
        self.maxHandlersInFlight = maxHandlersInFlight
        self.clientScriptPath = clientScriptPath
        self.rateLimits = rateLimits
        self.drainWindow = drainWindow
        self.drainTimeout = drainTimeout
        self.compression = compression
    }
}
