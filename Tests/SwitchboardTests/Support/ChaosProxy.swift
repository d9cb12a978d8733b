import Foundation
import NIOCore
import NIOPosix

/// A TCP proxy on 127.0.0.1 in front of a test server that cuts connections where the test says:
/// after a given number of bytes from the server (so mid-frame too), by closing both sides (FIN)
/// or aborting them (RST). For fault-injection tests of resume.
final class ChaosProxy: Sendable {
    let port: Int
    private let listener: any Channel
    /// Where the connections opened from now on are cut: bytes from the server (`nil`: never).
    private let cut: TestLockedBox<Int?>
    private let counter: TestLockedBox<Int>
    /// Where connections opened from now on go (`retarget`: a server restarted on another port).
    private let upstream: TestLockedBox<Int>
    /// While set, bytes from the server are swallowed: a connection that looks alive but carries
    /// nothing (a half-open one).
    private let paused: TestLockedBox<Bool>
    /// One switch per connection opened so far: while set, that connection swallows what the
    /// server sends (`wedgeOpenConnections`), and connections opened later are not affected.
    private let wedges: TestLockedBox<[TestLockedBox<Bool>]>
    /// The client side of every connection accepted so far, for `closeOpenConnections`.
    private let clients: TestLockedBox<[any Channel]>

    private init(
        port: Int, listener: any Channel, cut: TestLockedBox<Int?>, counter: TestLockedBox<Int>, upstream: TestLockedBox<Int>,
        paused: TestLockedBox<Bool>, wedges: TestLockedBox<[TestLockedBox<Bool>]>, clients: TestLockedBox<[any Channel]>
    ) {
        self.clients = clients
        self.port = port
        self.listener = listener
        self.cut = cut
        self.counter = counter
        self.upstream = upstream
        self.paused = paused
        self.wedges = wedges
    }

    /// Starts a proxy to 127.0.0.1:`upstreamPort`; with `reset`, cuts are RSTs, else FINs.
    static func start(upstreamPort: Int, reset: Bool) async throws -> ChaosProxy {
        let cut = TestLockedBox<Int?>(nil)
        let counter = TestLockedBox(0)
        let upstream = TestLockedBox(upstreamPort)
        let paused = TestLockedBox(false)
        let wedges = TestLockedBox<[TestLockedBox<Bool>]>([])
        let clients = TestLockedBox<[any Channel]>([])
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // The client's bytes wait until the server side is connected.
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                let cutAfter = cut.withLock { $0 }
                counter.withLock { $0 += 1 }
                let wedged = TestLockedBox(false)
                wedges.withLock { $0.append(wedged) }
                clients.withLock { $0.append(inbound) }
                return ClientBootstrap(group: inbound.eventLoop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .connect(host: "127.0.0.1", port: upstream.withLock { $0 })
                    .flatMapThrowing { outbound in
                        // Bytes from the server are counted (and cut) on their way to the client.
                        try outbound.pipeline.syncOperations.addHandler(RelayHandler(partner: inbound, cutAfter: cutAfter, reset: reset, paused: paused, wedged: wedged))
                        try inbound.pipeline.syncOperations.addHandler(RelayHandler(partner: outbound, cutAfter: nil, reset: reset, paused: nil, wedged: nil))
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = listener.localAddress?.port else { throw TestClientError.connectFailed("the proxy has no port") }
        return ChaosProxy(port: port, listener: listener, cut: cut, counter: counter, upstream: upstream, paused: paused, wedges: wedges, clients: clients)
    }

    /// Sets where the connections opened from now on are cut.
    func cutConnections(afterServerBytes bytes: Int?) {
        cut.withLock { $0 = bytes }
    }

    /// Sends the connections opened from now on to 127.0.0.1:`port`.
    func retarget(upstreamPort port: Int) {
        upstream.withLock { $0 = port }
    }

    /// While `true`, every connection (open or new) swallows what the server sends.
    func pause(_ value: Bool) {
        paused.withLock { $0 = value }
    }

    /// From now on, every connection open now swallows what the server sends, for good, while
    /// staying open (a wedged subscription: the client sees a live connection that delivers
    /// nothing); connections opened later relay as usual.
    func wedgeOpenConnections() {
        for wedged in wedges.withLock({ $0 }) { wedged.withLock { $0 = true } }
    }

    /// Closes every connection open now (both sides, FIN): a network drop. With
    /// `cutConnections(afterServerBytes: 0)` before it, the reconnects fail too until that is undone.
    func closeOpenConnections() {
        for channel in clients.withLock({ channels in defer { channels = [] }; return channels }) {
            channel.close(promise: nil)
        }
    }

    /// Connections accepted so far.
    var accepted: Int { counter.withLock { $0 } }

    func stop() async {
        try? await listener.close()
    }
}

/// Relays what one side reads to the other; cuts both after `cutAfter` bytes.
private final class RelayHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let partner: any Channel
    let cutAfter: Int?
    let reset: Bool
    let paused: TestLockedBox<Bool>?
    let wedged: TestLockedBox<Bool>?
    private let relayed = TestLockedBox(0)

    init(partner: any Channel, cutAfter: Int?, reset: Bool, paused: TestLockedBox<Bool>?, wedged: TestLockedBox<Bool>?) {
        self.partner = partner
        self.cutAfter = cutAfter
        self.reset = reset
        self.paused = paused
        self.wedged = wedged
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if paused?.withLock({ $0 }) == true || wedged?.withLock({ $0 }) == true { return }
        let sent = relayed.withLock { $0 }
        if let cutAfter, sent + buffer.readableBytes >= cutAfter {
            let keep = max(0, cutAfter - sent)
            let head = buffer.readSlice(length: keep) ?? ByteBuffer()
            relayed.withLock { $0 = cutAfter }
            let partner = self.partner
            let own = context.channel
            let reset = self.reset
            partner.writeAndFlush(head).whenComplete { _ in
                for channel in [partner, own] {
                    if reset, let options = channel as? any SocketOptionProvider {
                        options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
                    } else {
                        channel.close(promise: nil)
                    }
                }
            }
            return
        }
        relayed.withLock { $0 += buffer.readableBytes }
        partner.writeAndFlush(buffer, promise: nil)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { context.read() }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
        partner.close(promise: nil)
    }
}
