import Foundation
import Testing
@testable import Switchboard
@testable import SwitchboardCLI

/// The `switchboard` executable end to end: the commands a README reader runs.
@Suite("switchboard command line", .serialized)
struct CLITests {
    static let secret = "cli-test-secret-0123456789abcdefghij"

    @Test(ConformanceSuite.availability) func echoPassesTheConformanceSuiteInFull() async throws {
        let server = try CLIProcess(["echo", "--port", "0", "--ping-interval", "1s", "--pong-timeout", "3s", "--handshake-timeout", "3s", "--log-level", "error"])
        defer { server.terminate() }
        let port = try await server.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)
        let result = try await ConformanceSuite.run(
            url: "ws://127.0.0.1:\(port)/ws",
            arguments: ["--echo", "raw", "--max-size", "65536", "--timeout", "5", "--idle-timeout", "8", "--slowloris-timeout", "8", "--strict"],
            timeout: .seconds(240)
        )
        #expect(result.failed == 0, "\(result.failures)\n\(result.output)")
        #expect(result.passed == 60, "\(result.skipped)")
    }

    @Test(ConformanceSuite.availability) func servePassesTheConformanceSuiteWithTheDefaultPerUserLimit() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("members.sqlite").path
        let token = try await CLIProcess.run(["token", "--sub", "conformance", "--secret", Self.secret]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.split(separator: ".").count == 3)
        // The suite opens its cases one after another with one token, and some of them end with
        // a plain TCP close: with the default limit of 5 per user this passes only if every ended
        // connection gives its slot back at once.
        let server = try CLIProcess(["serve", "--port", "0", "--jwt-secret", Self.secret, "--database", database, "--log-level", "error"])
        defer { server.terminate() }
        let port = try await server.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)
        let result = try await ConformanceSuite.run(
            url: "ws://127.0.0.1:\(port)/ws",
            arguments: ["--query", "token=\(token)", "--echo", "none", "--max-size", "65536", "--timeout", "5", "--strict"],
            timeout: .seconds(240)
        )
        #expect(result.failed == 0, "\(result.failures)\n\(result.output)")
        #expect(result.passed >= 57, "\(result.skipped)")
    }

    @Test func serveWithDefaultsPrintsAWorkingURLAndDevToken() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("members.sqlite").path
        // Memberships added with `rooms add` are joined on connect.
        let added = try await CLIProcess.run(["rooms", "add", "dev", "welcome", "--database", database])
        #expect(added.contains("added"))
        #expect(try await CLIProcess.run(["rooms", "list", "--database", database]).contains("dev\twelcome"))
        let server = try CLIProcess(["serve", "--port", "0", "--database", database], environment: ["SWITCHBOARD_JWT_SECRET": ""])
        defer { server.terminate() }
        let path = try await server.waitForOutput(matching: #"(/ws\?token=\S+)"#)
        let port = try await server.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)
        let client = try await TestWebSocketClient.open(port: Int(port) ?? 0, path: path)
        let hello = try await TestServer.hello(client)
        #expect(hello["data"]?["user"]?.stringValue == "dev")
        #expect(hello["data"]?["rooms"]?.arrayValue?.first?["room"]?.stringValue == "welcome")
        await client.close()
    }

    @Test("serve's history and idempotency options are checked")
    func serveHistoryOptions() throws {
        let parsed = try ServeCommand.parse(["--history-ttl", "2h", "--history-size", "10", "--history-memory", "8", "--max-replay", "5", "--idempotency-window", "1m"])
        #expect(parsed.historyTTL.duration == .seconds(7200))
        #expect(parsed.historySize == 10 && parsed.historyMemory == 8 && parsed.maxReplay == 5)
        #expect(parsed.idempotencyWindow.duration == .seconds(60))
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--history-ttl", "0s"]) }
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--history-size", "-1"]) }
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--history-memory", "0"]) }
    }

    @Test("serve --permissions (here from SWITCHBOARD_PERMISSIONS): rules by room pattern hold over the wire")
    func servePermissionsFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let rules = directory.appendingPathComponent("permissions.json")
        try Data(#"{"namespaces":[{"pattern":"chat:*","join":true,"publish":true,"presence":true},{"pattern":"dashboard:*","join":true}]}"#.utf8).write(to: rules)
        let database = directory.appendingPathComponent("members.sqlite").path
        let server = try CLIProcess(
            ["serve", "--port", "0", "--jwt-secret", Self.secret, "--database", database, "--log-level", "error"],
            environment: ["SWITCHBOARD_PERMISSIONS": rules.path])
        defer { server.terminate() }
        let port = try await server.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)
        #expect(try await server.waitForOutput(matching: #"room permissions from \S+: (\d+) namespaces"#) == "2")
        let token = try await TokenMinter(hs256Secret: Self.secret).mint(subject: "viewer", ttl: .seconds(600))
        let client = try await TestWebSocketClient.open(port: Int(port) ?? 0, path: "/ws?token=\(token)")
        _ = try await TestServer.hello(client)
        _ = try await RoomTests.join(client, "dashboard:sales")
        let publish = try await RoomTests.request(client, "message.send", #"{"room":"dashboard:sales","content":"x"}"#)
        #expect(publish["data"]?["code"]?.stringValue == "forbidden", "broadcast-only: \(publish)")
        let join = try await RoomTests.request(client, "room.join", #"{"room":"elsewhere"}"#)
        #expect(join["data"]?["code"]?.stringValue == "forbidden", "no rule: \(join)")
        _ = try await RoomTests.join(client, "chat:a")
        #expect(try await RoomTests.request(client, "message.send", #"{"room":"chat:a","content":"x"}"#)["event"]?.stringValue == "ack")
        await client.close()
    }

    @Test("serve refuses a bad permissions file at startup, saying what is wrong, with a non-zero exit")
    func serveBadPermissionsFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let rules = directory.appendingPathComponent("permissions.json")
        try Data(#"{"namespaces":[{"pattern":"chat:*:x","join":true}]}"#.utf8).write(to: rules)
        let log = directory.appendingPathComponent("stderr.txt")
        let server = try CLIProcess(
            ["serve", "--port", "0", "--jwt-secret", Self.secret, "--database", directory.appendingPathComponent("m.sqlite").path, "--permissions", rules.path],
            standardError: log)
        defer { server.terminate() }
        #expect(try await server.waitForExit() != 0)
        let message = try String(contentsOf: log, encoding: .utf8)
        #expect(message.contains("--permissions: \(rules.path): namespaces[0].pattern"), "\(message)")
        #expect(!server.text.contains("listening"))
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--permissions", directory.appendingPathComponent("missing.json").path]) }
    }
}
