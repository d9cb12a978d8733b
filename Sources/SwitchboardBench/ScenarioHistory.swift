import Foundation
import NIOCore
import Switchboard

/// Result of `history`.
public struct HistoryResult: Sendable, Codable, Equatable {
    /// The server process measured.
    public var serverPid: Int32
    /// Rooms published to, and events published to each.
    public var rooms: Int
    public var eventsPerRoom: Int
    /// Events acknowledged (each kept in its room's history, unless the server's limits trimmed it).
    public var acked: Int
    /// `message.send` content bytes.
    public var payloadBytes: Int
    /// The size of one kept `message.new` frame, built with the server's own encoder for the same
    /// content, user, room and position length (header included).
    public var frameBytes: Int
    /// The server's VmRSS before and after publishing, KiB.
    public var rssBeforeKib: Int
    public var rssAfterKib: Int
    /// (after − before) / acked, bytes.
    public var bytesPerEvent: Double
    /// `bytesPerEvent / frameBytes`; the aim is at most 1.5 + 64 / frameBytes.
    public var ratioToFrame: Double
    /// Publishing CPU.
    public var cpu: CPUUsage
}

/// One publisher alone in `rooms` rooms (`bench-history-<i>`) sends `events` messages to each,
/// with no other member, so that what the server holds afterwards is the history; the server's
/// resident memory before and after gives the bytes per stored event, against the frame's size.
/// For a meaningful figure, keep `rooms × events` within the server's history bounds
/// (`--history-size` per room, `--history-memory` in all) and large enough to dwarf the noise
/// of the allocator (e.g. 100 × 1000).
enum ScenarioHistory {
    static func room(_ index: Int) -> String { "bench-history-\(index)" }

    static func run(_ context: BenchContext) async throws -> HistoryResult {
        let options = context.options
        guard let pid = options.serverPID else {
            throw BenchError.invalidOption("history needs --server-pid")
        }
        let user = 0
        let publisher = try await context.connect(index: user, token: context.token(index: user))
        do {
            for index in 0..<options.rooms {
                try await publisher.join(room: room(index), timeout: options.replyTimeout)
            }
            // A first message per room, before the measurement: the rooms' streams and rings
            // exist, so the figure is history alone.
            for index in 0..<options.rooms {
                try await publisher.configureMessages(room: room(index), payloadBytes: options.payloadBytes)
                _ = try await publisher.sendBurst(count: 1, window: 1, timeout: options.replyTimeout)
            }
            try? await Task.sleep(for: options.settle)
            guard let before = ProcessStats.residentKiB(pid: pid) else {
                throw BenchError.procUnavailable("cannot read VmRSS of process \(pid) from /proc/\(pid)/status")
            }
            let cpu = context.cpuWindow()
            var acked = 0
            var last: RoomPosition?
            for index in 0..<options.rooms {
                if options.showProgress, index % 10 == 0 { Progress.write("history: room \(index + 1) of \(options.rooms)") }
                try await publisher.configureMessages(room: room(index), payloadBytes: options.payloadBytes)
                let burst = try await publisher.sendBurst(count: options.events, window: ScenarioResume.publishWindow, timeout: options.replyTimeout)
                acked += burst.acks
                last = burst.lastAck ?? last
            }
            let usage = cpu.stop()
            try? await Task.sleep(for: options.settle)
            guard let after = ProcessStats.residentKiB(pid: pid) else {
                throw BenchError.procUnavailable("cannot read VmRSS of process \(pid) after publishing (did it exit?)")
            }
            await BenchConnection.closeAll([publisher])
            let frame = frameBytes(room: room(options.rooms - 1), user: "bench-\(user)", payloadBytes: options.payloadBytes, position: last)
            let perEvent = acked == 0 ? 0 : Double(after - before) * 1024 / Double(acked)
            return HistoryResult(
                serverPid: pid, rooms: options.rooms, eventsPerRoom: options.events, acked: acked, payloadBytes: options.payloadBytes,
                frameBytes: frame, rssBeforeKib: before, rssAfterKib: after, bytesPerEvent: round2(perEvent),
                ratioToFrame: frame == 0 ? 0 : round2(perEvent / Double(frame)), cpu: usage)
        } catch {
            await BenchConnection.closeAll([publisher])
            throw error
        }
    }

    /// The `message.new` frame the server keeps for one of these messages: the chat handler's data
    /// (`room`, `from`, `content` of `payloadBytes`, a 13-digit `ts`) at `position`.
    static func frameBytes(room: String, user: String, payloadBytes: Int, position: RoomPosition?) -> Int {
        var data = ByteBuffer()
        data.writeString(#"{"room":"\#(room)","from":"\#(user)","content":""#)
        data.writeString(String(repeating: "x", count: max(payloadBytes, 22)))
        data.writeString(#"","ts":1700000000000}"#)
        let eventID = position.map { EventID(epoch: String(decoding: $0.epoch, as: UTF8.self), offset: $0.offset) }
        return Publication(room: room, event: "message.new", dataJSON: data).frame(at: eventID ?? EventID(epoch: "mx00000000a", offset: 1)).readableBytes
    }
}
