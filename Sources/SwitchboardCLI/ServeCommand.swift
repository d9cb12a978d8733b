import ArgumentParser
import Foundation
import NIOPosix
import Switchboard
import ServiceLifecycle
import SwitchboardHummingbird
import SwitchboardRedis

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Switchboard chat server: JWT at the handshake, rooms, presence, message.send."
    )

    @OptionGroup var transport: TransportOptions

    @Option(help: "HS256 secret (env SWITCHBOARD_JWT_SECRET). Without any key option, a development secret is used and a token is printed.")
    var jwtSecret: String?

    @Option(help: "PEM file with an RS256, ES256 or EdDSA public key (env SWITCHBOARD_JWT_PUBLIC_KEY).")
    var jwtPublicKey: String?

    @Option(help: "JWKS file with public keys (env SWITCHBOARD_JWKS_FILE).")
    var jwksFile: String?

    @Option(help: "Secret for the HTTP publish API under /api (Authorization: Bearer <key>), at least 16 bytes and separate from the JWT key; without it the API answers 404 api_disabled (env SWITCHBOARD_API_KEY).")
    var apiKey: String?

    @Option(help: "Key of the operations page at /ops?key=KEY: live connections, rooms, message rates, close codes, slow-consumer and rate-limit closes (env SWITCHBOARD_OPS_KEY; at least 16 bytes). Without it the page is off, except with the development secret, where it is open. Needs an HS256 secret (--jwt-secret) to sign the page's token.")
    var opsKey: String?

    @Option(help: "Required token issuer (env SWITCHBOARD_JWT_ISSUER).")
    var jwtIssuer: String?

    @Option(help: "Required token audience (env SWITCHBOARD_JWT_AUDIENCE).")
    var jwtAudience: String?

    @Option(help: "SQLite file of room memberships (env SWITCHBOARD_DATABASE).")
    var database: String = EnvironmentDefault.string("SWITCHBOARD_DATABASE", "switchboard.sqlite")

    @Option(name: .customLong("allowed-origin"), help: "Browser origin allowed to connect; repeatable; none means any (env SWITCHBOARD_ALLOWED_ORIGINS, comma-separated).")
    var allowedOrigins: [String] = EnvironmentDefault.list("SWITCHBOARD_ALLOWED_ORIGINS")

    @Option(help: "JSON file of room permissions by room-name pattern: who may join, publish and see presence (see the README); without it every room is open (env SWITCHBOARD_PERMISSIONS).")
    var permissions: String?

    @Option(help: "Concurrent connections per user (env SWITCHBOARD_MAX_CONNECTIONS_PER_USER).")
    var maxConnectionsPerUser: Int = EnvironmentDefault.int("SWITCHBOARD_MAX_CONNECTIONS_PER_USER", 5)

    @Option(help: "Send presence.join/presence.leave to room members: true or false (env SWITCHBOARD_PRESENCE).")
    var presence: Bool = EnvironmentDefault.bool("SWITCHBOARD_PRESENCE", true)

    @Option(help: "How long a user whose connection ended stays present, so that a reconnect within it announces neither presence.leave nor presence.join, e.g. 5s; 0s announces every disconnect at once (env SWITCHBOARD_PRESENCE_GRACE).")
    var presenceGrace: DurationArgument = EnvironmentDefault.duration("SWITCHBOARD_PRESENCE_GRACE", "5s")

    @Option(help: "Keep each room event this long for clients that resume, e.g. 1h (env SWITCHBOARD_HISTORY_TTL).")
    var historyTTL: DurationArgument = EnvironmentDefault.duration("SWITCHBOARD_HISTORY_TTL", "1h")

    @Option(help: "Most events kept per room (env SWITCHBOARD_HISTORY_SIZE); 0 keeps none.")
    var historySize: Int = EnvironmentDefault.int("SWITCHBOARD_HISTORY_SIZE", 1000)

    @Option(help: "Most MiB all rooms' history may hold (env SWITCHBOARD_HISTORY_MEMORY).")
    var historyMemory: Int = EnvironmentDefault.int("SWITCHBOARD_HISTORY_MEMORY", 256)

    @Option(help: "Most events replayed to a resuming client per room; further behind gets state.refresh (env SWITCHBOARD_MAX_REPLAY).")
    var maxReplay: Int = EnvironmentDefault.int("SWITCHBOARD_MAX_REPLAY", 1000)

    @Option(help: "How long a client message id is remembered for retries, e.g. 10m (env SWITCHBOARD_IDEMPOTENCY_WINDOW).")
    var idempotencyWindow: DurationArgument = EnvironmentDefault.duration("SWITCHBOARD_IDEMPOTENCY_WINDOW", "10m")

    @Option(help: "Redis URL, redis://[user:password@]host:port/db: rooms' positions, history, delivery, presence, the per-user connection limit and message ids are shared by every node on it (env SWITCHBOARD_REDIS_URL). Without it, everything stays in this process.")
    var redis: String?

    @Option(name: .customLong("redis-node-ttl"), help: "With --redis: how long this node's presence entries and connection-limit slots stay in Redis after its last refresh (it refreshes them every third of this), so that a node that dies without cleaning up (kill -9) is forgotten within it; at least 1s (env SWITCHBOARD_REDIS_NODE_TTL).")
    var redisNodeTTL: DurationArgument = EnvironmentDefault.duration("SWITCHBOARD_REDIS_NODE_TTL", "30s")

    @Option(help: "On SIGTERM or SIGINT, close the open connections with 1012 (service restart) at times spread over this window, so that their clients do not all reconnect at once, e.g. 5s; 0s closes them all at once (env SWITCHBOARD_DRAIN_WINDOW).")
    var drainWindow: DurationArgument = EnvironmentDefault.duration("SWITCHBOARD_DRAIN_WINDOW", "5s")

    @Option(help: "On SIGTERM or SIGINT, exit within this time: connections still open then are dropped; at least --drain-window (env SWITCHBOARD_DRAIN_TIMEOUT).")
    var drainTimeout: DurationArgument = EnvironmentDefault.duration("SWITCHBOARD_DRAIN_TIMEOUT", "10s")

    @Option(help: "Rate limits: false turns every event and handshake limit off, e.g. for load tests (env SWITCHBOARD_RATE_LIMITS).")
    var rateLimits: Bool = EnvironmentDefault.bool("SWITCHBOARD_RATE_LIMITS", true)

    @Option(
        name: .customLong("event-rate-limit"),
        help: "Per-connection limit of a client event, EVENT=RATE/BURST (per second / at once) or EVENT=off; * for every event not named; repeatable. Default message.send=20/40 and *=100/200; presence.heartbeat is not limited (env SWITCHBOARD_EVENT_RATE_LIMITS, comma-separated)."
    )
    var eventRateLimits: [EventRateLimitArgument] = []

    @Option(help: "Handshakes per remote address (IPv6: per /64), RATE/BURST or off, refused with 429 before the token is checked (env SWITCHBOARD_HANDSHAKE_RATE_LIMIT).")
    var handshakeRateLimit: RateLimitArgument = EnvironmentDefault.rateLimit("SWITCHBOARD_HANDSHAKE_RATE_LIMIT", "20/40")

    @Option(help: "Apply the handshake limit to loopback addresses too; off by default, since a proxy on the same host and local load tests connect from there (env SWITCHBOARD_RATE_LIMIT_LOOPBACK).")
    var rateLimitLoopback: Bool = EnvironmentDefault.bool("SWITCHBOARD_RATE_LIMIT_LOOPBACK", false)

    @Option(help: "Close a connection with 1008 once its limited events exceed N at once or N per DURATION, N/DURATION or off (env SWITCHBOARD_RATE_LIMIT_CLOSE_AFTER).")
    var rateLimitCloseAfter: AbuseLimitArgument = EnvironmentDefault.abuseLimit("SWITCHBOARD_RATE_LIMIT_CLOSE_AFTER", "100/10s")

    /// `--event-rate-limit`, or the environment's when none is given.
    private var eventRateLimitEntries: [EventRateLimitArgument] {
        get throws {
            guard eventRateLimits.isEmpty else { return eventRateLimits }
            return try EnvironmentDefault.list("SWITCHBOARD_EVENT_RATE_LIMITS").map { entry in
                guard let parsed = EventRateLimitArgument(argument: entry) else {
                    throw ValidationError("SWITCHBOARD_EVENT_RATE_LIMITS: \"\(entry)\" is not EVENT=RATE/BURST or EVENT=off")
                }
                return parsed
            }
        }
    }

    /// The rate limits the options describe.
    var rateLimitConfiguration: RateLimits {
        get throws {
            guard rateLimits else { return .off }
            var limits = RateLimits()
            for entry in try eventRateLimitEntries {
                entry.apply(to: &limits)
            }
            limits.handshakesPerAddress = handshakeRateLimit.limit
            limits.exemptLoopback = !rateLimitLoopback
            limits.closeAfterLimited = rateLimitCloseAfter.limit
            return limits
        }
    }

    func validate() throws {
        _ = try rateLimitConfiguration
        guard maxConnectionsPerUser >= 1 else { throw ValidationError("--max-connections-per-user must be at least 1") }
        guard historySize >= 0 else { throw ValidationError("--history-size must be 0 or more") }
        guard historyMemory >= 1 else { throw ValidationError("--history-memory must be at least 1 (MiB)") }
        guard maxReplay >= 0 else { throw ValidationError("--max-replay must be 0 or more") }
        guard historyTTL.duration > .zero else { throw ValidationError("--history-ttl must be positive") }
        guard idempotencyWindow.duration > .zero else { throw ValidationError("--idempotency-window must be positive") }
        // Shorter, and the refreshes (every third of it) would load Redis, and a small clock
        // difference between nodes would expire a live node's entries.
        guard redisNodeTTL.duration >= .seconds(1) else { throw ValidationError("--redis-node-ttl must be at least 1s") }
        guard drainWindow.duration >= .zero else { throw ValidationError("--drain-window must be 0s or more") }
        if let key = apiKeySecret, key.utf8.count < 16 { throw ValidationError("--api-key must be at least 16 bytes") }
        if let key = opsKeySecret, key.utf8.count < 16 { throw ValidationError("--ops-key must be at least 16 bytes") }
        guard drainTimeout.duration >= drainWindow.duration else { throw ValidationError("--drain-timeout must be at least --drain-window") }
        if let path = permissionsFile {
            do {
                _ = try RoomRules.load(contentsOf: path)
            } catch {
                throw ValidationError("--permissions: \(error)")
            }
        }
        if let url = redisURL {
            do {
                _ = try RedisConfiguration(url: url)
            } catch {
                throw ValidationError("--redis: \(error)")
            }
        }
    }

    private var apiKeySecret: String? { apiKey ?? EnvironmentDefault.string("SWITCHBOARD_API_KEY") }
    private var opsKeySecret: String? { opsKey ?? EnvironmentDefault.string("SWITCHBOARD_OPS_KEY") }
    private var redisURL: String? { redis ?? EnvironmentDefault.string("SWITCHBOARD_REDIS_URL") }
    private var permissionsFile: String? { permissions ?? EnvironmentDefault.string("SWITCHBOARD_PERMISSIONS") }

    func run() async throws {
        var configuration = SwitchboardConfiguration()
        transport.apply(to: &configuration)
        configuration.allowedOrigins = allowedOrigins
        configuration.maxConnectionsPerUser = maxConnectionsPerUser
        configuration.presence = presence
        configuration.presenceGracePeriod = presenceGrace.duration
        configuration.history = HistoryConfiguration(
            retention: historyTTL.duration, maxEventsPerRoom: historySize, maxBytes: historyMemory << 20, maxReplay: maxReplay)
        configuration.idempotencyWindow = idempotencyWindow.duration
        configuration.rateLimits = try rateLimitConfiguration
        configuration.drainWindow = drainWindow.duration
        configuration.drainTimeout = drainTimeout.duration
        let logger = transport.makeLogger()

        let jwtSecret = self.jwtSecret ?? EnvironmentDefault.string("SWITCHBOARD_JWT_SECRET")
        let jwtPublicKey = self.jwtPublicKey ?? EnvironmentDefault.string("SWITCHBOARD_JWT_PUBLIC_KEY")
        let jwksFile = self.jwksFile ?? EnvironmentDefault.string("SWITCHBOARD_JWKS_FILE")
        let jwtIssuer = self.jwtIssuer ?? EnvironmentDefault.string("SWITCHBOARD_JWT_ISSUER")
        let jwtAudience = self.jwtAudience ?? EnvironmentDefault.string("SWITCHBOARD_JWT_AUDIENCE")
        var keys: [TokenKey] = []
        if let jwtSecret { keys.append(.hmacSecret(jwtSecret)) }
        if let jwtPublicKey { keys.append(.publicKeyPEM(try String(contentsOfFile: jwtPublicKey, encoding: .utf8))) }
        if let jwksFile { keys.append(.jwksJSON(try String(contentsOfFile: jwksFile, encoding: .utf8))) }
        let development = keys.isEmpty
        if development { keys.append(.hmacSecret(TokenMinter.developmentSecret)) }
        let verifier = try await TokenVerifier(keys: keys, options: .init(issuer: jwtIssuer, audience: jwtAudience))

        // Checked by validate(); read again here, since a command keeps no state between the two.
        let rules = try permissionsFile.map { path in try RoomRules.load(contentsOf: path) }
        // The operations page: open with the development secret, behind --ops-key otherwise, and
        // only where the server can sign the page's token (an HS256 secret).
        let node = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        let opsRoom = "switchboard:ops:\(node)"
        let opsSigningSecret = development ? TokenMinter.developmentSecret : jwtSecret
        let ops: OpsRoutes? =
            if let opsSigningSecret, development || opsKeySecret != nil {
                OpsRoutes(
                    key: opsKeySecret.map(APIKey.init), minter: TokenMinter(hs256Secret: opsSigningSecret), issuer: jwtIssuer, audience: jwtAudience,
                    room: opsRoom)
            } else {
                nil
            }
        let memberships = try SQLiteMembershipStore(path: database)
        var router = EventRouter()
        router.addChatEvents()
        // Created here rather than by the server, so that they run as services: they drop what
        // has expired even in rooms and for users that are idle.
        let broker: any Broker & Service
        var readiness: StandaloneApplication.Readiness = { nil }
        let idempotency: any IdempotencyStore
        var presenceStore: (any PresenceStore)?
        var connectionSlots: (any ConnectionSlotStore)?
        var services: [any Service] = []
        // One group for the HTTP server and the Redis connections: an event from Redis is handed
        // to the rooms on a loop of the server's, not from a thread of another group.
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: transport.threads)
        if let redisURL {
            // Every node on this Redis shares positions, history, presence, the per-user
            // connection limit and the idempotency window, through the broker's command pool.
            let redisBroker = try RedisBroker(
                configuration: try RedisConfiguration(url: redisURL), history: configuration.history, clock: ContinuousClock(), eventLoopGroup: eventLoopGroup,
                logger: logger)
            // Not ready while Redis cannot be reached, or while the last probe of the pub/sub
            // connection did not come back (a wedged subscription delivers nothing).
            readiness = { redisBroker.notReadyReason }
            broker = redisBroker
            let presence = RedisPresenceStore(client: redisBroker.client, entryTTL: redisNodeTTL.duration, logger: logger)
            let slots = RedisConnectionSlotStore(client: redisBroker.client, slotTTL: redisNodeTTL.duration, logger: logger)
            presenceStore = presence
            connectionSlots = slots
            idempotency = RedisIdempotencyStore(client: redisBroker.client, window: configuration.idempotencyWindow, logger: logger)
            // Services shut down in reverse order, each once the one after it has returned (the
            // HTTP server, added last by Hummingbird, first): the slot store gives this node's
            // slots back while the broker's command pool is still open.
            services = [broker, presence, slots]
        } else {
            broker = InMemoryBroker(configuration: configuration.history)
            let memory = InMemoryIdempotencyStore(window: configuration.idempotencyWindow, maxKeysPerUser: configuration.idempotencyKeysPerUser)
            idempotency = memory
            services = [broker, memory]
        }
        let switchboard = SwitchboardServer(
            configuration: configuration,
            authentication: .jwt(verifier),
            router: router,
            memberships: memberships,
            authorizer: ops.map { OpsRoomAuthorizer(room: $0.room, rules: rules) } ?? rules,
            broker: broker,
            presence: presenceStore,
            snapshot: .latestEvents(configuration.history.snapshotEvents),
            idempotency: idempotency,
            connectionSlots: connectionSlots,
            logger: logger
        )
        if presenceStore != nil {
            // Shut down after the HTTP server and before the stores: the presence of connections
            // that ended within the grace period is given up while Redis is still reachable.
            services.append(PresenceDepartures(switchboard: switchboard))
        }
        if let ops {
            services.append(OpsFeed(switchboard: switchboard, room: ops.room, node: node, interval: .seconds(1), readiness: readiness))
        }
        let devToken = development ? try await TokenMinter(hs256Secret: TokenMinter.developmentSecret).mint(subject: "dev", ttl: .seconds(24 * 3600)) : nil
        let host = transport.host
        let path = configuration.path
        try await StandaloneApplication.run(
            switchboard, host: host, port: transport.port, eventLoopGroup: eventLoopGroup, services: services, readiness: readiness,
            playground: development, apiKey: apiKeySecret.map(APIKey.init), ops: ops, logger: logger
        ) { port in
            Console.line("switchboard listening on ws://\(host):\(port)\(path)  (health: http://\(host):\(port)/healthz and /readyz, metrics: /metrics, publish API: \(apiKeySecret == nil ? "off" : "/api"), memberships: \(database)\(redisURL == nil ? "" : ", rooms on Redis"))")
            if let rules, let path = permissionsFile {
                Console.line("room permissions from \(path): \(rules.namespaces.count) namespaces\(rules.claim.map { ", rooms also joinable from the \"\($0)\" claim" } ?? "")")
            }
            if let devToken {
                Console.line("development secret in use (set --jwt-secret for real use); a token for user \"dev\", valid 24 h:")
                Console.line("  ws://\(host):\(port)\(path)?token=\(devToken)")
                Console.line("playground: http://\(host):\(port)/  (connect, join rooms, send events, watch what arrives); operations: http://\(host):\(port)/ops")
            }
        }
        try await eventLoopGroup.shutdownGracefully()
    }
}
