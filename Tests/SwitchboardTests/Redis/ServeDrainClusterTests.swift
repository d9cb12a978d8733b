import Foundation
import Testing

@testable import Switchboard
import SwitchboardClient

/// A rolling restart on Redis: a node drained by SIGTERM closes its clients with 1012; behind a
/// load balancer (a proxy that now sends new connections to the other node) the Swift client
/// reconnects there and resumes, and nothing acked is lost.
@Suite("serve --redis drains on SIGTERM", RedisServer.availability)
struct ServeDrainClusterTests {
    @Test("two nodes on one Redis: SIGTERM drains node A; the Swift client gets 1012, resumes on node B, and every acked event reaches it once, in order")
    func drainedClientResumesOnAnotherNode() async throws {
        try await ServeCluster.with(nodes: 2, arguments: ["--drain-window", "1s", "--drain-timeout", "5s"]) { cluster in
            let proxy = try await ChaosProxy.start(upstreamPort: cluster.ports[0], reset: false)
            defer { Task { await proxy.stop() } }
            let client = SwitchboardClient(url: "ws://127.0.0.1:\(proxy.port)/ws", token: .fixed(try await cluster.token("alice")), configuration: ClientTesting.fast)
            let alice = CollectedEvents(client)
            _ = try await client.join("lobby")
            try await alice.waitForOpens(1)
            let (bob, _) = try await cluster.connect("bob", node: 1)
            _ = try await bob.join("lobby")

            // Bob publishes on node B all along; alice publishes through the proxy.
            let stop = TestLockedBox(false)
            let bobAcked = TestLockedBox<[Delivered]>([])
            let bobs = ServeClusterTests.publish(bob, "lobby", "b", until: stop, limit: 200, into: bobAcked)
            try await waitUntil("bob's first acks") { bobAcked.withLock { $0.count } >= 5 }
            let alicesAcked = TestLockedBox<[String]>([])
            let alices = Task {
                for index in 1...30 {
                    let content = "a-\(index)"
                    _ = try await client.send("message.send", ClientChatPost(room: "lobby", content: content), as: ClientChatPosted.self)
                    alicesAcked.withLock { $0.append(content) }
                }
            }

            // The load balancer takes node A out; SIGTERM drains it.
            proxy.retarget(upstreamPort: cluster.ports[1])
            cluster.nodes[0].send(signal: SIGTERM)
            #expect(try await cluster.nodes[0].waitForExit(timeout: .seconds(15)) == 0)
            try await alice.waitFor("alice back on node B") { $0.opens >= 2 }
            try await ClientTesting.value(of: alices, timeout: .seconds(30))
            try await waitUntil("bob's acks after the drain") { bobAcked.withLock { $0.count } >= 40 }
            stop.withLock { $0 = true }
            #expect(try await bobs.value == nil, "every send of bob's was acked")

            let bobContents = bobAcked.withLock { $0.map(\.content) }
            try await alice.waitForContents(Set(bobContents), timeout: .seconds(20))
            #expect(alice.contents.filter { $0.hasPrefix("b-") } == bobContents, "once each, in order")
            #expect(ClientTesting.strictlyIncreasing(alice.messages))
            #expect(alice.refreshes.isEmpty, "resumed, not refreshed")
            #expect(alice.reconnectReasons.contains { if case .closed(1012, _) = $0 { return true } else { return false } }, "\(alice.reconnectReasons)")
            // Every send of alice's that was acked reached bob.
            let alicesSent = alicesAcked.withLock { $0 }
            #expect(alicesSent.count == 30)
            try await waitUntil("bob has alice's messages") { Set(alicesSent).isSubset(of: Set(bob.events("lobby").map(\.content))) }
            await client.close()
            await bob.close()
        }
    }
}
