import Foundation
import Switchboard
import Testing
@testable import SwitchboardBench
@testable import SwitchboardCLI

/// `switchboard bench soak`: a short churn against a real `switchboard serve` (a child process,
/// so that its file descriptors are its own), and the soak's bookkeeping of positions.
@Suite("Bench soak")
struct BenchSoakTests {
    static let secret = "soak-secret-soak-secret-soak-secret-0123"

    @Test("soak: users churn (mid-frame drops, sends without waiting for the ack, half handshakes) and resume; no acked event lost, none sent twice, rooms empty and the server's descriptors back to idle")
    func shortSoak() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("soak-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try CLIProcess(
            ["serve", "--port", "0", "--jwt-secret", Self.secret, "--database", directory.appendingPathComponent("members.sqlite").path,
             "--rate-limits", "false", "--presence-grace", "200ms", "--log-level", "error"])
        defer { server.terminate() }
        let text = try await server.waitForOutput(matching: #"listening on ws://127\.0\.0\.1:(\d+)/ws"#)
        let port = try #require(Int(text))

        var options = BenchOptions()
        options.url = "ws://127.0.0.1:\(port)/ws"
        options.jwtSecret = Self.secret
        options.showProgress = false
        options.connectConcurrency = 16
        options.connections = 40
        options.rooms = 4
        options.rate = 4
        options.duration = .seconds(4)
        options.soakLifetime = .milliseconds(800)
        options.soakSettleLimit = .seconds(10)
        options.serverPID = server.pid
        let report = try await BenchRunner.run(.soak, options: options)
        guard case .soak(let result) = report.result else {
            Issue.record("expected a soak result, got \(report.result)")
            return
        }
        let table = report.table()
        #expect(result.pass, "\(table)")
        // The churn really churned, in every way it can.
        #expect(result.connections > 40, "\(table)")
        #expect(result.drops.abrupt > 0 && result.drops.midFrame > 0 && result.drops.afterSend > 0 && result.drops.graceful > 0, "\(table)")
        #expect(result.drops.halfHandshakes > 0, "\(table)")
        #expect(result.acked > 0 && result.errors == 0, "\(table)")
        #expect(result.received > 0)
        // Every user came back and saw everything acked.
        #expect(result.verified == 40 && result.notCaughtUp == 0, "\(table)")
        #expect(result.ackedLost == 0 && result.missingEvents == 0 && result.rawDuplicates == 0, "\(table)")
        #expect(result.notRecovered == 0 && result.epochChanges == 0)
        #expect(result.membersLeft == 0, "\(table)")
        let before = try #require(result.serverBefore)
        let peak = try #require(result.serverPeak)
        let after = try #require(result.serverAfter)
        // One socket per connection shows in /proc: the peak had many more than idle, and after
        // the churn the server holds what it held at idle.
        #expect(peak.sockets > before.sockets)
        #expect(after.sockets <= before.sockets, "\(table)")
        #expect(after.fds - after.sockets <= before.fds - before.sockets + ServerFootprint.otherDescriptorAllowance, "\(table)")
        #expect(before.rssKib > 0 && before.threads > 0)
        let object = try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any]
        #expect(object?["scenario"] as? String == "soak")
        #expect((object?["drops"] as? [String: Any])?["mid_frame"] as? Int == result.drops.midFrame)
    }

    @Test("footprint: every connection's socket must be closed; a few other descriptors opened on first use are allowed")
    func footprintComparison() {
        let idle = ServerFootprint(fds: 30, sockets: 2, threads: 8, rssKib: 50_000)
        #expect(ServerFootprint(fds: 30, sockets: 2, threads: 9, rssKib: 90_000).isBack(to: idle))
        #expect(ServerFootprint(fds: 38, sockets: 2, threads: 8, rssKib: 50_000).isBack(to: idle))
        #expect(!ServerFootprint(fds: 39, sockets: 2, threads: 8, rssKib: 50_000).isBack(to: idle))
        #expect(!ServerFootprint(fds: 31, sockets: 3, threads: 8, rssKib: 50_000).isBack(to: idle))
        let own = ServerFootprint.read(pid: getpid())
        #expect((own?.fds ?? 0) > 0 && (own?.threads ?? 0) > 0 && (own?.rssKib ?? 0) > 0)
    }

    @Test("soak options: --connections, --rate, --lifetime and --settle-limit reach the bench options, with the soak's defaults")
    func soakOptions() throws {
        let defaults = try BenchCommand.parse(["soak"]).benchOptions()
        #expect(defaults.connections == 1000)
        #expect(defaults.rate == 0.5)
        #expect(defaults.soakLifetime == .seconds(8))
        let options = try BenchCommand.parse(["soak", "--connections", "300", "--rate", "2", "--lifetime", "3s", "--settle-limit", "20s", "--rooms", "7"]).benchOptions()
        #expect(options.connections == 300 && options.rate == 2 && options.rooms == 7)
        #expect(options.soakLifetime == .seconds(3) && options.soakSettleLimit == .seconds(20))
        #expect(throws: (any Error).self) { try BenchCommand.parse(["soak", "--rate", "50"]) }
    }

    @Test("soak tracker: own acks count as seen in any order, replays above the resume position are not duplicates, a real duplicate is, and what never came is missing")
    func tracker() {
        let epoch = Array("e".utf8)
        func position(_ offset: UInt64) -> RoomPosition { RoomPosition(epoch: epoch, offset: offset) }
        var tracker = SoakTracker()
        func observe(_ offset: UInt64, epoch name: String = "e") {
            Array(name.utf8).withUnsafeBytes { tracker.observe(epoch: $0, offset: offset) }
        }
        tracker.joined(at: position(10))
        #expect(tracker.hasJoined && tracker.firstPosition == 10)
        observe(11)
        // 12 is the user's own: its ack comes after 13 arrived.
        observe(13)
        #expect(tracker.base == 11)
        tracker.ownAck(position(12))
        #expect(tracker.base == 13)
        observe(13)
        #expect(tracker.rawDuplicates == 1)
        #expect(tracker.firstDuplicate == "offset 13 after 13, room event #3 of a connection that joined at 10")
        // 14 never arrives; 15 does; then the connection drops and the user resumes from 13.
        observe(15)
        #expect(tracker.base == 13 && tracker.hasSeen(offset: 15) && !tracker.hasSeen(offset: 14))
        #expect(tracker.missing(through: 15) == 1)
        tracker.resumed()
        observe(14)
        // 15 again: seen before the hole, replayed by design, not a duplicate.
        observe(15)
        #expect(tracker.base == 15 && tracker.replayedAgain == 1 && tracker.rawDuplicates == 1)
        #expect(tracker.hasSeen(through: position(15)) && !tracker.hasSeen(through: position(16)))
        #expect(tracker.missing(through: 18) == 3)
        #expect(tracker.received == 6)
        observe(1, epoch: "f")
        #expect(tracker.epochChanges == 1)
    }
}
