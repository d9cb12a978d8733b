import Foundation
import NIOCore
import Testing
@testable import Switchboard

@Suite("Rooms: join, leave, broadcast, presence, members")
struct RoomTests {
    /// Sends `event` with `data` and returns the matching ack (or error) reply.
    static func request(_ client: TestWebSocketClient, _ event: String, _ data: String, id: String = UUID().uuidString) async throws -> [String: JSONValue] {
        try await client.sendText(#"{"event":"\#(event)","data":\#(data),"id":"\#(id)"}"#)
        return try await client.next(event: id, field: "id")
    }

    static func join(_ client: TestWebSocketClient, _ room: String) async throws -> [String: JSONValue] {
        let reply = try await request(client, "room.join", #"{"room":"\#(room)"}"#)
        #expect(reply["event"]?.stringValue == "ack", "\(reply)")
        return reply
    }

    @Test("presence off: joins and leaves are not announced and take no event id")
    func presenceOff() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.presence = false
        try await TestServers.with(configuration: configuration) { server in
            let alice = try await server.open("alice")
            let bob = try await server.open("bob")
            let carol = try await server.open("carol")
            _ = try await Self.join(alice, "lobby")
            _ = try await Self.join(bob, "lobby")
            let carolJoin = try await Self.join(carol, "lobby")
            #expect(carolJoin["data"]?["members"] == .array([.string("alice"), .string("bob"), .string("carol")]))
            #expect(carolJoin["data"]?["eid"]?.stringValue?.hasSuffix(":0") == true, "no event yet: joins took no event id")
            _ = try await Self.request(carol, "room.leave", #"{"room":"lobby"}"#)
            await carol.close()
            // The first thing alice gets is bob's message, with the room's first offset.
            let ack = try await Self.request(bob, "message.send", #"{"room":"lobby","content":"first"}"#)
            let next = try await alice.nextJSON()
            #expect(next["event"]?.stringValue == "message.new")
            #expect(next["eid"] == ack["data"]?["eid"])
            #expect(next["eid"]?.stringValue?.hasSuffix(":1") == true)
            await alice.close()
            await bob.close()
        }
    }

    @Test func joinBroadcastExceptAndPresence() async throws {
        try await TestServers.with { server in
            let alice = try await server.open("alice")
            let bob = try await server.open("bob")
            let aliceJoin = try await Self.join(alice, "lobby")
            #expect(aliceJoin["data"]?["members"] == .array([.string("alice")]))

            let bobJoin = try await Self.join(bob, "lobby")
            #expect(bobJoin["data"]?["members"] == .array([.string("alice"), .string("bob")]))
            let presence = try await alice.next(event: "presence.join")
            #expect(presence["room"]?.stringValue == "lobby")
            #expect(presence["data"]?["user"]?.stringValue == "bob")
            #expect(presence["eid"] == nil, "presence is ephemeral: no position")
            let joinedAt = try #require(bobJoin["data"]?["eid"]?.stringValue.flatMap(EventID.init))
            #expect(joinedAt.offset == 0, "no event yet: joins take no position")

            // message.send: acked to the sender with the event id, delivered to the others only.
            let ack = try await Self.request(alice, "message.send", #"{"room":"lobby","content":"hi \"bob\""}"#)
            #expect(ack["event"]?.stringValue == "ack")
            let ackID = try #require(ack["data"]?["eid"]?.stringValue.flatMap(EventID.init))
            #expect(ackID.epoch == joinedAt.epoch)
            #expect(ackID.offset == joinedAt.offset + 1)
            let message = try await bob.next(event: "message.new")
            #expect(message["eid"]?.stringValue == ackID.description)
            #expect(message["data"]?["from"]?.stringValue == "alice")
            #expect(message["data"]?["content"]?.stringValue == #"hi "bob""#)
            #expect(message["data"]?["ts"]?.numberValue != nil)

            // The sender got no copy: the next thing alice sees is bob's reply.
            _ = try await Self.request(bob, "message.send", #"{"room":"lobby","content":"hello"}"#)
            let next = try await alice.nextJSON()
            #expect(next["event"]?.stringValue == "message.new")
            #expect(next["data"]?["from"]?.stringValue == "bob")
            #expect(next["eid"]?.stringValue == EventID(epoch: ackID.epoch, offset: ackID.offset + 1).description)

            // Leaving announces presence.leave to the rest.
            let leave = try await Self.request(bob, "room.leave", #"{"room":"lobby"}"#)
            #expect(leave["data"]?["left"] == .bool(true))
            let left = try await alice.next(event: "presence.leave")
            #expect(left["data"]?["user"]?.stringValue == "bob")
            #expect(left["eid"] == nil)
            let members = try await Self.request(alice, "room.members", #"{"room":"lobby"}"#)
            #expect(members["data"]?["members"] == .array([.string("alice")]))
            await alice.close()
            await bob.close()
        }
    }

    @Test func presenceOncePerUserAndOnDisconnect() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.presenceGracePeriod = .zero
        try await TestServers.with(configuration: configuration) { server in
            let alice = try await server.open("alice")
            _ = try await Self.join(alice, "lobby")
            let bobTab1 = try await server.open("bob")
            let bobTab2 = try await server.open("bob")
            _ = try await Self.join(bobTab1, "lobby")
            #expect(try await alice.next(event: "presence.join")["data"]?["user"]?.stringValue == "bob")
            _ = try await Self.join(bobTab2, "lobby")
            let members = try await Self.request(alice, "room.members", #"{"room":"lobby"}"#)
            #expect(members["data"]?["members"] == .array([.string("alice"), .string("bob")]))

            // The second tab leaving is not announced; the next event alice sees proves it.
            await bobTab2.close()
            try await server.waitForConnections(2)
            _ = try await Self.request(bobTab1, "message.send", #"{"room":"lobby","content":"still here"}"#)
            #expect(try await alice.nextJSON()["event"]?.stringValue == "message.new")

            // The last tab disconnecting (no room.leave) is.
            await bobTab1.close()
            let left = try await alice.nextJSON()
            #expect(left["event"]?.stringValue == "presence.leave")
            #expect(left["data"]?["user"]?.stringValue == "bob")
            await alice.close()
        }
    }

    /// A user who drops and comes back within the grace period stays present: the members see
    /// neither a leave nor a join. One who does not come back is announced as left once it has
    /// passed, once, whichever of the user's connections ended last.
    @Test func presenceGraceHidesAReconnect() async throws {
        let clock = TestClock()
        var configuration = SwitchboardConfiguration()
        configuration.presenceGracePeriod = .seconds(5)
        try await TestServers.with(configuration: configuration, clock: clock) { server in
            let alice = try await server.open("alice")
            _ = try await Self.join(alice, "lobby")
            let carol = try await server.open("carol")
            _ = try await Self.join(carol, "lobby")
            #expect(try await alice.next(event: "presence.join")["data"]?["user"]?.stringValue == "carol")
            let bob = try await server.open("bob")
            _ = try await Self.join(bob, "lobby")
            #expect(try await alice.next(event: "presence.join")["data"]?["user"]?.stringValue == "bob")

            // The connection is lost (no Close frame) and the user is back on a new one.
            try await bob.resetTCP()
            try await server.waitForConnections(2)
            let members = try await Self.request(alice, "room.members", #"{"room":"lobby"}"#)
            #expect(members["data"]?["members"] == .array([.string("alice"), .string("bob"), .string("carol")]), "present during the grace period")
            let bobAgain = try await server.open("bob")
            _ = try await Self.join(bobAgain, "lobby")
            _ = try await Self.request(bobAgain, "message.send", #"{"room":"lobby","content":"back"}"#)
            let next = try await alice.nextJSON()
            #expect(next["event"]?.stringValue == "message.new", "no presence.leave or presence.join for the reconnect: \(next)")
            #expect(next["data"]?["content"]?.stringValue == "back")

            // Gone for good: nothing until the grace period has passed on the server's clock.
            await bobAgain.close()
            try await server.waitForConnections(2)
            _ = try await Self.request(carol, "message.send", #"{"room":"lobby","content":"marker"}"#)
            let marker = try await alice.nextJSON()
            #expect(marker["data"]?["content"]?.stringValue == "marker", "no presence.leave before the grace period: \(marker)")
            clock.advance(by: .seconds(6))
            let left = try await alice.next(event: "presence.leave")
            #expect(left["data"]?["user"]?.stringValue == "bob")
            // Both of bob's ended connections were counted out, and the leave came once.
            _ = try await Self.request(carol, "message.send", #"{"room":"lobby","content":"after"}"#)
            let after = try await alice.nextJSON()
            #expect(after["data"]?["content"]?.stringValue == "after", "one presence.leave: \(after)")
            let remaining = try await Self.request(alice, "room.members", #"{"room":"lobby"}"#)
            #expect(remaining["data"]?["members"] == .array([.string("alice"), .string("carol")]))

            // room.leave is announced at once, grace period or not.
            _ = try await Self.request(carol, "room.leave", #"{"room":"lobby"}"#)
            #expect(try await alice.nextJSON()["event"]?.stringValue == "presence.leave")
            await alice.close()
            await carol.close()
        }
    }

    @Test func roomManagerAPIFromHandlers() async throws {
        struct Announce: Codable, Sendable { let room: String; let text: String; let includeSelf: Bool }
        var router = EventRouter.chat
        router.on("my.rooms", as: EmptyPayload.self) { _, context in
            context.rooms.rooms(of: context.socket)
        }
        router.on("announce", as: Announce.self) { payload, context in
            try await context.broadcast(to: payload.room, event: "announcement", data: ["text": payload.text], includingSelf: payload.includeSelf).description
        }
        try await TestServers.with(router: router) { server in
            let alice = try await server.open("alice")
            let bob = try await server.open("bob")
            _ = try await Self.join(alice, "b-room")
            _ = try await Self.join(alice, "a-room")
            _ = try await Self.join(bob, "a-room")
            _ = try await alice.next(event: "presence.join")
            let rooms = try await Self.request(alice, "my.rooms", "{}")
            #expect(rooms["data"] == .array([.string("a-room"), .string("b-room")]))

            let excluded = try await Self.request(alice, "announce", #"{"room":"a-room","text":"one","includeSelf":false}"#)
            let eid = try #require(excluded["data"]?.stringValue)
            let received = try await bob.next(event: "announcement")
            #expect(received["eid"]?.stringValue == eid)
            #expect(received["data"]?["text"]?.stringValue == "one")

            try await alice.sendText(#"{"event":"announce","data":{"room":"a-room","text":"two","includeSelf":true},"id":"two"}"#)
            let first = try await alice.nextJSON()
            let second = try await alice.nextJSON()
            // The broadcast is queued before the handler returns, so alice sees it before the ack.
            #expect(first["event"]?.stringValue == "announcement" && first["data"]?["text"]?.stringValue == "two")
            #expect(second["event"]?.stringValue == "ack" && second["id"]?.stringValue == "two")
            #expect(try await bob.next(event: "announcement")["data"]?["text"]?.stringValue == "two")
            await alice.close()
            await bob.close()
        }
    }

    @Test func autoJoinFromSQLiteStoreAndTokenClaim() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteMembershipStore(path: directory.appendingPathComponent("members.sqlite").path)
        try await store.add(userID: "alice", room: "team-7")
        try await store.add(userID: "bob", room: "team-7")
        try await TestServers.with(memberships: store) { server in
            let (alice, welcome) = try await server.connect("alice", claims: ["rooms": .array([.string("from-token")])])
            let rooms = welcome["data"]?["rooms"]?.arrayValue?.compactMap { $0["room"]?.stringValue }
            #expect(Set(rooms ?? []) == ["team-7", "from-token"])
            #expect(welcome["data"]?["socket"]?.stringValue?.isEmpty == false)

            // bob is auto-joined too: alice sees his presence and can message him at once.
            let (bob, _) = try await server.connect("bob")
            #expect(try await alice.next(event: "presence.join")["data"]?["user"]?.stringValue == "bob")
            _ = try await Self.request(alice, "message.send", #"{"room":"team-7","content":"standup?"}"#)
            #expect(try await bob.next(event: "message.new")["data"]?["content"]?.stringValue == "standup?")
            await alice.close()
            await bob.close()
        }
    }

    @Test func joinAuthorizationHook() async throws {
        try await TestServers.with(authorizeJoin: { socket, room in !room.hasPrefix("admin") || socket.user.id == "root" }) { server in
            let alice = try await server.open("alice")
            let refused = try await Self.request(alice, "room.join", #"{"room":"admin-ops"}"#)
            #expect(refused["event"]?.stringValue == "error")
            #expect(refused["data"]?["code"]?.stringValue == "forbidden")
            _ = try await Self.join(alice, "general")
            let root = try await server.open("root")
            _ = try await Self.join(root, "admin-ops")
            await alice.close()
            await root.close()
        }
    }

    @Test func roomEventsArriveInEventIDOrderUnderConcurrentSenders() async throws {
        // 50 sends per sender as fast as acks come: past message.send's default burst.
        try await TestServers.with(configuration: .unlimited) { server in
            let listener = try await server.open("listener")
            _ = try await Self.join(listener, "busy")
            var senders: [TestWebSocketClient] = []
            for index in 0..<4 {
                let sender = try await server.open("sender-\(index)")
                _ = try await Self.join(sender, "busy")
                senders.append(sender)
            }
            let perSender = 50
            try await withThrowingTaskGroup(of: Void.self) { group in
                for sender in senders {
                    group.addTask {
                        for index in 0..<perSender {
                            try await sender.sendText(#"{"event":"message.send","data":{"room":"busy","content":"m\#(index)"}}"#)
                        }
                    }
                }
                try await group.waitForAll()
            }
            var last: UInt64 = 0
            var received = 0
            while received < senders.count * perSender {
                let event = try await listener.nextJSON()
                guard let eid = event["eid"]?.stringValue.flatMap(EventID.init) else { continue }
                if last != 0 { #expect(eid.offset == last + 1) }
                last = eid.offset
                if event["event"]?.stringValue == "message.new" { received += 1 }
            }
            for client in senders + [listener] { await client.close() }
        }
    }
}

/// The in-memory broker whose `presence.join` publishes, once armed, take effect at once (the
/// members get them) but are answered only when the test releases them, so that a member can act
/// on a `presence.join` before the joiner's join ends.
final class HeldAnnouncementBroker: Broker {
    let inner = InMemoryBroker()
    let armed = TestLockedBox(false)
    let release = TestSignal()

    func attach(_ subscriber: any BrokerSubscriber) { inner.attach(subscriber) }
    func subscribe(_ room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> { inner.subscribe(room, on: eventLoop) }
    func unsubscribe(_ room: String) { inner.unsubscribe(room) }
    func publish(_ publication: Publication, on eventLoop: any EventLoop) -> EventLoopFuture<EventID?> {
        let answer = inner.publish(publication, on: eventLoop)
        guard publication.event == "presence.join", armed.withLock({ $0 }) else { return answer }
        let promise = eventLoop.makePromise(of: EventID?.self)
        let release = self.release
        Task {
            try? await release.wait("the test to release the announcement", timeout: .seconds(10))
            answer.cascade(to: promise)
        }
        return promise.futureResult
    }
    func recover(_ room: String, after position: EventID?, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Recovery> {
        inner.recover(room, after: position, limit: limit, on: eventLoop)
    }
    func latest(_ room: String, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[HistoryEntry]> { inner.latest(room, limit: limit, on: eventLoop) }
}

@Suite("Rooms: a joiner gets what answers its presence.join")
struct JoinAnnouncementOrderTests {
    @Test("a member who answers presence.join at once is heard by the joiner, whose join ends after the answer")
    func answerToPresenceJoinReachesTheJoiner() async throws {
        let broker = HeldAnnouncementBroker()
        try await TestServers.with(broker: broker) { server in
            let bob = try await server.open("bob")
            _ = try await RoomTests.join(bob, "lobby")
            let alice = try await server.open("alice")
            broker.armed.withLock { $0 = true }
            try await alice.sendText(#"{"event":"room.join","data":{"room":"lobby"},"id":"j"}"#)
            let joined = try await bob.next(event: "presence.join")
            #expect(joined["data"]?["user"]?.stringValue == "alice")
            let hi = try await RoomTests.request(bob, "message.send", #"{"room":"lobby","content":"hi alice"}"#)
            #expect(hi["event"]?.stringValue == "ack", "\(hi)")
            broker.release.fire()
            let ack = try await alice.next(event: "j", field: "id")
            #expect(ack["event"]?.stringValue == "ack", "\(ack)")
            let message = try await alice.next(event: "message.new")
            #expect(message["data"]?["content"]?.stringValue == "hi alice")
            #expect(message["eid"] == hi["data"]?["eid"])
            await alice.close()
            await bob.close()
        }
    }
}
