import NIOCore
import NIOPosix

/// A TCP server on 127.0.0.1:0 that answers the first bytes a client sends with `reply`
/// (whatever was asked) and then closes the connection if `closeAfterReply`.
/// For replies a real Redis never sends: garbage, truncated replies, hostile lengths.
final class FakeRedisServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) {
        self.channel = channel
    }

    static func start(reply: [UInt8], closeAfterReply: Bool) async throws -> FakeRedisServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReplyHandler(reply: reply, closeAfterReply: closeAfterReply))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return FakeRedisServer(channel: channel)
    }

    func stop() async {
        try? await channel.close()
    }

    private final class ReplyHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let reply: [UInt8]
        let closeAfterReply: Bool
        var answered = false

        init(reply: [UInt8], closeAfterReply: Bool) {
            self.reply = reply
            self.closeAfterReply = closeAfterReply
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !answered else { return }
            answered = true
            let buffer = context.channel.allocator.buffer(bytes: reply)
            let close = closeAfterReply
            context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
                if close { context.close(promise: nil) }
            }
        }
    }
}
