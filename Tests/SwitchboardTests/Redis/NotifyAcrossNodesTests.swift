import Foundation
import Testing

@testable import Switchboard

/// `POST /api/notify` with `serve --redis`: the user's connections on every node get the event,
/// through the broker's users channel; other users get nothing.
@Suite("switchboard serve --redis: /api/notify across nodes", RedisServer.availability)
struct NotifyAcrossNodesTests {
    static let key = "notify-across-nodes-test-key-0123"

    @Test("a notify sent to node A reaches the user's connections on nodes A and B, once each, and no one else")
    func notifyReachesEveryNode() async throws {
        try await ServeCluster.with(nodes: 2, arguments: ["--api-key", Self.key]) { cluster in
            let (onA, _) = try await cluster.connect("alice", node: 0)
            let (onB, _) = try await cluster.connect("alice", node: 1)
            let (bob, _) = try await cluster.connect("bob", node: 1)
            let json = #"{"user":"alice","event":"invoice.paid","data":{"amount":42}}"#
            let response = try await RawTCPClient.request(
                port: cluster.ports[0],
                text: "POST /api/notify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Self.key)\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\nConnection: close\r\n\r\n\(json)"
            ).response
            #expect(response.hasPrefix("HTTP/1.1 200"), "\(response)")
            #expect(response.contains(#"{"connections":1}"#), "\(response)")
            for peer in [onA, onB] {
                try await waitUntil("\(peer.user) got the notify", timeout: .seconds(10)) {
                    peer.messages.contains { $0["event"]?.stringValue == "invoice.paid" }
                }
            }
            // Bob's next reply comes after anything published before it on his node's loop.
            _ = try await bob.request("room.join", #"{"room":"after"}"#)
            for peer in [onA, onB] {
                let notices = peer.messages.filter { $0["event"]?.stringValue == "invoice.paid" }
                #expect(notices.count == 1, "\(peer.messages)")
                #expect(notices.first?["data"]?["amount"] == .number(42) && notices.first?["room"] == nil)
            }
            #expect(!bob.messages.contains { $0["event"]?.stringValue == "invoice.paid" }, "\(bob.messages)")
            for peer in [onA, onB, bob] { await peer.close() }
        }
    }
}
