import Foundation
import Hummingbird
import Logging
import NIOCore
import Switchboard
import SwitchboardHummingbird

/// What the chat example runs with.
public struct ChatConfiguration: Sendable {
    /// The address to listen on (default 127.0.0.1).
    public var host: String
    /// The port (default 8080; 0 for any free one).
    public var port: Int
    /// The SQLite file (default `chat.sqlite` in the current folder); `nil` keeps everything in memory.
    public var databasePath: String?
    /// The HS256 secret of the tokens (default: Switchboard's public development secret).
    public var jwtSecret: String
    /// The Switchboard server's limits and timers (defaults, with presence announced after a 5 s grace).
    public var switchboard: SwitchboardConfiguration

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        databasePath: String? = "chat.sqlite",
        jwtSecret: String = TokenMinter.developmentSecret,
        switchboard: SwitchboardConfiguration = .init()
    ) {
        self.host = host
        self.port = port
        self.databasePath = databasePath
        self.jwtSecret = jwtSecret
        self.switchboard = switchboard
    }
}

/// The chat example: a Hummingbird app with its own HTTP routes (the web UI, the demo login) and
/// Switchboard's WebSocket endpoint at `/ws` on the same port.
public struct ChatApp {
    public let database: ChatDatabase
    public let switchboard: SwitchboardServer
    /// The app's HTTP routes; add more before ``application(logger:)``.
    public let router: Router<BasicRequestContext>
    public let configuration: ChatConfiguration

    public init(configuration: ChatConfiguration, logger: Logger = Logger(label: "chat")) async throws {
        self.configuration = configuration
        let database = try ChatDatabase(path: configuration.databasePath)
        self.database = database

        var events = EventRouter()
        events.addChatHandlers(database: database)
        switchboard = SwitchboardServer(
            configuration: configuration.switchboard,
            authentication: .jwt(try await TokenVerifier(keys: [.hmacSecret(configuration.jwtSecret)])),
            router: events,
            memberships: ChannelMembershipStore(database: database),  // auto-join on connect
            authorizer: ChannelRooms.authorizer(database: database),
            snapshot: ChannelRooms.snapshot(database: database),
            logger: logger
        )

        router = Router()
        DemoLogin(database: database, minter: TokenMinter(hs256Secret: configuration.jwtSecret), tokenLifetime: .seconds(3600))
            .addRoutes(to: router)
        guard let folder = Bundle.module.url(forResource: "Public", withExtension: nil) else {
            throw ChatAppError.missingWebFiles
        }
        try WebAssets(folder: folder, files: ["index.html", "chat.js", "chat.css"]).addRoutes(to: router)
    }

    /// The Hummingbird application: the router and the WebSocket upgrade on one port.
    /// Run it with `try await app.runService()`; `onServerRunning` gets the listening channel.
    public func application(
        logger: Logger = Logger(label: "chat"),
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router,
            server: .switchboard(switchboard),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}

enum ChatAppError: Error, CustomStringConvertible {
    case missingWebFiles

    var description: String { "the web UI's files (Public/) are missing from the bundle" }
}
