import Foundation
import Testing
@testable import Switchboard

/// `switchboard connect` end to end: the built executable against an in-process server.
@Suite("switchboard connect", .serialized)
struct ConnectCommandTests {
    @Test("prints events with their eids, sends typed lines, reconnects and resumes, exits at end of input")
    func connectPrintsSendsAndResumes() async throws {
        let registry = SocketRegistry()
        try await TestServers.with(authorizeJoin: registry.authorizer) { server in
            let bob = try await server.open("bob")
            try await ClientTests.join(bob, "lobby")
            let token = try await ClientTesting.token("alice")
            let cli = try CLIProcess(
                ["connect", "ws://127.0.0.1:\(server.port)/ws", "--token", token, "--join", "lobby", "--backoff", "20ms", "--max-backoff", "200ms"],
                input: true)
            defer { cli.terminate() }
            _ = try await cli.waitForOutput(matching: #"joined lobby (\S+) members="#)

            // Events print as `<event> <room> <eid> <data>`.
            let first = try await ResumeTests.send(bob, "lobby", "hello-cli")
            let printed = try await cli.waitForOutput(matching: #"message\.new lobby (\S+) \{[^\n]*"hello-cli""#)
            #expect(printed == first.description)

            // A typed line is sent; its ack is printed; bob gets the message.
            cli.write(line: #"message.send {"room":"lobby","content":"from-cli"}"#)
            let ack = try await cli.waitForOutput(matching: #"ack \S+ (\{"eid":[^\n]*\})"#)
            #expect(ack.contains("\"ts\""))
            let received = try await bob.next(event: "message.new")
            #expect(received["data"]?["content"]?.stringValue == "from-cli")
            // An error reply is printed with its code.
            cli.write(line: #"message.send {"room":"elsewhere","content":"x"}"#)
            _ = try await cli.waitForOutput(matching: #"error \S+ (forbidden) "#)
            cli.write(line: "message.send {not json")
            _ = try await cli.waitForOutput(matching: #"error - (invalid_json)"#)

            // The server drops the connection; what is published meanwhile is replayed once.
            try await registry.abort("alice")
            _ = try await cli.waitForOutput(matching: #"\* (reconnecting)"#)
            let away = try await ResumeTests.send(bob, "lobby", "while-away")
            let replayed = try await cli.waitForOutput(matching: #"message\.new lobby (\S+) replayed \{[^\n]*"while-away""#)
            #expect(replayed == away.description)
            #expect(cli.text.components(separatedBy: "while-away").count == 2, "\(cli.text)")
            #expect(cli.text.components(separatedBy: "hello-cli").count == 2, "\(cli.text)")

            // End of input: the client closes and the process exits.
            cli.closeInput()
            try await waitUntil("switchboard connect exits", timeout: .seconds(10)) { !cli.isRunning }
            #expect(cli.text.contains("* closed (closed by the client)"))
            await bob.close()
        }
    }

    @Test("a refused token is printed with its reason and the command fails")
    func connectReportsARefusedToken() async throws {
        try await TestServers.with { server in
            let cli = try CLIProcess(["connect", "ws://127.0.0.1:\(server.port)/ws", "--token", "not-a-jwt"], input: true)
            defer { cli.terminate() }
            let reason = try await cli.waitForOutput(matching: #"\* closed \((refused 401 invalid_token[^)]*)\)"#)
            #expect(reason.hasPrefix("refused 401"))
            try await waitUntil("switchboard connect exits", timeout: .seconds(10)) { !cli.isRunning }
        }
    }
}
