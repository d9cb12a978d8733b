import Foundation
import HummingbirdTesting
import Testing
@testable import Switchboard

@Suite("Handshake: authentication and limits before the upgrade")
struct HandshakeTests {
    /// Asserts a refused handshake: the status, the JSON error code, and that no socket was created.
    private func expectRejected(_ server: TestServer, path: String, headers: [(String, String)] = [], status: Int, code: String) async throws {
        let result = try await TestWebSocketClient.connect(port: server.port, path: path, headers: headers)
        guard case .rejected(let response) = result else {
            Issue.record("expected HTTP \(status), got an upgrade")
            return
        }
        #expect(response.status == status)
        #expect(response.header("Upgrade") == nil || status == 426)
        let body = try JSONDecoder().decode([String: [String: String]].self, from: Data(response.body.utf8))
        #expect(body["error"]?["code"] == code, "body: \(response.body)")
        #expect(await server.switchboard.connectionCount() == 0)
    }

    @Test func missingTokenIs401() async throws {
        try await TestServers.with { server in
            try await expectRejected(server, path: "/ws", status: 401, code: "token_missing")
        }
    }

    @Test func badTokensAre401() async throws {
        try await TestServers.with { server in
            let wrongSecret = try await TokenMinter(hs256Secret: "another-secret-that-is-long-enough-0123").mint(subject: "alice")
            try await expectRejected(server, path: "/ws?token=\(wrongSecret)", status: 401, code: "invalid_signature")
            try await expectRejected(server, path: "/ws?token=garbage", status: 401, code: "invalid_token")
            let expired = try await server.token("alice", ttl: .seconds(-60))
            try await expectRejected(server, path: "/ws?token=\(expired)", status: 401, code: "token_expired")
            // alg "none": a well-formed token with no signature.
            func b64(_ text: String) -> String {
                Data(text.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
                    .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            }
            let exp = Int(Date().timeIntervalSince1970) + 600
            let none = b64(#"{"alg":"none","typ":"JWT"}"#) + "." + b64(#"{"sub":"alice","exp":\#(exp)}"#) + "."
            try await expectRejected(server, path: "/ws?token=\(none)", status: 401, code: "unsupported_algorithm")
        }
    }

    @Test func bearerHeaderIsAccepted() async throws {
        try await TestServers.with { server in
            let token = try await server.token("alice")
            let client = try await TestWebSocketClient.open(port: server.port, path: "/ws", headers: [("Authorization", "Bearer \(token)")])
            let welcome = try await TestServer.hello(client)
            #expect(welcome["data"]?["user"]?.stringValue == "alice")
            await client.close()
        }
    }

    @Test func originAllowList() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.allowedOrigins = ["https://app.example.com"]
        try await TestServers.with(configuration: configuration) { server in
            let token = try await server.token("alice")
            try await expectRejected(server, path: "/ws?token=\(token)", headers: [("Origin", "https://evil.example.com")], status: 403, code: "origin_not_allowed")
            try await expectRejected(server, path: "/ws?token=\(token)", status: 403, code: "origin_not_allowed")
            let client = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=\(token)", headers: [("Origin", "https://app.example.com")])
            _ = try await TestServer.hello(client)
            await client.close()
        }
    }

    @Test("origin allow-list: look-alikes of an allowed origin (other scheme, port, case of the host, a suffix, a prefix, a trailing slash, null, empty) are refused with 403 before the token is checked")
    func originLookAlikesAreRefused() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.allowedOrigins = ["https://app.example.com"]
        try await TestServers.with(configuration: configuration) { server in
            let token = try await server.token("alice")
            for origin in [
                "http://app.example.com", "https://app.example.com:8443", "https://APP.example.com", "https://app.example.com.evil.com",
                "https://evilapp.example.com", "https://app.example.co", "null", "", "https://app.example.com/",
            ] {
                try await expectRejected(server, path: "/ws?token=\(token)", headers: [("Origin", origin)], status: 403, code: "origin_not_allowed")
            }
            // The token is not looked at: a garbage one gets the same 403, not a 401.
            try await expectRejected(server, path: "/ws?token=garbage", headers: [("Origin", "https://evil.example.com")], status: 403, code: "origin_not_allowed")
        }
    }

    /// A membership store that never answers (and ignores cancellation).
    struct StalledMembershipStore: MembershipStore {
        func rooms(of user: String) async throws -> [String] {
            try? await Task.sleep(for: .seconds(3600))
            return []
        }
        func add(userID: String, room: String) async throws -> Bool { true }
        func remove(userID: String, room: String) async throws -> Bool { true }
        func list(userID: String?) async throws -> [Membership] { [] }
    }

    @Test("a store that does not answer within handshakeStoreTimeout is HTTP 503 store_unavailable, not a hang")
    func stalledStoreIs503() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.handshakeStoreTimeout = .milliseconds(200)
        try await TestServers.with(configuration: configuration, memberships: StalledMembershipStore()) { server in
            let token = try await server.token("alice")
            // Without the deadline the client's own wait (5 s) would end first, and this throws.
            try await expectRejected(server, path: "/ws?token=\(token)", status: 503, code: "store_unavailable")
            // The refused handshake took no connection slot.
            #expect(try await server.switchboard.connectionSlots.count(of: "alice") == 0)
        }
    }

    @Test func sixthConnectionOfOneUserIs429UntilOneCloses() async throws {
        try await TestServers.with { server in
            var clients: [TestWebSocketClient] = []
            for _ in 0..<5 {
                clients.append(try await server.open("alice"))
            }
            let token = try await server.token("alice")
            try await expectRejectedKeepingOthers(server, path: "/ws?token=\(token)")
            // Another user is not affected.
            let bob = try await server.open("bob")
            await bob.close()
            // Once one of alice's connections is closed, she may connect again.
            await clients.removeFirst().close()
            try await server.waitForConnections(4)
            clients.append(try await server.open("alice"))
            for client in clients { await client.close() }
        }
    }

    private func expectRejectedKeepingOthers(_ server: TestServer, path: String) async throws {
        let result = try await TestWebSocketClient.connect(port: server.port, path: path)
        guard case .rejected(let response) = result else {
            Issue.record("expected 429, got an upgrade")
            return
        }
        #expect(response.status == 429)
        #expect(response.body.contains("too_many_connections"))
    }

    @Test func appRoutesStillAnswerOnTheSamePort() async throws {
        try await TestServers.with { server in
            try await server.http.execute(uri: "/hello", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "hello from the app")
            }
            try await server.http.execute(uri: "/nope", method: .get) { response in
                #expect(response.status == .notFound)
            }
            // A plain GET of the WebSocket path gets what the handshake check would say: without
            // a token 401, with a valid one 426 (told to upgrade).
            try await server.http.execute(uri: "/ws", method: .get) { response in
                #expect(response.status.code == 401)
            }
            let token = try await server.token("alice")
            try await server.http.execute(uri: "/ws?token=\(token)", method: .get) { response in
                #expect(response.status.code == 426)
                #expect(response.headers[.init("Sec-WebSocket-Version")!] == "13")
            }
            let client = try await server.open("alice")
            await client.close()
        }
    }

    @Test func wrongVersionGets426WithSupportedVersion() async throws {
        try await TestServers.with { server in
            let token = try await server.token("alice")
            let result = try await TestWebSocketClient.connect(port: server.port, path: "/ws?token=\(token)", headers: [("Sec-WebSocket-Version", "99")])
            guard case .rejected(let response) = result else {
                Issue.record("expected 426")
                return
            }
            #expect(response.status == 426)
            #expect(response.header("Sec-WebSocket-Version") == "13")
        }
    }

    @Test func slowHandshakeIsDropped() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.handshakeTimeout = .milliseconds(300)
        try await TestServers.with(configuration: configuration) { server in
            let raw = try await RawTCPClient.connect(port: server.port)
            try await raw.send("GET /ws HTTP/1.1\r\nHost: x\r\n")
            // Never finishes the request: the server must drop it on its own.
            #expect(try await raw.waitForDisconnect(timeout: .seconds(5)))
            await raw.close()
        }
    }

    @Test func tokensNeverAppearInLogs() async throws {
        let logs = CapturedLogs()
        try await TestServers.with(logger: logs.logger) { server in
            let token = try await server.token("alice")
            let client = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=\(token)")
            _ = try await TestServer.hello(client)
            await client.close()
            let expired = try await server.token("bob", ttl: .seconds(-60))
            _ = try await TestWebSocketClient.connect(port: server.port, path: "/ws?token=\(expired)&x=1")
            // In a header, malformed, and on a connection that sends messages (logged at debug).
            let carol = try await server.token("carol")
            let bearer = try await TestWebSocketClient.open(port: server.port, path: "/ws", headers: [("Authorization", "Bearer \(carol)")])
            _ = try await RoomTests.join(bearer, "lobby")
            _ = try await ResumeTests.send(bearer, "lobby", "hello")
            await bearer.close()
            _ = try await TestWebSocketClient.connect(port: server.port, path: "/ws", headers: [("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIi.bad")])
            _ = try await TestWebSocketClient.connect(port: server.port, path: "/ws?token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
            // The name percent-encoded (found by HandshakeFuzzTests): the URL parser decodes it, so
            // it authenticates, and was logged as it came.
            let dave = try await server.token("dave")
            let encoded = try await TestWebSocketClient.open(port: server.port, path: "/ws?%74oken=\(dave)")
            _ = try await TestServer.hello(encoded)
            await encoded.close()
            try await server.waitForConnections(0)
        }
        let lines = logs.lines
        #expect(lines.contains { $0.contains("connected") && $0.contains("token=REDACTED") })
        #expect(lines.contains { $0.contains("handshake rejected") && $0.contains("status=401") })
        #expect(lines.contains { $0.contains("message") && $0.contains("message.send") }, "debug lines were captured")
        let signatureLike = lines.filter { $0.contains("eyJ") }
        #expect(signatureLike.isEmpty, "token text in logs: \(signatureLike)")
    }
}
