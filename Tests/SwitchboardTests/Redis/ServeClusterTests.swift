import Foundation
import Testing

@testable import Switchboard
@testable import SwitchboardCLI

/// Three `switchboard serve --redis` processes on one private redis-server (issue 10): one chat
/// server however its nodes come and go, and whatever Redis does under them.
@Suite("three switchboard serve --redis nodes", RedisServer.availability)
struct ServeClusterTests {
    /// Sends `prefix-1`, `prefix-2`… one after the other (each after the previous reply) until
    /// `stop` is set or `limit` were sent; records each acked event.
    static func publish(
        _ peer: Peer, _ room: String, _ prefix: String, until stop: TestLockedBox<Bool>, limit: Int, into acked: TestLockedBox<[Delivered]>
    ) -> Task<Void, any Error> {
        Task {
            var index = 0
            while !stop.withLock({ $0 }) && index < limit {
                index += 1
                let content = "\(prefix)-\(index)"
                let reply = try await peer.send(room, content)
                let eid = try #require(reply["data"]?["eid"]?.stringValue.flatMap(EventID.init), "\(peer.user): \(reply)")
                acked.withLock { $0.append(Delivered(eid: eid, content: content)) }
            }
        }
    }

    /// Whether `user` can open a connection on `port` now (the connection is closed again).
    static func canConnect(_ cluster: ServeCluster, _ user: String, port: Int) async throws -> Bool {
        switch try await TestWebSocketClient.connect(port: port, path: "/ws?token=\(try await cluster.token(user))") {
        case .upgraded(let client):
            await client.close()
            return true
        case .rejected(let response):
            #expect(response.status == 429, "\(response)")
            return false
        }
    }

    @Test("clients on three nodes see the same events in the same order; a node killed mid-stream: its clients resume on the others without loss, its presence and connection slots expire")
    func threeNodesAndKill9() async throws {
        // Slots and presence entries of a dead node expire within --redis-node-ttl.
        let nodeTTL = Duration.seconds(3)
        try await ServeCluster.with(nodes: 3, arguments: ["--max-connections-per-user", "2", "--redis-node-ttl", "3s"]) { cluster in
            let (a, b, c) = (0, 1, 2)
            // Listeners on every node, two on the one to be killed.
            var listeners: [Peer] = []
            var start: EventID?
            for (user, node) in [("lia", a), ("lib", b), ("lic", c), ("lid", c)] {
                let (peer, _) = try await cluster.connect(user, node: node)
                let position = try await peer.join("lobby")
                #expect(start == nil || start == position, "every node tells the same position")
                start = start ?? position
                listeners.append(peer)
            }
            let from = try #require(start)
            let (lia, lic, lid) = (listeners[0], listeners[2], listeners[3])

            // Presence across nodes: erin is on C alone (two connections, her limit); frank is on B and C.
            var others: [Peer] = []
            for (user, node) in [("erin", c), ("erin", c), ("frank", b), ("frank", c)] {
                let (peer, _) = try await cluster.connect(user, node: node)
                _ = try await peer.join("lobby")
                others.append(peer)
            }
            try await waitUntil("lia sees erin and frank arrive") {
                Set(lia.presence("presence.join", in: "lobby")).isSuperset(of: ["erin", "frank"])
            }
            // The per-user limit holds over nodes: erin's two connections on C fill it for A too.
            #expect(try await Self.canConnect(cluster, "erin", port: cluster.ports[a]) == false)

            // Concurrent publishers on A and B.
            let (pa, _) = try await cluster.connect("pub-a", node: a)
            let (pb, _) = try await cluster.connect("pub-b", node: b)
            _ = try await pa.join("lobby")
            _ = try await pb.join("lobby")
            let stop = TestLockedBox(false)
            let acked = TestLockedBox<[Delivered]>([])
            let publishers = [
                Self.publish(pa, "lobby", "a", until: stop, limit: 2000, into: acked),
                Self.publish(pb, "lobby", "b", until: stop, limit: 2000, into: acked),
            ]
            do {
                // Mid-stream: C's listeners have received some, the publishers go on.
                try await waitUntil("C's listeners receive events", timeout: .seconds(20)) {
                    lic.events("lobby").count >= 10 && lid.events("lobby").count >= 1
                }
                let ackedAtKill = acked.withLock { $0.count }
                #expect(cluster.nodes[c].kill9(), "node C exited")
                // Its clients see the connection end and resume on the others from their last eids.
                for (peer, node) in [(lic, a), (lid, b)] {
                    _ = try await peer.waitUntilEnded()
                    let last = peer.events("lobby").last?.eid ?? from
                    let ack = try await peer.connect(port: cluster.ports[node], token: try await cluster.token(peer.user), resume: ["lobby": last])
                    #expect(Resume.outcome(ack, "lobby")?["recovered"]?.boolValue == true, "\(peer.user): \(ack)")
                }
                let ackedAtResume = acked.withLock { $0.count }
                try await waitUntil("publishing goes on after the resumes", timeout: .seconds(20)) { acked.withLock { $0.count } >= ackedAtResume + 20 }
                stop.withLock { $0 = true }
                for publisher in publishers { try await publisher.value }
                #expect(ackedAtKill > 0 && acked.withLock { $0.count } > ackedAtResume, "events were published before, during and after the kill")
            } catch {
                stop.withLock { $0 = true }
                for publisher in publishers { _ = await publisher.result }
                throw error
            }

            // The acks: one epoch, consecutive offsets from the join position, no position twice.
            let published = acked.withLock { $0 }.sorted { $0.eid.offset < $1.eid.offset }
            let last = try #require(published.last).eid
            #expect(published.map(\.eid) == published.indices.map { EventID(epoch: from.epoch, offset: from.offset + 1 + UInt64($0)) })
            // Every listener ends with exactly that sequence; a publisher with the other's part of it.
            for peer in listeners {
                try await waitUntil("\(peer.user) receives \(last)", timeout: .seconds(20)) { peer.events("lobby").last?.eid == last }
                #expect(peer.events("lobby") == published, "\(peer.user)")
            }
            for (publisher, other) in [(pa, "b-"), (pb, "a-")] {
                let expected = published.filter { $0.content.hasPrefix(other) }
                try await waitUntil("\(publisher.user) receives the other's last", timeout: .seconds(20)) {
                    publisher.events("lobby").last == expected.last
                }
                #expect(publisher.events("lobby") == expected, "\(publisher.user)")
            }

            // The dead node's presence entries expire (refreshed every third of the TTL, so within
            // TTL + TTL/3 of the kill): erin leaves, once; frank, still on B, does not.
            try await waitUntil("lia sees erin leave", timeout: nodeTTL * 2 + .seconds(5)) {
                lia.presence("presence.leave", in: "lobby").contains("erin")
            }
            // And its connection slots: erin may connect again, on A.
            try await waitUntil("erin's slots on the dead node expire", timeout: nodeTTL * 2 + .seconds(5)) {
                try await Self.canConnect(cluster, "erin", port: cluster.ports[a])
            }
            // A marker after the leave, so that anything announced with it has arrived too.
            let marker = try await pa.send("lobby", "marker")
            let markerEID = try #require(marker["data"]?["eid"]?.stringValue.flatMap(EventID.init), "\(marker)")
            try await waitUntil("lia receives the marker") { lia.events("lobby").last?.eid == markerEID }
            let leaves = lia.presence("presence.leave", in: "lobby")
            #expect(leaves.filter { $0 == "erin" }.count == 1, "\(leaves)")
            #expect(!leaves.contains("frank"), "\(leaves)")
            let joins = lia.presence("presence.join", in: "lobby")
            #expect(joins.filter { $0 == "erin" }.count == 1 && joins.filter { $0 == "frank" }.count == 1, "\(joins)")

            for peer in listeners + others + [pa, pb] { await peer.close() }
            #expect(cluster.nodes[a].isRunning && cluster.nodes[b].isRunning)
        }
    }
}
