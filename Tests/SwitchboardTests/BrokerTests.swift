import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import Switchboard

/// The in-memory broker on its own: positions, history bounds, retention on an injected clock.
@Suite("InMemoryBroker: positions, history, retention")
struct BrokerTests {
    final class Collector: BrokerSubscriber, @unchecked Sendable {
        // @unchecked Sendable: `events` is only touched under `lock`.
        private let lock = NSLock()
        private var events: [BrokerEvent] = []
        func deliver(_ event: BrokerEvent) {
            lock.lock()
            events.append(event)
            lock.unlock()
        }
        var delivered: [BrokerEvent] {
            lock.lock()
            defer { lock.unlock() }
            return events
        }
    }

    static func publication(_ room: String, _ text: String, bytes: Int = 0) -> Publication {
        var data = ByteBuffer()
        data.writeJSONString(text + String(repeating: "x", count: bytes))
        return Publication(room: room, event: "note", dataJSON: data)
    }

    static func events(_ recovery: Recovery) -> [HistoryEntry]? {
        if case .recovered(_, let events) = recovery { return events }
        return nil
    }

    @Test("positions have no gaps per room and are delivered in order; replay returns the same frames")
    func positionsAndReplay() throws {
        let broker = InMemoryBroker(configuration: .init(), clock: TestClock())
        let collector = Collector()
        broker.attach(collector)
        let start = broker.recoverNow("a", after: nil, limit: 0).current
        #expect(start.offset == 0)
        var positions: [EventID] = []
        for index in 0..<5 {
            positions.append(try #require(broker.publishNow(Self.publication("a", "m\(index)"))))
            broker.publishNow(Self.publication("b", "other"))
        }
        #expect(positions.map(\.offset) == [1, 2, 3, 4, 5])
        #expect(Set(positions.map(\.epoch)) == [start.epoch])
        let delivered = collector.delivered.filter { $0.room == "a" }
        #expect(delivered.map { $0.position } == positions)
        let replay = try #require(Self.events(broker.recoverNow("a", after: positions[1], limit: 100)))
        #expect(replay.map(\.position) == Array(positions[2...]))
        // The very bytes that were delivered.
        #expect(replay.map(\.frame) == delivered[2...].map(\.frame))
        // Ephemeral events take no position and are not kept.
        #expect(broker.publishNow(Publication(room: "a", event: "typing", dataJSON: nil, persistent: false)) == nil)
        #expect(broker.recoverNow("a", after: nil, limit: 0).current == positions[4])
    }

    @Test("what cannot be recovered: another epoch, ahead of the room, beyond the limit, trimmed by count")
    func notRecoverable() throws {
        var history = HistoryConfiguration()
        history.maxEventsPerRoom = 3
        let broker = InMemoryBroker(configuration: history, clock: TestClock())
        var positions: [EventID] = []
        for index in 0..<6 { positions.append(try #require(broker.publishNow(Self.publication("a", "m\(index)")))) }
        func recovered(_ after: EventID, limit: Int = 100) -> Bool { Self.events(broker.recoverNow("a", after: after, limit: limit)) != nil }
        #expect(!recovered(EventID(epoch: "other", offset: 3)))
        #expect(!recovered(EventID(epoch: positions[0].epoch, offset: 99)))
        #expect(recovered(positions[2]), "the last 3 are kept: 4, 5, 6 follow 3")
        #expect(!recovered(positions[1]), "4 is the oldest kept, 3 is gone")
        #expect(!recovered(positions[2], limit: 2), "3 behind with a limit of 2")
        #expect(recovered(positions[5]), "current")
    }

    @Test("retention counts from each event; an idle room's stream outlives its members for the retention, then goes with its epoch")
    func retentionByAge() throws {
        let clock = TestClock()
        var history = HistoryConfiguration()
        history.retention = .seconds(60)
        let broker = InMemoryBroker(configuration: history, clock: clock)
        let first = try #require(broker.publishNow(Self.publication("a", "old")))
        clock.advance(by: .seconds(40))
        let second = try #require(broker.publishNow(Self.publication("a", "new")))
        clock.advance(by: .seconds(30))
        #expect(Self.events(broker.recoverNow("a", after: EventID(epoch: first.epoch, offset: 0), limit: 10)) == nil, "the first is 70 s old")
        #expect(Self.events(broker.recoverNow("a", after: first, limit: 10))?.map(\.position) == [second])
        #expect(broker.latestNow("a", limit: 10).map(\.position) == [second])

        let bytesBefore = broker.historyBytes
        clock.advance(by: .seconds(31))
        broker.removeExpired()
        #expect(broker.historyBytes < bytesBefore)
        #expect(broker.historyBytes == 0)
        // Unused for the retention period and empty: dropped, and a new stream has a new epoch.
        clock.advance(by: .seconds(61))
        broker.removeExpired()
        #expect(broker.streamCount == 0)
        let again = try #require(broker.publishNow(Self.publication("a", "again")))
        #expect(again.epoch != first.epoch)
        #expect(again.offset == 1)
    }

    @Test("a subscribed room keeps its stream however long it is quiet")
    func subscribedStreamsStay() throws {
        let clock = TestClock()
        var history = HistoryConfiguration()
        history.retention = .seconds(60)
        let broker = InMemoryBroker(configuration: history, clock: clock)
        let eventLoop = MultiThreadedEventLoopGroup.singleton.any()
        try broker.subscribe("quiet", on: eventLoop).wait()
        let position = broker.recoverNow("quiet", after: nil, limit: 0).current
        clock.advance(by: .seconds(3600))
        broker.removeExpired()
        #expect(broker.recoverNow("quiet", after: nil, limit: 0).current == position)
        broker.unsubscribe("quiet")
        clock.advance(by: .seconds(61))
        broker.removeExpired()
        #expect(broker.streamCount == 0)
    }

    @Test("without its service, a broker in use sweeps idle rooms itself, a shard at a time")
    func sweepsWhileInUse() throws {
        let clock = TestClock()
        var history = HistoryConfiguration()
        history.retention = .seconds(10)
        let broker = InMemoryBroker(configuration: history, clock: clock)
        for index in 0..<20 { broker.publishNow(Self.publication("idle-\(index)", "old")) }
        let idleBytes = broker.historyBytes
        #expect(broker.streamCount == 20)
        clock.advance(by: .seconds(21))
        // Every shard's turn comes once a second (a tenth of the retention, at least 1 s): 64
        // publishes 20 ms apart to one busy room sweep them all.
        for _ in 0..<64 {
            clock.advance(by: .milliseconds(20))
            broker.publishNow(Self.publication("busy", "new"))
        }
        #expect(broker.streamCount == 1, "only the busy room is left")
        let busy = broker.latestNow("busy", limit: 100)
        #expect(busy.count == 64)
        let busyBytes = busy.reduce(0) { $0 + $1.frame.readableBytes + InMemoryBroker.entryOverhead }
        #expect(idleBytes > 0)
        #expect(broker.historyBytes == busyBytes, "the idle rooms' events are gone")
    }

    @Test("a flood of large events stays within the history's byte bound, oldest rooms trimmed first")
    func memoryBound() throws {
        let clock = TestClock()
        var history = HistoryConfiguration()
        history.maxBytes = 1 << 20
        let broker = InMemoryBroker(configuration: history, clock: clock)
        let eventSize = 10_000
        var maximum = 0
        for index in 0..<600 {
            let room = "r\(index % 20)"
            broker.publishNow(Self.publication(room, "e\(index)", bytes: eventSize))
            maximum = max(maximum, broker.historyBytes)
            clock.advance(by: .milliseconds(10))
        }
        #expect(maximum <= history.maxBytes + eventSize + 200, "at most one event over the bound, before the trim")
        #expect(broker.historyBytes <= history.maxBytes)
        #expect(broker.historyBytes >= history.maxBytes / 2, "trimmed to the bound, not emptied")
        // What is left is the newest: every room still has its latest event.
        for room in 0..<20 {
            let latest = broker.latestNow("r\(room)", limit: 1)
            #expect(latest.count == 1)
        }
    }
}
