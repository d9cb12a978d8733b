import Foundation
import NIOCore
import Testing

@testable import Switchboard

/// A client that reads slower than its events come is closed as a slow consumer (4008) once more
/// than the outbound high-water mark waits for it; the other members are not held up, and it
/// resumes from history without a gap.
@Suite("Backpressure: slow consumers")
struct BackpressureTests {
    struct Tick: Codable, Sendable {
        let index: Int
        let pad: String
    }

    static var smallMark: SwitchboardConfiguration {
        var configuration = SwitchboardConfiguration()
        // Large enough that the member that reads, in a test process on a loaded machine, never
        // lags that far behind; the one that does not read passes it all the same.
        configuration.outboundHighWaterMark = 1024 * 1024
        configuration.presence = false
        // The resume below finds everything the flood sent in history.
        configuration.history.maxEventsPerRoom = 5000
        configuration.history.maxReplay = 5000
        return configuration
    }

    @Test("a member that stops reading is closed with 4008 once its unread events pass the mark; the others get every event, and it resumes without a gap")
    func slowConsumerIsClosedAndResumes() async throws {
        try await TestServers.with(configuration: Self.smallMark) { server in
            let slow = try await server.open("slow")
            let fast = try await server.open("fast")
            let joined = try await ResumeTests.joinPosition(slow, "feed")
            _ = try await RoomTests.join(fast, "feed")
            try await slow.setReading(false)
            // Each event is 16 KB: the kernel's buffers fill first (a few MB on loopback), then
            // the server's own, up to the mark. Bounded: at most 64 MB or 30 s.
            let pad = String(repeating: "x", count: 16 * 1024)
            var last: EventID?
            let rooms = server.switchboard.rooms
            let deadline = ContinuousClock.now + .seconds(30)
            for batch in 0..<1000 where ContinuousClock.now < deadline {
                // Four at a time, so that several frames reach a connection in one loop turn (the
                // write that crosses the mark then happens while its frames are being appended).
                let positions = try await withThrowingTaskGroup(of: EventID.self) { group in
                    for index in 0..<4 {
                        group.addTask { try await rooms.broadcast(room: "feed", event: "tick", data: Tick(index: batch * 4 + index, pad: pad)) }
                    }
                    return try await group.reduce(into: [EventID]()) { $0.append($1) }
                }
                last = positions.max { $0.offset < $1.offset }
                if server.switchboard.slowConsumersClosed > 0 { break }
            }
            try await waitUntil("the slow consumer closed", timeout: .seconds(5)) { server.switchboard.slowConsumersClosed == 1 }
            let through = try #require(last)
            // Events after the close: none is queued for the slow consumer; it gets them on resume.
            for index in 1...5 {
                _ = try await server.switchboard.rooms.broadcast(room: "feed", event: "after", data: Tick(index: index, pad: ""))
            }
            let marker = try await server.switchboard.rooms.broadcast(room: "feed", event: "marker", data: Tick(index: 0, pad: ""))
            // The member that reads got everything, the marker last.
            let received = try await Resume.events(fast, room: "feed", through: marker, timeout: .seconds(20))
            ResumeTests.expectConsecutive(received, after: joined)
            // The slow one's TCP ends once it reads again (or the deadline closed it already); a
            // Close frame, if it got through, says 4008, and nothing came after it.
            try await slow.setReading(true)
            let frames = try await slow.waitForDisconnect(timeout: .seconds(20))
            if let close = frames.first(where: { $0.opcode == TestFrame.close }) {
                #expect(close.closeCode == CloseCode.slowConsumer, "\(close)")
                #expect(frames.last?.opcode == TestFrame.close, "nothing after the Close frame")
            }
            let seen = frames.compactMap { frame -> EventID? in
                guard frame.opcode == TestFrame.text, let text = frame.text, let start = text.range(of: #""eid":""#) else { return nil }
                return EventID(String(text[start.upperBound...].prefix { $0 != "\"" }))
            }
            #expect(seen.allSatisfy { $0.offset <= through.offset }, "nothing is queued for a slow consumer once it is closed")
            // It resumes from the last event it read: history has the rest, in order, once.
            let resumed = try await server.open("slow")
            let lastSeen = seen.last ?? joined
            let ack = try await Resume.hello(resumed, ["feed": lastSeen.description])
            #expect(Resume.outcome(ack, "feed")?["recovered"]?.boolValue == true, "\(ack)")
            let missed = try await Resume.events(resumed, room: "feed", through: marker, timeout: .seconds(20))
            ResumeTests.expectConsecutive(missed, after: lastSeen)
            #expect(missed.count >= 6, "at least the events after the close: \(missed.count)")
            await resumed.close()
            await fast.close()
        }
    }
}
