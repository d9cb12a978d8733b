import NIOCore
import NIOHTTP1
import NIOWebSocket
import Switchboard

/// NIO's WebSocket upgrader behind the RFC 6455 request checks it leaves out (method, key format,
/// version with the `Sec-WebSocket-Version: 13` reply). It requires no headers of its own, so NIO
/// hands it every `Upgrade: websocket` request and each refusal can be answered with its status.
struct CheckedWebSocketUpgrader<UpgradeResult: Sendable>: NIOTypedHTTPServerProtocolUpgrader {
    let upgrader: NIOTypedWebSocketServerUpgrader<UpgradeResult>
    /// Records why a request was refused, for the not-upgraded response.
    let refused: @Sendable (HandshakeRejection) -> Void

    var supportedProtocol: String { "websocket" }
    var requiredUpgradeHeaders: [String] { [] }

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        if let rejection = UpgradeRequestCheck.rejection(method: upgradeRequest.method, headers: upgradeRequest.headers) {
            refused(rejection)
            return channel.eventLoop.makeFailedFuture(rejection)
        }
        return upgrader.buildUpgradeResponse(channel: channel, upgradeRequest: upgradeRequest, initialResponseHeaders: initialResponseHeaders)
    }

    func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<UpgradeResult> {
        upgrader.upgrade(channel: channel, upgradeRequest: upgradeRequest)
    }
}
