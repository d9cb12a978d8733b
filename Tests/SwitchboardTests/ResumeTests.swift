import Foundation
import NIOCore
import Testing
@testable import Switchboard

/// Reconnection without loss, over real sockets: `session.hello` with `resume`, `room.join` with
/// `since`, replay in order and exactly once, and `state.refresh` when continuity cannot be proven.
@Suite("Resume: replay of missed events, state.refresh")
struct ResumeTests {
    static func request(_ client: TestWebSocketClient, _ event: String, _ data: String, id: String = UUID().uuidString) async throws -> [String: JSONValue] {
        try await RoomTests.request(client, event, data, id: id)
    }

    static func send(_ client: TestWebSocketClient, _ room: String, _ content: String) async throws -> EventID {
        let ack = try await request(client, "message.send", #"{"room":"\#(room)","content":"\#(content)"}"#)
        return try #require(ack["data"]?["eid"]?.stringValue.flatMap(EventID.init), "\(ack)")
    }

    static func joinPosition(_ client: TestWebSocketClient, _ room: String) async throws -> EventID {
        let ack = try await RoomTests.join(client, room)
        return try #require(ack["data"]?["eid"]?.stringValue.flatMap(EventID.init), "\(ack)")
    }

    /// The events' offsets follow each other from `after` on, with no gap and no repeat.
    static func expectConsecutive(_ events: [[String: JSONValue]], after: EventID, sourceLocation: SourceLocation = #_sourceLocation) {
        var expected = after.offset + 1
        for event in events {
            let eid = Resume.eid(event)
            #expect(eid?.epoch == after.epoch, "\(event)", sourceLocation: sourceLocation)
            #expect(eid?.offset == expected, "expected offset \(expected), got \(event)", sourceLocation: sourceLocation)
            expected += 1
        }
    }

    static func contents(_ events: [[String: JSONValue]]) -> [String] {
        events.filter { $0["event"]?.stringValue == "message.new" }.compactMap { $0["data"]?["content"]?.stringValue }
    }

    @Test("a client that joined and has received nothing yet recovers everything it missed, in order, once")
    func recoversWithoutHavingReceivedAnything() async throws {
        try await TestServers.with { server in
            let bob = try await server.open("bob")
            _ = try await Self.joinPosition(bob, "lobby")
            let alice = try await server.open("alice")
            let since = try await Self.joinPosition(alice, "lobby")
            try await alice.resetTCP()
            for index in 0..<5 { _ = try await Self.send(bob, "lobby", "m\(index)") }

            let again = try await server.openQuiet("alice")
            let ack = try await Resume.hello(again, ["lobby": since.description])
            let outcome = try #require(Resume.outcome(ack, "lobby"), "\(ack)")
            #expect(outcome["recovered"] == .bool(true))
            let current = try #require(outcome["eid"]?.stringValue.flatMap(EventID.init))
            let events = try await Resume.events(again, room: "lobby", through: current)
            Self.expectConsecutive(events, after: since)
            #expect(Self.contents(events) == ["m0", "m1", "m2", "m3", "m4"])
            // Live events follow the replay.
            let live = try await Self.send(bob, "lobby", "live")
            let next = try await again.nextJSON()
            #expect(Resume.eid(next) == live)
            #expect(live.offset == current.offset + 1)
            await again.close()
            await bob.close()
        }
    }

    @Test("recovery works again and again on one client and never replays an event twice")
    func recoversRepeatedly() async throws {
        try await TestServers.with { server in
            let bob = try await server.open("bob")
            _ = try await Self.joinPosition(bob, "lobby")
            var client = try await server.open("alice")
            var last = try await Self.joinPosition(client, "lobby")
            var received: [String] = []
            for round in 0..<4 {
                try await client.resetTCP()
                for index in 0..<3 { _ = try await Self.send(bob, "lobby", "r\(round)-\(index)") }
                client = try await server.openQuiet("alice")
                let ack = try await Resume.hello(client, ["lobby": last.description])
                let outcome = try #require(Resume.outcome(ack, "lobby"))
                #expect(outcome["recovered"] == .bool(true), "round \(round): \(ack)")
                let current = try #require(outcome["eid"]?.stringValue.flatMap(EventID.init))
                let events = try await Resume.events(client, room: "lobby", through: current)
                Self.expectConsecutive(events, after: last)
                received += Self.contents(events)
                last = current
            }
            #expect(received == (0..<4).flatMap { round in (0..<3).map { "r\(round)-\($0)" } })
            await client.close()
            await bob.close()
        }
    }

    @Test("presence takes no position and is not replayed: members coming and going never push a resume past the replay limit")
    func presenceIsNotReplayed() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.history.maxReplay = 3
        try await TestServers.with(configuration: configuration) { server in
            let bob = try await server.open("bob")
            _ = try await Self.joinPosition(bob, "lobby")
            let alice = try await server.open("alice")
            let since = try await Self.joinPosition(alice, "lobby")
            try await alice.resetTCP()
            // Ten joins and leaves while alice is away: with positions, they alone would be more
            // than the replay limit behind.
            for index in 0..<5 {
                let visitor = try await server.open("visitor-\(index)")
                _ = try await Self.joinPosition(visitor, "lobby")
                _ = try await Self.request(visitor, "room.leave", #"{"room":"lobby"}"#)
                await visitor.close()
            }
            _ = try await Self.send(bob, "lobby", "a")
            _ = try await Self.send(bob, "lobby", "b")

            let again = try await server.openQuiet("alice")
            let ack = try await Resume.hello(again, ["lobby": since.description])
            let outcome = try #require(Resume.outcome(ack, "lobby"), "\(ack)")
            #expect(outcome["recovered"] == .bool(true), "\(ack)")
            let current = try #require(outcome["eid"]?.stringValue.flatMap(EventID.init))
            #expect(current.offset == since.offset + 2, "only the two messages took positions")
            // `events` fails on anything without an eid, so a replayed presence event fails here.
            let events = try await Resume.events(again, room: "lobby", through: current)
            Self.expectConsecutive(events, after: since)
            #expect(Self.contents(events) == ["a", "b"])
            await again.close()
            await bob.close()
        }
    }

    @Test("a reconnect that arrives before the server has noticed the old connection is dead recovers")
    func immediateReconnectRecovers() async throws {
        try await TestServers.with { server in
            let bob = try await server.open("bob")
            _ = try await Self.joinPosition(bob, "lobby")
            let old = try await server.open("alice")
            let since = try await Self.joinPosition(old, "lobby")
            // The old connection stays open on the server (a half-open connection, say): only the
            // client knows it is gone.
            _ = try await Self.send(bob, "lobby", "while-away")
            let again = try await server.openQuiet("alice")
            let ack = try await Resume.hello(again, ["lobby": since.description])
            let outcome = try #require(Resume.outcome(ack, "lobby"))
            #expect(outcome["recovered"] == .bool(true))
            let current = try #require(outcome["eid"]?.stringValue.flatMap(EventID.init))
            let events = try await Resume.events(again, room: "lobby", through: current)
            Self.expectConsecutive(events, after: since)
            #expect(Self.contents(events) == ["while-away"])
            // One user, two connections: presence counts the user once, and the old one leaving
            // announces nothing while the new one stays.
            #expect(try await server.switchboard.rooms.members(of: "lobby") == ["alice", "bob"])
            await old.close()
            await again.close()
            await bob.close()
        }
    }

    @Test("a second connection resuming while the first one's replay is still being sent gets every event once")
    func secondResumeWhileTheFirstIsReplaying() async throws {
        // Its publishers send faster than message.send's default limit.
        try await TestServers.with(configuration: .unlimited) { server in
            let bob = try await server.open("bob")
            _ = try await Self.joinPosition(bob, "lobby")
            let first = try await server.open("alice")
            let since = try await Self.joinPosition(first, "lobby")
            try await first.resetTCP()
            for index in 0..<200 { _ = try await Self.send(bob, "lobby", "m\(index)") }
            let replaying = try await server.openQuiet("alice")
            let firstAck = try await Resume.hello(replaying, ["lobby": since.description])
            // Read only part of the replay, then give up on this connection as a client would.
            var seen: [[String: JSONValue]] = []
            for _ in 0..<50 { seen.append(try await replaying.nextJSON()) }
            Self.expectConsecutive(seen, after: since)
            let lastSeen = try #require(Resume.eid(seen[seen.count - 1]))
            let second = try await server.openQuiet("alice")
            let ack = try await Resume.hello(second, ["lobby": lastSeen.description])
            let current = try #require(Resume.outcome(ack, "lobby")?["eid"]?.stringValue.flatMap(EventID.init))
            let rest = try await Resume.events(second, room: "lobby", through: current)
            Self.expectConsecutive(rest, after: lastSeen)
            #expect(Self.contents(seen + rest) == (0..<200).map { "m\($0)" })
            #expect(Resume.outcome(firstAck, "lobby")?["recovered"] == .bool(true))
            try await replaying.resetTCP()
            await second.close()
            await bob.close()
        }
    }

    @Test("a room that emptied keeps its epoch and history: its only member resumes what was published while it was away")
    func emptiedRoomKeepsItsHistory() async throws {
        try await TestServers.with { server in
            let alice = try await server.open("alice")
            let since = try await Self.joinPosition(alice, "solo")
            await alice.close()
            try await server.waitForConnections(0)
            #expect(server.switchboard.rooms.count == 0)
            for index in 0..<3 {
                _ = try await server.switchboard.rooms.broadcast(room: "solo", event: "note", data: ["n": index])
            }
            let again = try await server.openQuiet("alice")
            let ack = try await Resume.hello(again, ["solo": since.description])
            let outcome = try #require(Resume.outcome(ack, "solo"))
            #expect(outcome["recovered"] == .bool(true))
            let current = try #require(outcome["eid"]?.stringValue.flatMap(EventID.init))
            #expect(current.epoch == since.epoch)
            let events = try await Resume.events(again, room: "solo", through: current)
            Self.expectConsecutive(events, after: since)
            #expect(events.filter { $0["event"]?.stringValue == "note" }.map { $0["data"]?["n"] } == [.number(0), .number(1), .number(2)])
            await again.close()
        }
    }

    @Test("room.join with since replays like a resume")
    func joinWithSince() async throws {
        try await TestServers.with { server in
            let bob = try await server.open("bob")
            _ = try await Self.joinPosition(bob, "lobby")
            let alice = try await server.open("alice")
            let since = try await Self.joinPosition(alice, "lobby")
            _ = try await Self.request(alice, "room.leave", #"{"room":"lobby"}"#)
            _ = try await Self.send(bob, "lobby", "missed")
            let ack = try await Self.request(alice, "room.join", #"{"room":"lobby","since":"\#(since)"}"#)
            #expect(ack["data"]?["recovered"] == .bool(true), "\(ack)")
            let current = try #require(ack["data"]?["eid"]?.stringValue.flatMap(EventID.init))
            let events = try await Resume.events(alice, room: "lobby", through: current)
            Self.expectConsecutive(events, after: since)
            #expect(Self.contents(events) == ["missed"])
            // A malformed position is bad input, not a refresh.
            let bad = try await Self.request(alice, "room.join", #"{"room":"lobby","since":"nope"}"#)
            #expect(bad["data"]?["code"]?.stringValue == "validation_failed")
            await alice.close()
            await bob.close()
        }
    }

    // MARK: state.refresh

    /// Resumes alice in `lobby` from `since` and returns the ack's outcome and the refresh.
    static func expectRefresh(
        _ server: TestServer, since: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> (client: TestWebSocketClient, refresh: [String: JSONValue]) {
        let client = try await server.openQuiet("alice")
        let ack = try await Resume.hello(client, ["lobby": since])
        let outcome = try #require(Resume.outcome(ack, "lobby"), "\(ack)", sourceLocation: sourceLocation)
        #expect(outcome["recovered"] == .bool(false), "\(ack)", sourceLocation: sourceLocation)
        let refresh = try await client.nextJSON()
        #expect(refresh["event"]?.stringValue == "state.refresh", "\(refresh)", sourceLocation: sourceLocation)
        #expect(refresh["room"]?.stringValue == "lobby", sourceLocation: sourceLocation)
        #expect(refresh["eid"] == outcome["eid"], sourceLocation: sourceLocation)
        return (client, refresh)
    }

    @Test("a position older than retention, from another epoch, too far behind, or of an unknown room gets state.refresh, then live events")
    func refreshCases() async throws {
        let clock = TestClock()
        var history = HistoryConfiguration()
        history.retention = .seconds(60)
        history.maxReplay = 5
        let broker = InMemoryBroker(configuration: history, clock: clock)
        // The replay limit is the server's; retention is the broker's.
        var configuration = SwitchboardConfiguration()
        configuration.history = history
        try await TestServers.with(configuration: configuration, broker: broker, snapshot: .latestEvents(2)) { server in
            let bob = try await server.open("bob")
            let start = try await Self.joinPosition(bob, "lobby")
            for index in 0..<6 { _ = try await Self.send(bob, "lobby", "old\(index)") }

            // Another epoch (the server restarted, say).
            let otherEpoch = try await Self.expectRefresh(server, since: "zz9:2")
            #expect(otherEpoch.refresh["data"]?["events"]?.arrayValue?.count == 2, "the latest events as the snapshot")
            // Live events of the room follow the refresh, none before it.
            let live = try await Self.send(bob, "lobby", "after-refresh")
            #expect(Resume.eid(try await otherEpoch.client.nextJSON()) == live)
            await otherEpoch.client.close()

            // Ahead of the room (a position it never had).
            let ahead = try await Self.expectRefresh(server, since: "\(start.epoch):999")
            await ahead.client.close()

            // More than the replay limit (5) behind: 7 events.
            let tooFar = try await Self.expectRefresh(server, since: start.description)
            await tooFar.client.close()

            // Older than retention: every event so far is past it.
            let recent = try #require(Resume.eid(tooFar.refresh))
            clock.advance(by: .seconds(61))
            let expired = try await Self.expectRefresh(server, since: EventID(epoch: recent.epoch, offset: recent.offset - 1).description)
            let snapshotEvents = try #require(expired.refresh["data"]?["events"]?.arrayValue)
            #expect(!snapshotEvents.contains { $0["event"]?.stringValue == "message.new" }, "expired events are no snapshot either: \(snapshotEvents)")
            await expired.client.close()
            await bob.close()
        }
    }

    @Test("an unknown room in resume is joined and refreshed with the app's snapshot")
    func unknownRoomGetsTheAppSnapshot() async throws {
        let snapshot = RoomSnapshot.custom { room, socket in ["room": room, "for": socket.user.id] }
        try await TestServers.with(snapshot: snapshot) { server in
            let (client, refresh) = try await Self.expectRefresh(server, since: "abc:4")
            #expect(refresh["data"] == .object(["room": .string("lobby"), "for": .string("alice")]))
            #expect(try await server.switchboard.rooms.members(of: "lobby") == ["alice"])
            await client.close()
        }
    }

    @Test("retention counts from each event's own publication: an expired event is never replayed")
    func retentionIsPerEvent() async throws {
        let clock = TestClock()
        var history = HistoryConfiguration()
        history.retention = .seconds(3600)
        let broker = InMemoryBroker(configuration: history, clock: clock)
        try await TestServers.with(broker: broker) { server in
            let bob = try await server.open("bob")
            let start = try await Self.joinPosition(bob, "lobby")
            let first = try await Self.send(bob, "lobby", "first")
            clock.advance(by: .seconds(40 * 60))
            _ = try await Self.send(bob, "lobby", "second")
            clock.advance(by: .seconds(30 * 60))
            // "first" is 70 minutes old, "second" 30: from before "first" there is a hole.
            let refreshed = try await Self.expectRefresh(server, since: start.description)
            await refreshed.client.close()
            // From "first" on, "second" is all there is to replay.
            let client = try await server.openQuiet("alice")
            let ack = try await Resume.hello(client, ["lobby": first.description])
            let outcome = try #require(Resume.outcome(ack, "lobby"))
            #expect(outcome["recovered"] == .bool(true))
            let current = try #require(outcome["eid"]?.stringValue.flatMap(EventID.init))
            let events = try await Resume.events(client, room: "lobby", through: current)
            #expect(Self.contents(events) == ["second"])
            await client.close()
            await bob.close()
        }
    }

    @Test("a room the authorizer refuses is reported in the hello ack, the others are resumed")
    func refusedRoomIsReportedPerRoom() async throws {
        try await TestServers.with(authorizeJoin: { _, room in room != "secret" }) { server in
            let client = try await server.openQuiet("alice")
            let ack = try await Resume.hello(client, ["lobby": "abc:1", "secret": "abc:1"])
            #expect(Resume.outcome(ack, "secret")?["error"]?["code"]?.stringValue == "forbidden", "\(ack)")
            #expect(Resume.outcome(ack, "lobby")?["recovered"] == .bool(false))
            #expect(try await client.nextJSON()["event"]?.stringValue == "state.refresh")
            #expect(try await server.switchboard.rooms.members(of: "secret").isEmpty)
            await client.close()
        }
    }

    @Test("rooms of the token are joined on the first message, resumed by the hello's positions")
    func handshakeRoomsAreResumed() async throws {
        try await TestServers.with { server in
            let bob = try await server.open("bob")
            _ = try await Self.joinPosition(bob, "lobby")
            let claims: [String: JSONValue] = ["rooms": .array([.string("lobby")])]
            let alice = try await server.open("alice", claims: claims)
            let hello = try await TestServer.hello(alice)
            let since = try #require(Resume.outcome(hello, "lobby")?["eid"]?.stringValue.flatMap(EventID.init), "\(hello)")
            try await alice.resetTCP()
            _ = try await Self.send(bob, "lobby", "for-the-token-room")
            let again = try await server.openQuiet("alice", claims: claims)
            let ack = try await Resume.hello(again, ["lobby": since.description])
            let outcome = try #require(Resume.outcome(ack, "lobby"))
            #expect(outcome["recovered"] == .bool(true), "\(ack)")
            let current = try #require(outcome["eid"]?.stringValue.flatMap(EventID.init))
            let events = try await Resume.events(again, room: "lobby", through: current)
            Self.expectConsecutive(events, after: since)
            #expect(Self.contents(events) == ["for-the-token-room"])
            await again.close()
            await bob.close()
        }
    }

    // MARK: the race between the history read and live delivery

    @Test("events published while the history is being read are neither lost, repeated nor reordered", arguments: [true, false])
    func liveEventsDuringARecovery(readEarly: Bool) async throws {
        let broker = DelayedRecoveryBroker(inner: InMemoryBroker(), readEarly: readEarly)
        try await TestServers.with(broker: broker) { server in
            let bob = try await server.open("bob")
            _ = try await Self.joinPosition(bob, "lobby")
            let alice = try await server.open("alice")
            let since = try await Self.joinPosition(alice, "lobby")
            try await alice.resetTCP()
            for index in 0..<3 { _ = try await Self.send(bob, "lobby", "before\(index)") }
            let again = try await server.openQuiet("alice")
            try await again.sendText(#"{"event":"session.hello","id":"h","data":{"resume":{"lobby":"\#(since)"}}}"#)
            try await broker.started.wait("the recovery to start")
            for index in 0..<3 { _ = try await Self.send(bob, "lobby", "during\(index)") }
            broker.release.fire()
            let ack = try await again.next(event: "h", field: "id")
            let current = try #require(Resume.outcome(ack, "lobby")?["eid"]?.stringValue.flatMap(EventID.init))
            for index in 0..<2 { _ = try await Self.send(bob, "lobby", "after\(index)") }
            let last = EventID(epoch: since.epoch, offset: current.offset + (readEarly ? 5 : 2))
            let events = try await Resume.events(again, room: "lobby", through: last)
            Self.expectConsecutive(events, after: since)
            #expect(Self.contents(events) == ["before0", "before1", "before2", "during0", "during1", "during2", "after0", "after1"])
            await again.close()
            await bob.close()
        }
    }

    @Test("publishers on other connections keep sending while one client drops and resumes at random points: it ends with the exact sequence")
    func resumeUnderConcurrentPublishers() async throws {
        // Its publishers send faster than message.send's default limit.
        try await TestServers.with(configuration: .unlimited) { server in
            let publishers = try await [server.open("bob"), server.open("carol"), server.open("dave")]
            for publisher in publishers { _ = try await Self.joinPosition(publisher, "lobby") }
            var client = try await server.open("alice")
            let start = try await Self.joinPosition(client, "lobby")
            let perPublisher = 60
            let sending = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (index, publisher) in publishers.enumerated() {
                        group.addTask {
                            for message in 0..<perPublisher {
                                _ = try await Self.send(publisher, "lobby", "p\(index)-\(message)")
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            var received: [[String: JSONValue]] = []
            var last = start
            for _ in 0..<6 {
                for _ in 0..<Int.random(in: 1...25) {
                    let event = try await client.nextJSON()
                    received.append(event)
                    last = try #require(Resume.eid(event))
                }
                try await client.resetTCP()
                client = try await server.openQuiet("alice")
                let ack = try await Resume.hello(client, ["lobby": last.description])
                #expect(Resume.outcome(ack, "lobby")?["recovered"] == .bool(true), "\(ack)")
            }
            try await sending.value
            let final = try await server.switchboard.rooms.position(of: "lobby")
            received += try await Resume.events(client, room: "lobby", through: final)
            Self.expectConsecutive(received, after: start)
            let contents = Self.contents(received)
            #expect(contents.count == 3 * perPublisher)
            #expect(Set(contents).count == contents.count)
            for index in 0..<3 {
                #expect(contents.filter { $0.hasPrefix("p\(index)-") } == (0..<perPublisher).map { "p\(index)-\($0)" })
            }
            await client.close()
            for publisher in publishers { await publisher.close() }
        }
    }

    // MARK: fault injection

    @Test("connections cut by a proxy at random points (mid-frame included, FIN or RST) while publishers keep sending: the client ends with the exact sequence", arguments: [false, true])
    func resumeThroughACuttingProxy(reset: Bool) async throws {
        // Its publishers send faster than message.send's default limit.
        try await TestServers.with(configuration: .unlimited) { server in
            let proxy = try await ChaosProxy.start(upstreamPort: server.port, reset: reset)
            let publishers = try await [server.open("bob"), server.open("carol")]
            for publisher in publishers { _ = try await Self.joinPosition(publisher, "lobby") }
            let direct = try await server.open("alice")
            let start = try await Self.joinPosition(direct, "lobby")
            await direct.close()

            let stop = TestSignal()
            let sent = TestLockedBox([0, 0])
            // Until the test has made its cuts, and never more than 2000 each.
            let sending = Resume.publishing(publishers, room: "lobby", limit: 2000, stop: stop, sent: sent)
            let token = try await server.token("alice")
            var received: [[String: JSONValue]] = []
            var last = start
            var cuts = 0
            var attempts = 0
            while cuts < 8 {
                attempts += 1
                #expect(attempts < 50, "too many attempts without a cut")
                if attempts >= 50 { break }
                // Past the upgrade response (about 130 bytes), anywhere in the frames that follow.
                proxy.cutConnections(afterServerBytes: Int.random(in: 160...2400))
                do {
                    let client = try await TestWebSocketClient.open(port: proxy.port, path: "/ws?token=\(token)")
                    _ = try await Resume.hello(client, ["lobby": last.description])
                    while true {
                        let event = try await client.nextJSON()
                        guard let eid = Resume.eid(event) else { continue }
                        received.append(event)
                        last = eid
                    }
                } catch TestClientError.connectionClosed {
                    cuts += 1
                } catch TestClientError.handshakeRejected(let response) where response.status == 429 {
                    // The server has not seen the last cut yet; a client would back off and retry.
                    try await waitUntil("alice's slots to free up") { try await server.switchboard.connectionSlots.count(of: "alice") < 5 }
                }
            }
            stop.fire()
            try await sending.value
            proxy.cutConnections(afterServerBytes: nil)
            let client = try await TestWebSocketClient.open(port: proxy.port, path: "/ws?token=\(token)")
            let ack = try await Resume.hello(client, ["lobby": last.description])
            #expect(Resume.outcome(ack, "lobby")?["recovered"] == .bool(true), "\(ack)")
            let final = try await server.switchboard.rooms.position(of: "lobby")
            if final.offset > last.offset {
                received += try await Resume.events(client, room: "lobby", through: final)
            }
            Self.expectConsecutive(received, after: start)
            let contents = Self.contents(received)
            let counts = sent.withLock { $0 }
            for index in 0..<2 {
                #expect(contents.filter { $0.hasPrefix("p\(index)-") } == (0..<counts[index]).map { "p\(index)-\($0)" })
            }
            #expect(cuts == 8)
            await client.close()
            for publisher in publishers { await publisher.close() }
            await proxy.stop()
        }
    }

    @Test("a joiner that comes while the room's subscription is under way waits for it too, so it misses nothing")
    func laterJoinersWaitForTheSubscription() async throws {
        let broker = SlowSubscribeBroker()
        try await TestServers.with(broker: broker) { server in
            let alice = try await server.open("alice")
            let bob = try await server.open("bob")
            try await alice.sendText(#"{"event":"room.join","id":"a","data":{"room":"lobby"}}"#)
            try await broker.started.wait("alice's join to subscribe the room", timeout: .seconds(5))
            // Bob's join, then a heartbeat, which is answered at once: bob's join ack must not
            // come first, since the node does not receive the room's events yet.
            try await bob.sendText(#"{"event":"room.join","id":"b","data":{"room":"lobby"}}"#)
            try await bob.sendText(#"{"event":"presence.heartbeat","id":"hb"}"#)
            let first = try await bob.next(event: "ack")
            #expect(first["id"]?.stringValue == "hb", "bob's join was answered before the room was subscribed: \(first)")
            broker.release.fire()
            #expect(try await bob.next(event: "b", field: "id")["event"]?.stringValue == "ack")
            #expect(try await alice.next(event: "a", field: "id")["event"]?.stringValue == "ack")
            #expect(broker.subscribeCalls.withLock { $0 } == 1)
            await alice.close()
            await bob.close()
        }
    }

    @Test("a broker that fails gives error replies (unavailable), never a silent success, and leaves nothing half done")
    func brokerFaultsAreReported() async throws {
        let broker = FaultyBroker()
        try await TestServers.with(broker: broker) { server in
            let alice = try await server.open("alice")
            _ = try await Self.joinPosition(alice, "lobby")
            broker.failing.withLock { $0 = true }
            let send = try await Self.request(alice, "message.send", #"{"room":"lobby","content":"lost?"}"#)
            #expect(send["event"]?.stringValue == "error")
            #expect(send["data"]?["code"]?.stringValue == "unavailable", "\(send)")
            let join = try await Self.request(alice, "room.join", #"{"room":"other"}"#)
            #expect(join["data"]?["code"]?.stringValue == "unavailable", "\(join)")
            #expect(try await server.switchboard.rooms.members(of: "other").isEmpty, "a failed join leaves nothing behind")
            let resumer = try await server.openQuiet("bob")
            let ack = try await Resume.hello(resumer, ["lobby": "abc:1"])
            #expect(Resume.outcome(ack, "lobby")?["error"]?["code"]?.stringValue == "unavailable", "\(ack)")
            #expect(try await server.switchboard.rooms.members(of: "lobby") == ["alice"])
            // The broker is back: the same message goes through.
            broker.failing.withLock { $0 = false }
            _ = try await Self.send(alice, "lobby", "delivered")
            await resumer.close()
            await alice.close()
        }
    }
}
