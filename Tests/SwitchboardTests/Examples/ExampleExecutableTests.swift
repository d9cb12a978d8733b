import Foundation
import Testing
@testable import Switchboard

/// The examples' executables, as `swift run ChatExample` and `swift run DashboardExample` start
/// them: each listens, serves its page and the JavaScript client, and accepts a viewer or user.
@Suite("Examples: the executables", .serialized)
struct ExampleExecutableTests {
    /// Starts `executable` on a free port; returns the process and the port it printed.
    private static func start(_ executable: String, environment: [String: String]) async throws -> (CLIProcess, Int) {
        let process = try CLIProcess([], environment: environment, executable: executable)
        let port = try await process.waitForOutput(matching: #"example on http://127\.0\.0\.1:(\d+)"#, timeout: .seconds(30))
        return (process, try #require(Int(port)))
    }

    private static func get(_ path: String, port: Int) async throws -> String {
        try await RawTCPClient.request(port: port, text: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", until: .close).response
    }

    /// SIGTERM, then a bounded wait for a clean exit.
    private static func stop(_ process: CLIProcess) async throws {
        process.send(signal: SIGTERM)
        #expect(try await process.waitForExit(timeout: .seconds(20)) == 0)
    }

    @Test func chatExampleStartsAndJoinsAUserToTheirChannels() async throws {
        let folder = try ExampleArtifacts.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (process, port) = try await Self.start(
            "ChatExample",
            environment: ["CHAT_PORT": "0", "CHAT_DATABASE": folder.appendingPathComponent("chat.sqlite").path, "CHAT_JWT_SECRET": TestServer.secret]
        )
        do {
            #expect(try await Self.get("/", port: port).contains("<title>Switchboard chat</title>"))
            #expect(try await Self.get("/chat.js", port: port).contains(#"import { Switchboard } from "/switchboard.js";"#))
            #expect(try await Self.get("/switchboard.js", port: port).contains("export class Switchboard"))
            let token = try await TokenMinter(hs256Secret: TestServer.secret).mint(subject: "carol")
            let carol = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(token)", timeout: .seconds(20))
            let hello = try await TestServer.hello(carol)
            #expect(hello["data"]?["rooms"]?.arrayValue?.compactMap { $0["room"]?.stringValue }.sorted() == ["general", "random"])
            await carol.close()
        } catch {
            process.terminate()
            throw error
        }
        try await Self.stop(process)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("chat.sqlite").path))
    }

    @Test func dashboardExampleStartsAndItsProducerPublishes() async throws {
        let (process, port) = try await Self.start(
            "DashboardExample",
            environment: ["DASHBOARD_PORT": "0", "DASHBOARD_INTERVAL_MS": "50", "DASHBOARD_JWT_SECRET": TestServer.secret]
        )
        do {
            #expect(try await Self.get("/", port: port).contains("<title>Switchboard live dashboard</title>"))
            #expect(try await Self.get("/api/viewer-token", port: port).contains("eyJ"))
            let token = try await TokenMinter(hs256Secret: TestServer.secret).mint(subject: "viewer")
            let viewer = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(token)", timeout: .seconds(20))
            try await viewer.sendText(#"{"event":"room.join","data":{"room":"dashboard:metrics"},"id":"j"}"#)
            let refresh = try await viewer.next(event: "state.refresh")
            let seq = try #require(refresh["data"]?["seq"]?.numberValue)
            // The in-process producer publishes every 50 ms: the next sample follows the snapshot
            // (which may already hold the first live one: it is read after the join's position).
            var update = try await viewer.next(event: "metrics.update")
            if let first = update["data"]?["seq"]?.numberValue, first <= seq {
                update = try await viewer.next(event: "metrics.update")
            }
            #expect(update["data"]?["seq"]?.numberValue == seq + 1)
            #expect(update["data"]?["values"]?["cpu"]?.numberValue != nil)
            await viewer.close()
        } catch {
            process.terminate()
            throw error
        }
        try await Self.stop(process)
    }
}
