/// WebSocket close codes the server sends. `docs/protocol.md` lists when each is used.
public enum CloseCode {
    /// Normal closure.
    public static let normal: UInt16 = 1000
    /// The server is shutting down.
    public static let goingAway: UInt16 = 1001
    /// The client broke RFC 6455 (unmasked frame, reserved bits or opcodes, bad close code, …).
    public static let protocolError: UInt16 = 1002
    /// A text message (or close reason) was not valid UTF-8.
    public static let invalidPayload: UInt16 = 1007
    /// The client kept sending invalid messages, or kept sending past its rate limits.
    public static let policyViolation: UInt16 = 1008
    /// A message was larger than the configured maximum.
    public static let messageTooBig: UInt16 = 1009
    /// The server failed unexpectedly.
    public static let internalError: UInt16 = 1011
    /// The server is draining (a restart or deploy): reconnect soon, to another node if there is
    /// one, and resume. Drains spread these closes over ``SwitchboardConfiguration/drainWindow``.
    public static let serviceRestart: UInt16 = 1012
    /// The server cannot bring the connection up to date now (a room too busy to resume in
    /// order); reconnect and resume again, after a short delay.
    public static let tryAgainLater: UInt16 = 1013
    /// The client sent nothing (not even a pong) within the pong timeout.
    public static let heartbeatTimeout: UInt16 = 4000
    /// The token the connection was opened with expired; reconnect with a fresh token.
    public static let tokenExpired: UInt16 = 4001
    /// The client sent no message within the idle timeout.
    public static let idleTimeout: UInt16 = 4002
    /// The client read its events slower than they came, until more than the outbound high-water
    /// mark waited for it; reconnect and resume (the events it missed come from history).
    public static let slowConsumer: UInt16 = 4008
}
