import Logging
import NIOConcurrencyHelpers
import NIOCore
import Switchboard

/// An ``IdempotencyStore`` shared by every node on one Redis: a retried message that lands on
/// another node (the client reconnected elsewhere) still runs once and gets the first reply.
///
/// One key per message id, `<prefix>{user:<id>}:id:<message id>`:
/// - The first attempt sets it to `P<fingerprint>` (`SET NX`, for `pendingTimeout`): handling.
/// - ``complete(_:reply:remember:)`` sets it to `D<fingerprint><reply frame>` for `window`, or
///   deletes it when the reply is not to be remembered.
/// - A retry that finds `D…` gets the reply frame byte for byte; one that finds `P…` waits for the
///   first attempt (on this node through a promise, on another by reading the key again every
///   20 ms for at most `pendingTimeout`), and gets `unavailable` if the first attempt never
///   finishes. Another fingerprint is ``IdempotencyClaim/conflict``.
///
/// Keys expire on their own, so memory is bounded by the rate of ids times `window` (Redis's
/// `maxmemory` caps it); there is no per-user bound as in ``InMemoryIdempotencyStore``. A fault
/// of Redis fails the claim: the server answers `unavailable` and does not run the handler.
public final class RedisIdempotencyStore: IdempotencyStore {
    public let client: RedisClient
    public let keyPrefix: String
    /// How long a handled id is remembered. Default 10 minutes.
    public let window: Duration
    /// How long a first attempt may take before its retries stop waiting for it. Default 30 s.
    public let pendingTimeout: Duration
    private let logger: Logger
    /// First attempts handled on this node, by key: retries here wait on the promise.
    private let local = NIOLockedValueBox<[IdempotencyKey: LocalAttempt]>([:])

    private struct LocalAttempt {
        let fingerprint: UInt64
        /// Retries on this node waiting for the reply.
        var waiters: [EventLoopPromise<ByteBuffer>] = []
    }

    public init(
        client: RedisClient,
        keyPrefix: String = "switchboard:",
        window: Duration = .seconds(600),
        pendingTimeout: Duration = .seconds(30),
        logger: Logger = Logger(label: "switchboard.redis.idempotency")
    ) {
        self.client = client
        self.keyPrefix = keyPrefix
        self.window = window
        self.pendingTimeout = pendingTimeout
        self.logger = logger
    }

    func key(_ key: IdempotencyKey) -> RESPCommandArgument {
        RESPCommandArgument("\(keyPrefix){user:\(key.user)}:id:\(key.id)")
    }

    static func fingerprintText(_ fingerprint: UInt64) -> String {
        let hex = String(fingerprint, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    public func claim(_ key: IdempotencyKey, fingerprint: UInt64, on eventLoop: any EventLoop) -> EventLoopFuture<IdempotencyClaim> {
        if let claim = localClaim(key, fingerprint: fingerprint, on: eventLoop) { return eventLoop.makeSucceededFuture(claim) }
        let promise = eventLoop.makePromise(of: IdempotencyClaim.self)
        let pending = "P" + Self.fingerprintText(fingerprint)
        promise.completeWithTask {
            let reply = try await self.client.eval(
                RedisIdempotencyScripts.claim, keys: [self.key(key)],
                arguments: [RESPCommandArgument(pending), RESPCommandArgument(NodeTime.milliseconds(self.pendingTimeout))],
                affinity: key.user)
            guard let value = reply.buffer else {
                guard reply.isNull else { throw RedisError.protocolError("idempotency claim answered \(reply)") }
                // First here: later retries on this node wait on the promise, not on Redis.
                let first = self.local.withLockedValue { local -> Bool in
                    guard local[key] == nil else { return false }
                    local[key] = LocalAttempt(fingerprint: fingerprint)
                    return true
                }
                return first ? .first : (self.localClaim(key, fingerprint: fingerprint, on: eventLoop) ?? .conflict)
            }
            return self.decode(value, key: key, fingerprint: fingerprint, on: eventLoop)
        }
        return promise.futureResult
    }

    private func localClaim(_ key: IdempotencyKey, fingerprint: UInt64, on eventLoop: any EventLoop) -> IdempotencyClaim? {
        local.withLockedValue { local in
            guard let attempt = local[key] else { return nil }
            guard attempt.fingerprint == fingerprint else { return .conflict }
            let waiter = eventLoop.makePromise(of: ByteBuffer.self)
            local[key]?.waiters.append(waiter)
            return .inProgress(waiter.futureResult)
        }
    }

    /// `P<fp>` or `D<fp><frame>`, as the claim found it.
    private func decode(_ value: ByteBuffer, key: IdempotencyKey, fingerprint: UInt64, on eventLoop: any EventLoop) -> IdempotencyClaim {
        var value = value
        guard let state = value.readString(length: 1), let stored = value.readString(length: 16), stored == Self.fingerprintText(fingerprint)
        else { return .conflict }
        if state == "D" { return .replied(value) }
        return .inProgress(waitForReply(key, fingerprint: fingerprint, on: eventLoop))
    }

    /// Reads the key again until another node's first attempt has finished.
    private func waitForReply(_ key: IdempotencyKey, fingerprint: UInt64, on eventLoop: any EventLoop) -> EventLoopFuture<ByteBuffer> {
        let promise = eventLoop.makePromise(of: ByteBuffer.self)
        let interval = Duration.milliseconds(20)
        let turns = max(1, Int(NodeTime.milliseconds(pendingTimeout) / 20))
        promise.completeWithTask {
            for _ in 0..<turns {
                try await Task.sleep(for: interval)
                let reply = try await self.client.send(RESPCommand("GET", self.key(key)), affinity: key.user)
                guard let value = reply.buffer else { throw RedisIdempotencyError.firstAttemptAbandoned }
                if case .replied(let frame) = self.decode(value, key: key, fingerprint: fingerprint, on: eventLoop) { return frame }
            }
            throw RedisIdempotencyError.firstAttemptAbandoned
        }
        return promise.futureResult
    }

    public func complete(_ key: IdempotencyKey, reply: ByteBuffer, remember: Bool) {
        // Only a first attempt (``IdempotencyClaim/first``) of this node is completed.
        guard let attempt = local.withLockedValue({ $0.removeValue(forKey: key) }) else { return }
        for waiter in attempt.waiters { waiter.succeed(reply) }
        let command: RESPCommand
        if remember {
            var value = ByteBuffer(string: "D" + Self.fingerprintText(attempt.fingerprint))
            value.writeImmutableBuffer(reply)
            command = RESPCommand(
                "SET", self.key(key), RESPCommandArgument(value), "PX", RESPCommandArgument(NodeTime.milliseconds(window)))
        } else {
            command = RESPCommand("DEL", self.key(key))
        }
        Task {
            do {
                _ = try await client.send(command, affinity: key.user)
            } catch {
                // Retries on other nodes then wait out `pendingTimeout` and get `unavailable`.
                logger.warning("idempotency reply not stored", metadata: ["user": "\(key.user)", "error": "\(error)"])
            }
        }
    }
}

enum RedisIdempotencyError: Error {
    /// The first attempt's node neither stored a reply nor gave the id up in time.
    case firstAttemptAbandoned
}

/// The Lua script of ``RedisIdempotencyStore``.
enum RedisIdempotencyScripts {
    /// KEYS: the id's key. ARGV: `P<fingerprint>`, pending timeout ms. Returns nil when this is the
    /// first attempt (the key is now set), else the key's value.
    static let claim = RedisScript(
        """
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
        return redis.call('GET', KEYS[1])
        """)
}
