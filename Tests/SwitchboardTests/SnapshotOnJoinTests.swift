import Foundation
import Testing
@testable import Switchboard

/// `RoomSnapshot.sentOnJoin()`: a join without a position is sent the snapshot as `state.refresh`
/// right after its ack, before any live event; without it, such a join gets none.
@Suite("Snapshot on join")
struct SnapshotOnJoinTests {
    struct Counter: Encodable, Sendable { let value: Int }

    @Test func aFirstJoinGetsTheSnapshotAfterItsAckThenLiveEvents() async throws {
        let snapshot = RoomSnapshot.custom { room, socket in room == "board" ? Counter(value: 7) : nil }.sentOnJoin()
        try await TestServers.with(snapshot: snapshot) { server in
            let viewer = try await server.open("viewer")
            try await viewer.sendText(#"{"event":"room.join","data":{"room":"board"},"id":"j"}"#)
            let ack = try await viewer.nextJSON()
            #expect(ack["id"]?.stringValue == "j")
            #expect(ack["data"]?["recovered"]?.boolValue == true)
            let refresh = try await viewer.nextJSON()
            #expect(refresh["event"]?.stringValue == "state.refresh")
            #expect(refresh["room"]?.stringValue == "board")
            #expect(refresh["eid"]?.stringValue == ack["data"]?["eid"]?.stringValue)
            #expect(refresh["data"]?["value"]?.numberValue == 7)
            _ = try await server.switchboard.rooms.broadcast(room: "board", event: "tick", data: Counter(value: 8))
            #expect(try await viewer.nextJSON()["event"]?.stringValue == "tick")

            // A resume from a known position is replayed as before, without a snapshot.
            let eid = try #require(ack["data"]?["eid"]?.stringValue)
            let back = try await server.open("viewer")
            try await back.sendText(#"{"event":"room.join","data":{"room":"board","since":"\#(eid)"},"id":"r"}"#)
            #expect(try await back.nextJSON()["id"]?.stringValue == "r")
            let replayed = try await back.nextJSON()
            #expect(replayed["event"]?.stringValue == "tick")
            await viewer.close()
            await back.close()
        }
    }

    @Test func withoutItAFirstJoinGetsNoSnapshot() async throws {
        try await TestServers.with(snapshot: .custom { _, _ in Counter(value: 7) }) { server in
            let viewer = try await server.open("viewer")
            try await viewer.sendText(#"{"event":"room.join","data":{"room":"board"},"id":"j"}"#)
            #expect(try await viewer.nextJSON()["id"]?.stringValue == "j")
            _ = try await server.switchboard.rooms.broadcast(room: "board", event: "tick", data: Counter(value: 8))
            #expect(try await viewer.nextJSON()["event"]?.stringValue == "tick")
            await viewer.close()
        }
    }
}
