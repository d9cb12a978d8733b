import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Switchboard
import SwitchboardHummingbird

/// The Hummingbird app of `serve` and `echo`: `/healthz` (the process is up), `/readyz` (it can
/// serve: its dependencies are reachable and it is not draining), `/metrics` (Prometheus), the
/// publish API under `/api` (off, 404 `api_disabled`, without an API key), the WebSocket endpoint
/// and, with `playground`, the development playground (``PlaygroundRoutes``) on one port, on the
/// caller's event loops (which it does not shut down).
enum StandaloneApplication {
    /// Why the node cannot serve now (`nil`: ready), for `/readyz`.
    typealias Readiness = @Sendable () -> String?

    static func run(
        _ switchboard: SwitchboardServer,
        host: String,
        port: Int,
        eventLoopGroup: MultiThreadedEventLoopGroup,
        services: [any Service] = [],
        readiness: @escaping Readiness = { nil },
        playground: Bool = false,
        apiKey: APIKey? = nil,
        ops: OpsRoutes? = nil,
        logger: Logger,
        onStart: @escaping @Sendable (Int) -> Void
    ) async throws {
        let router = Router()
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\"}")))
        }
        router.get("/readyz") { _, _ in
            // Draining first: a load balancer sends no new clients to a node that refuses them.
            guard let problem = switchboard.isDraining ? "draining" : readiness() else {
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"ready\":true}")))
            }
            struct NotReady: Encodable { var ready = false; var reason: String }
            let body = (try? JSONEncoder().encode(NotReady(reason: problem))) ?? Data(#"{"ready":false}"#.utf8)
            return Response(status: .serviceUnavailable, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        // Always on here; a library user adds them with the same two calls.
        router.addSwitchboardMetrics(switchboard)
        router.addSwitchboardPublishAPI(switchboard, apiKey: apiKey)
        if playground { PlaygroundRoutes.add(to: router) }
        ops?.add(to: router)
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
        // On SIGTERM/SIGINT the group shuts its services down in reverse order: first the drain
        // (the app still serves meanwhile: 503 `draining` to handshakes and /readyz), then the app
        // (its listening socket, then its remaining HTTP connections), then its own services.
        let group = ServiceGroup(
            configuration: .init(
                services: [app, SwitchboardDrainService(switchboard)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}
