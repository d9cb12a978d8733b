import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
@testable import Switchboard
import SwitchboardHummingbird

/// A Switchboard server on 127.0.0.1 with an ephemeral port, inside a Hummingbird app that also
/// has ordinary routes (`/hello`, `/healthz`).
struct TestServer: Sendable {
    static let secret = "switchboard-test-secret-0123456789abcdef"

    let port: Int
    let switchboard: SwitchboardServer
    let http: any TestClientProtocol

    /// An HS256 token for `subject`, signed with the server's secret.
    func token(_ subject: String, ttl: Duration = .seconds(600), claims: [String: JSONValue] = [:]) async throws -> String {
        try await TokenMinter(hs256Secret: Self.secret).mint(subject: subject, ttl: ttl, claims: claims)
    }

    /// Connects as `subject` and returns the ack of `session.hello`.
    func connect(_ subject: String, claims: [String: JSONValue] = [:], path: String? = nil) async throws -> (client: TestWebSocketClient, welcome: [String: JSONValue]) {
        let token = try await token(subject, claims: claims)
        let client = try await TestWebSocketClient.open(port: port, path: "\(path ?? switchboard.configuration.path)?token=\(token)")
        return (client, try await Self.hello(client))
    }

    /// Sends `session.hello` and returns its ack.
    static func hello(_ client: TestWebSocketClient) async throws -> [String: JSONValue] {
        try await client.sendText(#"{"event":"session.hello","id":"hello"}"#)
        return try await client.next(event: "hello", field: "id")
    }

    /// Connects as `subject` (and says hello, so the connection is known to be set up).
    func open(_ subject: String, claims: [String: JSONValue] = [:]) async throws -> TestWebSocketClient {
        try await connect(subject, claims: claims).client
    }

    /// Waits, bounded, until the server counts `expected` open connections.
    func waitForConnections(_ expected: Int, timeout: Duration = .seconds(5)) async throws {
        let deadline = ContinuousClock.now + timeout
        while await switchboard.connectionCount() != expected {
            guard ContinuousClock.now < deadline else {
                throw TestClientError.timeout("server still has \(await switchboard.connectionCount()) connections, expected \(expected)")
            }
            await Task.yield()
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

enum TestServers {
    /// Runs `body` against a fresh server; it is shut down afterwards.
    static func with<C: Clock & Sendable>(
        configuration: SwitchboardConfiguration = .init(),
        router: EventRouter = .chat,
        memberships: (any MembershipStore)? = nil,
        authorizeJoin: SwitchboardServer.JoinAuthorizer? = nil,
        authorizer: (any RoomAuthorizer)? = nil,
        broker: (any Broker)? = nil,
        presence: (any PresenceStore)? = nil,
        snapshot: RoomSnapshot = .none,
        idempotency: (any IdempotencyStore)? = nil,
        connectionSlots: (any ConnectionSlotStore)? = nil,
        echo: Bool = false,
        clock: C = ContinuousClock(),
        logger: Logger = TestServers.defaultLogger,
        routes: (@Sendable (Router<BasicRequestContext>, SwitchboardServer) -> Void)? = nil,
        _ body: @Sendable (TestServer) async throws -> Void
    ) async throws where C.Duration == Duration {
        let switchboard: SwitchboardServer
        if echo {
            switchboard = .echo(configuration: configuration, logger: logger)
        } else {
            let verifier = try await TokenVerifier(keys: [.hmacSecret(TestServer.secret)])
            switchboard = SwitchboardServer(
                configuration: configuration,
                authentication: .jwt(verifier),
                router: router,
                memberships: memberships,
                authorizeJoin: authorizeJoin,
                authorizer: authorizer,
                broker: broker,
                presence: presence,
                snapshot: snapshot,
                idempotency: idempotency,
                connectionSlots: connectionSlots,
                clock: clock,
                logger: logger
            )
        }
        let router = Router()
        router.get("/hello") { _, _ in "hello from the app" }
        routes?(router, switchboard)
        let app = Application(
            router: router,
            server: .switchboard(switchboard),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            logger: logger
        )
        try await app.test(.live) { client in
            guard let port = client.port else { throw TestClientError.connectFailed("no port") }
            // Connections left open are closed at once (1001) before the app's graceful shutdown,
            // whose drain would spread them over the window, on a test's clock that may not move.
            do {
                try await body(TestServer(port: port, switchboard: switchboard, http: client))
            } catch {
                switchboard.closeAll()
                throw error
            }
            switchboard.closeAll()
        }
    }

    /// Quiet unless SWITCHBOARD_TEST_LOG_LEVEL is set (e.g. `debug`).
    static var defaultLogger: Logger {
        guard let level = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) else {
            return quietLogger
        }
        var logger = Logger(label: "switchboard-test")
        logger.logLevel = level
        return logger
    }

    static let quietLogger: Logger = {
        var logger = Logger(label: "switchboard-test")
        logger.logLevel = .critical
        return logger
    }()
}

extension SwitchboardConfiguration {
    /// The defaults without rate limits, as the bench scripts run the server: for tests whose
    /// publishers send faster than `message.send`'s default limit and check something else
    /// (ordering, resume, the bench). `RateLimitTests` covers the limits.
    static var unlimited: SwitchboardConfiguration {
        var configuration = SwitchboardConfiguration()
        configuration.rateLimits = .off
        return configuration
    }
}

extension EventRouter {
    /// The standalone server's events.
    static var chat: EventRouter {
        var router = EventRouter()
        router.addChatEvents()
        return router
    }
}

/// Collects log records in memory, for tests about what gets logged.
final class CapturedLogs: @unchecked Sendable {
    // @unchecked Sendable: `records` is only touched under `lock`.
    private let lock = NSLock()
    private var records: [String] = []

    func append(_ line: String) {
        lock.lock()
        records.append(line)
        lock.unlock()
    }

    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return records
    }

    var logger: Logger {
        var logger = Logger(label: "captured") { _ in CapturingLogHandler(sink: self) }
        logger.logLevel = .trace
        return logger
    }
}

struct CapturingLogHandler: LogHandler {
    let sink: CapturedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        sink.append("\(event.level) \(event.message) \(rendered)")
    }
}
