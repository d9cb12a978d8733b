import NIOCore
import NIOHTTP1

/// Why a WebSocket handshake was refused, as the plain HTTP response the client gets instead of
/// the upgrade: `status` with the JSON body `{"error":{"code":…,"message":…}}`.
public struct HandshakeRejection: Error, Sendable, Equatable {
    public var status: HTTPResponseStatus
    /// Stable machine-readable code, e.g. `token_expired`, `origin_not_allowed`.
    public var code: String
    public var message: String
    /// Extra response headers (e.g. `Sec-WebSocket-Version: 13` with 426).
    public var headers: [(String, String)]

    public init(status: HTTPResponseStatus, code: String, message: String, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// The response body.
    public var body: String {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        buffer.writeStaticString("{\"error\":{\"code\":")
        buffer.writeJSONString(code)
        buffer.writeStaticString(",\"message\":")
        buffer.writeJSONString(message)
        buffer.writeStaticString("}}")
        return String(buffer: buffer)
    }

    /// HTTP 503 `store_unavailable`: a store the handshake needs failed or did not answer in time.
    public static let storeUnavailable = HandshakeRejection(status: .serviceUnavailable, code: "store_unavailable", message: "try again later")

    /// HTTP 503 `draining`: the server is draining (shutting down or restarting) and takes no new
    /// connections; the client should connect again, to another node behind the same address.
    public static let draining = HandshakeRejection(status: .serviceUnavailable, code: "draining", message: "the server is shutting down; connect again")

    /// HTTP 429 `too_many_connections`.
    public static func tooManyConnections(limit: Int) -> HandshakeRejection {
        HandshakeRejection(status: .tooManyRequests, code: "too_many_connections", message: "at most \(limit) connections per user")
    }

    /// HTTP 429 `rate_limited`, with `Retry-After`: too many handshakes from the client's address
    /// (``RateLimits/handshakesPerAddress``).
    public static func rateLimited(retryAfterSeconds: Int64) -> HandshakeRejection {
        HandshakeRejection(
            status: .tooManyRequests,
            code: "rate_limited",
            message: "too many handshakes from this address; retry after \(retryAfterSeconds) s",
            headers: [("Retry-After", String(retryAfterSeconds))]
        )
    }

    public static func == (lhs: HandshakeRejection, rhs: HandshakeRejection) -> Bool {
        lhs.status == rhs.status && lhs.code == rhs.code && lhs.message == rhs.message
    }
}

