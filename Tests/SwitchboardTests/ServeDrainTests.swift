import Foundation
import Testing
@testable import Switchboard
import SwitchboardClient

/// `switchboard serve` on SIGTERM, as a real process: it drains (503 `draining` to handshakes and
/// `/readyz`, 1012 spread over the window) and exits 0 within the drain timeout.
@Suite("serve drains on SIGTERM", .serialized)
struct ServeDrainTests {
    static let secret = "drain-test-secret-0123456789abcdefghij"

    @Test("SIGTERM and SIGINT: /readyz and new handshakes get 503 draining, clients are closed with 1012 spread over the window, the process exits 0 within the drain timeout", arguments: [SIGTERM, SIGINT])
    func signalDrains(signal: Int32) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-drain-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try CLIProcess(
            ["serve", "--port", "0", "--jwt-secret", Self.secret, "--database", directory.appendingPathComponent("members.sqlite").path,
             "--drain-window", "3s", "--drain-timeout", "6s", "--log-level", "error"])
        defer { server.terminate() }
        let text = try await server.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)
        let port = try #require(Int(text))
        let minter = TokenMinter(hs256Secret: Self.secret)
        func get(_ path: String) async throws -> String {
            try await RawTCPClient.request(port: port, text: "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").response
        }
        #expect(try await get("/readyz").hasPrefix("HTTP/1.1 200"))
        var clients: [TestWebSocketClient] = []
        for index in 0..<4 {
            let token = try await minter.mint(subject: "user\(index)", ttl: .seconds(600))
            let client = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(token)")
            _ = try await TestServer.hello(client)
            clients.append(client)
        }
        // One more that never answers the Close: the drain cannot end before the close timeout
        // (5 s) after its slot, so the checks below happen while it is under way.
        let holdout = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(try await minter.mint(subject: "holdout", ttl: .seconds(600)))")
        _ = try await TestServer.hello(holdout)

        let start = ContinuousClock.now
        server.send(signal: signal)
        let closes = TestLockedBox<[(code: UInt16?, at: Duration)]>([])
        let readers = clients.map { client in
            Task {
                let code = try? await client.expectClose(timeout: .seconds(15)).code
                closes.withLock { $0.append((code, ContinuousClock.now - start)) }
            }
        }
        try await waitUntil("/readyz says draining") {
            let response = try await get("/readyz")
            return response.hasPrefix("HTTP/1.1 503") && response.contains(#""reason":"draining""#)
        }
        let token = try await minter.mint(subject: "late", ttl: .seconds(600))
        guard case .rejected(let refused) = try await TestWebSocketClient.connect(port: port, path: "/ws?token=\(token)") else {
            Issue.record("a handshake was upgraded during the drain")
            return
        }
        #expect(refused.status == 503)
        #expect(refused.body.contains(#""code":"draining""#), "\(refused.body)")

        for reader in readers { await reader.value }
        let status = try await server.waitForExit(timeout: .seconds(15))
        let elapsed = ContinuousClock.now - start
        #expect(status == 0, "\(server.text)")
        // The drain ends within its 6 s; the margin is for the rest of the shutdown on a loaded
        // machine (the timeout itself is tested in process, on the test's clock).
        #expect(elapsed < .seconds(6) + .seconds(4), "exited \(elapsed) after signal \(signal); the drain timeout is 6 s")
        let received = closes.withLock { $0 }
        #expect(received.allSatisfy { $0.code == CloseCode.serviceRestart }, "\(received)")
        // Four of five slots over 3 s: at least a second between the first and the last.
        let times = received.map(\.at).sorted()
        if let first = times.first, let last = times.last {
            #expect(last - first >= .seconds(1), "the closes came at \(times)")
        }
    }

    /// Starts `serve` with the in-memory broker on a free port; returns it and its port.
    static func serve(_ directory: URL, _ name: String) async throws -> (CLIProcess, Int) {
        let server = try CLIProcess(
            ["serve", "--port", "0", "--jwt-secret", Self.secret, "--database", directory.appendingPathComponent("\(name).sqlite").path,
             "--drain-window", "1s", "--log-level", "error"])
        let text = try await server.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)
        return (server, try #require(Int(text)))
    }

    @Test("one node with the in-memory broker, restarted: the Swift client gets 1012, reconnects, and gets state.refresh for its room (the history ended with the process), never a silent gap")
    func memoryBrokerRestartIsARefresh() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-drain-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let minter = TokenMinter(hs256Secret: Self.secret)
        let (first, firstPort) = try await Self.serve(directory, "first")
        defer { first.terminate() }
        let proxy = try await ChaosProxy.start(upstreamPort: firstPort, reset: false)
        defer { Task { await proxy.stop() } }
        let client = SwitchboardClient(
            url: "ws://127.0.0.1:\(proxy.port)/ws", token: .provider { try await minter.mint(subject: "alice", ttl: .seconds(600)) },
            configuration: ClientTesting.fast)
        let alice = CollectedEvents(client)
        _ = try await client.join("lobby")
        let bob = try await TestWebSocketClient.open(port: firstPort, path: "/ws?token=\(try await minter.mint(subject: "bob", ttl: .seconds(600)))")
        _ = try await RoomTests.join(bob, "lobby")
        _ = try await ResumeTests.send(bob, "lobby", "before")
        try await alice.waitForContents(["before"])
        let oldEpoch = try #require(alice.messages.first?.eid?.epoch)

        first.send(signal: SIGTERM)
        #expect(try await bob.expectClose(timeout: .seconds(10)).code == CloseCode.serviceRestart)
        #expect(try await first.waitForExit(timeout: .seconds(15)) == 0)
        try await alice.waitFor("alice told of the 1012") { $0.reconnectReasons.contains(.closed(code: CloseCode.serviceRestart, reason: "server restarting")) }

        // The node comes back (on another port, behind the same address).
        let (second, secondPort) = try await Self.serve(directory, "second")
        defer { second.terminate() }
        proxy.retarget(upstreamPort: secondPort)
        try await alice.waitFor("a refresh of lobby", timeout: .seconds(20)) { $0.refreshes.contains { $0.room == "lobby" } }
        let epoch = try #require(alice.refreshes.first?.eid?.epoch)
        #expect(epoch != oldEpoch)
        let bobAgain = try await TestWebSocketClient.open(port: secondPort, path: "/ws?token=\(try await minter.mint(subject: "bob", ttl: .seconds(600)))")
        _ = try await RoomTests.join(bobAgain, "lobby")
        _ = try await ResumeTests.send(bobAgain, "lobby", "after")
        try await alice.waitForContents(["after"])
        #expect(alice.contents == ["before", "after"])
        await client.close()
        await bobAgain.close()
    }

    @Test("--drain-timeout shorter than --drain-window is refused")
    func drainTimeoutBelowWindowIsRefused() async throws {
        let output = try await CLIProcess.run(["serve", "--port", "0", "--drain-window", "5s", "--drain-timeout", "2s"])
        #expect(!output.contains("listening"))
    }
}
