import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
@testable import Switchboard
import SwitchboardJavaScript

@Suite("JavaScript client: Node unit tests, /switchboard.js, the GET check of the WebSocket path")
struct JavaScriptClientTests {
    @Test(ExternalTool.nodeAvailability) func nodeUnitTestsPass() async throws {
        guard let node = ExternalTool.node else {
            Issue.record("node is not on PATH (SWITCHBOARD_REQUIRE_BROWSER=1): install Node 20 or later")
            return
        }
        let directory = ExternalTool.clientDirectory
        let tests = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("test").path)
            .filter { $0.hasSuffix(".test.js") }
            .sorted()
            .map { "test/\($0)" }
        try #require(!tests.isEmpty, "no *.test.js under \(directory.path)/test")
        let run = try await ExternalTool.run(node, ["--experimental-websocket", "--test"] + tests, in: directory, timeout: .seconds(120))
        #expect(run.exitCode == 0, "node --test failed:\n\(run.output)")
        let passed = run.output.split(separator: "\n").first { $0.hasPrefix("# pass ") }.flatMap { Int($0.dropFirst(7)) } ?? 0
        #expect(passed >= 20, "expected the unit tests to run, got:\n\(run.output)")
        #expect(run.output.contains("# fail 0"), "\(run.output)")
    }

    @Test func clientIsServedFromTheOneSourceFile() async throws {
        let onDisk = try Data(contentsOf: ExternalTool.clientDirectory.appendingPathComponent("switchboard.js"))
        let declarations = try Data(contentsOf: ExternalTool.clientDirectory.appendingPathComponent("switchboard.d.ts"))
        #expect(SwitchboardJavaScript.script == onDisk)
        #expect(SwitchboardJavaScript.declarations == declarations)
        try await TestServers.with { server in
            let etag = try await server.http.execute(uri: "/switchboard.js", method: .get) { response -> String in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/javascript; charset=utf-8")
                #expect(response.headers[.cacheControl] == "public, max-age=300")
                #expect(Data(response.body.readableBytesView) == onDisk)
                return response.headers[.eTag] ?? ""
            }
            #expect(etag.hasPrefix("\"") && etag.hasSuffix("\"") && etag.count > 4, "ETag: \(etag)")
            try await server.http.execute(uri: "/switchboard.js", method: .get, headers: [.ifNoneMatch: etag]) { response in
                #expect(response.status == .notModified)
                #expect(response.headers[.eTag] == etag)
                #expect(response.body.readableBytes == 0)
            }
            try await server.http.execute(uri: "/switchboard.js", method: .get, headers: [.ifNoneMatch: "\"other\", W/\(etag)"]) { response in
                #expect(response.status == .notModified)
            }
            try await server.http.execute(uri: "/switchboard.js", method: .get, headers: [.ifNoneMatch: "\"stale\""]) { response in
                #expect(response.status == .ok)
            }
            try await server.http.execute(uri: "/switchboard.d.ts", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/typescript; charset=utf-8")
                #expect(Data(response.body.readableBytesView) == declarations)
                #expect(response.headers[.eTag] != etag)
            }
            try await server.http.execute(uri: "/switchboard.js", method: .post) { response in
                #expect(response.status != .ok)
            }
        }
    }

    @Test func standaloneServerServesTheClient() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-js-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try CLIProcess(["serve", "--port", "0", "--jwt-secret", CLITests.secret, "--database", directory.appendingPathComponent("m.sqlite").path, "--log-level", "error"])
        defer { server.terminate() }
        let port = try await server.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)
        let (text, _) = try await RawTCPClient.request(port: Int(port) ?? 0, text: "GET /switchboard.js HTTP/1.1\r\nHost: x\r\n\r\n", until: .response)
        let onDisk = try String(contentsOf: ExternalTool.clientDirectory.appendingPathComponent("switchboard.js"), encoding: .utf8)
        #expect(text.hasPrefix("HTTP/1.1 200"), "\(text.prefix(300))")
        #expect(text.lowercased().contains("content-type: text/javascript; charset=utf-8"))
        #expect(text.hasSuffix(onDisk), "the served bytes are the file's")
    }

    @Test func clientPathIsConfigurableAndCanBeOff() async throws {
        try await TestServers.with(configuration: .init(clientScriptPath: "/assets/sb.js")) { server in
            try await server.http.execute(uri: "/assets/sb.js", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await server.http.execute(uri: "/assets/sb.d.ts", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await server.http.execute(uri: "/switchboard.js", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
        try await TestServers.with(configuration: .init(clientScriptPath: nil)) { server in
            for path in ["/switchboard.js", "/switchboard.d.ts"] {
                try await server.http.execute(uri: path, method: .get) { response in
                    #expect(response.status == .notFound, "\(path)")
                }
            }
        }
    }

    /// What a plain GET of the WebSocket path answers: status and error code.
    /// What a plain GET of the WebSocket path answers, as "<status> <error code>".
    private func check(_ server: TestServer, _ uri: String, headers: HTTPFields = [:]) async throws -> String {
        try await server.http.execute(uri: uri, method: .get, headers: headers) { response -> String in
            let body = try? JSONDecoder().decode([String: [String: String]].self, from: Data(response.body.readableBytesView))
            #expect(response.headers[.contentType] == "application/json")
            return "\(response.status.code) \(body?["error"]?["code"] ?? "-")"
        }
    }

    @Test func getOnTheWebSocketPathSaysWhatTheHandshakeWould() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.maxConnectionsPerUser = 1
        try await TestServers.with(configuration: configuration) { server in
            #expect(try await check(server, "/ws") == "401 token_missing")
            #expect(try await check(server, "/ws?token=garbage") == "401 invalid_token")
            let expired = try await server.token("alice", ttl: .seconds(-60))
            #expect(try await check(server, "/ws?token=\(expired)") == "401 token_expired")
            let token = try await server.token("alice")
            #expect(try await check(server, "/ws?token=\(token)") == "426 upgrade_required")
            #expect(try await check(server, "/ws", headers: [.authorization: "Bearer \(token)"]) == "426 upgrade_required")
            try await server.http.execute(uri: "/ws", method: .get, headers: [.origin: "https://elsewhere.example"]) { response in
                #expect(response.headers[.accessControlAllowOrigin] == "*")
                #expect(response.headers[.cacheControl] == "no-store")
            }
            // The check takes no slot: with a limit of one, the real handshake still succeeds.
            #expect(try await check(server, "/ws?token=\(token)") == "426 upgrade_required")
            let client = try await server.open("alice")
            #expect(try await check(server, "/ws?token=\(token)") == "429 too_many_connections")
            await client.close()
            try await waitUntil("alice's slot is given back") {
                try await check(server, "/ws?token=\(token)") == "426 upgrade_required"
            }
        }
        var originConfiguration = SwitchboardConfiguration()
        originConfiguration.allowedOrigins = ["https://app.example"]
        try await TestServers.with(configuration: originConfiguration) { server in
            let token = try await server.token("alice")
            #expect(try await check(server, "/ws?token=\(token)") == "403 origin_not_allowed")
            #expect(try await check(server, "/ws?token=\(token)", headers: [.origin: "https://app.example"]) == "426 upgrade_required")
            try await server.http.execute(uri: "/ws?token=\(token)", method: .get, headers: [.origin: "https://app.example"]) { response in
                #expect(response.headers[.accessControlAllowOrigin] == "https://app.example")
            }
            try await server.http.execute(uri: "/ws?token=\(token)", method: .get, headers: [.origin: "https://evil.example"]) { response in
                #expect(response.status.code == 403)
                #expect(response.headers[.accessControlAllowOrigin] == nil)
            }
        }
    }
}
