import ArgumentParser
import Foundation
import Switchboard
import SwitchboardBench

extension BenchScenario: ExpressibleByArgument {}

/// `switchboard bench <scenario>`: a load generator for a Switchboard server on loopback.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load-test a Switchboard server on this machine (loopback only).",
        discussion: """
            Scenarios:
              fanout   --subscribers N in one room, one publisher at --rate msg/s for --duration: \
            delivered/expected, deliveries/s, latency p50/p90/p99/max.
              sweep    fanout at rising rates (10 msg/s ×1.6 per --step, then two bisections) until \
            fewer than 99% are delivered or p99 > 100 ms: the highest rate that held.
              chat     --rooms × --members, every member sending --rate msg/s (default 1).
              idle     --connections idle, joined connections: the server's RSS per connection \
            (needs --server-pid).
              rtt      --clients in a closed loop of message.send → ack: acks/s, p50/p99.
              connect  --clients connectors doing handshakes (JWT verified) for --duration: \
            handshakes/s and connect-time p99.
              resume   --subscribers drop at once (TCP closed), the publisher sends --events, all \
            reconnect and resume at once: delivered/expected (every event once), duplicates, gaps, \
            time until the last caught up, catch-up p50/p99; then one client replaying \
            --replay-events missed events: ms from hello to the last.
              history  one publisher sends --events messages to each of --rooms rooms it is alone             in: the server's RSS per stored event against the frame size (needs --server-pid;             e.g. --rooms 100 --events 1000).
              soak     --connections users (default 1000) in --rooms rooms churn for --duration: \
            each connects, joins (then resumes with session.hello), sends message.send at --rate \
            msg/s (default 0.5) for up to --lifetime, and drops (TCP close, half a frame, a send \
            without waiting for its ack, or Close 1000); then every user resumes once more and must \
            have seen every acked event of its room, the rooms must be empty and (--server-pid) the \
            server's file descriptors back to their idle count: lost, raw duplicates, the server's \
            fds, sockets, threads and RSS before, at peak and after.

            Latency is receive time minus the send time the publisher embeds in the content \
            (ts=<unix ns>). Each result reports the generator's own CPU and the server's \
            (--server-pid), and says when the generator was the bottleneck (≥ 90% busy). \
            Progress goes to standard error once a second; the result to standard output.
            """
    )

    @Argument(help: "fanout | sweep | chat | idle | rtt | connect | resume | history | soak")
    var scenario: BenchScenario

    @Option(help: "Server WebSocket URL; only 127.0.0.1, localhost or ::1 (default ws://127.0.0.1:8080/ws). Repeatable, for the nodes of one server on one Redis: connections are spread over them round-robin by user, so that a room's subscribers are on every node.")
    var url: [String] = []

    @Option(help: "fanout/sweep/resume: the node the publisher connects to (default: round-robin like the rest); with --url naming another node of one Redis, every delivery crosses nodes.")
    var publisherURL: String?

    @Option(help: "HS256 secret to sign the bench's tokens with (default: $SWITCHBOARD_JWT_SECRET, else the development secret).")
    var jwtSecret: String?

    @Option(help: "fanout/sweep/resume: subscribers in the room.")
    var subscribers: Int = 1000

    @Option(help: "resume: events the publisher sends while the subscribers are away. history: events per room.")
    var events: Int = 100

    @Option(help: "resume: events one client misses before it resumes alone.")
    var replayEvents: Int = 1000

    @Option(help: "fanout: publisher messages per second (default 50). chat: messages per second per member (default 1). soak: per connected user (default 0.5).")
    var rate: Double?

    @Option(help: "fanout, chat, rtt, connect, soak: how long to send (soak: to churn), e.g. 10s.")
    var duration = DurationArgument(duration: .seconds(10))

    @Option(help: "chat, history, soak: number of rooms.")
    var rooms: Int = 100

    @Option(help: "chat: members per room.")
    var members: Int = 10

    @Option(help: "idle: connections to open (default 10000). connect: the most handshakes (default 100000). soak: users churning at once (default 1000).")
    var connections: Int?

    @Option(help: "rtt: clients in the closed loop; connect: concurrent connectors.")
    var clients: Int = 50

    @Option(help: "The server's process id, for its CPU and (idle) its resident memory, read from /proc.")
    var serverPID: Int32?

    @Option(help: "sweep: send time per step.")
    var step = DurationArgument(duration: .seconds(5))

    @Option(help: "Wait for deliveries still in flight after sending stops.")
    var drain = DurationArgument(duration: .seconds(3))

    @Option(help: "idle: wait after the last join before reading the server's memory.")
    var settle = DurationArgument(duration: .seconds(2))

    @Option(help: "soak: the longest a connection lives; each lives between an eighth of this and this.")
    var lifetime = DurationArgument(duration: .seconds(8))

    @Option(help: "soak: the longest wait after the churn for the rooms to empty and the server's descriptors to come back.")
    var settleLimit = DurationArgument(duration: .seconds(30))

    @Option(help: "Event-loop threads of the generator (default: one per core it may run on).")
    var threads: Int?

    @Option(help: "fanout/sweep/chat/rtt: bytes of each message's content (1...4000; default 100); the padding is English-like text, which compresses as chat does.")
    var payloadBytes: Int = 100

    @Flag(help: "Offer permessage-deflate on every connection, as browsers do; a server with --compression true then compresses what it sends them.")
    var compression = false

    @Flag(help: "Print the result as one JSON object instead of a table.")
    var json = false

    @Flag(help: "No progress lines on standard error.")
    var quiet = false

    /// The options for ``BenchRunner``, from the arguments and environment.
    func benchOptions() -> BenchOptions {
        var options = BenchOptions()
        if let first = url.first { options.url = first }
        options.otherURLs = Array(url.dropFirst())
        options.publisherURL = publisherURL
        options.jwtSecret = jwtSecret ?? EnvironmentDefault.string(TokenCommand.secretEnvironmentVariable) ?? TokenMinter.developmentSecret
        options.subscribers = subscribers
        options.events = events
        options.replayEvents = replayEvents
        options.rate = rate ?? (scenario == .chat ? 1 : scenario == .soak ? 0.5 : 50)
        options.duration = duration.duration
        options.rooms = rooms
        options.members = members
        if let connections {
            options.connections = connections
        } else if scenario == .connect {
            options.connections = 100_000
        } else if scenario == .soak {
            options.connections = 1000
        }
        options.soakLifetime = lifetime.duration
        options.soakSettleLimit = settleLimit.duration
        options.clients = clients
        options.serverPID = serverPID
        options.step = step.duration
        options.drain = drain.duration
        options.settle = settle.duration
        options.threads = threads
        options.payloadBytes = payloadBytes
        options.compression = compression
        options.showProgress = !quiet
        return options
    }

    func validate() throws {
        do {
            try benchOptions().validate(for: scenario)
        } catch let error as BenchError {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        let report = try await BenchRunner.run(scenario, options: benchOptions())
        Console.line(json ? report.json() : report.table())
    }
}
