import Hummingbird
import HummingbirdCore
import Switchboard

extension HTTPServerBuilder {
    /// HTTP/1.1 that also upgrades requests to `switchboard`'s path (default `/ws`) to WebSocket
    /// connections on the same port. Every other request goes to the app's router untouched.
    ///
    /// ```swift
    /// let app = Application(router: router, server: .switchboard(switchboard))
    /// ```
    /// - Parameters:
    ///   - switchboard: the server that checks handshakes and runs the connections.
    ///   - http1: configuration of the plain HTTP connections (default: Hummingbird's, with request
    ///     headers limited to 16 KiB).
    public static func switchboard(_ switchboard: SwitchboardServer, http1: HTTP1Channel.Configuration = .switchboard) -> HTTPServerBuilder {
        .init { responder in
            SwitchboardHTTPChannel(responder: responder, switchboard: switchboard, http1: http1)
        }
    }
}
