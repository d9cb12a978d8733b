import Foundation
import Testing

@testable import Switchboard
@testable import SwitchboardRedis

/// `switchboard serve --redis` processes on free loopback ports sharing one private
/// redis-server, for tests of several nodes as real processes (kill -9, Redis stopped under
/// them). ``with(nodes:arguments:_:)`` ends every process it started, on success and on failure.
final class ServeCluster: Sendable {
    static let secret = "redis-cluster-test-secret-of-at-least-32-bytes"
    /// The nodes, in start order (A, B, C…).
    let nodes: [CLIProcess]
    /// Each node's HTTP/WebSocket port.
    let ports: [Int]
    let minter: TokenMinter
    /// Every redis-server started for the test (the last one is current): all are stopped at the
    /// end.
    private let servers: TestLockedBox<[RedisServer]>

    private init(nodes: [CLIProcess], ports: [Int], minter: TokenMinter, servers: TestLockedBox<[RedisServer]>) {
        self.nodes = nodes
        self.ports = ports
        self.minter = minter
        self.servers = servers
    }

    /// The redis-server the nodes use now.
    var redis: RedisServer {
        get throws {
            guard let current = servers.withLock({ $0.last }) else { throw RedisTestError.missing("no redis-server started") }
            return current
        }
    }

    /// Starts a private redis-server and `count` nodes on it (`serve --redis … --presence-grace 0s
    /// --rate-limits false` plus `arguments`), waits (bounded) until every node says it is ready, runs `body`, and then
    /// ends the nodes and the redis-server(s), whatever happened.
    static func with(nodes count: Int, arguments: [String] = [], _ body: (ServeCluster) async throws -> Void) async throws {
        let redis = try await RedisServer.start()
        let servers = TestLockedBox([redis])
        let started = TestLockedBox<[CLIProcess]>([])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-cluster-\(UUID().uuidString)")
        func cleanUp() async {
            for node in started.withLock({ $0 }) { node.terminate() }
            for server in servers.withLock({ $0 }) { await server.stop() }
            try? FileManager.default.removeItem(at: directory)
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for index in 0..<count {
                // Each node has its own membership file, as nodes on separate machines would.
                let node = try CLIProcess(
                    ["serve", "--port", "0", "--database", directory.appendingPathComponent("node\(index).sqlite").path,
                     "--redis", "redis://127.0.0.1:\(redis.port)/0", "--presence-grace", "0s",
                     // The tests' publishers send as fast as the acks come, far past the default
                     // 20 message.send/s of one connection.
                     "--rate-limits", "false"] + arguments,
                    environment: ["SWITCHBOARD_JWT_SECRET": secret], standardError: directory.appendingPathComponent("node\(index).log"))
                started.withLock { $0.append(node) }
            }
            let nodes = started.withLock { $0 }
            var ports: [Int] = []
            for node in nodes {
                let text = try await node.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)
                ports.append(try #require(Int(text)))
            }
            let cluster = ServeCluster(nodes: nodes, ports: ports, minter: try await TokenMinter(hs256Secret: secret), servers: servers)
            // Nodes connect to Redis in the background: they say when they are ready.
            try await cluster.waitUntilReady()
            try await body(cluster)
        } catch {
            // What the nodes logged says what they did about it (a resynchronization, a reconnect).
            let logs = (0..<started.withLock { $0.count }).map { index in
                let text = (try? String(contentsOf: directory.appendingPathComponent("node\(index).log"), encoding: .utf8)) ?? ""
                return "node \(index):\n" + text.split(separator: "\n").suffix(40).joined(separator: "\n")
            }
            await cleanUp()
            throw StepError(step: "the cluster's test (the nodes' last log lines:\n\(logs.joined(separator: "\n"))\n)", error: error)
        }
        await cleanUp()
    }

    func token(_ user: String) async throws -> String {
        try await minter.mint(subject: user, ttl: .seconds(600))
    }

    /// `GET path` on node `node`: the whole response.
    func get(_ path: String, node: Int) async throws -> String {
        try await RawTCPClient.request(port: ports[node], text: "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").response
    }

    /// Waits (bounded) until every node that is running answers 200 on `/readyz`.
    func waitUntilReady(timeout: Duration = .seconds(20)) async throws {
        for (index, node) in nodes.enumerated() where node.isRunning {
            try await waitUntil("node \(index) is ready", timeout: timeout) { try await get("/readyz", node: index).hasPrefix("HTTP/1.1 200") }
        }
    }

    /// Waits (bounded) until every node that is running answers 503 on `/readyz`.
    func waitUntilNotReady(timeout: Duration = .seconds(10)) async throws {
        for (index, node) in nodes.enumerated() where node.isRunning {
            try await waitUntil("node \(index) is not ready", timeout: timeout) { try await get("/readyz", node: index).hasPrefix("HTTP/1.1 503") }
        }
    }

    /// Stops the redis-server. With `save`, as `SHUTDOWN SAVE` does: everything it ran is on disk
    /// (its directory) for ``startRedis()``; without, it is killed and its data is gone.
    func stopRedis(save: Bool) async throws {
        let redis = try self.redis
        if save {
            try await redis.shutdownSaving()
        } else {
            await redis.stop()
        }
    }

    /// Starts redis-server again on the same port and directory (so with the data a
    /// `stopRedis(save: true)` saved).
    func startRedis() async throws {
        let restarted = try await self.redis.restart()
        servers.withLock { $0.append(restarted) }
    }

    /// Opens a connection as `user` to node `node` and says `session.hello` (resuming `resume`,
    /// room → position, when given); returns the peer, whose messages are read from then on, and
    /// the hello's ack.
    func connect(_ user: String, node: Int, resume: [String: EventID] = [:]) async throws -> (Peer, [String: JSONValue]) {
        let peer = Peer(user: user)
        let ack = try await peer.connect(port: ports[node], token: try await token(user), resume: resume)
        return (peer, ack)
    }
}

/// A client whose messages one task reads into a log from the moment it connects, so that the
/// test can look at everything it received, and make requests, at any time (the WebSocket client
/// wants one reader at a time). The log is kept across ``connect(port:token:resume:)`` calls: a
/// client that reconnects and resumes goes on with the same log.
final class Peer: Sendable {
    let user: String
    private let log = TestLockedBox<[[String: JSONValue]]>([])
    private let current = TestLockedBox<Connection?>(nil)

    /// One connection and its reader, which sets `ended` when it returns.
    private struct Connection: Sendable {
        let client: TestWebSocketClient
        let reader: Task<Void, Never>
        let ended: TestLockedBox<String?>
    }
    /// Set to make the reader return (it looks every 100 ms).
    private let stopping = TestLockedBox(false)
    private let nextID = TestLockedBox(0)

    init(user: String) {
        self.user = user
    }

    /// Opens a connection (the previous one must have ended), starts reading it, says
    /// `session.hello` resuming `resume`, and returns its ack.
    @discardableResult
    func connect(port: Int, token: String, resume: [String: EventID] = [:]) async throws -> [String: JSONValue] {
        if let previous = current.withLock({ $0 }) { _ = await previous.reader.value }
        stopping.withLock { $0 = false }
        let client = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(token)")
        let ended = TestLockedBox<String?>(nil)
        let reader = Task { [log, stopping] in
            let reason = await Self.read(client, into: log, stopping: stopping)
            ended.withLock { $0 = reason }
        }
        current.withLock { $0 = Connection(client: client, reader: reader, ended: ended) }
        let rooms = resume.map { #""\#($0.key)":"\#($0.value.description)""# }.joined(separator: ",")
        let data = resume.isEmpty ? "{}" : #"{"resume":{\#(rooms)}}"#
        return try await request("session.hello", data)
    }

    /// Reads until the connection ends (returns why), `stopping` is set, or a minute passes.
    private static func read(
        _ client: TestWebSocketClient, into log: TestLockedBox<[[String: JSONValue]]>, stopping: TestLockedBox<Bool>
    ) async -> String {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            do {
                let message = try await client.nextJSON(timeout: .milliseconds(100))
                log.withLock { $0.append(message) }
            } catch TestClientError.timeout {
                if stopping.withLock({ $0 }) { return "stopped" }
            } catch {
                return "\(error)"
            }
        }
        return "the reader's minute is up"
    }

    /// Sends `event` with `data` and waits (bounded) for the reply with its id.
    func request(_ event: String, _ data: String, timeout: Duration = .seconds(10)) async throws -> [String: JSONValue] {
        guard let client = current.withLock({ $0?.client }) else { throw TestClientError.connectionClosed("\(user) is not connected") }
        let id = nextID.withLock { value -> String in
            value += 1
            return "\(user)-\(value)"
        }
        try await client.sendText(#"{"event":"\#(event)","data":\#(data),"id":"\#(id)"}"#)
        var reply: [String: JSONValue]?
        try await waitUntil("\(user): the reply to \(event) \(id)", timeout: timeout) {
            reply = log.withLock { $0.last { $0["id"]?.stringValue == id } }
            return reply != nil || ended != nil
        }
        guard let reply else { throw TestClientError.connectionClosed("\(user): no reply to \(event) \(id); the connection ended: \(ended ?? "")") }
        return reply
    }

    /// Joins `room`; returns the room's position.
    func join(_ room: String) async throws -> EventID {
        let ack = try await request("room.join", #"{"room":"\#(room)"}"#)
        return try #require(ack["data"]?["eid"]?.stringValue.flatMap(EventID.init), "\(user): \(ack)")
    }

    /// Sends a message to `room`; returns the ack or the error reply.
    func send(_ room: String, _ content: String) async throws -> [String: JSONValue] {
        try await request("message.send", #"{"room":"\#(room)","content":"\#(content)"}"#)
    }

    /// Every message received so far.
    var messages: [[String: JSONValue]] { log.withLock { $0 } }

    /// The `message.new` events of `room` received so far, in order: position and content.
    /// The room's events as a client that dedupes by event id sees them (as Switchboard's clients
    /// do): each position once, in arrival order.
    func distinctEvents(_ room: String) -> [Delivered] {
        var seen = Set<EventID>()
        return events(room).filter { seen.insert($0.eid).inserted }
    }

    func events(_ room: String) -> [Delivered] {
        messages.compactMap { message in
            guard message["event"]?.stringValue == "message.new", message["room"]?.stringValue == room,
                let eid = Resume.eid(message), let content = message["data"]?["content"]?.stringValue
            else { return nil }
            return Delivered(eid: eid, content: content)
        }
    }

    /// The users of the `event` (`presence.join`, `presence.leave`) messages of `room` so far.
    func presence(_ event: String, in room: String) -> [String] {
        messages.compactMap { message in
            guard message["event"]?.stringValue == event, message["room"]?.stringValue == room else { return nil }
            return message["data"]?["user"]?.stringValue
        }
    }

    /// Why the current connection's reader returned; `nil` while it reads.
    var ended: String? {
        guard let connection = current.withLock({ $0 }) else { return "never connected" }
        return connection.ended.withLock { $0 }
    }

    /// Waits (bounded) until the connection ends, and returns why.
    func waitUntilEnded(timeout: Duration = .seconds(10)) async throws -> String {
        var reason: String?
        try await waitUntil("\(user)'s connection ends", timeout: timeout) {
            reason = ended
            return reason != nil
        }
        return reason ?? ""
    }

    /// Stops reading and closes the connection.
    func close() async {
        guard let connection = current.withLock({ $0 }) else { return }
        stopping.withLock { $0 = true }
        await connection.reader.value
        await connection.client.close()
    }
}

/// A room event as a client received it.
struct Delivered: Hashable, Sendable, CustomStringConvertible {
    let eid: EventID
    let content: String
    var description: String { "\(eid) \(content)" }
}

extension Array where Element == Delivered {
    /// Where `self` departs from `expected`, for a failure message: the first index that differs,
    /// what is missing and what came twice.
    func difference(from expected: [Delivered]) -> String {
        guard self != expected else { return "the same" }
        let firstDifference = indices.first { $0 >= expected.count || self[$0] != expected[$0] } ?? count
        let missing = expected.filter { !contains($0) }
        var seen = Set<Delivered>()
        let twice = filter { !seen.insert($0).inserted }
        return "\(count) events, \(expected.count) expected; first difference at \(firstDifference): "
            + "\(self[firstDifference...].prefix(4)) instead of \(expected[firstDifference...].prefix(4)); missing \(missing); twice \(twice)"
    }
}
