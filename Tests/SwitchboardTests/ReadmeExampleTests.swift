import Foundation
import HummingbirdTesting
import Testing
@testable import Switchboard

@Suite("README quick start")
struct ReadmeExampleTests {
    @Test func readmeBlockIsTheCompiledExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let example = try String(contentsOf: root.appendingPathComponent("Tests/SwitchboardTests/ReadmeExample.swift"), encoding: .utf8)
        let code = try #require(example.components(separatedBy: "// readme-example:begin\n").last?.components(separatedBy: "// readme-example:end").first)
        #expect(readme.contains("```swift\n" + code + "```"), "README.md's quick start differs from ReadmeExample.swift")
    }

    @Test func quickStartAppServesRoutesAndSockets() async throws {
        let secret = TestServer.secret
        let app = try await buildApplication(jwtSecret: secret, port: 0)
        try await app.test(.live) { client in
            try await client.execute(uri: "/hello", method: .get) { response in
                #expect(String(buffer: response.body) == "Hello")
            }
            let port = try #require(client.port)
            let tokenA = try await TokenMinter(hs256Secret: secret).mint(subject: "ann")
            let tokenB = try await TokenMinter(hs256Secret: secret).mint(subject: "ben")
            let ann = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(tokenA)")
            let ben = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(tokenB)")
            for client in [ann, ben] {
                try await client.sendText(#"{"event":"room.join","data":{"room":"r"},"id":"j"}"#)
                _ = try await client.next(event: "j", field: "id")
            }
            try await ann.sendText(#"{"event":"chat.send","data":{"room":"r","text":"hello ben"},"id":"s"}"#)
            let message = try await ben.next(event: "chat.message")
            #expect(message["data"]?["text"]?.stringValue == "hello ben")
            #expect(message["data"]?["from"]?.stringValue == "ann")
            try await ann.sendText(#"{"event":"chat.send","data":{"room":"r","text":""},"id":"e"}"#)
            #expect(try await ann.next(event: "e", field: "id")["data"]?["code"]?.stringValue == "validation_failed")
            await ann.close()
            await ben.close()
        }
    }
}
