import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import Switchboard
import SwitchboardHummingbird

/// `/metrics`: the per-loop counters, added up on scrape and exported in Prometheus' text format.
@Suite("Metrics: /metrics in Prometheus text")
struct MetricsTests {
    static func scrape(_ server: TestServer) async throws -> PrometheusText {
        let response = try await server.http.execute(uri: "/metrics", method: .get)
        #expect(response.status == .ok)
        #expect(response.headers[.contentType] == SwitchboardPrometheus.contentType)
        return PrometheusText(text: String(buffer: response.body))
    }

    static let routes: @Sendable (Router<BasicRequestContext>, SwitchboardServer) -> Void = { router, switchboard in
        router.addSwitchboardMetrics(switchboard)
    }

    @Test("counts handshakes by outcome, connections, messages in and out, deliveries, bytes, close codes and handler latency; a second scrape adds nothing twice")
    func countsTheLifecycleAndTheHotPath() async throws {
        try await TestServers.with(configuration: .unlimited, routes: Self.routes) { server in
            let alice = try await server.open("alice")
            let bob = try await server.open("bob")
            // A refused handshake: counted by its code.
            await #expect(throws: (any Error).self) {
                _ = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=not-a-token")
            }
            _ = try await RoomTests.join(alice, "lobby")
            _ = try await RoomTests.join(bob, "lobby")
            for index in 0..<3 { _ = try await ResumeTests.send(alice, "lobby", "m\(index)") }
            for _ in 0..<3 { _ = try await bob.next(event: "message.new") }

            let first = try await Self.scrape(server)
            #expect(first.value(#"switchboard_handshakes_total{outcome="accepted"}"#) == 2, "\(first.text)")
            #expect(first.value(#"switchboard_handshakes_total{outcome="invalid_token"}"#) == 1, "\(first.text)")
            #expect(first.value("switchboard_connections") == 2)
            #expect(first.value("switchboard_connections_opened_total") == 2)
            // hello and join for each, and alice's three sends.
            #expect(first.value("switchboard_messages_in_total") == 7)
            #expect(first.value("switchboard_handler_duration_seconds_count") == 7)
            // Bob got alice's three messages; alice got bob's presence.join.
            #expect(first.value("switchboard_deliveries_total") == 4)
            let out = try #require(first.value("switchboard_messages_out_total"))
            #expect(out >= 11, "7 replies and 4 events at least: \(out)")
            #expect(try #require(first.value("switchboard_bytes_out_total")) > out * 20)
            #expect(first.value("switchboard_rooms") == 1)
            #expect(first.typed["switchboard_handler_duration_seconds"] == "histogram")
            #expect(first.typed["switchboard_deliveries_total"] == "counter")

            await bob.close()
            try await server.waitForConnections(1)
            let second = try await Self.scrape(server)
            #expect(second.value(#"switchboard_closes_total{code="1000"}"#) == 1, "\(second.text)")
            #expect(second.value("switchboard_connections") == 1)
            // Reported once: the second scrape does not add the first one's counts again.
            #expect(second.value("switchboard_messages_in_total") == 7)
            #expect(second.value(#"switchboard_handshakes_total{outcome="accepted"}"#) == 2)
            #expect(second.value("switchboard_handler_duration_seconds_count") == 7)
            await alice.close()
        }
    }

    @Test("replayed events and state.refresh are counted")
    func countsReplaysAndRefreshes() async throws {
        var configuration = SwitchboardConfiguration.unlimited
        configuration.history.maxReplay = 2
        try await TestServers.with(configuration: configuration, routes: Self.routes) { server in
            let alice = try await server.open("alice")
            let start = try await ResumeTests.joinPosition(alice, "lobby")
            var last = start
            for index in 0..<3 { last = try await ResumeTests.send(alice, "lobby", "m\(index)") }
            // Two behind: replayed. Three behind: more than the replay limit, so state.refresh.
            let resumed = try await server.openQuiet("bob")
            let ack = try await Resume.hello(resumed, ["lobby": EventID(epoch: last.epoch, offset: last.offset - 2).description])
            #expect(Resume.outcome(ack, "lobby")?["recovered"]?.boolValue == true, "\(ack)")
            let refreshed = try await server.openQuiet("carol")
            let refreshAck = try await Resume.hello(refreshed, ["lobby": start.description])
            #expect(Resume.outcome(refreshAck, "lobby")?["recovered"]?.boolValue == false, "\(refreshAck)")
            let text = try await Self.scrape(server)
            #expect(text.value("switchboard_replayed_events_total") == 2, "\(text.text)")
            #expect(text.value("switchboard_refreshes_total") == 1, "\(text.text)")
            for client in [alice, resumed, refreshed] { await client.close() }
        }
    }

    @Test("the snapshot adds up every event loop's counters")
    func snapshotAddsUpLoops() async throws {
        try await TestServers.with(configuration: .unlimited) { server in
            var clients: [TestWebSocketClient] = []
            for index in 0..<6 { clients.append(try await server.open("user\(index)")) }
            let snapshot = await server.switchboard.metricsSnapshot()
            #expect(snapshot.connections == 6)
            #expect(snapshot.loops.connectionsOpened == 6)
            #expect(snapshot.loops.messagesIn == 6)
            #expect(snapshot.handshakes["accepted"] == 6)
            for client in clients { await client.close() }
        }
    }
}
