import Logging
import NIOCore
import NIOPosix

extension SwitchboardClient {
    /// The client's timers and limits.
    public struct Configuration: Sendable {
        /// How long a request waits for its reply, offline time included (default 10 s);
        /// ``SwitchboardClient/send(_:_:as:id:timeout:)`` can override it per request.
        public var ackTimeout: Duration = .seconds(10)
        /// Reconnect delays.
        public var backoff = BackoffPolicy()
        /// Requests that may wait while disconnected (default 100); beyond it the oldest fails
        /// with `queue_full`.
        public var offlineQueueLimit = 100
        /// After this long without anything from the server, the client sends
        /// `presence.heartbeat`; `nil` (default): the server's `pingInterval`.
        public var heartbeatInterval: Duration?
        /// After this long without anything from the server, the connection is given up and the
        /// client reconnects; `nil` (default): the server's `pongTimeout`.
        public var heartbeatTimeout: Duration?
        /// A connection attempt that has not completed `session.hello` within this is given up
        /// (default 10 s).
        public var connectTimeout: Duration = .seconds(10)
        /// Largest message accepted from the server (default 16 MiB), also once inflated.
        public var maxMessageSize = 16 << 20
        /// Whether to offer permessage-deflate (default `true`, as browsers do): a server with
        /// compression on then sends large messages compressed, and the client compresses what it
        /// sends from 256 bytes, each message on its own as the server asks. A server without it
        /// declines, and nothing changes.
        public var compression = true
        /// Random numbers in `0 ..< 1` for the backoff jitter; tests pass fixed ones.
        public var random: @Sendable () -> Double = { Double.random(in: 0..<1) }
        /// Where the client logs (connection lifecycle at debug level, dropped connections at info).
        public var logger = Logger(label: "switchboard.client")
        /// The event loops the connections run on.
        public var eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

        /// The defaults.
        public init() {}
    }
}
