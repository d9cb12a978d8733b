import Foundation
import NIOCore
import Testing
@testable import Switchboard

@Suite("Rate limits: events per connection, handshakes per address")
struct RateLimitTests {
    /// A router whose `counter.bump` (text) and `file.bump` (binary) count the times they ran, so
    /// a test can tell a limited event was not handled.
    static func countingRouter(_ runs: TestLockedBox<Int>) -> EventRouter {
        var router = EventRouter.chat
        router.on("counter.bump", as: EmptyPayload.self) { _, _ in
            runs.withLock { $0 += 1 }
        }
        router.on("other.event", as: EmptyPayload.self) { _, _ in }
        router.onBinary("file.bump", as: EmptyPayload.self) { _, _, _ in
            runs.withLock { $0 += 1 }
            return ["ran": true]
        }
        return router
    }

    /// Limits for one event class, `counter.bump` (and `file.bump`) at `perSecond` with `burst`.
    static func configuration(perSecond: Double, burst: Int, closeAfter: RateLimit? = nil, other: RateLimit? = nil) -> SwitchboardConfiguration {
        var configuration = SwitchboardConfiguration()
        configuration.rateLimits = RateLimits(
            events: ["counter.bump": RateLimit(perSecond: perSecond, burst: burst), "file.bump": RateLimit(perSecond: perSecond, burst: burst)],
            otherEvents: other,
            closeAfterLimited: closeAfter,
            handshakesPerAddress: nil
        )
        return configuration
    }

    static func bump(_ client: TestWebSocketClient, id: String) async throws -> [String: JSONValue] {
        try await client.sendText(#"{"event":"counter.bump","id":"\#(id)"}"#)
        return try await client.next(event: id, field: "id")
    }

    @Test("past its burst an event gets rate_limited with retryAfter, and its handler does not run; it runs again once the bucket refills")
    func limitedEventIsNotHandled() async throws {
        let runs = TestLockedBox(0)
        let clock = TestClock()
        try await TestServers.with(configuration: Self.configuration(perSecond: 2, burst: 3), router: Self.countingRouter(runs), clock: clock) { server in
            let client = try await server.open("alice")
            for index in 0..<3 {
                #expect(try await Self.bump(client, id: "b\(index)")["event"]?.stringValue == "ack")
            }
            let limited = try await Self.bump(client, id: "b3")
            #expect(limited["event"]?.stringValue == "error")
            #expect(limited["data"]?["code"]?.stringValue == "rate_limited")
            // 2 per second: a token every 500 ms; the burst of 3 ran the bucket 1.5 s ahead.
            #expect(limited["data"]?["retryAfter"]?.numberValue == 500, "\(limited)")
            #expect(limited["data"]?["message"]?.stringValue?.contains("counter.bump") == true)
            #expect(runs.withLock { $0 } == 3)
            #expect(server.switchboard.rateLimitCounters == RateLimitCounters(eventsLimited: 1))

            // Not yet: the bucket refills by the server's clock, not by the wall clock.
            clock.advance(by: .milliseconds(499))
            #expect(try await Self.bump(client, id: "b3")["data"]?["retryAfter"]?.numberValue == 1)
            clock.advance(by: .milliseconds(1))
            // The same id again: a limited event's id was not remembered, so the retry runs.
            let retried = try await Self.bump(client, id: "b3")
            #expect(retried["event"]?.stringValue == "ack", "\(retried)")
            #expect(runs.withLock { $0 } == 4)
            #expect(server.switchboard.rateLimitCounters.eventsLimited == 2)
            await client.close()
        }
    }

    @Test("buckets are per connection and per event; presence.heartbeat is never limited")
    func bucketsArePerConnectionAndEvent() async throws {
        let runs = TestLockedBox(0)
        let clock = TestClock()
        let configuration = Self.configuration(perSecond: 1, burst: 1, other: RateLimit(perSecond: 1, burst: 2))
        try await TestServers.with(configuration: configuration, router: Self.countingRouter(runs), clock: clock) { server in
            let alice = try await server.open("alice")
            #expect(try await Self.bump(alice, id: "a1")["event"]?.stringValue == "ack")
            #expect(try await Self.bump(alice, id: "a2")["data"]?["code"]?.stringValue == "rate_limited")
            // Another connection of the same user has buckets of its own.
            let second = try await server.open("alice")
            #expect(try await Self.bump(second, id: "s1")["event"]?.stringValue == "ack")
            // Another event of the limited connection has a bucket of its own: the other-events
            // limit (the hello took one of its two tokens).
            try await alice.sendText(#"{"event":"other.event","id":"o1"}"#)
            #expect(try await alice.next(event: "o1", field: "id")["event"]?.stringValue == "ack")
            try await alice.sendText(#"{"event":"other.event","id":"o2"}"#)
            #expect(try await alice.next(event: "o2", field: "id")["data"]?["code"]?.stringValue == "rate_limited")
            for index in 0..<20 {
                try await alice.sendText(#"{"event":"presence.heartbeat","id":"h\#(index)"}"#)
                #expect(try await alice.next(event: "h\(index)", field: "id")["event"]?.stringValue == "ack")
            }
            #expect(runs.withLock { $0 } == 2)
            await alice.close()
            await second.close()
        }
    }

    @Test("messages are counted on arrival: a limited one is refused at once, even while an earlier message is still being handled")
    func limitedOnArrival() async throws {
        let runs = TestLockedBox(0)
        let gate = TestSignal()
        var router = Self.countingRouter(runs)
        router.on("slow.op", as: EmptyPayload.self) { _, _ in
            try await gate.wait("the test to open the gate")
        }
        try await TestServers.with(configuration: Self.configuration(perSecond: 1, burst: 1), router: router, clock: TestClock()) { server in
            let client = try await server.open("alice")
            #expect(try await Self.bump(client, id: "b0")["event"]?.stringValue == "ack")
            try await client.sendText(#"{"event":"slow.op","id":"s1"}"#)
            // Behind slow.op it would wait for its turn; refused, it does not wait.
            let refused = try await Self.bump(client, id: "b1")
            #expect(refused["data"]?["code"]?.stringValue == "rate_limited")
            #expect(!gate.hasFired)
            gate.fire()
            #expect(try await client.next(event: "s1", field: "id")["event"]?.stringValue == "ack")
            #expect(runs.withLock { $0 } == 1)
            await client.close()
        }
    }

    @Test("binary events take from their event's bucket too")
    func binaryEventsAreLimited() async throws {
        let runs = TestLockedBox(0)
        try await TestServers.with(configuration: Self.configuration(perSecond: 1, burst: 1), router: Self.countingRouter(runs), clock: TestClock()) { server in
            let client = try await server.open("alice")
            func send(_ id: String) async throws -> [String: JSONValue] {
                let header = Array(#"{"event":"file.bump","id":"\#(id)"}"#.utf8)
                var message: [UInt8] = withUnsafeBytes(of: UInt32(header.count).bigEndian) { Array($0) }
                message += header + [1, 2, 3]
                try await client.sendBinary(message)
                return try await client.next(event: id, field: "id")
            }
            #expect(try await send("f1")["event"]?.stringValue == "ack")
            let limited = try await send("f2")
            #expect(limited["data"]?["code"]?.stringValue == "rate_limited")
            #expect(limited["data"]?["retryAfter"]?.numberValue == 1000)
            #expect(runs.withLock { $0 } == 1)
            await client.close()
        }
    }

    @Test("sustained abuse: the limited event past closeAfterLimited closes the connection with 1008, counted and logged")
    func sustainedAbuseCloses() async throws {
        let runs = TestLockedBox(0)
        let logs = CapturedLogs()
        let configuration = Self.configuration(perSecond: 1, burst: 1, closeAfter: RateLimit(perSecond: 0.1, burst: 3))
        try await TestServers.with(configuration: configuration, router: Self.countingRouter(runs), clock: TestClock(), logger: logs.logger) { server in
            let client = try await server.open("mallory")
            #expect(try await Self.bump(client, id: "m0")["event"]?.stringValue == "ack")
            for index in 1...3 {
                #expect(try await Self.bump(client, id: "m\(index)")["data"]?["code"]?.stringValue == "rate_limited")
            }
            try await client.sendText(#"{"event":"counter.bump","id":"m4"}"#)
            let close = try await client.expectClose()
            #expect(close.code == 1008)
            #expect(close.reason == "rate limit exceeded")
            #expect(runs.withLock { $0 } == 1)
            #expect(server.switchboard.rateLimitCounters == RateLimitCounters(eventsLimited: 3, connectionsClosed: 1))
            try await server.waitForConnections(0)
            // One warning per kind per interval, however many were refused.
            let lines = logs.lines
            #expect(lines.filter { $0.hasPrefix("warning events rate-limited") }.count == 1, "\(lines)")
            #expect(lines.filter { $0.hasPrefix("debug event rate-limited") }.count == 3)
            #expect(lines.contains { $0.hasPrefix("warning connection closed for exceeding its rate limits") && $0.contains("user=mallory") })
        }
    }

    @Test("the default limits: message.send 20/s burst 40, then rate_limited")
    func defaultMessageSendLimit() async throws {
        let clock = TestClock()
        try await TestServers.with(clock: clock) { server in
            let client = try await server.open("alice")
            try await client.sendText(#"{"event":"room.join","data":{"room":"lobby"},"id":"j"}"#)
            _ = try await client.next(event: "j", field: "id")
            // Without waiting for each ack: a burst as a script would send it.
            for index in 0..<41 {
                try await client.sendText(#"{"event":"message.send","data":{"room":"lobby","content":"hi"},"id":"m\#(index)"}"#)
            }
            var acks = 0
            var limited: [String: JSONValue]?
            for _ in 0..<41 {
                let reply = try await client.nextJSON()
                if reply["event"]?.stringValue == "ack" { acks += 1 } else { limited = reply }
            }
            #expect(acks == 40)
            #expect(limited?["id"]?.stringValue == "m40")
            #expect(limited?["data"]?["code"]?.stringValue == "rate_limited")
            #expect(limited?["data"]?["retryAfter"]?.numberValue == 50)
            await client.close()
        }
    }

    // MARK: handshakes

    static func handshakeConfiguration(perSecond: Double, burst: Int) -> SwitchboardConfiguration {
        var configuration = SwitchboardConfiguration()
        configuration.rateLimits.handshakesPerAddress = RateLimit(perSecond: perSecond, burst: burst)
        configuration.rateLimits.exemptLoopback = false
        return configuration
    }

    @Test("a handshake flood from one address: the burst is verified, the rest get 429 rate_limited with Retry-After before their token is looked at")
    func handshakeFloodIsLimited() async throws {
        let clock = TestClock()
        let logs = CapturedLogs()
        try await TestServers.with(configuration: Self.handshakeConfiguration(perSecond: 5, burst: 5), clock: clock, logger: logs.logger) { server in
            // Bad tokens: a verified one gets 401, one refused before verification 429.
            let statuses = try await withThrowingTaskGroup(of: (Int, String?, String).self) { group in
                for _ in 0..<100 {
                    group.addTask {
                        // A generous bound: the whole test suite runs alongside on two cores.
                        let outcome = try await TestWebSocketClient.connect(port: server.port, path: "/ws?token=garbage", timeout: .seconds(30))
                        guard case .rejected(let response) = outcome else {
                            throw TestClientError.invalidHandshake("a bad token was upgraded")
                        }
                        return (response.status, response.header("Retry-After"), response.body)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0.0 == 401 }.count == 5)
            let limited = statuses.filter { $0.0 == 429 }
            #expect(limited.count == 95)
            #expect(limited.allSatisfy { $0.1 == "1" && $0.2.contains("\"rate_limited\"") }, "\(limited.first.map { "\($0)" } ?? "")")
            #expect(server.switchboard.rateLimitCounters.handshakesLimited == 95)
            // Visible in the logs without flooding them: one warning for the 95, and no line each.
            let lines = logs.lines
            #expect(lines.filter { $0.hasPrefix("warning handshakes rate-limited") }.count == 1, "\(lines.filter { $0.contains("rate") })")
            #expect(lines.filter { $0.contains("handshake rejected") }.count == 5)

            // The handshake check (a plain GET) counts too and says the same.
            try await server.http.execute(uri: "/ws", method: .get) { response in
                #expect(response.status.code == 429)
                #expect(response.headers[.init("Retry-After")!] == "1")
            }
            let token = try await server.token("alice")
            guard case .rejected(let stillLimited) = try await TestWebSocketClient.connect(port: server.port, path: "/ws?token=\(token)") else {
                Issue.record("a handshake past the limit was upgraded")
                return
            }
            #expect(stillLimited.status == 429)
            // A token every 200 ms: one second later five more handshakes are let through.
            clock.advance(by: .seconds(1))
            for _ in 0..<5 {
                let client = try await TestWebSocketClient.open(port: server.port, path: "/ws?token=\(token)")
                await client.close()
            }
            guard case .rejected(let sixth) = try await TestWebSocketClient.connect(port: server.port, path: "/ws?token=\(token)") else {
                Issue.record("the sixth handshake within a second was upgraded")
                return
            }
            #expect(sixth.status == 429)
        }
    }

    @Test("the handshake limit is per address: while 200 handshakes flood in from one address, two other addresses each get their own burst, and no more")
    func handshakeLimitIsPerAddressUnderAFlood() async throws {
        try await TestServers.with(configuration: Self.handshakeConfiguration(perSecond: 5, burst: 5), clock: TestClock()) { server in
            // The clock does not move: no bucket refills, so each address gets exactly its burst.
            enum Outcome: Sendable { case flood(Int), other(String, Int) }
            var tokens: [String] = []
            for index in 0..<10 { tokens.append(try await server.token("user-\(index)")) }
            let outcomes = try await withThrowingTaskGroup(of: Outcome.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        guard case .rejected(let response) = try await TestWebSocketClient.connect(
                            port: server.port, path: "/ws?token=garbage", timeout: .seconds(30))
                        else { throw TestClientError.invalidHandshake("a bad token was upgraded") }
                        return .flood(response.status)
                    }
                }
                // Valid tokens from 127.0.0.2 and 127.0.0.3, in the middle of the flood.
                for (index, token) in tokens.enumerated() {
                    let address = index < 5 ? "127.0.0.2" : "127.0.0.3"
                    group.addTask {
                        switch try await TestWebSocketClient.connect(port: server.port, path: "/ws?token=\(token)", timeout: .seconds(30), from: address) {
                        case .upgraded(let client):
                            await client.close()
                            return .other(address, 101)
                        case .rejected(let response):
                            return .other(address, response.status)
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            var flood: [Int: Int] = [:]
            var others: [String: [Int]] = [:]
            for outcome in outcomes {
                switch outcome {
                case .flood(let status): flood[status, default: 0] += 1
                case .other(let address, let status): others[address, default: []].append(status)
                }
            }
            #expect(flood == [401: 5, 429: 195])
            #expect(others["127.0.0.2"] == [101, 101, 101, 101, 101] && others["127.0.0.3"] == [101, 101, 101, 101, 101], "\(others)")
            // Their burst is spent now: a sixth from each is refused.
            for address in ["127.0.0.2", "127.0.0.3"] {
                guard case .rejected(let sixth) = try await TestWebSocketClient.connect(port: server.port, path: "/ws?token=\(tokens[0])", from: address) else {
                    Issue.record("a sixth handshake from \(address) was upgraded")
                    return
                }
                #expect(sixth.status == 429)
            }
            #expect(server.switchboard.rateLimitCounters.handshakesLimited == 197)
        }
    }

    @Test("loopback is exempt from the handshake limit by default; rate limits off lets everything through")
    func loopbackIsExemptByDefault() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.rateLimits.handshakesPerAddress = RateLimit(perSecond: 1, burst: 1)
        try await TestServers.with(configuration: configuration, clock: TestClock()) { server in
            for _ in 0..<5 {
                guard case .rejected(let response) = try await TestWebSocketClient.connect(port: server.port, path: "/ws?token=garbage") else { return }
                #expect(response.status == 401)
            }
            #expect(server.switchboard.rateLimitCounters.handshakesLimited == 0)
        }
        configuration.rateLimits = .off
        configuration.rateLimits.exemptLoopback = false
        let runs = TestLockedBox(0)
        try await TestServers.with(configuration: configuration, router: Self.countingRouter(runs), clock: TestClock()) { server in
            for round in 0..<5 {
                let client = try await server.open("alice")
                // Ids unique per user: a repeated one would be answered from the idempotency store.
                for index in 0..<100 {
                    try await client.sendText(#"{"event":"counter.bump","id":"c\#(round)-\#(index)"}"#)
                }
                _ = try await client.next(event: "c\(round)-99", field: "id")
                await client.close()
            }
            #expect(runs.withLock { $0 } == 500)
            #expect(server.switchboard.rateLimitCounters == RateLimitCounters())
        }
    }
}
