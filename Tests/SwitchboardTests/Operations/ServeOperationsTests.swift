import Foundation
import Testing

@testable import Switchboard

/// What `switchboard serve` always serves for operations: `/metrics`, and the publish API when
/// given a key.
@Suite("switchboard serve: /metrics and the publish API")
struct ServeOperationsTests {
    static func request(_ port: Int, _ text: String) async throws -> String {
        try await RawTCPClient.request(port: port, text: text).response
    }

    @Test("serve exposes /metrics, counts a connection, and publishes through /api with --api-key (401 without it)")
    func serveHasMetricsAndAPI() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-ops-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = "serve-operations-test-key-0123456789"
        let serve = try CLIProcess(
            ["serve", "--port", "0", "--database", directory.appendingPathComponent("m.sqlite").path],
            environment: ["SWITCHBOARD_API_KEY": key, "SWITCHBOARD_JWT_SECRET": TestServer.secret])
        defer { serve.terminate() }
        let port = try await Int(serve.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)) ?? 0
        let token = try await TokenMinter(hs256Secret: TestServer.secret).mint(subject: "alice", ttl: .seconds(600))
        let alice = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(token)")
        _ = try await TestServer.hello(alice)
        let before = try await ResumeTests.joinPosition(alice, "lobby")

        let metrics = try await Self.request(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(metrics.hasPrefix("HTTP/1.1 200"), "\(metrics)")
        let body = PrometheusText(text: String(metrics.split(separator: "\r\n\r\n", maxSplits: 1).last ?? ""))
        #expect(body.value("switchboard_connections") == 1, "\(metrics)")
        #expect(body.value(#"switchboard_handshakes_total{outcome="accepted"}"#) == 1)

        let json = #"{"room":"lobby","event":"news","data":{"n":1}}"#
        let unauthorized = try await Self.request(
            port, "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\nConnection: close\r\n\r\n\(json)")
        #expect(unauthorized.hasPrefix("HTTP/1.1 401"), "\(unauthorized)")
        let published = try await Self.request(
            port,
            "POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\nConnection: close\r\n\r\n\(json)"
        )
        #expect(published.hasPrefix("HTTP/1.1 200"), "\(published)")
        let event = try await alice.next(event: "news")
        #expect(event["eid"]?.stringValue == EventID(epoch: before.epoch, offset: before.offset + 1).description, "\(event)")
        #expect(published.contains(#""eid":"\#(before.epoch):\#(before.offset + 1)""#), "\(published)")
        await alice.close()
    }

    @Test("--api-key shorter than 16 bytes is refused at start")
    func shortKeyRefused() async throws {
        let output = try await CLIProcess.run(["serve", "--port", "0", "--api-key", "short"])
        // The refusal goes to standard error; the process exits without listening.
        #expect(!output.contains("listening"))
    }
}
