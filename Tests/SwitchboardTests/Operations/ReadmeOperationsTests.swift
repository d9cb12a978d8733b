import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import Switchboard

@Suite("README: metrics and the publish API")
struct ReadmeOperationsTests {
    @Test func readmeBlockIsTheCompiledExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let example = try String(contentsOf: root.appendingPathComponent("Tests/SwitchboardTests/Operations/ReadmeOperationsExample.swift"), encoding: .utf8)
        let code = try #require(example.components(separatedBy: "// readme-operations:begin\n").last?.components(separatedBy: "// readme-operations:end").first)
        #expect(readme.contains("```swift\n" + code + "```"), "README.md's operations block differs from ReadmeOperationsExample.swift")
    }

    @Test func exampleServesMetricsAndTheAPI() async throws {
        let key = "readme-operations-key-0123456789"
        try await TestServers.with(routes: { router, switchboard in addOperations(to: router, switchboard: switchboard, apiKey: key) }) { server in
            let metrics = try await server.http.execute(uri: "/metrics", method: .get)
            #expect(metrics.status == .ok)
            #expect(String(buffer: metrics.body).contains("switchboard_connections 0"))
            let published = try await server.http.execute(
                uri: "/api/publish", method: .post, headers: [.authorization: "Bearer \(key)"],
                body: ByteBuffer(string: #"{"room":"lobby","event":"deploy.finished","data":{"version":"1.4.2"}}"#))
            #expect(published.status == .ok, "\(String(buffer: published.body))")
        }
    }
}
