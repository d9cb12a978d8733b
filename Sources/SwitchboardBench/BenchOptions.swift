import Foundation
import Switchboard

/// The load-test scenarios of `switchboard bench`.
public enum BenchScenario: String, CaseIterable, Sendable, Codable {
    /// N subscribers in one room, one publisher at a fixed rate.
    case fanout
    /// `fanout` at rising rates until a step fails: the highest sustained rate.
    case sweep
    /// Many rooms, every member publishing at a steady rate.
    case chat
    /// N idle, joined connections: the server's resident memory per connection.
    case idle
    /// Closed-loop `message.send` → `ack` round trips.
    case rtt
    /// Handshakes per second (with JWT verification) and connect time.
    case connect
    /// N subscribers drop, miss M events, reconnect and resume at once: every event once, and the
    /// time until all caught up; then one client replaying many missed events.
    case resume
    /// One publisher fills the history of many rooms: the server's memory per stored event
    /// against the event's frame size.
    case history
    /// Users connect, join, publish, drop (also mid-frame) and resume for a while: no acked event
    /// lost, and the server back to its idle footprint afterwards.
    case soak
}

/// Everything a bench run needs. Every field has a default; only `url` usually changes.
///
/// Every wait of a run is bounded: connects by `connectTimeout`, replies by `replyTimeout`,
/// deliveries by `drain`, a whole connect phase by `connectPhaseLimit`, a sweep by `sweepTimeLimit`,
/// a resume's catch-up by `catchUpTimeout`.
public struct BenchOptions: Sendable {
    /// The server's WebSocket URL; only loopback hosts are accepted (see ``BenchTarget``).
    public var url: String = "ws://127.0.0.1:8080/ws"
    /// Further nodes of the same server (nodes on one Redis), loopback too: connections are
    /// spread over `url` and these, round-robin by user index (user 0 on `url`, user 1 on the
    /// first of these…), so that a room's subscribers are on every node. Empty: `url` alone.
    public var otherURLs: [String] = []
    /// `url` and `otherURLs`, in that order.
    public var urls: [String] { [url] + otherURLs }
    /// fanout/sweep/resume: the node the publisher connects to; `nil`: round-robin like every
    /// other connection. With `url` naming another node of one Redis, every delivery crosses nodes.
    public var publisherURL: String?
    /// Every node URL of the run: `urls`, then `publisherURL` when set.
    public var allURLs: [String] { urls + [publisherURL].compactMap { $0 } }
    /// The HS256 secret the bench signs its tokens with (at least 32 bytes).
    public var jwtSecret: String = TokenMinter.developmentSecret
    /// fanout/sweep/resume: subscribers in the room.
    public var subscribers: Int = 1000
    /// resume: events the publisher sends while the subscribers are away. history: events per room.
    public var events: Int = 100
    /// resume: events one client misses before it resumes alone (the single-client replay).
    public var replayEvents: Int = 1000
    /// resume: limit from a reconnected subscriber's `session.hello` to its having caught up.
    public var catchUpTimeout: Duration = .seconds(30)
    /// fanout: publisher messages per second. chat: messages per second per member.
    public var rate: Double = 50
    /// fanout, chat, rtt, connect: how long to send.
    public var duration: Duration = .seconds(10)
    /// chat, history: number of rooms.
    public var rooms: Int = 100
    /// chat: members per room.
    public var members: Int = 10
    /// idle: connections to open. connect: the most handshakes to make (the run also ends after
    /// `duration`). soak: users churning at once.
    public var connections: Int = 10_000
    /// soak: the longest a connection lives (each lives a random time between an eighth of this and this).
    public var soakLifetime: Duration = .seconds(8)
    /// soak: the longest wait after the churn for the rooms to empty (the presence grace period)
    /// and the server's descriptors to come back to their idle count.
    public var soakSettleLimit: Duration = .seconds(30)
    /// rtt: clients in the closed loop. connect: concurrent connectors.
    public var clients: Int = 50
    /// The server process, for its CPU (all scenarios) and resident memory (`idle`).
    public var serverPID: Int32?
    /// sweep: send time per step.
    public var step: Duration = .seconds(5)
    /// sweep: the first rate, in messages per second.
    public var sweepStartRate: Double = 10
    /// sweep: the factor between rates while climbing.
    public var sweepFactor: Double = 1.6
    /// sweep: the most climbing steps.
    public var sweepMaxSteps: Int = 20
    /// sweep: bisection steps between the last passing and the first failing rate.
    public var sweepRefineSteps: Int = 2
    /// sweep: no new step starts after this long.
    public var sweepTimeLimit: Duration = .seconds(150)
    /// A step passes only with at least this fraction delivered (within `drain`)…
    public var minimumDelivered: Double = 0.99
    /// …and a p99 latency at most this…
    public var maximumP99: Duration = .milliseconds(100)
    /// …and the publisher reaching this fraction of the target rate.
    public var minimumPublisherRate: Double = 0.97
    /// After sending stops, how long to wait for deliveries still in flight.
    public var drain: Duration = .seconds(3)
    /// idle: the wait after all connections joined before reading the server's memory.
    public var settle: Duration = .seconds(2)
    /// Content bytes per `message.send` (the `ts=<ns> ` marker included).
    public var payloadBytes: Int = 100
    /// Offer permessage-deflate on every connection (as browsers do); messages the server sends
    /// compressed are inflated, each on its own, before they are read. Default `false`.
    public var compression = false
    /// Connection attempts in flight at once.
    public var connectConcurrency: Int = 64
    /// Limit for one TCP connect plus WebSocket upgrade.
    public var connectTimeout: Duration = .seconds(10)
    /// Limit for a reply (`ack` or `error`) to a request such as `room.join`.
    public var replyTimeout: Duration = .seconds(10)
    /// Limit for a whole connect phase; connections not started by then count as failed.
    public var connectPhaseLimit: Duration = .seconds(180)
    /// Token lifetime (`exp`).
    public var tokenTTL: Duration = .seconds(3600)
    /// fanout/sweep/resume room name (resume's single-client replay uses `<room>-replay`).
    public var room: String = "bench-fanout"
    /// Event-loop threads; `nil` means `System.coreCount`, capped by the CPUs this process may run on.
    public var threads: Int?
    /// Writes one progress line per second to standard error when true.
    public var showProgress: Bool = true

    /// The defaults; set fields to change them.
    public init() {}

    /// The checks that need no network: ranges of counts and rates, and a loopback URL.
    public func validate(for scenario: BenchScenario) throws {
        for url in allURLs { _ = try BenchTarget(url: url) }
        func require(_ condition: Bool, _ message: String) throws {
            if !condition { throw BenchError.invalidOption(message) }
        }
        try require(jwtSecret.utf8.count >= 32, "--jwt-secret must be at least 32 bytes (HS256)")
        try require((1...200_000).contains(subscribers), "--subscribers must be 1...200000")
        try require(rate > 0 && rate <= 10_000_000 && rate.isFinite, "--rate must be > 0")
        try require(duration > .zero && duration <= .seconds(3600), "--duration must be > 0 and at most 1h")
        try require((1...100_000).contains(rooms), "--rooms must be 1...100000")
        try require((2...10_000).contains(members), "--members must be 2...10000")
        try require(rooms * members <= 200_000, "--rooms × --members must be at most 200000")
        try require((1...200_000).contains(connections), "--connections must be 1...200000")
        try require((1...100_000).contains(clients), "--clients must be 1...100000")
        try require((1...100_000).contains(events), "--events must be 1...100000")
        try require((1...100_000).contains(replayEvents), "--replay-events must be 1...100000")
        try require(catchUpTimeout > .zero && catchUpTimeout <= .seconds(600), "catch-up timeout must be > 0 and at most 10m")
        try require(step > .zero && step <= .seconds(600), "--step must be > 0 and at most 10m")
        try require(payloadBytes >= 1 && payloadBytes <= 4000, "payload must be 1...4000 bytes")
        try require(connectConcurrency >= 1, "connect concurrency must be at least 1")
        try require(sweepFactor > 1, "sweep factor must be > 1")
        if let threads { try require(threads >= 1, "threads must be at least 1") }
        if scenario == .idle || scenario == .history {
            try require(serverPID != nil, "\(scenario.rawValue) needs --server-pid (it measures the server's resident memory)")
        }
        if let serverPID {
            try require(serverPID > 0, "--server-pid must be positive")
            try require(ProcessStats.exists(pid: serverPID), "no process \(serverPID) (from --server-pid) in /proc")
        }
        try require(RoomName.validate(room) == nil, "invalid room name")
        if scenario == .soak {
            try require(soakLifetime >= .milliseconds(100) && soakLifetime <= .seconds(3600), "--lifetime must be 100ms...1h")
            try require(rate <= 20, "soak: --rate is per user and must be at most 20 msg/s (the server's default limit)")
        }
        if scenario == .resume {
            try require(RoomName.validate(ScenarioResume.replayRoom(room)) == nil, "room name too long for resume's \"<room>-replay\"")
        }
    }
}
