import Atomics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A Switchboard server: handshake checks, connections, rooms and event routing, independent of
/// any HTTP framework. `SwitchboardHummingbird` serves it on a Hummingbird app's port.
public final class SwitchboardServer: Sendable {
    /// How handshakes are authenticated.
    public enum Authentication: Sendable {
        /// A JWT in `?token=` or `Authorization: Bearer`, verified before the upgrade.
        case jwt(TokenVerifier)
        /// No authentication: every connection is ``AuthenticatedUser/anonymous`` and the
        /// per-user limit does not apply. For echo servers and tests only.
        case none
    }

    /// Decides whether a socket may join a room: the `authorizeJoin:` parameter, a join-only
    /// ``RoomAuthorizer``.
    public typealias JoinAuthorizer = @Sendable (Socket, String) async throws -> Bool

    enum Mode: Sendable {
        case events(EventRouter)
        /// Every message is sent back as it came: for RFC test suites.
        case echo
    }

    public let configuration: SwitchboardConfiguration
    /// The rooms of this server.
    public let rooms: RoomManager
    public let logger: Logger
    let authentication: Authentication
    let mode: Mode
    let memberships: (any MembershipStore)?
    /// Asked about every client join, publish and presence request; `nil` allows everything.
    let authorizer: (any RoomAuthorizer)?
    /// What `state.refresh` carries.
    let snapshot: RoomSnapshot
    /// The replies to client message ids, for retries.
    public let idempotency: any IdempotencyStore
    /// The store again when it claims synchronously (the in-memory one), for the message path.
    let synchronousIdempotency: (any SynchronousIdempotencyStore)?
    /// Each user's connection slots.
    public let connectionSlots: any ConnectionSlotStore
    let socketIDs = SocketIDGenerator()
    /// Handshakes by outcome, for ``metricsSnapshot()``.
    let handshakeOutcomes = HandshakeOutcomes()
    /// Connections closed as slow consumers since the server started.
    let slowConsumers = ManagedAtomic<Int>(0)
    /// The rate limits of ``SwitchboardConfiguration/rateLimits`` at work.
    let rateLimiting: RateLimiting
    private let hubs = NIOLockedValueBox<[ObjectIdentifier: LoopHub]>([:])
    /// The drain, once one has started (see ``drain()``).
    let drainState = NIOLockedValueBox<Task<Void, Never>?>(nil)
    /// Starts a timer on the server's clock: the returned function sleeps until the given offset
    /// from the moment the timer was started (a test's clock decides when that is).
    let startTimer: @Sendable () -> @Sendable (Duration) async throws -> Void

    /// Creates a server.
    /// - Parameters:
    ///   - configuration: limits and timers.
    ///   - authentication: how handshakes are authenticated.
    ///   - router: the app's event handlers; `room.join`, `room.leave`, `room.members` and
    ///     `presence.heartbeat` are added unless the router already handles them.
    ///   - memberships: rooms each user joins on connect (in addition to the token's rooms claim).
    ///   - authorizeJoin: asked before a client joins a room (see ``RoomAction/join``); publishing
    ///     and presence stay open. A shorthand for a join-only `authorizer`.
    ///   - authorizer: asked before a client joins a room, publishes to it or sees its members (see
    ///     ``RoomAuthorizer``); rooms joined on connect that it refuses are skipped and logged.
    ///     ``RoomRules`` gives rules by room-name pattern. With both this and `authorizeJoin`, a
    ///     join needs both to allow it. `nil` for both allows everything.
    ///   - broker: positions, history and delivery of room events; `nil` for an
    ///     ``InMemoryBroker`` with ``SwitchboardConfiguration/history``.
    ///   - presence: who is in each room; `nil` for an ``InMemoryPresenceStore``.
    ///   - snapshot: the `data` of `state.refresh`, sent instead of a replay that cannot be complete.
    ///   - idempotency: the replies to client message ids, for retries; `nil` for an
    ///     ``InMemoryIdempotencyStore`` with the configuration's window and bound.
    ///   - connectionSlots: each user's connections, against
    ///     ``SwitchboardConfiguration/maxConnectionsPerUser``; `nil` for an
    ///     ``InMemoryConnectionSlotStore``.
    ///   - clock: time for the presence grace period, for the default broker's and idempotency
    ///     store's retention, and for the rate limits' buckets (a test passes a clock it moves
    ///     itself).
    ///   - logger: lifecycle at info level, messages at debug level.
    public init<C: Clock & Sendable>(
        configuration: SwitchboardConfiguration = .init(),
        authentication: Authentication,
        router: EventRouter = EventRouter(),
        memberships: (any MembershipStore)? = nil,
        authorizeJoin: JoinAuthorizer? = nil,
        authorizer: (any RoomAuthorizer)? = nil,
        broker: (any Broker)? = nil,
        presence: (any PresenceStore)? = nil,
        snapshot: RoomSnapshot = .none,
        idempotency: (any IdempotencyStore)? = nil,
        connectionSlots: (any ConnectionSlotStore)? = nil,
        clock: C = ContinuousClock(),
        logger: Logger = Logger(label: "switchboard")
    ) where C.Duration == Duration {
        self.configuration = configuration
        self.authentication = authentication
        var router = router
        router.addBuiltinEvents()
        self.mode = .events(router)
        self.memberships = memberships
        switch (authorizeJoin.map(JoinOnlyRoomAuthorizer.init), authorizer) {
        case (nil, nil): self.authorizer = nil
        case (let joinOnly?, nil): self.authorizer = joinOnly
        case (nil, let authorizer?): self.authorizer = authorizer
        case (let joinOnly?, let authorizer?): self.authorizer = BothRoomAuthorizers(first: joinOnly, second: authorizer)
        }
        self.logger = logger
        self.snapshot = snapshot
        let idempotency =
            idempotency
            ?? InMemoryIdempotencyStore(window: configuration.idempotencyWindow, maxKeysPerUser: configuration.idempotencyKeysPerUser, clock: clock)
        self.idempotency = idempotency
        self.synchronousIdempotency = idempotency as? any SynchronousIdempotencyStore
        self.rooms = RoomManager(
            broker: broker ?? InMemoryBroker(configuration: configuration.history, clock: clock),
            presence: presence ?? InMemoryPresenceStore(),
            logger: logger,
            announcesPresence: configuration.presence,
            maxReplay: configuration.history.maxReplay,
            presenceGrace: configuration.presenceGracePeriod,
            sleep: { try await clock.sleep(for: $0) }
        )
        self.connectionSlots = connectionSlots ?? InMemoryConnectionSlotStore()
        self.rateLimiting = RateLimiting(configuration.rateLimits, now: RateLimiting.uptime(of: clock))
        self.startTimer = Self.timer(on: clock)
        (rooms.broker as? any UserEventBroker)?.attachUserEvents(self)
    }

    private init(echoConfiguration configuration: SwitchboardConfiguration, logger: Logger) {
        self.configuration = configuration
        self.authentication = .none
        self.mode = .echo
        self.memberships = nil
        self.authorizer = nil
        self.logger = logger
        self.snapshot = .none
        self.idempotency = InMemoryIdempotencyStore()
        self.synchronousIdempotency = nil
        self.rooms = RoomManager(broker: InMemoryBroker(configuration: configuration.history), presence: InMemoryPresenceStore(), logger: logger)
        self.connectionSlots = InMemoryConnectionSlotStore()
        self.rateLimiting = RateLimiting(configuration.rateLimits, now: RateLimiting.uptime(of: ContinuousClock()))
        self.startTimer = Self.timer(on: ContinuousClock())
    }

    private static func timer<C: Clock & Sendable>(on clock: C) -> @Sendable () -> @Sendable (Duration) async throws -> Void
    where C.Duration == Duration {
        {
            let start = clock.now
            return { offset in try await clock.sleep(until: start.advanced(by: offset), tolerance: nil) }
        }
    }

    /// A server that echoes every text and binary message on the same transport, limits and
    /// timers, without authentication: for RFC 6455 conformance suites.
    public static func echo(configuration: SwitchboardConfiguration = .init(), logger: Logger = Logger(label: "switchboard")) -> SwitchboardServer {
        SwitchboardServer(echoConfiguration: configuration, logger: logger)
    }

    // MARK: handshake

    /// Checks a handshake before the upgrade: whether the server drains (503 `draining`, before
    /// anything else), the remote address's handshake rate (429), origin (403), token (401), the user's connection limit (429), and loads the
    /// rooms to auto-join (503 if the store fails).
    public func evaluateHandshake(uri: String, headers: HTTPHeaders, remoteAddress: SocketAddress?) async -> HandshakeDecision {
        // Before the token is verified: a flood costs a table lookup per attempt, not a signature
        // check. Logged by the limiter, throttled, not once per refusal.
        // A draining node is asked first: its clients reconnect all at once (to other nodes, the
        // load balancer permitting), and should hear why rather than a rate limit. Not logged per
        // refusal either: the drain's start is.
        if isDraining {
            handshakeOutcomes.count(HandshakeRejection.draining.code)
            return .reject(.draining)
        }
        if let rejection = rateLimiting.checkHandshake(from: remoteAddress, logger: logger) {
            handshakeOutcomes.count(rejection.code)
            return .reject(rejection)
        }
        let redactedURI = HandshakeCredentials.redact(uri)
        let decision = await decide(uri: uri, headers: headers, redactedURI: redactedURI)
        switch decision {
        case .accept: handshakeOutcomes.count("accepted")
        case .reject(let rejection): handshakeOutcomes.count(rejection.code)
        }
        if case .reject(let rejection) = decision {
            logger.info(
                "handshake rejected",
                metadata: [
                    "status": "\(rejection.status.code)", "reason": "\(rejection.code)",
                    "uri": "\(redactedURI)", "remote": "\(remoteAddress.map { "\($0)" } ?? "-")",
                ]
            )
        }
        return decision
    }

    /// Says what ``evaluateHandshake(uri:headers:remoteAddress:)`` would decide, without taking a
    /// connection slot: `nil` when the handshake would be accepted, the rejection otherwise. For
    /// the plain HTTP `GET` on the WebSocket path, which lets a browser (that sees only 1006 for a
    /// refused handshake) learn why it was refused. A check counts against the handshake rate of
    /// `remoteAddress` (it verifies the token too).
    public func checkHandshake(uri: String, headers: HTTPHeaders, remoteAddress: SocketAddress? = nil) async -> HandshakeRejection? {
        if isDraining { return .draining }
        if let rejection = rateLimiting.checkHandshake(from: remoteAddress, logger: logger) {
            return rejection
        }
        let redactedURI = HandshakeCredentials.redact(uri)
        switch await decide(uri: uri, headers: headers, redactedURI: redactedURI, takesSlot: false) {
        case .accept:
            return nil
        case .reject(let rejection):
            logger.debug("handshake check refused", metadata: ["status": "\(rejection.status.code)", "reason": "\(rejection.code)", "uri": "\(redactedURI)"])
            return rejection
        }
    }

    private func decide(uri: String, headers: HTTPHeaders, redactedURI: String, takesSlot: Bool = true) async -> HandshakeDecision {
        guard !isDraining else { return .reject(.draining) }
        if !configuration.allowedOrigins.isEmpty {
            let origin = headers.first(name: "Origin")
            guard let origin, configuration.allowedOrigins.contains(origin) else {
                return .reject(HandshakeRejection(status: .forbidden, code: "origin_not_allowed", message: "origin not allowed"))
            }
        }
        let user: AuthenticatedUser
        switch authentication {
        case .none:
            var accepted = AcceptedHandshake(user: .anonymous, rooms: [], redactedURI: redactedURI, slot: nil)
            accepted.deflate = negotiateCompression(headers)
            return .accept(accepted)
        case .jwt(let verifier):
            guard let token = HandshakeCredentials.token(uri: uri, headers: headers) else {
                return .reject(HandshakeRejection(status: .unauthorized, code: "token_missing", message: "a token is required"))
            }
            do {
                let verified = try await verifier.verify(token)
                user = AuthenticatedUser(id: verified.subject, claims: verified.claims, expiresAt: verified.expiresAt)
            } catch {
                return .reject(HandshakeRejection(status: .unauthorized, code: error.code, message: error.reason))
            }
        }
        var rooms: [String] = []
        if let claim = configuration.roomsClaim, let names = user.claims[claim]?.arrayValue {
            rooms = names.compactMap { $0.stringValue }.filter { RoomName.validate($0) == nil }
        }
        // The stores must answer within the handshake's deadline: a stalled store turns into 503,
        // not into handshakes that hang without limit.
        let deadline = HandshakeDeadline(timeout: configuration.handshakeStoreTimeout)
        if let memberships {
            do {
                rooms += try await deadline.run { try await memberships.rooms(of: user.id) }
            } catch {
                logger.error("membership store failed", metadata: ["user": "\(user.id)", "error": "\(error)"])
                return .reject(.storeUnavailable)
            }
        }
        let limit = configuration.maxConnectionsPerUser
        let slot: ConnectionSlot?
        do {
            if takesSlot {
                let slots = connectionSlots
                // A slot taken after the deadline gave up on it would be held by no connection.
                slot = try await deadline.run(late: { $0.map(slots.release) }) { try await slots.acquire(user.id, limit: limit) }
                guard slot != nil else { return .reject(.tooManyConnections(limit: limit)) }
            } else {
                guard try await deadline.run({ try await self.connectionSlots.count(of: user.id) }) < limit else {
                    return .reject(.tooManyConnections(limit: limit))
                }
                slot = nil
            }
        } catch {
            logger.error("connection slot store failed", metadata: ["user": "\(user.id)", "error": "\(error)"])
            return .reject(.storeUnavailable)
        }
        var seen = Set<String>()
        rooms = rooms.filter { seen.insert($0).inserted }
        var accepted = AcceptedHandshake(user: user, rooms: rooms, redactedURI: redactedURI, slot: slot)
        accepted.deflate = negotiateCompression(headers)
        return .accept(accepted)
    }

    /// The permessage-deflate offer to accept, when the server compresses.
    private func negotiateCompression(_ headers: HTTPHeaders) -> DeflateParameters? {
        guard configuration.compression != nil else { return nil }
        return DeflateNegotiation.accept(offers: headers["Sec-WebSocket-Extensions"])
    }

    /// Gives back the connection slot of a handshake that was accepted but not upgraded.
    public func abandon(_ accepted: AcceptedHandshake) {
        if let slot = accepted.slot { connectionSlots.release(slot) }
    }

    /// Takes over an upgraded channel whose pipeline has NIO's `WebSocketFrameEncoder` and
    /// `WebSocketFrameDecoder`: adds the connection handler. Call on the channel's event loop.
    ///
    /// From then on the connection handler owns the handshake's connection slot and gives it back
    /// when the connection ends. If this throws (the channel closed in the meantime), the slot has
    /// already been given back: do not call ``abandon(_:)`` for it.
    public func install(_ accepted: AcceptedHandshake, on channel: any Channel) throws {
        let hub = self.hub(for: channel.eventLoop)
        let socket = Socket(id: socketIDs.next(), user: accepted.user, channel: channel, hub: hub)
        socket.deflate = accepted.deflate?.serverWindowBits ?? 0
        let handler = WebSocketConnectionHandler(socket: socket, switchboard: self, accepted: accepted)
        do {
            try channel.pipeline.syncOperations.addHandler(handler)
        } catch {
            // No handler took the handshake over, so nothing else would release its slot.
            abandon(accepted)
            throw error
        }
    }

    /// The NIO channel options a WebSocket connection should have: outbound byte accounting with
    /// the configured high-water mark, and a receive buffer that starts small so that idle
    /// connections hold little memory. Call it when the connection is accepted, before its first
    /// read: NIO keeps a channel's last receive buffer for reuse.
    public func configureChannel(_ channel: any Channel) {
        let high = max(configuration.outboundHighWaterMark, 2)
        _ = channel.setOption(ChannelOptions.writeBufferWaterMark, value: .init(low: high / 2, high: high))
        _ = channel.setOption(
            ChannelOptions.recvAllocator,
            value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: max(65536, configuration.maxMessageSize + 14))
        )
        // NIO keeps up to this many receive buffers per channel for reuse; one is enough for
        // small messages, and a socket that once read a burst does not keep it.
        _ = channel.setOption(ChannelOptions.maxMessagesPerRead, value: 1)
    }

    /// The hubs of every event loop that has had a connection.
    var allHubs: [LoopHub] { hubs.withLockedValue { Array($0.values) } }

    func hub(for eventLoop: any EventLoop) -> LoopHub {
        hubs.withLockedValue { hubs in
            let key = ObjectIdentifier(eventLoop)
            if let hub = hubs[key] { return hub }
            let hub = LoopHub(eventLoop: eventLoop, configuration: configuration, draining: drainState.withLockedValue { $0 != nil })
            hubs[key] = hub
            return hub
        }
    }

    /// How often the rate limits refused events and handshakes, and closed connections, since the
    /// server started. Each refusal is also logged: at debug level one by one, and at warning
    /// level once per 10 s per kind, with the number not logged in between.
    public var rateLimitCounters: RateLimitCounters {
        rateLimiting.counters
    }

    /// Open connections, over all event loops.
    public func connectionCount() async -> Int {
        var total = 0
        for hub in hubs.withLockedValue({ Array($0.values) }) {
            total += (try? await hub.eventLoop.submit { hub.count }.get()) ?? 0
        }
        return total
    }

    /// Starts the close handshake on every connection at once (e.g. with 1001). For a restart or a
    /// deploy, ``drain()`` spreads the closes and refuses new handshakes meanwhile.
    public func closeAll(code: UInt16 = CloseCode.goingAway, reason: String = "server shutting down") {
        for hub in hubs.withLockedValue({ Array($0.values) }) {
            hub.eventLoop.execute { hub.closeAll(code: code, reason: reason) }
        }
    }
}
