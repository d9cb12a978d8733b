import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
@testable import Switchboard
import SwitchboardHummingbird

/// A Switchboard server inside a Hummingbird app that also serves the browser tests' pages and
/// mints their tokens (test routes only), on 127.0.0.1 with an ephemeral port.
private struct BrowserTestServer: Sendable {
    let port: Int
    let switchboard: SwitchboardServer
    /// The proxy in front of the server, when the test starts one (`/test/uncut` acts on it).
    let proxy: TestLockedBox<ChaosProxy?>

    static func with(configuration: SwitchboardConfiguration, pages: [String: String], _ body: @Sendable (BrowserTestServer) async throws -> Void) async throws {
        let verifier = try await TokenVerifier(keys: [.hmacSecret(TestServer.secret)])
        let switchboard = SwitchboardServer(configuration: configuration, authentication: .jwt(verifier), router: .chat, logger: TestServers.defaultLogger)
        let proxy = TestLockedBox<ChaosProxy?>(nil)
        let router = Router()
        // /test/token?sub=alice&ttl=2: a token for `sub`, valid `ttl` seconds (default 600).
        router.get("/test/token") { request, _ -> String in
            let subject = request.uri.queryParameters.get("sub") ?? "anonymous"
            let ttl = request.uri.queryParameters.get("ttl").flatMap { Int($0) } ?? 600
            return try await TokenMinter(hs256Secret: TestServer.secret).mint(subject: subject, ttl: .seconds(ttl))
        }
        // The README's page asks its app for a token at /token.
        router.get("/token") { _, _ -> String in
            try await TokenMinter(hs256Secret: TestServer.secret).mint(subject: "reader", ttl: .seconds(600))
        }
        router.get("/test/uncut") { _, _ -> String in
            proxy.withLock { $0 }?.cutConnections(afterServerBytes: nil)
            return "ok"
        }
        for (path, html) in pages {
            router.get(RouterPath(path)) { _, _ -> Response in
                Response(
                    status: .ok,
                    headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                    body: .init(byteBuffer: ByteBuffer(string: html))
                )
            }
        }
        let app = Application(
            router: router,
            server: .switchboard(switchboard),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            logger: TestServers.defaultLogger
        )
        try await app.test(.live) { client in
            guard let port = client.port else { throw TestClientError.connectFailed("no port") }
            try await body(BrowserTestServer(port: port, switchboard: switchboard, proxy: proxy))
        }
    }
}

/// The browser's answer, as `driver.py` prints it.
private struct DriverOutput: Decodable {
    var value: JSONValue?
    var console: [String]?
    var error: String?
}

@Suite("JavaScript client in headless Chromium", .serialized)
struct BrowserTests {
    private static var driverScript: String {
        ExternalTool.clientDirectory.appendingPathComponent("test/browser/driver.py").path
    }

    /// Runs driver.py on `url` until `until` (JavaScript returning a truthy value) holds.
    private static func load(_ url: String, until: String = "return window.__result", timeout: Int = 90, screenshot: String? = nil) async throws -> (JSONValue?, String) {
        if let missing = ExternalTool.browserMissing {
            throw ExternalToolError.missing(missing)
        }
        guard let python = ExternalTool.which("python3") else { throw ExternalToolError.missing("python3") }
        let run = try await ExternalTool.run(
            python, [driverScript, url, "--until", until, "--timeout", "\(timeout)"] + (screenshot.map { ["--screenshot", $0] } ?? []), timeout: .seconds(timeout + 30))
        let lastLine = run.output.split(separator: "\n").last.map(String.init) ?? ""
        let parsed = try? JSONDecoder().decode(DriverOutput.self, from: Data(lastLine.utf8))
        guard let parsed, parsed.error == nil, run.exitCode == 0 || run.exitCode == 3 else {
            throw ExternalToolError.launchFailed("driver.py exited with \(run.exitCode):\n\(run.output)")
        }
        return (parsed.value, run.output)
    }

    @Test(ExternalTool.browserAvailability) func scenariosEndWithExactlyThePublishedSequence() async throws {
        let page = try String(contentsOf: ExternalTool.clientDirectory.appendingPathComponent("test/browser/scenarios.html"), encoding: .utf8)
        var configuration = SwitchboardConfiguration()
        configuration.pingInterval = .seconds(1)  // the sweep that closes expired tokens with 4001 runs often
        configuration.rateLimits = .off  // bob publishes 60 events at once, past message.send's default burst
        try await BrowserTestServer.with(configuration: configuration, pages: ["/test/scenarios": page]) { server in
            let proxy = try await ChaosProxy.start(upstreamPort: server.port, reset: false)
            server.proxy.withLock { $0 = proxy }
            // Alice's first connection (the only one through the proxy) is cut after this many
            // bytes from the server: mid-stream, while bob publishes 60 events of ~150 bytes.
            proxy.cutConnections(afterServerBytes: 3000)
            let count = 60
            let url = "http://127.0.0.1:\(server.port)/test/scenarios?proxied=ws://127.0.0.1:\(proxy.port)/ws&direct=ws://127.0.0.1:\(server.port)/ws&count=\(count)"
            let (value, output) = try await Self.load(url)
            await proxy.stop()
            let result = try #require(value?.objectValue, "no result from the page:\n\(output)")
            try #require(result["ok"]?.boolValue == true, "the page failed: \(result["error"]?.stringValue ?? "")\n\(result["log"]?.stringValue ?? "")\n\(output)")

            // Two sessions exchanged messages.
            #expect(result["exchanged"]?.objectValue?["alice"]?.arrayValue?.compactMap(\.stringValue) == ["hello alice"])
            #expect(result["exchanged"]?.objectValue?["bob"]?.arrayValue?.compactMap(\.stringValue) == ["hello bob"])
            // The cut happened while bob published, and alice ends with exactly the published sequence.
            let published = (1...count).map { "seq \($0)" }
            #expect(result["published"]?.arrayValue?.compactMap(\.stringValue) == published)
            #expect(result["received"]?.arrayValue?.compactMap(\.stringValue) == published, "\(output)")
            #expect((result["reconnects"]?.intValue ?? 0) >= 1, "the proxy did not cut alice's connection: \(output)")
            #expect(proxy.accepted >= 2, "alice reconnected through the proxy")
            // Sent while offline (queued in state `reconnecting`), acknowledged, delivered once and in order.
            #expect(result["offlineQueuedIn"]?.stringValue == "reconnecting")
            #expect(result["offlineAck"]?.objectValue?["eid"]?.stringValue != nil)
            #expect(result["offlineAtBob"]?.intValue == 1)
            #expect(result["bobOrder"]?.arrayValue?.compactMap(\.stringValue) == ["sent offline", "done"])
            // 4001: the server closed carol's connection when her 2-second token expired; she got a
            // new token and is open again.
            let carol = result["carol"]?.objectValue
            #expect(carol?["tokens"]?.intValue == 2, "\(output)")
            #expect(carol?["states"]?.arrayValue?.contains { $0.objectValue?["code"]?.intValue == 4001 } == true)
            // A refused token is reported with the reason of the GET check.
            let refused = result["refused"]?.objectValue
            #expect(refused?["state"]?.stringValue == "closed")
            #expect(refused?["status"]?.intValue == 401)
            #expect(refused?["code"]?.stringValue == "invalid_token", "\(output)")
        }
    }

    /// The README's "In the browser" page, as it is in README.md.
    static func readmePage() throws -> String {
        let readme = try String(contentsOf: ConformanceSuite.repoRoot.appendingPathComponent("README.md"), encoding: .utf8)
        guard let section = readme.range(of: "## In the browser"),
            let start = readme.range(of: "```html\n", range: section.upperBound..<readme.endIndex),
            let end = readme.range(of: "```", range: start.upperBound..<readme.endIndex)
        else {
            throw ExternalToolError.missing("README.md has no ```html block under \"## In the browser\"")
        }
        return String(readme[start.upperBound..<end.lowerBound])
    }

    /// With compression on, Chromium negotiates permessage-deflate by itself: bob's long message
    /// reaches it compressed, and what it sends (hello, join) arrives compressed.
    @Test(ExternalTool.browserAvailability, arguments: [false, true]) func readmePageWorks(compression: Bool) async throws {
        let page = try Self.readmePage()
        var configuration = SwitchboardConfiguration()
        if compression { configuration.compression = CompressionConfiguration() }
        let content = compression ? "hi from bob" + String(repeating: ", and again", count: 60) : "hi from bob"
        try await BrowserTestServer.with(configuration: configuration, pages: ["/": page]) { server in
            let token = try await TokenMinter(hs256Secret: TestServer.secret).mint(subject: "bob", ttl: .seconds(600))
            let bob = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=\(token)")
            _ = try await TestServer.hello(bob)
            try await bob.sendText(#"{"event":"room.join","data":{"room":"lobby"},"id":"j"}"#)
            _ = try await bob.next(event: "j", field: "id")
            // The page loads while bob waits for its user to join, then bob says hello.
            async let browser = Self.load(
                "http://127.0.0.1:\(server.port)/",
                until: "const items = [...document.querySelectorAll('li')].map((li) => li.textContent); return items.includes('bob: \(content)') && document.title === 'open' && items",
                timeout: 60
            )
            let joined = try await bob.next(event: "presence.join", timeout: .seconds(60))
            #expect(joined["data"]?.objectValue?["user"]?.stringValue == "reader")
            try await bob.sendText(#"{"event":"message.send","data":{"room":"lobby","content":"\#(content)"},"id":"m"}"#)
            let (value, output) = try await browser
            #expect(value?.arrayValue?.compactMap(\.stringValue) == ["bob: \(content)"], "\(output)")
            // Bob did not offer compression: only the browser's connection can have been sent a
            // compressed frame.
            let compressed = await CompressionTests.framesCompressed(server.switchboard)
            #expect(compression ? compressed >= 1 : compressed == 0)
            await bob.close()
        }
    }

    /// `serve` with the development secret shows its playground at `/`: a person connects as a
    /// user, joins a room and sees what arrives. The run keeps a screenshot of it.
    @Test(ExternalTool.browserAvailability) func servePlaygroundShowsWhatArrives() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-playground-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try CLIProcess(["serve", "--port", "0", "--database", directory.appendingPathComponent("db.sqlite").path], environment: ["SWITCHBOARD_JWT_SECRET": ""])
        defer { server.terminate() }
        let port = Int(try await server.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)) ?? 0
        _ = try await server.waitForOutput(matching: #"playground: (http://\S+)"#)
        let (bad, _) = try await RawTCPClient.request(port: port, text: "GET /dev/token?sub= HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(bad.hasPrefix("HTTP/1.1 400"), "\(bad)")

        let token = try await TokenMinter(hs256Secret: TokenMinter.developmentSecret).mint(subject: "bob", ttl: .seconds(600))
        let bob = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(token)")
        _ = try await TestServer.hello(bob)
        _ = try await RoomTests.join(bob, "lobby")
        let screenshot = ExternalTool.artifactsDirectory.appendingPathComponent("playground.png").path
        async let browser = Self.load(
            "http://127.0.0.1:\(port)/?user=alice&join=lobby",
            until: "const p = window.__playground; return p && p.state === 'open' && p.rows.some((r) => r.kind === 'event' && r.event === 'message.new' && r.eid) && p",
            timeout: 60,
            screenshot: screenshot
        )
        let joined = try await bob.next(event: "presence.join", timeout: .seconds(60))
        #expect(joined["data"]?["user"]?.stringValue == "alice")
        _ = try await RoomTests.request(bob, "message.send", #"{"room":"lobby","content":"hi from bob"}"#)
        let (value, output) = try await browser
        let rows = value?["rows"]?.arrayValue ?? []
        #expect(rows.contains { $0["kind"]?.stringValue == "ack" && $0["event"]?.stringValue == "room.join" && $0["room"]?.stringValue == "lobby" }, "\(output)")
        let delivered = rows.first { $0["event"]?.stringValue == "message.new" }
        #expect(delivered?["data"]?.stringValue?.contains("hi from bob") == true, "\(output)")
        #expect(delivered?["eid"]?.stringValue?.hasSuffix(":") == false)
        #expect(FileManager.default.fileExists(atPath: screenshot))
        await bob.close()

        // With a real secret there is no playground and no token route.
        let secured = try CLIProcess(["serve", "--port", "0", "--jwt-secret", "a-real-secret-0123456789abcdefghijkl", "--database", directory.appendingPathComponent("db2.sqlite").path])
        defer { secured.terminate() }
        let securedPort = Int(try await secured.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)) ?? 0
        for path in ["/", "/dev/token?sub=x"] {
            let (response, _) = try await RawTCPClient.request(port: securedPort, text: "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(response.hasPrefix("HTTP/1.1 404"), "\(path): \(response)")
        }
    }

    /// The operations page of `serve`: live figures over Switchboard's own broadcast-only room. A
    /// test client connecting changes the connection count the page shows; the run keeps a
    /// screenshot. Behind --ops-key with a real secret.
    @Test(ExternalTool.browserAvailability) func serveOpsPageShowsLiveFigures() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-ops-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let secret = "ops-test-secret-0123456789abcdefghijkl"
        let key = "ops-key-0123456789abcdef"
        let server = try CLIProcess([
            "serve", "--port", "0", "--jwt-secret", secret, "--ops-key", key, "--database", directory.appendingPathComponent("db.sqlite").path,
        ])
        defer { server.terminate() }
        let port = Int(try await server.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)) ?? 0
        for path in ["/ops", "/ops?key=wrong", "/ops/token?key=wrong"] {
            let (response, _) = try await RawTCPClient.request(port: port, text: "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(response.hasPrefix("HTTP/1.1 401"), "\(path): \(response)")
        }
        let screenshot = ExternalTool.artifactsDirectory.appendingPathComponent("ops.png").path
        async let browser = Self.load(
            "http://127.0.0.1:\(port)/ops?key=\(key)",
            until: "const o = window.__ops; return o && o.state === 'open' && o.seen.includes(1) && o.seen.includes(2) && o.stats.connections === 2 && o",
            timeout: 60,
            screenshot: screenshot
        )
        // The page's own connection first, until it was sent two updates (the hello and join
        // acks, then `ops.stats` each second): at least one counted it alone, so the page showed 1.
        // Then a client of the test's: the page shows 2.
        func metric(_ name: String) async throws -> Double? {
            let (metrics, _) = try await RawTCPClient.request(port: port, text: "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", until: .close)
            let line = metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
            return line?.split(separator: " ").last.flatMap { Double($0) }
        }
        try await waitUntil("the operations page connected and was sent two updates", timeout: .seconds(60)) {
            let connections = try await metric("switchboard_connections")
            let sent = try await metric("switchboard_messages_out_total") ?? 0
            return connections == 1 && sent >= 4
        }
        let token = try await TokenMinter(hs256Secret: secret).mint(subject: "bob", ttl: .seconds(600))
        let bob = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(token)")
        _ = try await TestServer.hello(bob)
        // Bob may not join the operations room, nor publish to it.
        let room = "switchboard:ops:\(ProcessInfo.processInfo.hostName)-\(server.processIdentifier)"
        let join = try await RoomTests.request(bob, "room.join", #"{"room":"\#(room)"}"#)
        #expect(join["data"]?["code"]?.stringValue == "forbidden", "\(join)")
        let (value, output) = try await browser
        #expect(value?["stats"]?["connections"]?.numberValue == 2, "\(output)")
        #expect(FileManager.default.fileExists(atPath: screenshot))
        await bob.close()
    }
}

private extension JSONValue {
    var intValue: Int? { numberValue.map { Int($0) } }
}
