import DashboardExampleApp
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Switchboard

/// The dashboard example's app on 127.0.0.1 with an ephemeral port, without the simulated
/// producer: the tests publish through the board themselves.
private struct DashboardTestServer: Sendable {
    let port: Int
    let switchboard: SwitchboardServer
    let board: MetricsBoard

    static func with(_ body: @Sendable (DashboardTestServer) async throws -> Void) async throws {
        let configuration = DashboardConfiguration(port: 0, jwtSecret: TestServer.secret, publishInterval: nil)
        let app = try await DashboardApp(configuration: configuration, logger: TestServers.defaultLogger)
        let (switchboard, board) = (app.switchboard, app.board)
        try await app.application(logger: TestServers.defaultLogger).test(.live) { client in
            guard let port = client.port else { throw TestClientError.connectFailed("no port") }
            try await body(DashboardTestServer(port: port, switchboard: switchboard, board: board))
        }
    }

    /// A viewer's connection, joined to the board's room: the join's ack and the snapshot.
    func viewer(_ name: String, since: String? = nil) async throws -> (client: TestWebSocketClient, ack: [String: JSONValue], refresh: [String: JSONValue]?) {
        let token = try await TokenMinter(hs256Secret: TestServer.secret).mint(subject: name)
        let client = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(token)", timeout: .seconds(20))
        let position = since.map { #","since":"\#($0)""# } ?? ""
        try await client.sendText(#"{"event":"room.join","data":{"room":"\#(DashboardApp.room)"\#(position)},"id":"join"}"#)
        let ack = try await client.next(event: "join", field: "id", timeout: .seconds(20))
        let refresh = since == nil ? try await client.next(event: "state.refresh", timeout: .seconds(20)) : nil
        return (client, ack, refresh)
    }

    /// Publishes samples `range` (values derived from the seq, to be checked).
    func publish(_ range: ClosedRange<Int>) async throws {
        for seq in range {
            let sample = try await board.publish(Self.values(seq))
            #expect(sample.seq == seq)
        }
    }

    /// Smooth-looking values for sample `seq`.
    static func values(_ seq: Int) -> [String: Double] {
        let x = Double(seq)
        return [
            "cpu": ((42 + 22 * sin(x / 9) + 7 * sin(x / 2.7)) * 10).rounded() / 10,
            "memory": (430 + 1.6 * x + 20 * sin(x / 13)).rounded(),
            "requests": (1500 + 420 * sin(x / 11) + 90 * cos(x / 3)).rounded(),
            "latency": ((48 + 14 * cos(x / 7) + 5 * sin(x / 2)) * 10).rounded() / 10,
        ]
    }
}

private extension JSONValue {
    var seq: Int? { self["seq"]?.numberValue.map { Int($0) } }
}

@Suite("Example: live dashboard", .serialized)
struct DashboardExampleTests {
    @Test func lateJoinerGetsTheCurrentValuesThenLiveUpdatesAndViewersCannotPublish() async throws {
        try await DashboardTestServer.with { server in
            try await server.publish(1...3)
            let viewer = try await server.viewer("viewer-late")
            #expect(viewer.ack["data"]?["recovered"]?.boolValue == true)
            // The snapshot: the current values (seq 3) and the samples before them.
            let snapshot = try #require(viewer.refresh?["data"])
            #expect(snapshot.seq == 3)
            #expect(snapshot["samples"]?.arrayValue?.compactMap(\.seq) == [1, 2, 3])
            #expect(snapshot["samples"]?.arrayValue?.last?["values"]?["cpu"]?.numberValue == DashboardTestServer.values(3)["cpu"])
            #expect(viewer.refresh?["eid"]?.stringValue == viewer.ack["data"]?["eid"]?.stringValue)

            try await server.publish(4...4)
            let live = try await viewer.client.next(event: "metrics.update")
            #expect(live["data"]?.seq == 4)
            let eid = try #require(live["eid"]?.stringValue)

            // Broadcast-only: a viewer's publish, typing and member list are forbidden, and so are other rooms.
            for (id, message) in [
                ("send", #"{"event":"message.send","data":{"room":"dashboard:metrics","content":"hi"},"id":"send"}"#),
                ("typing", #"{"event":"typing.start","data":{"room":"dashboard:metrics"},"id":"typing"}"#),
                ("members", #"{"event":"room.members","data":{"room":"dashboard:metrics"},"id":"members"}"#),
                ("other", #"{"event":"room.join","data":{"room":"lobby"},"id":"other"}"#),
            ] {
                try await viewer.client.sendText(message)
                let reply = try await viewer.client.next(event: id, field: "id")
                #expect(reply["event"]?.stringValue == "error", "\(id)")
                #expect(reply["data"]?["code"]?.stringValue == "forbidden", "\(id)")
            }
            await viewer.client.close()

            // A viewer that reconnects with its position gets what it missed replayed, in order.
            try await server.publish(5...6)
            let back = try await server.viewer("viewer-late", since: eid)
            #expect(back.ack["data"]?["recovered"]?.boolValue == true)
            #expect(try await back.client.next(event: "metrics.update")["data"]?.seq == 5)
            #expect(try await back.client.next(event: "metrics.update")["data"]?.seq == 6)
            await back.client.close()
        }
    }

    @Test func fiveHundredViewersGetEveryUpdateInOrder() async throws {
        let viewers = 500
        let updates = 20
        try await DashboardTestServer.with { server in
            try await server.publish(1...2)
            // Connected 50 at a time; each gets the snapshot of seq 2.
            var clients: [TestWebSocketClient] = []
            for batch in stride(from: 0, to: viewers, by: 50) {
                try await withThrowingTaskGroup(of: TestWebSocketClient.self) { group in
                    for index in batch..<min(batch + 50, viewers) {
                        group.addTask {
                            let viewer = try await server.viewer("viewer-\(index)")
                            try #require(viewer.refresh?["data"]?.seq == 2, "viewer \(index)'s snapshot")
                            return viewer.client
                        }
                    }
                    for try await client in group { clients.append(client) }
                }
            }
            #expect(await server.switchboard.connectionCount() == viewers)
            try await server.publish(3...(2 + updates))
            let received = try await withThrowingTaskGroup(of: [Int].self) { group in
                for client in clients {
                    group.addTask {
                        var seqs: [Int] = []
                        for _ in 0..<updates {
                            let update = try await client.next(event: "metrics.update", timeout: .seconds(30))
                            seqs.append(update["data"]?.seq ?? -1)
                        }
                        return seqs
                    }
                }
                var all: [[Int]] = []
                for try await seqs in group { all.append(seqs) }
                return all
            }
            let expected = Array(3...(2 + updates))
            #expect(received.count == viewers)
            #expect(received.filter { $0 != expected }.count == 0, "viewers that missed or reordered updates")
            await withTaskGroup(of: Void.self) { group in
                for client in clients { group.addTask { await client.close() } }
            }
        }
    }

    @Test(ExternalTool.browserAvailability) func browserViewerSeesTheValuesChange() async throws {
        if let missing = ExternalTool.browserMissing { throw ExternalToolError.missing(missing) }
        guard let python = ExternalTool.which("python3") else { throw ExternalToolError.missing("python3") }
        try await DashboardTestServer.with { server in
            // A board with history: the page draws it from the snapshot, then moves live.
            try await server.publish(1...100)
            let screenshot = try ExampleArtifacts.file("dashboard.png")
            let until = """
                const view = window.dashboard;
                if (!(view.updates >= 12)) return null;
                return {seqs: view.samples.map((sample) => sample.seq), updates: view.updates,
                        updated: document.querySelector('#updated').textContent,
                        state: document.querySelector('#connection').dataset.state,
                        cpuText: document.querySelector('[data-metric=cpu] .number').textContent,
                        cpu: view.samples.at(-1).values.cpu,
                        points: document.querySelector('[data-metric=cpu] polyline').getAttribute('points').split(' ').length};
                """
            async let browser = ExternalTool.run(
                python,
                [
                    ExternalTool.clientDirectory.appendingPathComponent("test/browser/driver.py").path, "http://127.0.0.1:\(server.port)/",
                    "--until", until, "--screenshot", screenshot.path, "--window-size", "1000,800", "--timeout", "30",
                ],
                timeout: .seconds(90)
            )
            // Live updates once the page has joined, paced like a producer; bounded in count.
            try await waitUntil("the page joined", timeout: .seconds(60)) { await server.switchboard.connectionCount() == 1 }
            let publisher = Task {
                // Pacing, not synchronisation: the page's condition decides when the test goes on.
                for seq in 101...400 where !Task.isCancelled {
                    try await server.publish(seq...seq)
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            let run = try await browser
            publisher.cancel()
            let value = try #require(ExampleArtifacts.lastJSONLine(of: run.output)?["value"]?.objectValue, "no result:\n\(run.output)")
            try #require(run.exitCode == 0, "\(run.output)")
            let seqs = value["seqs"]?.arrayValue?.compactMap { $0.numberValue.map { Int($0) } } ?? []
            let last = try #require(seqs.last)
            // 100 from the snapshot, then every live update once and in order.
            #expect(seqs == Array((last - seqs.count + 1)...last))
            #expect(last >= 112)
            #expect(value["state"]?.stringValue == "open")
            #expect(value["updated"]?.stringValue?.contains("update #\(last) ") == true)
            let cpu = try #require(value["cpu"]?.numberValue)
            #expect(cpu == DashboardTestServer.values(last)["cpu"])
            #expect(value["cpuText"]?.stringValue == String(format: "%.1f", cpu))
            #expect(value["points"]?.numberValue == Double(min(seqs.count, 120)))
        }
    }
}
