import ArgumentParser
import Foundation
import Logging
import SwitchboardClient

/// `switchboard connect`: a terminal client on `SwitchboardClient`, like wscat but speaking the
/// protocol. Prints every event as it arrives and sends each line read from standard input as
/// `event {json}`; reconnects and resumes as the client does.
///
/// Output, one line each (`-` for a missing room or eid):
/// - `<event> <room> <eid> <data>`, with `replayed` before the data for events replayed on resume;
/// - `ack <id> <data>` and `error <id> <code> <message>` for the lines sent;
/// - `refresh <room> <eid> <snapshot>` when a room's state must be reloaded;
/// - `* <state>` for connection state changes (`* open`, `* reconnecting …`, `* closed …`).
struct ConnectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect",
        abstract: "Connect to a Switchboard server: print its events, send lines typed as `event {json}`.",
        discussion: """
            Example: switchboard connect ws://127.0.0.1:8080/ws --token "$TOKEN" --join lobby
            then type: message.send {"room":"lobby","content":"hi"}
            End of input closes the connection (unless --no-stdin).
            """
    )

    @Argument(help: "The server's WebSocket URL, e.g. ws://127.0.0.1:8080/ws.")
    var url: String

    @Option(help: "The JWT to connect with. Default: $SWITCHBOARD_TOKEN.")
    var token: String?

    @Option(name: .customLong("join"), help: "A room to join once connected (repeatable).")
    var rooms: [String] = []

    @Option(help: "How long a line sent waits for its reply: 250ms, 10s, …")
    var ackTimeout = DurationArgument(duration: .seconds(10))

    @Option(help: "First reconnect delay (doubling up to --max-backoff).")
    var backoff = DurationArgument(duration: .seconds(1))

    @Option(help: "Longest reconnect delay.")
    var maxBackoff = DurationArgument(duration: .seconds(30))

    @Flag(help: "Do not read standard input: print events until interrupted.")
    var noStdin = false

    @Option(help: "Log level of the client's own logs on standard error (trace … critical).")
    var logLevel: String = "error"

    func validate() throws {
        guard token ?? EnvironmentDefault.string("SWITCHBOARD_TOKEN") != nil else {
            throw ValidationError("--token (or $SWITCHBOARD_TOKEN) is required.")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: trace, debug, info, notice, warning, error or critical.") }
    }

    func run() async throws {
        let token = self.token ?? EnvironmentDefault.string("SWITCHBOARD_TOKEN") ?? ""
        var configuration = SwitchboardClient.Configuration()
        configuration.ackTimeout = ackTimeout.duration
        configuration.backoff.initial = backoff.duration
        configuration.backoff.maximum = max(maxBackoff.duration, backoff.duration)
        var logger = Logger(label: "switchboard.connect")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .error
        configuration.logger = logger
        let client = SwitchboardClient(url: url, token: .fixed(token), configuration: configuration)
        let rooms = self.rooms
        let readsInput = !noStdin

        let final = await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for room in rooms {
                    do {
                        let joined = try await client.join(room)
                        Console.line("joined \(joined.room) \(joined.eid ?? "-") members=\(joined.members.joined(separator: ","))")
                    } catch {
                        Console.line("error join \(room) \(Self.describe(error))")
                    }
                }
                guard readsInput else { return }
                for await line in Self.standardInputLines() {
                    await Self.send(line, with: client)
                }
                await client.close()
            }
            // Until the event stream ends: the client closed (end of input, or a final close).
            let final = await Self.printEvents(client)
            group.cancelAll()
            return final
        }
        if case .closed(let reason) = final, reason != .closedByClient { throw ExitCode(1) }
    }

    /// Prints every event; returns the last state.
    static func printEvents(_ client: SwitchboardClient) async -> ConnectionState? {
        var last: ConnectionState?
        for await event in client.events {
            switch event {
            case .event(let received):
                let replayed = received.replayed ? "replayed " : ""
                Console.line("\(received.event) \(received.room ?? "-") \(received.eid?.description ?? "-") \(replayed)\(received.data.text)")
            case .state(let state):
                last = state
                Console.line("* \(state)")
            case .refresh(let refresh):
                Console.line("refresh \(refresh.room) \(refresh.eid?.description ?? "-") \(refresh.snapshot?.text ?? "null")")
            case .roomRefused(let room, let error):
                Console.line("error room \(room) \(error.code) \(error.message)")
            }
        }
        return last
    }

    /// Sends one typed line, `event` or `event {json}`, and prints its reply.
    static func send(_ line: String, with client: SwitchboardClient) async {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return }
        let parts = trimmed.split(separator: " ", maxSplits: 1)
        let event = String(parts[0])
        let data = parts.count > 1 ? RawJSON(String(parts[1])) : nil
        if let data, (try? data.decode(RawJSON.self)) == nil {
            Console.line("error - invalid_json \(data.text) is not JSON; type: event {json}")
            return
        }
        let id = UUID().uuidString.lowercased()
        do {
            let reply = try await client.send(event, json: data, id: id)
            Console.line("ack \(id) \(reply.text)")
        } catch {
            Console.line("error \(id) \(describe(error))")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? SwitchboardClientError { return "\(error.code) \(error.message)" }
        return "\(error)"
    }

    /// Standard input's lines, read on a thread of their own (reading blocks).
    static func standardInputLines() -> AsyncStream<String> {
        let (lines, continuation) = AsyncStream<String>.makeStream()
        let thread = Thread {
            while let line = readLine(strippingNewline: true) { continuation.yield(line) }
            continuation.finish()
        }
        thread.start()
        return lines
    }
}
