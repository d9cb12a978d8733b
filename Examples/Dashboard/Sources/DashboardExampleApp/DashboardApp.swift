import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import Switchboard
import SwitchboardHummingbird

/// What the dashboard example runs with.
public struct DashboardConfiguration: Sendable {
    /// The address to listen on (default 127.0.0.1).
    public var host: String
    /// The port (default 8081; 0 for any free one).
    public var port: Int
    /// The HS256 secret of the viewers' tokens (default: Switchboard's public development secret).
    public var jwtSecret: String
    /// How often the simulated producer publishes (default 1 s); `nil` runs none (the app, or a
    /// test, publishes through ``DashboardApp/board`` itself).
    public var publishInterval: Duration?
    /// The Switchboard server's limits and timers. Defaults, but presence off: a dashboard's
    /// viewers do not need to hear about each other, and 500 of them joining would be 500
    /// announcements to everyone.
    public var switchboard: SwitchboardConfiguration

    public init(
        host: String = "127.0.0.1",
        port: Int = 8081,
        jwtSecret: String = TokenMinter.developmentSecret,
        publishInterval: Duration? = .seconds(1),
        switchboard: SwitchboardConfiguration = DashboardConfiguration.defaultSwitchboard
    ) {
        self.host = host
        self.port = port
        self.jwtSecret = jwtSecret
        self.publishInterval = publishInterval
        self.switchboard = switchboard
    }

    /// Switchboard's defaults with presence off.
    public static var defaultSwitchboard: SwitchboardConfiguration {
        var configuration = SwitchboardConfiguration()
        configuration.presence = false
        return configuration
    }
}

/// The live dashboard example: viewers join the broadcast-only room `dashboard:metrics` and only
/// receive; the producer publishes server-side.
public struct DashboardApp {
    /// The room every viewer joins.
    public static let room = "dashboard:metrics"

    public let switchboard: SwitchboardServer
    public let board: MetricsBoard
    /// The app's HTTP routes; add more before ``application(logger:)``.
    public let router: Router<BasicRequestContext>
    public let configuration: DashboardConfiguration

    public init(configuration: DashboardConfiguration, logger: Logger = Logger(label: "dashboard")) async throws {
        self.configuration = configuration
        // Viewers may join `dashboard:*` rooms and nothing else: no publishing (a viewer's
        // `message.send` gets `forbidden`), no member lists, no other rooms.
        let rules = RoomRules(namespaces: [.init(try RoomPattern("dashboard:*"), .init(join: true))])
        // The board is created before the server it publishes through, and the snapshot asks it.
        let boardBox = BoardReference()
        var events = EventRouter()
        events.addChatEvents()  // so that a viewer's message.send is refused by the room's rules
        switchboard = SwitchboardServer(
            configuration: configuration.switchboard,
            authentication: .jwt(try await TokenVerifier(keys: [.hmacSecret(configuration.jwtSecret)])),
            router: events,
            authorizer: rules,
            snapshot: RoomSnapshot.custom { room, _ in boardBox.board?.room == room ? boardBox.board?.snapshot() : nil }.sentOnJoin(),
            logger: logger
        )
        board = MetricsBoard(room: Self.room, switchboard: switchboard)
        boardBox.board = board

        router = Router()
        let minter = TokenMinter(hs256Secret: configuration.jwtSecret)
        // A viewer's token: anyone may watch; each page gets a user of its own.
        router.get("/api/viewer-token") { _, _ -> String in
            try await minter.mint(subject: "viewer-\(UUID().uuidString.prefix(8).lowercased())", ttl: .seconds(3600))
        }
        guard let folder = Bundle.module.url(forResource: "Public", withExtension: nil) else {
            throw DashboardAppError.missingWebFiles
        }
        try WebAssets(folder: folder, files: ["index.html", "dashboard.js", "dashboard.css"]).addRoutes(to: router)
    }

    /// The Hummingbird application (router and WebSocket upgrade on one port), with the simulated
    /// producer as a service when ``DashboardConfiguration/publishInterval`` is set.
    public func application(
        logger: Logger = Logger(label: "dashboard"),
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        var services: [any Service] = []
        if let interval = configuration.publishInterval {
            services.append(MetricsProducer(board: board, interval: interval, logger: logger))
        }
        return Application(
            router: router,
            server: .switchboard(switchboard),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
            services: services,
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}

/// The board, set once right after the server is made (the server's snapshot closure needs it).
final class BoardReference: Sendable {
    private let box = NIOLockedValueBox<MetricsBoard?>(nil)

    var board: MetricsBoard? {
        get { box.withLockedValue { $0 } }
        set { box.withLockedValue { $0 = newValue } }
    }
}

enum DashboardAppError: Error, CustomStringConvertible {
    case missingWebFiles

    var description: String { "the web UI's files (Public/) are missing from the bundle" }
}
