import NIOCore
import NIOHTTP1

/// Sits in front of NIO's upgrade handler while a connection is plain HTTP.
///
/// NIO's typed upgrade handler drops the request head of a request it tried and failed to
/// upgrade, so such a request never reaches the app. This filter keeps the app's requests whole by
/// taking the `Upgrade` header off requests for other paths (only the WebSocket path upgrades),
/// and remembers whether a request for the WebSocket path asked to upgrade, so that one that was
/// not upgraded still gets an answer.
final class UpgradePathFilter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    private let path: String
    private let attempted: NIOLoopBoundBox<HTTPRequestHead?>

    init(path: String, attempted: NIOLoopBoundBox<HTTPRequestHead?>) {
        self.path = path
        self.attempted = attempted
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data), head.headers.contains(name: "upgrade") else {
            context.fireChannelRead(data)
            return
        }
        if SwitchboardHTTPChannel.path(of: head.uri) == path {
            attempted.value = head
            context.fireChannelRead(data)
        } else {
            head.headers.remove(name: "upgrade")
            context.fireChannelRead(wrapInboundOut(.head(head)))
        }
    }
}
