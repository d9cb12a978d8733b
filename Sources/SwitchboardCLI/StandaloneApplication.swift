import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SwitchboardHummingbird

/// The Hummingbird app of `serve` and `echo`: `/healthz` plus the WebSocket endpoint on one port.
enum StandaloneApplication {
    static func run(
        _ switchboard: SwitchboardServer,
        host: String,
        port: Int,
        threads: Int,
        services: [any Service] = [],
        logger: Logger,
        onStart: @escaping @Sendable (Int) -> Void
    ) async throws {
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let router = Router()
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\"}")))
        }
        let app = Application(
            router: router,
            server: .switchboard(switchboard),
            configuration: .init(address: .hostname(host, port: port), serverName: "switchboard"),
            services: services,
            onServerRunning: { channel in
                onStart(channel.localAddress?.port ?? port)
            },
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: logger
        )
        // On SIGTERM/SIGINT Hummingbird quiesces its channels: each socket closes with 1001.
        try await app.runService()
        try await eventLoopGroup.shutdownGracefully()
    }
}
