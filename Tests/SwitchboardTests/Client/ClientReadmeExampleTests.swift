import Foundation
import Testing
@testable import Switchboard

@Suite("README Swift client example")
struct ClientReadmeExampleTests {
    @Test func readmeBlockIsTheCompiledExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let example = try String(contentsOf: root.appendingPathComponent("Tests/SwitchboardTests/Client/ClientReadmeExample.swift"), encoding: .utf8)
        let code = try #require(example.components(separatedBy: "// readme-client-example:begin\n").last?.components(separatedBy: "// readme-client-example:end").first)
        #expect(readme.contains("```swift\n" + code + "```"), "README.md's Swift client example differs from ClientReadmeExample.swift")
    }

    @Test func exampleChatsWithAnotherUser() async throws {
        try await TestServers.with { server in
            let bob = try await server.open("bob")
            try await ClientTests.join(bob, "lobby")
            let token = try await ClientTesting.token("alice")
            let chat = Task { try await chatInLobby(url: "ws://127.0.0.1:\(server.port)/ws", token: token, text: "hi bob", count: 2) }
            let hello = try await bob.next(event: "message.new")
            #expect(hello["data"]?["content"]?.stringValue == "hi bob")
            try await ClientTests.post(bob, "lobby", "hi alice")
            try await ClientTests.post(bob, "lobby", "bye")
            #expect(try await ClientTesting.value(of: chat) == ["bob: hi alice", "bob: bye"])
            await bob.close()
        }
    }
}
