import Foundation
import Testing
@testable import SwitchboardClient

/// The client's rules on their own, without sockets or clocks: the backoff schedule, the reconnect
/// decisions, dedupe by offset, the offline queue's bound, and envelope parsing.
@Suite("Swift client: backoff, dedupe, queue")
struct ClientLogicTests {
    // MARK: Backoff

    @Test("the base delay doubles from 1 s and is capped at 30 s")
    func baseDelayDoublesToTheCap() {
        let policy = BackoffPolicy()
        let seconds = (0..<8).map { policy.baseDelay(afterFailures: $0) }
        #expect(seconds == [1, 2, 4, 8, 16, 30, 30, 30].map { Duration.seconds($0) })
        #expect(policy.baseDelay(afterFailures: 10_000) == .seconds(30))
    }

    @Test("jitter is applied after the cap: clients at the cap still spread over 15 to 30 s")
    func jitterAfterTheCap() {
        let policy = BackoffPolicy()
        #expect(policy.delay(afterFailures: 9, random: 0) == .seconds(30))
        #expect(policy.delay(afterFailures: 9, random: 0.5) == .seconds(22.5))
        #expect(policy.delay(afterFailures: 9, random: 1) == .seconds(15))
        // Two clients with different random numbers never wait the same at the cap.
        #expect(policy.delay(afterFailures: 20, random: 0.1) != policy.delay(afterFailures: 20, random: 0.2))
        // Below the cap too: 4 s base → 2 to 4 s.
        #expect(policy.delay(afterFailures: 2, random: 0.25) == .seconds(3.5))
    }

    @Test("no delay is below the floor, whatever the settings and the random number")
    func delayFloor() {
        let policy = BackoffPolicy(initial: .milliseconds(10), maximum: .milliseconds(20), jitter: 1, floor: .milliseconds(50))
        for failures in 0..<5 {
            for random in [0, 0.5, 0.999, 1] {
                #expect(policy.delay(afterFailures: failures, random: random) >= .milliseconds(50))
            }
        }
        #expect(BackoffPolicy().promptDelay(random: 0) == .milliseconds(100))
        #expect(BackoffPolicy().promptDelay(random: 1) == .seconds(1))
    }

    // MARK: Reconnect decisions

    @Test("dropped connections back off, doubling; a connection that stayed open resets the count")
    func decisionsBackOffAndReset() {
        var decider = ReconnectDecider(backoff: BackoffPolicy(), canRefreshToken: false)
        let lost = DisconnectReason.connectionLost("test")
        let delays = (0..<7).map { _ in decider.next(after: lost, wasOpen: false, openFor: .zero, random: 0) }
        #expect(delays == [1, 2, 4, 8, 16, 30, 30].map { .retry(after: .seconds($0)) })
        // Open for less than resetAfter: still backing off.
        #expect(decider.next(after: lost, wasOpen: true, openFor: .seconds(2), random: 0) == .retry(after: .seconds(30)))
        // Open for longer: back to 1 s.
        #expect(decider.next(after: lost, wasOpen: true, openFor: .seconds(11), random: 0) == .retry(after: .seconds(1)))
        #expect(decider.failures == 1)
    }

    @Test("a server that accepts and closes at once gets growing delays, never a tight loop")
    func acceptAndCloseAtOnce() {
        var decider = ReconnectDecider(backoff: BackoffPolicy(), canRefreshToken: true)
        var total = Duration.zero
        for _ in 0..<20 {
            guard case .retry(let delay) = decider.next(after: .closed(code: 1011, reason: nil), wasOpen: true, openFor: .milliseconds(1), random: 0.99) else {
                Issue.record("stopped")
                return
            }
            #expect(delay >= .milliseconds(100))
            total += delay
        }
        #expect(total > .seconds(200))
    }

    @Test("1001 and 1012 reconnect promptly with a small random delay, once; 4001 at once, once")
    func promptReconnects() {
        var decider = ReconnectDecider(backoff: BackoffPolicy(), canRefreshToken: true)
        #expect(decider.next(after: .closed(code: 1012, reason: nil), wasOpen: true, openFor: .seconds(60), random: 0.5) == .retry(after: .milliseconds(550)))
        // The server is not back yet: from now on, the backoff.
        #expect(decider.next(after: .connectionLost("refused"), wasOpen: false, openFor: .zero, random: 0) == .retry(after: .seconds(2)))
        var other = ReconnectDecider(backoff: BackoffPolicy(), canRefreshToken: true)
        #expect(other.next(after: .closed(code: 1001, reason: "bye"), wasOpen: true, openFor: .seconds(60), random: 0) == .retry(after: .milliseconds(100)))
        var expiring = ReconnectDecider(backoff: BackoffPolicy(), canRefreshToken: true)
        #expect(expiring.next(after: .closed(code: 4001, reason: nil), wasOpen: true, openFor: .seconds(60), random: 0.7) == .retry(after: .milliseconds(100)))
        // A token that expires again at once is not refreshed in a tight loop.
        #expect(expiring.next(after: .closed(code: 4001, reason: nil), wasOpen: true, openFor: .milliseconds(5), random: 0) == .retry(after: .seconds(2)))
    }

    @Test("1002, 1007, 1008 and 1009 stop; a refused token stops after one refresh, or at once when it cannot be refreshed")
    func finalCloses() {
        for code: UInt16 in [1002, 1007, 1008, 1009] {
            var decider = ReconnectDecider(backoff: BackoffPolicy(), canRefreshToken: true)
            #expect(decider.next(after: .closed(code: code, reason: nil), wasOpen: true, openFor: .seconds(1), random: 0) == .stop, "\(code)")
        }
        for code: UInt16 in [1000, 1006, 1011, 1013, 4000, 4002] {
            var decider = ReconnectDecider(backoff: BackoffPolicy(), canRefreshToken: true)
            #expect(decider.next(after: .closed(code: code, reason: nil), wasOpen: true, openFor: .seconds(60), random: 0) == .retry(after: .seconds(1)), "\(code)")
        }
        let refused = DisconnectReason.refused(status: 401, code: "token_expired", message: "token expired")
        var fixed = ReconnectDecider(backoff: BackoffPolicy(), canRefreshToken: false)
        #expect(fixed.next(after: refused, wasOpen: false, openFor: .zero, random: 0) == .stop)
        var provider = ReconnectDecider(backoff: BackoffPolicy(), canRefreshToken: true)
        #expect(provider.next(after: refused, wasOpen: false, openFor: .zero, random: 0) == .retry(after: .milliseconds(100)))
        #expect(provider.next(after: refused, wasOpen: false, openFor: .zero, random: 0) == .stop)
        // 429 and 503 back off.
        var busy = ReconnectDecider(backoff: BackoffPolicy(), canRefreshToken: false)
        #expect(busy.next(after: .refused(status: 429, code: "too_many_connections", message: ""), wasOpen: false, openFor: .zero, random: 0) == .retry(after: .seconds(1)))
        #expect(busy.next(after: .refused(status: 503, code: "store_unavailable", message: ""), wasOpen: false, openFor: .zero, random: 0) == .retry(after: .seconds(2)))
    }

    // MARK: Dedupe

    @Test("events at or before the position are dropped; the position moves before delivery")
    func dedupeByOffset() {
        var positions = RoomPositions()
        positions.reset("lobby", to: EventPosition(epoch: "e1", offset: 4))
        #expect(positions.receive("lobby", EventPosition(epoch: "e1", offset: 3)) == .duplicate)
        #expect(positions.receive("lobby", EventPosition(epoch: "e1", offset: 4)) == .duplicate)
        #expect(positions.receive("lobby", EventPosition(epoch: "e1", offset: 5)) == .deliver)
        #expect(positions.position(of: "lobby") == EventPosition(epoch: "e1", offset: 5))
        #expect(positions.receive("lobby", EventPosition(epoch: "e1", offset: 5)) == .duplicate)
        #expect(positions.resume == ["lobby": EventPosition(epoch: "e1", offset: 5)])
    }

    @Test("another epoch is a refresh, and the position starts again in it")
    func newEpoch() {
        var positions = RoomPositions()
        positions.reset("lobby", to: EventPosition(epoch: "old", offset: 40))
        #expect(positions.receive("lobby", EventPosition(epoch: "new", offset: 1)) == .newEpoch)
        #expect(positions.position(of: "lobby") == EventPosition(epoch: "new", offset: 1))
        #expect(positions.receive("lobby", EventPosition(epoch: "new", offset: 1)) == .duplicate)
        #expect(positions.receive("lobby", EventPosition(epoch: "new", offset: 2)) == .deliver)
    }

    @Test("the ack of an own publish counts as seen, also when it comes before the events just before it")
    func ownAcks() {
        var positions = RoomPositions()
        positions.reset("lobby", to: EventPosition(epoch: "e", offset: 10))
        positions.acknowledged("lobby", EventPosition(epoch: "e", offset: 11))
        #expect(positions.position(of: "lobby")?.offset == 11)
        // Own event 13 acked while 12 (someone else's) is still on its way.
        positions.acknowledged("lobby", EventPosition(epoch: "e", offset: 13))
        #expect(positions.position(of: "lobby")?.offset == 11)
        #expect(positions.receive("lobby", EventPosition(epoch: "e", offset: 12)) == .deliver)
        #expect(positions.position(of: "lobby")?.offset == 13)
        // A replay after a resume sends the own event again: it is not delivered.
        #expect(positions.receive("lobby", EventPosition(epoch: "e", offset: 13)) == .duplicate)
        positions.acknowledged("lobby", EventPosition(epoch: "e", offset: 15))
        #expect(positions.receive("lobby", EventPosition(epoch: "e", offset: 14)) == .deliver)
        #expect(positions.receive("lobby", EventPosition(epoch: "e", offset: 15)) == .duplicate)
        #expect(positions.position(of: "lobby")?.offset == 15)
    }

    @Test("a position ahead of the events on their way (a gap) still moves with the next event, and the events in the gap are dropped if they come late")
    func gaps() {
        var positions = RoomPositions()
        positions.reset("lobby", to: EventPosition(epoch: "e", offset: 1))
        #expect(positions.receive("lobby", EventPosition(epoch: "e", offset: 4)) == .deliver)
        #expect(positions.position(of: "lobby")?.offset == 4)
        #expect(positions.receive("lobby", EventPosition(epoch: "e", offset: 3)) == .duplicate)
        // Rooms the client has not joined yet start at their first event.
        #expect(positions.receive("other", EventPosition(epoch: "x", offset: 9)) == .deliver)
        #expect(positions.resume == ["lobby": EventPosition(epoch: "e", offset: 4), "other": EventPosition(epoch: "x", offset: 9)])
    }

    // MARK: Offline queue

    @Test("offline, the queue holds at most its limit: the oldest requests are given up first")
    func queueBound() {
        var outbox = RequestOutbox<Int>(limit: 3)
        let deadline = ContinuousClock.now + .seconds(10)
        var dropped: [Int] = []
        for index in 0..<5 {
            dropped += outbox.add(id: "r\(index)", text: "t\(index)", kind: .query, deadline: deadline, waiter: index, online: false).map(\.waiter)
        }
        #expect(dropped == [0, 1])
        #expect(outbox.count == 3)
        #expect(outbox.takeUnwritten().map(\.id) == ["r2", "r3", "r4"])
        #expect(outbox.takeUnwritten().isEmpty)
        // Online, sent requests are not bounded by the offline limit.
        for index in 5..<10 {
            #expect(outbox.add(id: "r\(index)", text: "t\(index)", kind: .query, deadline: deadline, waiter: index, online: true).isEmpty)
        }
        #expect(outbox.count == 8)
        // The connection drops: every un-acked request is written again, in order, same ids.
        outbox.markAllUnwritten()
        _ = outbox.remove("r3")
        #expect(outbox.takeUnwritten().map(\.text) == ["t2", "t4", "t5", "t6", "t7", "t8", "t9"])
        // A new offline request beyond the bound gives up the oldest waiting ones.
        outbox.markAllUnwritten()
        #expect(outbox.add(id: "new", text: "n", kind: .query, deadline: deadline, waiter: 99, online: false).map(\.waiter) == [2, 4, 5, 6, 7])
        #expect(outbox.ordered.map(\.id) == ["r8", "r9", "new"])
    }

    @Test("requests expire at their deadline, queued or sent")
    func queueExpiry() {
        var outbox = RequestOutbox<Int>(limit: 10)
        let now = ContinuousClock.now
        _ = outbox.add(id: "a", text: "a", kind: .query, deadline: now + .seconds(1), waiter: 1, online: false)
        _ = outbox.add(id: "b", text: "b", kind: .query, deadline: now + .seconds(3), waiter: 2, online: true)
        #expect(outbox.nextDeadline == now + .seconds(1))
        #expect(outbox.expire(now: now).isEmpty)
        #expect(outbox.expire(now: now + .seconds(2)).map(\.id) == ["a"])
        #expect(outbox.expire(now: now + .seconds(3)).map(\.id) == ["b"])
        #expect(outbox.isEmpty)
    }

    // MARK: Envelopes

    @Test("envelopes: string fields decoded, data kept as sent, unknown fields skipped")
    func envelopeParsing() throws {
        let text = #"{"event":"message.new","x":[1,{"a":"}"}],"room":"lo\"bby","eid":"ab1:42","data":{"content":"hi, \"you\"","n":[1,2]}}"#
        let envelope = try #require(Envelope(parsing: text))
        #expect(envelope.event == "message.new")
        #expect(envelope.room == "lo\"bby")
        #expect(envelope.eid == "ab1:42")
        #expect(envelope.data?.text == #"{"content":"hi, \"you\"","n":[1,2]}"#)
        #expect(Envelope(parsing: #"{"event":"ack","id":"7","data":null}"#) == Envelope(event: "ack", id: "7"))
        #expect(Envelope(parsing: #"{"event":"ack","id":"7","data":3}"#)?.data?.text == "3")
        for invalid in ["", "[]", "{}", #"{"event":1}"#, #"{"event":"a""#, #"{"event":"a",}"#, "null"] {
            #expect(Envelope(parsing: invalid) == nil, "\(invalid)")
        }
        #expect(Envelope.encode(event: "room.join", data: RawJSON(#"{"room":"a"}"#), id: "q\"1") == #"{"event":"room.join","data":{"room":"a"},"id":"q\"1"}"#)
        #expect(EventPosition("lq2x8kf3a:41") == EventPosition(epoch: "lq2x8kf3a", offset: 41))
        for invalid in ["", ":1", "a:", "a:-1", "a:1x", "a-b:1", "a"] {
            #expect(EventPosition(invalid) == nil, "\(invalid)")
        }
    }

    @Test("RawJSON decodes as a field of the app's types and encodes back")
    func rawJSONCodable() throws {
        struct Wrapper: Codable { let payload: RawJSON }
        let wrapper = try JSONDecoder().decode(Wrapper.self, from: Data(#"{"payload":{"b":[1,2.5,"x",null,true]}}"#.utf8))
        #expect(wrapper.payload.text == #"{"b":[1,2.5,"x",null,true]}"#)
        let again = String(decoding: try JSONEncoder().encode(wrapper), as: UTF8.self)
        #expect(try JSONDecoder().decode(Wrapper.self, from: Data(again.utf8)).payload == wrapper.payload)
    }
}
