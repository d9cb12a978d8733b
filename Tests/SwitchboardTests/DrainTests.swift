import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle
import Testing
@testable import Switchboard
import SwitchboardHummingbird

/// `SwitchboardServer.drain()` in process, on the test's clock: handshakes refused with 503
/// `draining`, connections closed with 1012 spread over the window, an in-flight handler's reply
/// before its connection's Close, and the drain timeout.
@Suite("Graceful drain")
struct DrainTests {
    static func configuration(window: Duration, timeout: Duration = .seconds(60)) -> SwitchboardConfiguration {
        var configuration = SwitchboardConfiguration()
        configuration.drainWindow = window
        configuration.drainTimeout = timeout
        configuration.maxConnectionsPerUser = 100
        return configuration
    }

    /// Whether every hub has run the drain's last step.
    static func lastStepRan(_ switchboard: SwitchboardServer) async throws -> Bool {
        for hub in switchboard.allHubs where try await !hub.eventLoop.submit({ hub.drainProgress?.final == true }).get() {
            return false
        }
        return true
    }

    /// Waits, bounded, for the drain to return.
    static func end(of drain: Task<Void, Never>, timeout: Duration = .seconds(15)) async throws {
        let done = TestSignal()
        Task {
            await drain.value
            done.fire()
        }
        try await done.wait("the drain to end", timeout: timeout)
    }

    @Test("a handshake during the drain gets 503 draining, and so does the plain GET check")
    func handshakeDuringDrain() async throws {
        try await TestServers.with(configuration: Self.configuration(window: .seconds(1))) { server in
            let before = try await server.open("alice")
            #expect(!server.switchboard.isDraining)
            let drain = server.switchboard.startDrain()
            #expect(server.switchboard.isDraining)

            let token = try await server.token("bob")
            guard case .rejected(let response) = try await TestWebSocketClient.connect(port: server.port, path: "/ws?token=\(token)") else {
                Issue.record("a handshake was upgraded during the drain")
                return
            }
            #expect(response.status == 503)
            #expect(response.body.contains(#""code":"draining""#), "\(response.body)")
            let check = try await RawTCPClient.request(port: server.port, text: "GET /ws?token=\(token) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(check.response.hasPrefix("HTTP/1.1 503"), "\(check.response)")
            #expect(check.response.contains("draining"))

            #expect(try await before.expectClose(timeout: .seconds(10)).code == CloseCode.serviceRestart)
            try await Self.end(of: drain)
        }
    }

    @Test("connections are closed with 1012 spread evenly over the window, none before its slot")
    func closesAreSpreadOverTheWindow() async throws {
        let clock = TestClock()
        let window = Duration.seconds(10)
        try await TestServers.with(configuration: Self.configuration(window: window), clock: clock) { server in
            let count = 20
            var opened: [TestWebSocketClient] = []
            for index in 0..<count { opened.append(try await server.open("user\(index)")) }
            let clients = opened
            // Each loop closes its share of its own connections at each step.
            var counts: [Int] = []
            for hub in server.switchboard.allHubs { counts.append(try await hub.eventLoop.submit { hub.count }.get()) }
            let perLoop = counts
            #expect(perLoop.reduce(0, +) == count)
            let steps = SwitchboardServer.drainSteps(over: window)
            #expect(steps == 100)
            func due(atStep step: Int) -> Int { perLoop.map { ($0 * step + steps - 1) / steps }.reduce(0, +) }

            let closes = TestLockedBox<[UInt16?]>([])
            let readers = clients.map { client in
                Task {
                    let code = try? await client.expectClose(timeout: .seconds(60)).code
                    closes.withLock { $0.append(code) }
                }
            }
            let drain = server.switchboard.startDrain()
            for step in [25, 50, 75] {
                clock.advance(by: window * step / steps - clock.now.offset)
                try await waitUntil("\(due(atStep: step)) closes at step \(step), have \(closes.withLock { $0.count })") {
                    closes.withLock { $0.count } == due(atStep: step)
                }
                // About that share of the connections, give or take one per loop for rounding up.
                #expect(due(atStep: step) >= count * step / steps)
                #expect(due(atStep: step) < count * step / steps + perLoop.count + 1)
            }
            #expect(closes.withLock { $0.count } == due(atStep: 75), "nothing closed before its slot")
            clock.advance(by: window - clock.now.offset)
            try await waitUntil("every connection closed") { closes.withLock { $0.count } == count }
            for reader in readers { await reader.value }
            #expect(closes.withLock { $0 }.allSatisfy { $0 == CloseCode.serviceRestart }, "\(closes.withLock { $0 })")
            // Every client answered: the drain is over before its timeout.
            try await Self.end(of: drain)
            try await server.waitForConnections(0)
        }
    }

    @Test("a message being handled when the drain begins gets its ack before its connection's 1012")
    func inFlightHandlerFinishesFirst() async throws {
        let started = TestSignal()
        let release = TestSignal()
        var router = EventRouter.chat
        router.on("slow.op", as: EmptyPayload.self) { _, _ in
            started.fire()
            try await release.wait("the test to release the handler", timeout: .seconds(20))
            return ["done": true]
        }
        let clock = TestClock()
        try await TestServers.with(configuration: Self.configuration(window: .zero), router: router, clock: clock) { server in
            let idle = try await server.open("bob")
            let alice = try await server.open("alice")
            try await alice.sendText(#"{"event":"slow.op","id":"s1"}"#)
            try await started.wait("the handler to start")

            let drain = server.switchboard.startDrain()
            // The idle connection is closed at once; alice's waits for its handler.
            #expect(try await idle.expectClose(timeout: .seconds(10)).code == CloseCode.serviceRestart)
            try await waitUntil("the drain's last step") { try await Self.lastStepRan(server.switchboard) }
            #expect(await server.switchboard.connectionCount() == 1)
            release.fire()

            let reply = try await alice.next(event: "s1", field: "id")
            #expect(reply["event"]?.stringValue == "ack", "\(reply)")
            #expect(reply["data"]?["done"]?.boolValue == true)
            #expect(try await alice.expectClose(timeout: .seconds(10)).code == CloseCode.serviceRestart)
            try await Self.end(of: drain)
        }
    }

    @Test("message.sends waiting for the broker when the drain begins are acked before their connection's 1012")
    func pipelinedSendsAreAckedFirst() async throws {
        let broker = HeldPublishBroker()
        let clock = TestClock()
        try await TestServers.with(configuration: Self.configuration(window: .zero), broker: broker, clock: clock) { server in
            let bob = try await server.open("bob")
            _ = try await RoomTests.join(bob, "lobby")
            let alice = try await server.open("alice")
            _ = try await RoomTests.join(alice, "lobby")
            try await PipeliningTests.send(alice, "m1", id: "m1")
            try await PipeliningTests.send(alice, "m2", id: "m2")
            try await waitUntil("two publishes under way") { broker.published.withLock { $0 } == 2 }

            let drain = server.switchboard.startDrain()
            // Bob got both events before his 1012; alice's connection waits for its acks.
            #expect(try await ClientTesting.contents(bob, through: "m2") == ["m1", "m2"])
            #expect(try await bob.expectClose(timeout: .seconds(10)).code == CloseCode.serviceRestart)
            try await waitUntil("the drain's last step") { try await Self.lastStepRan(server.switchboard) }
            #expect(await server.switchboard.connectionCount() == 1)
            broker.release.fire()

            for id in ["m1", "m2"] {
                let reply = try await alice.next(event: id, field: "id")
                #expect(reply["event"]?.stringValue == "ack", "\(reply)")
            }
            #expect(try await alice.expectClose(timeout: .seconds(10)).code == CloseCode.serviceRestart)
            try await Self.end(of: drain)
        }
    }

    @Test("at the drain timeout the connections still open are dropped and the drain returns")
    func timeoutDropsTheRest() async throws {
        let started = TestSignal()
        let release = TestSignal()
        var router = EventRouter.chat
        router.on("stuck.op", as: EmptyPayload.self) { _, _ in
            started.fire()
            try await release.wait("the end of the test", timeout: .seconds(30))
            return ["done": true]
        }
        let clock = TestClock()
        try await TestServers.with(configuration: Self.configuration(window: .seconds(1), timeout: .seconds(3)), router: router, clock: clock) { server in
            defer { release.fire() }
            let alice = try await server.open("alice")
            try await alice.sendText(#"{"event":"stuck.op","id":"s1"}"#)
            try await started.wait("the handler to start")
            let drain = server.switchboard.startDrain()
            let finished = TestSignal()
            Task {
                await drain.value
                finished.fire()
            }
            clock.advance(by: .seconds(1))
            try await waitUntil("the drain's last step") { try await Self.lastStepRan(server.switchboard) }
            #expect(!finished.hasFired, "the drain waits for the busy connection")
            clock.advance(by: .seconds(2))
            try await finished.wait("the drain to time out")
            try await server.waitForConnections(0)
            #expect(try await alice.expectClose(timeout: .seconds(5)).code == CloseCode.serviceRestart)
        }
    }

    @Test("a Hummingbird app's graceful shutdown drains the server: its connections get 1012, and the app stops once they are gone")
    func appShutdownDrains() async throws {
        let verifier = try await TokenVerifier(keys: [.hmacSecret(TestServer.secret)])
        let switchboard = SwitchboardServer(
            configuration: Self.configuration(window: .milliseconds(200), timeout: .seconds(5)), authentication: .jwt(verifier), router: .chat,
            logger: TestServers.defaultLogger)
        let listening = TestLockedBox<Int?>(nil)
        let app = Application(
            router: Router(),
            server: .switchboard(switchboard),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in listening.withLock { $0 = channel.localAddress?.port } },
            logger: TestServers.defaultLogger
        )
        let group = ServiceGroup(configuration: .init(services: [app], logger: TestServers.defaultLogger))
        let running = Task { try await group.run() }
        defer { running.cancel() }
        try await waitUntil("the app listens") { listening.withLock { $0 } != nil }
        let port = try #require(listening.withLock { $0 })
        let token = try await TokenMinter(hs256Secret: TestServer.secret).mint(subject: "alice", ttl: .seconds(600))
        let alice = try await TestWebSocketClient.open(port: port, path: "/ws?token=\(token)")
        _ = try await TestServer.hello(alice)

        await group.triggerGracefulShutdown()
        #expect(try await alice.expectClose(timeout: .seconds(10)).code == CloseCode.serviceRestart)
        #expect(switchboard.isDraining)
        try await ClientTesting.value(of: running, timeout: .seconds(10))
    }

    @Test("the drain steps: one for a window of zero, one per 50 ms, at most 100")
    func drainSteps() {
        #expect(SwitchboardServer.drainSteps(over: .zero) == 1)
        #expect(SwitchboardServer.drainSteps(over: .milliseconds(10)) == 1)
        #expect(SwitchboardServer.drainSteps(over: .milliseconds(120)) == 3)
        #expect(SwitchboardServer.drainSteps(over: .seconds(5)) == 100)
        #expect(SwitchboardServer.drainSteps(over: .seconds(3600)) == 100)
    }
}
