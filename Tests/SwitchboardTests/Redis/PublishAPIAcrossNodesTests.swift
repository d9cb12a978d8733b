import Foundation
import Testing

@testable import Switchboard

/// The publish API with `serve --redis`: `POST /api/notify` reaches the user's connections on
/// every node (the broker's users channel), `POST /api/publish` goes through the Redis broker like
/// a client's `message.send` (a position, history, every node).
@Suite("switchboard serve --redis: the publish API across nodes", RedisServer.availability)
struct PublishAPIAcrossNodesTests {
    static let key = "notify-across-nodes-test-key-0123"

    static func post(_ path: String, _ json: String, port: Int) async throws -> String {
        try await RawTCPClient.request(
            port: port,
            text: "POST \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\nConnection: close\r\n\r\n\(json)"
        ).response
    }

    @Test("POST /api/publish on node A: a member on node B gets the event with the returned eid, in the room's sequence, and a resume on node A replays it")
    func publishReachesOtherNode() async throws {
        try await ServeCluster.with(nodes: 2, arguments: ["--api-key", Self.key]) { cluster in
            let (member, _) = try await cluster.connect("bob", node: 1)
            let before = try await member.join("lobby")
            let response = try await Self.post("/api/publish", #"{"room":"lobby","event":"deploy.finished","data":{"v":2}}"#, port: cluster.ports[0])
            #expect(response.hasPrefix("HTTP/1.1 200"), "\(response)")
            let eid = EventID(epoch: before.epoch, offset: before.offset + 1)
            #expect(response.contains(#"{"eid":"\#(eid)"}"#), "\(response)")
            try await waitUntil("bob got the event on node B", timeout: .seconds(10)) {
                member.messages.contains { $0["event"]?.stringValue == "deploy.finished" }
            }
            let event = try #require(member.messages.first { $0["event"]?.stringValue == "deploy.finished" })
            #expect(event["eid"]?.stringValue == eid.description && event["room"]?.stringValue == "lobby", "\(event)")
            let (late, ack) = try await cluster.connect("carol", node: 0, resume: ["lobby": before])
            #expect(Resume.outcome(ack, "lobby")?["recovered"]?.boolValue == true, "\(ack)")
            try await waitUntil("carol got the replay on node A", timeout: .seconds(10)) {
                late.messages.contains { $0["event"]?.stringValue == "deploy.finished" && $0["eid"]?.stringValue == eid.description }
            }
            await member.close()
            await late.close()
        }
    }

    @Test("a notify sent to node A reaches the user's connections on nodes A and B, once each, and no one else")
    func notifyReachesEveryNode() async throws {
        try await ServeCluster.with(nodes: 2, arguments: ["--api-key", Self.key]) { cluster in
            let (onA, _) = try await cluster.connect("alice", node: 0)
            let (onB, _) = try await cluster.connect("alice", node: 1)
            let (bob, _) = try await cluster.connect("bob", node: 1)
            let response = try await Self.post("/api/notify", #"{"user":"alice","event":"invoice.paid","data":{"amount":42}}"#, port: cluster.ports[0])
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
