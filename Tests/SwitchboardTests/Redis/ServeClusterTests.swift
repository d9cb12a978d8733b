import Foundation
import Testing

@testable import Switchboard
@testable import SwitchboardCLI

/// Three `switchboard serve --redis` processes on one private redis-server (issue 10): one chat
/// server however its nodes come and go, and whatever Redis does under them.
@Suite("three switchboard serve --redis nodes", RedisServer.availability)
struct ServeClusterTests {
    /// Sends `prefix-1`, `prefix-2`… one after the other (each after the previous reply) until
    /// `stop` is set, `limit` were sent, or a reply is not an ack (it is returned); records each
    /// acked event.
    static func publish(
        _ peer: Peer, _ room: String, _ prefix: String, until stop: TestLockedBox<Bool>, limit: Int, into acked: TestLockedBox<[Delivered]>
    ) -> Task<[String: JSONValue]?, any Error> {
        Task {
            var index = 0
            while !stop.withLock({ $0 }) && index < limit {
                index += 1
                let content = "\(prefix)-\(index)"
                let reply = try await peer.send(room, content)
                guard reply["event"]?.stringValue == "ack" else { return reply }
                let eid = try #require(reply["data"]?["eid"]?.stringValue.flatMap(EventID.init), "\(peer.user): \(reply)")
                acked.withLock { $0.append(Delivered(eid: eid, content: content)) }
            }
            return nil
        }
    }

    /// Sends one message; returns its position (the reply must be an ack).
    static func send(_ peer: Peer, _ room: String, _ content: String) async throws -> EventID {
        let reply = try await peer.send(room, content)
        return try #require(reply["data"]?["eid"]?.stringValue.flatMap(EventID.init), "\(peer.user): \(reply)")
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
                #expect(await cluster.nodes[c].kill9(), "node C exited")
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
                for publisher in publishers {
                    let refused = try await publisher.value
                    #expect(refused == nil, "every send was acked: \(refused ?? [:])")
                }
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
                // #require: a failure throws, and the nodes' last log lines come with it. Nothing
                // lost, nothing out of order, as a client that dedupes by eid sees it.
                try #require(peer.distinctEvents("lobby") == published, "\(peer.user): \(peer.distinctEvents("lobby").difference(from: published))")
                // Raw, an event was once in a while sent twice around the kill (about 1 run in 10,
                // and once in a 700 000-event Redis soak): known and not yet explained (issue 11's
                // closing note); recorded as a known issue so that it stays visible.
                withKnownIssue("an event sent twice around a node's kill -9 (open)", isIntermittent: true) {
                    #expect(peer.events("lobby") == published, "\(peer.user): \(peer.events("lobby").difference(from: published))")
                }
            }
            for (publisher, other) in [(pa, "b-"), (pb, "a-")] {
                let expected = published.filter { $0.content.hasPrefix(other) }
                try await waitUntil("\(publisher.user) receives the other's last", timeout: .seconds(20)) {
                    publisher.events("lobby").last == expected.last
                }
                try #require(publisher.distinctEvents("lobby") == expected, "\(publisher.user): \(publisher.distinctEvents("lobby").difference(from: expected))")
                withKnownIssue("an event sent twice around a node's kill -9 (open)", isIntermittent: true) {
                    #expect(publisher.events("lobby") == expected, "\(publisher.user): \(publisher.events("lobby").difference(from: expected))")
                }
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
            let markerEID = try await Self.send(pa, "lobby", "marker")
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

    @Test("Redis stopped and started again with its data under live clients: sends get unavailable meanwhile, connections stay open, the nodes come back by themselves, and every acked event reaches every client once")
    func redisStoppedAndStartedAgain() async throws {
        try await ServeCluster.with(nodes: 3) { cluster in
            var listeners: [Peer] = []
            var start: EventID?
            for (user, node) in [("lia", 0), ("lib", 1), ("lic", 2)] {
                let (peer, _) = try await cluster.connect(user, node: node)
                start = try await peer.join("lobby")
                listeners.append(peer)
            }
            let from = try #require(start)
            let (pa, _) = try await cluster.connect("pub-a", node: 0)
            let (pb, _) = try await cluster.connect("pub-b", node: 1)
            _ = try await pa.join("lobby")
            _ = try await pb.join("lobby")
            let everyone = listeners + [pa, pb]

            // Publishers on A and B keep sending while Redis stops (saving everything it ran).
            let acked = TestLockedBox<[Delivered]>([])
            let stop = TestLockedBox(false)
            let publishers = [
                Self.publish(pa, "lobby", "a", until: stop, limit: 2000, into: acked),
                Self.publish(pb, "lobby", "b", until: stop, limit: 2000, into: acked),
            ]
            do {
                try await waitUntil("events flow", timeout: .seconds(20)) {
                    acked.withLock { $0.count } >= 10 && listeners.allSatisfy { $0.events("lobby").count >= 5 }
                }
                try await cluster.stopRedis(save: true)
                // The publishers stop at their first reply that is not an ack: it says unavailable.
                for publisher in publishers {
                    let refused = try await publisher.value
                    #expect(refused?["data"]?["code"]?.stringValue == "unavailable", "\(refused ?? [:])")
                }
            } catch {
                stop.withLock { $0 = true }
                for publisher in publishers { _ = await publisher.result }
                throw error
            }
            let ackedBefore = acked.withLock { $0 }

            // While Redis is down: not ready, every send gets unavailable (never an ack), and
            // every connection stays open.
            try await cluster.waitUntilNotReady()
            for peer in everyone {
                let reply = try await peer.send("lobby", "while down")
                #expect(reply["event"]?.stringValue == "error" && reply["data"]?["code"]?.stringValue == "unavailable", "\(peer.user): \(reply)")
            }

            // Redis is back with its data: the nodes reconnect and re-subscribe on their own.
            try await cluster.startRedis()
            try await cluster.waitUntilReady(timeout: .seconds(20))
            var after: [Delivered] = []
            for (peer, prefix) in [(pa, "a"), (pb, "b"), (pa, "a"), (pb, "b")] {
                let content = "\(prefix)-after-\(after.count)"
                after.append(Delivered(eid: try await Self.send(peer, "lobby", content), content: content))
            }
            let last = try #require(after.last).eid
            #expect(last.epoch == from.epoch, "the room's data survived the restart: same epoch")

            // Every listener: one epoch, consecutive offsets from its join, the same sequence
            // everywhere, every acked event in it (a publish Redis ran as it stopped may be there
            // without an ack: its reply was lost).
            let reference = listeners[0]
            for peer in listeners {
                try await waitUntil(
                    "\(peer.user) receives \(last); connection ended: \(peer.ended ?? "no"); received: \(peer.events("lobby").suffix(6))",
                    timeout: .seconds(20)
                ) { peer.events("lobby").last?.eid == last }
                let events = peer.events("lobby")
                // #require: a failure throws, and the nodes' last log lines come with it.
                let consecutive = events.indices.map { EventID(epoch: from.epoch, offset: from.offset + 1 + UInt64($0)) }
                try #require(events.map(\.eid) == consecutive, "\(peer.user): \(events)")
                try #require(Set(ackedBefore + after).isSubset(of: Set(events)), "\(peer.user): \(events)")
                try #require(events == reference.events("lobby"), "\(peer.user): \(events.difference(from: reference.events("lobby")))")
                #expect(peer.ended == nil, "\(peer.user)'s connection stayed open: \(peer.ended ?? "")")
            }
            for peer in everyone { await peer.close() }
            #expect(cluster.nodes.allSatisfy { $0.isRunning })
        }
    }

    @Test("Redis restarted empty under live clients: no node crashes, the room's members are told to reconnect (1013), a resume gets state.refresh of the new epoch, then live events")
    func redisRestartedEmpty() async throws {
        try await ServeCluster.with(nodes: 3) { cluster in
            var peers: [Peer] = []
            var ports: [Int] = []
            for (user, node) in [("pub-a", 0), ("lia", 0), ("lib", 1), ("lic", 2)] {
                let (peer, _) = try await cluster.connect(user, node: node)
                _ = try await peer.join("lobby")
                peers.append(peer)
                ports.append(cluster.ports[node])
            }
            let pa = peers[0]
            var before: EventID?
            for index in 1...3 { before = try await Self.send(pa, "lobby", "before-\(index)") }
            let old = try #require(before)
            for peer in peers.dropFirst() {
                try await waitUntil("\(peer.user) receives \(old)") { peer.events("lobby").last?.eid == old }
            }

            // Redis dies and comes back with nothing.
            try await cluster.stopRedis(save: false)
            try await cluster.startRedis()
            try await cluster.waitUntilReady(timeout: .seconds(20))
            // Every node finds that what it missed cannot be had: its members are closed with 1013.
            for peer in peers {
                let reason = try await peer.waitUntilEnded(timeout: .seconds(20))
                #expect(reason.contains("code=1013"), "\(peer.user): \(reason)")
            }
            // They resume, each where it was: the room is in a new epoch.
            var current: EventID?
            for (peer, port) in zip(peers, ports) {
                let last = peer.events("lobby").last?.eid ?? old
                let ack = try await peer.connect(port: port, token: try await cluster.token(peer.user), resume: ["lobby": last])
                let outcome = Resume.outcome(ack, "lobby")
                #expect(outcome?["recovered"]?.boolValue == false, "\(peer.user): \(ack)")
                let eid = try #require(outcome?["eid"]?.stringValue.flatMap(EventID.init), "\(peer.user): \(ack)")
                #expect(eid.epoch != old.epoch, "\(peer.user): \(ack)")
                #expect(current == nil || current == eid, "every node tells the same new position")
                current = eid
            }
            let fresh = try #require(current)
            let live = try await Self.send(pa, "lobby", "after")
            #expect(live.epoch == fresh.epoch && live.offset == fresh.offset + 1)
            for peer in peers.dropFirst() {
                try await waitUntil("\(peer.user) receives \(live)") { peer.events("lobby").last?.eid == live }
                // In order: state.refresh of the new epoch, then the live event, after what it had.
                let messages = peer.messages
                let refresh = messages.lastIndex { $0["event"]?.stringValue == "state.refresh" }
                let liveIndex = messages.lastIndex { Resume.eid($0) == live && $0["event"]?.stringValue == "message.new" }
                let refreshIndex = try #require(refresh, "\(peer.user): no state.refresh in \(messages)")
                #expect(refreshIndex < (liveIndex ?? -1), "\(peer.user): \(messages)")
                #expect(Resume.eid(messages[refreshIndex]) == fresh, "\(messages[refreshIndex])")
                #expect(peer.events("lobby").map(\.content) == ["before-1", "before-2", "before-3", "after"], "\(peer.user)")
            }
            for peer in peers { await peer.close() }
            #expect(cluster.nodes.allSatisfy { $0.isRunning }, "no node crashed")
        }
    }

    @Test("a node shut down gracefully (SIGTERM, a rolling restart) gives its users' connection slots back: they connect on another node at once, not after --redis-node-ttl")
    func gracefulShutdownGivesSlotsBack() async throws {
        // The default TTL (30 s) is far longer than the waits here: expiry cannot explain a pass.
        try await ServeCluster.with(nodes: 2, arguments: ["--max-connections-per-user", "1"]) { cluster in
            let (alice, _) = try await cluster.connect("alice", node: 0)
            #expect(try await Self.canConnect(cluster, "alice", port: cluster.ports[1]) == false, "the limit holds over nodes")
            await cluster.nodes[0].terminateAndWait()
            #expect(!cluster.nodes[0].isRunning)
            _ = try await alice.waitUntilEnded()
            // terminate() waited for the exit: the slot is back already (one attempt, no waiting it out).
            #expect(try await Self.canConnect(cluster, "alice", port: cluster.ports[1]))
            await alice.close()
        }
    }

    @Test("a node shut down gracefully announces presence.leave for its users at once, though their grace period has not passed: the other nodes' members do not wait for its entries to expire")
    func gracefulShutdownAnnouncesLeaves() async throws {
        // A grace period and an entry TTL far longer than the wait here: only the shutdown can
        // explain the leave.
        try await ServeCluster.with(nodes: 2, arguments: ["--presence-grace", "120s", "--redis-node-ttl", "120s"]) { cluster in
            let (alice, _) = try await cluster.connect("alice", node: 0)
            _ = try await alice.join("lobby")
            let (bob, _) = try await cluster.connect("bob", node: 1)
            _ = try await bob.join("lobby")
            await cluster.nodes[0].terminateAndWait()
            _ = try await alice.waitUntilEnded()
            try await waitUntil("bob hears that alice left", timeout: .seconds(15)) { bob.presence("presence.leave", in: "lobby") == ["alice"] }
            await alice.close()
            await bob.close()
        }
    }
}
