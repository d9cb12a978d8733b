import Foundation
import NIOCore
@testable import Switchboard
import Testing
@testable import SwitchboardBench
@testable import SwitchboardCLI

/// Correctness of `switchboard bench` against a real server (not performance: no figure here is
/// compared with a threshold other than "everything arrived").
@Suite("Bench tool")
struct BenchToolTests {
    static func options(port: Int) -> BenchOptions {
        var options = BenchOptions()
        options.url = "ws://127.0.0.1:\(port)/ws"
        options.jwtSecret = TestServer.secret
        options.showProgress = false
        options.connectConcurrency = 16
        return options
    }

    @Test("fanout with --compression against a compressing server: the subscribers' messages arrive compressed and are all read, latency included")
    func fanoutWithCompression() async throws {
        var configuration = SwitchboardConfiguration.unlimited
        configuration.compression = CompressionConfiguration()
        try await TestServers.with(configuration: configuration) { server in
            var options = Self.options(port: server.port)
            options.subscribers = 10
            options.rate = 20
            options.duration = .seconds(1)
            options.payloadBytes = 1000
            options.compression = true
            let report = try await BenchRunner.run(.fanout, options: options)
            guard case .fanout(let result) = report.result else {
                Issue.record("expected a fanout result, got \(report.result)")
                return
            }
            let step = result.step
            #expect(step.sent > 0)
            #expect(step.delivered == step.expected)
            #expect(step.latency.count == step.delivered, "every delivery's timestamp was read from the inflated message")
            #expect(step.errors == 0)
            #expect(await CompressionTests.framesCompressed(server.switchboard) >= step.sent)
        }
    }

    @Test("fanout: every message reaches every subscriber, with one latency sample per delivery")
    func fanoutDeliversEverything() async throws {
        try await TestServers.with(configuration: .unlimited) { server in
            var options = Self.options(port: server.port)
            options.subscribers = 20
            options.rate = 20
            options.duration = .seconds(1)
            options.serverPID = getpid()
            let report = try await BenchRunner.run(.fanout, options: options)
            guard case .fanout(let result) = report.result else {
                Issue.record("expected a fanout result, got \(report.result)")
                return
            }
            #expect(result.connect.connected == 21)
            #expect(result.connect.failed == 0)
            let step = result.step
            // How many the publisher sent, and how fast they arrived, depend on the machine: that
            // is the benchmark's to measure. Here every message sent must arrive, once each.
            #expect(step.sent > 0)
            #expect(step.subscribers == 20)
            #expect(step.expected == step.sent * 20)
            #expect(step.delivered == step.expected)
            #expect(step.latency.count == step.delivered)
            #expect(step.latency.p50Ms <= step.latency.p99Ms && step.latency.p99Ms <= step.latency.maxMs)
            #expect(step.errors == 0)
            #expect(step.cpu.generatorCPUPct > 0)
            #expect(step.cpu.serverCPUPct != nil)

            // The JSON is one object with the result's fields beside the common ones.
            let object = try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any]
            #expect(object?["scenario"] as? String == "fanout")
            let stepObject = object?["step"] as? [String: Any]
            #expect(stepObject?["delivered"] as? Int == step.delivered)
            #expect((stepObject?["cpu"] as? [String: Any])?["generator_bound"] is Bool)
            #expect(report.table().contains("deliveries/s"))
        }
    }

    @Test("rtt: a closed loop of message.send → ack gets acks and no errors")
    func roundTrips() async throws {
        try await TestServers.with(configuration: .unlimited) { server in
            var options = Self.options(port: server.port)
            options.clients = 4
            options.duration = .seconds(1)
            let report = try await BenchRunner.run(.rtt, options: options)
            guard case .rtt(let result) = report.result else {
                Issue.record("expected an rtt result, got \(report.result)")
                return
            }
            #expect(result.clients == 4)
            #expect(result.acks > 0)
            #expect(result.errors == 0)
            #expect(result.rtt.count == result.acks)
            #expect(result.acksPerS > 0)
        }
    }

    @Test("resume: after the storm every missed event reaches every subscriber once; the lone client gets all it missed")
    func resumeDeliversEverythingOnce() async throws {
        try await TestServers.with(configuration: .unlimited) { server in
            var options = Self.options(port: server.port)
            options.subscribers = 20
            options.events = 10
            options.replayEvents = 50
            options.serverPID = getpid()
            let report = try await BenchRunner.run(.resume, options: options)
            guard case .resume(let result) = report.result else {
                Issue.record("expected a resume result, got \(report.result)")
                return
            }
            #expect(result.connect.connected == 21)
            #expect(result.connect.failed == 0)
            let storm = result.storm
            #expect(storm.subscribers == 20)
            #expect(storm.publisherAcks == 10)
            #expect(storm.publisherErrors == 0)
            #expect(storm.reconnect.connected == 20)
            #expect(storm.reconnect.failed == 0, "\(storm.firstError ?? "")")
            #expect(storm.expected == 10 * 20)
            #expect(storm.delivered == storm.expected)
            #expect(storm.duplicates == 0)
            #expect(storm.gaps == 0)
            #expect(storm.notRecovered == 0)
            #expect(storm.notCaughtUp == 0)
            // One catch-up time per subscriber; how long they are is the benchmark's to measure.
            #expect(storm.catchUp.count == 20)
            #expect(storm.pass)

            let replay = result.replay
            #expect(replay.events == 50)
            #expect(replay.received == 50)
            #expect(replay.duplicates == 0)
            #expect(replay.gaps == 0)
            #expect(replay.recovered)
            #expect(replay.replayMs != nil)
            #expect(replay.complete)

            let object = try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any]
            #expect(object?["scenario"] as? String == "resume")
            let stormObject = object?["storm"] as? [String: Any]
            #expect(stormObject?["delivered"] as? Int == storm.delivered)
            #expect(stormObject?["not_recovered"] as? Int == 0)
            #expect((object?["replay"] as? [String: Any])?["complete"] as? Bool == true)
            #expect(report.table().contains("duplicates / gaps"))
            // The bench closes every connection before returning.
            try await server.waitForConnections(0)
        }
    }

    @Test("resume: a server that cannot replay that far is reported as not recovered, not as delivered")
    func resumeNotRecovered() async throws {
        var configuration = SwitchboardConfiguration.unlimited
        configuration.history = HistoryConfiguration(maxReplay: 5)
        try await TestServers.with(configuration: configuration) { server in
            var options = Self.options(port: server.port)
            options.subscribers = 20
            options.events = 10
            options.replayEvents = 50
            options.catchUpTimeout = .seconds(5)
            let report = try await BenchRunner.run(.resume, options: options)
            guard case .resume(let result) = report.result else {
                Issue.record("expected a resume result, got \(report.result)")
                return
            }
            // Every subscriber missed more than 5 events: state.refresh instead of a replay.
            #expect(result.storm.notRecovered == 20)
            #expect(result.storm.delivered == 0)
            #expect(!result.storm.pass)
            #expect(!result.replay.recovered)
            #expect(result.replay.received == 0)
            #expect(!result.replay.complete)
            #expect(report.table().contains("FAIL"))
        }
    }

    @Test("resume options: --events and --replay-events reach the bench options")
    func resumeOptions() throws {
        let command = try BenchCommand.parse(["resume", "--subscribers", "30", "--events", "7", "--replay-events", "70"])
        let options = command.benchOptions()
        #expect(options.subscribers == 30)
        #expect(options.events == 7)
        #expect(options.replayEvents == 70)
        #expect(throws: (any Error).self) { try BenchCommand.parse(["resume", "--events", "0"]) }
    }

    @Test("positions: eid is scanned in place; duplicates, gaps and a new epoch are counted")
    func positionTracking() throws {
        func eventID(_ text: String) -> (epoch: String, offset: UInt64)? {
            Array(text.utf8).withUnsafeBytes { bytes in
                MessageScanner.eventID(in: bytes).map { (String(decoding: bytes[$0.epoch], as: UTF8.self), $0.offset) }
            }
        }
        let event = eventID(#"{"event":"message.new","room":"r1","eid":"lq2x8kf3a:42","data":{"room":"r1","content":"x"}}"#)
        #expect(event?.epoch == "lq2x8kf3a" && event?.offset == 42)
        let ack = eventID(#"{"event":"ack","id":"m1","data":{"eid":"e1:7","ts":1}}"#)
        #expect(ack?.epoch == "e1" && ack?.offset == 7)
        #expect(eventID(#"{"event":"typing.start","room":"r1","data":{"room":"r1"}}"#) == nil)
        #expect(eventID(#"{"event":"x","eid":":5"}"#) == nil)
        #expect(eventID(#"{"event":"x","eid":"e:"}"#) == nil)
        #expect(eventID(#"{"event":"x","eid":"e:5x"}"#) == nil)
        Array(#"{"event":"presence.join","room":"r1","eid":"e:1"}"#.utf8).withUnsafeBytes { bytes in
            #expect(MessageScanner.isRoom(Array(#"r1""#.utf8), in: bytes))
            #expect(!MessageScanner.isRoom(Array(#"r"#.utf8) + [UInt8(ascii: "\"")], in: bytes))
        }
        func kind(_ text: String) -> MessageScanner.Kind {
            Array(text.utf8).withUnsafeBytes { MessageScanner.classify($0) }
        }
        #expect(kind(#"{"event":"state.refresh","room":"r1","eid":"e:9","data":{"events":[{"event":"message.new"}]}}"#) == .refresh)
        #expect(kind(#"{"room":"r1","event":"state.refresh","data":{"events":[{"event":"message.new"}]}}"#) == .refresh)

        var tracker = PositionTracker()
        func observe(_ epoch: String, _ offset: UInt64, message: Bool = true) {
            Array(epoch.utf8).withUnsafeBytes { tracker.observe(epoch: $0, offset: offset, isMessage: message) }
        }
        tracker.start(at: RoomPosition(epoch: Array("e".utf8), offset: 5))
        observe("e", 6)
        observe("e", 7, message: false)
        observe("e", 7)
        observe("e", 9)
        // A duplicate message is still a message received: delivered and duplicates are reported side by side.
        #expect(tracker.duplicates == 1 && tracker.gaps == 1 && tracker.messages == 3)
        #expect(tracker.position == RoomPosition(epoch: Array("e".utf8), offset: 9))
        #expect(tracker.position?.description == "e:9")
        #expect(tracker.hasReached(RoomPosition(epoch: Array("e".utf8), offset: 9)))
        #expect(!tracker.hasReached(RoomPosition(epoch: Array("f".utf8), offset: 1)))
        observe("f", 1)
        #expect(tracker.gaps == 2)
        let resumed = PositionTracker(resuming: tracker)
        #expect(resumed.messages == 0 && resumed.gaps == 2 && resumed.duplicates == 1 && resumed.position == tracker.position)
    }

    @Test("idle: connections joined, resident memory read before and after")
    func idleMemory() async throws {
        try await TestServers.with(configuration: .unlimited) { server in
            var options = Self.options(port: server.port)
            options.connections = 50
            options.serverPID = getpid()
            options.settle = .milliseconds(100)
            let report = try await BenchRunner.run(.idle, options: options)
            guard case .idle(let result) = report.result else {
                Issue.record("expected an idle result, got \(report.result)")
                return
            }
            #expect(result.connect.connected == 50)
            #expect(result.aliveAtMeasurement == 50)
            #expect(result.rssBeforeKib > 0)
            #expect(result.rssAfterKib > 0)
            // The bench closes every connection before returning.
            try await server.waitForConnections(0)
        }
    }

    @Test("history: every event acked and kept; the frame size it reports is the size the server keeps")
    func historyMemory() async throws {
        try await TestServers.with(configuration: .unlimited) { server in
            var options = Self.options(port: server.port)
            options.rooms = 3
            options.events = 20
            options.serverPID = getpid()
            options.settle = .milliseconds(50)
            let report = try await BenchRunner.run(.history, options: options)
            guard case .history(let result) = report.result else {
                Issue.record("expected a history result, got \(report.result)")
                return
            }
            #expect(result.acked == 60)
            #expect(result.rssBeforeKib > 0 && result.rssAfterKib > 0)
            let broker = try #require(server.switchboard.rooms.broker as? InMemoryBroker)
            for index in 0..<3 {
                // The first message of each room, sent before the measurement, and the 20.
                #expect(broker.latestNow(ScenarioHistory.room(index), limit: 100).count == 21)
            }
            let kept = try #require(broker.latestNow(ScenarioHistory.room(2), limit: 1).first)
            #expect(result.frameBytes == kept.frame.readableBytes)
            try await server.waitForConnections(0)
        }
    }

    @Test("connect: handshakes complete and are timed")
    func handshakes() async throws {
        try await TestServers.with(configuration: .unlimited) { server in
            var options = Self.options(port: server.port)
            options.clients = 2
            options.duration = .milliseconds(500)
            options.connections = 20
            let report = try await BenchRunner.run(.connect, options: options)
            guard case .connect(let result) = report.result else {
                Issue.record("expected a connect result, got \(report.result)")
                return
            }
            #expect(result.handshakes > 0)
            #expect(result.handshakes <= 20)
            #expect(result.failed == 0, "\(result.failures)")
            #expect(result.connectTime.count == result.handshakes)
        }
    }

    @Test("a wrong secret is reported as a refused handshake")
    func wrongSecret() async throws {
        try await TestServers.with(configuration: .unlimited) { server in
            var options = Self.options(port: server.port)
            options.jwtSecret = "not-the-server-secret-0123456789abcdef"
            options.clients = 1
            await #expect(throws: BenchError.self) {
                _ = try await BenchRunner.run(.rtt, options: options)
            }
        }
    }

    @Test("only loopback URLs are accepted", arguments: [
        "ws://example.com:8080/ws", "ws://10.0.0.1:8080/ws", "ws://192.168.1.20/ws", "ws://127.0.0.1.example.com/ws", "ws://0.0.0.0:8080/ws",
    ])
    func refusesOtherHosts(url: String) async throws {
        #expect(throws: BenchError.notLoopback(url)) { try BenchTarget(url: url) }
        var options = BenchOptions()
        options.url = url
        options.showProgress = false
        await #expect(throws: BenchError.notLoopback(url)) {
            _ = try await BenchRunner.run(.fanout, options: options)
        }
        #expect(throws: (any Error).self) { try BenchCommand.parse(["fanout", "--url", url]) }
    }

    @Test("--url is repeatable: the first is the url, the others the nodes connections are spread over; each must be loopback")
    func repeatedURLs() throws {
        let one = try BenchCommand.parse(["fanout"]).benchOptions()
        #expect(one.url == "ws://127.0.0.1:8080/ws" && one.otherURLs.isEmpty)
        let two = try BenchCommand.parse(["fanout", "--url", "ws://127.0.0.1:9001/ws", "--url", "ws://localhost:9002/ws"]).benchOptions()
        #expect(two.urls == ["ws://127.0.0.1:9001/ws", "ws://localhost:9002/ws"])
        let publisherElsewhere = try BenchCommand.parse(["fanout", "--url", "ws://127.0.0.1:9001/ws", "--publisher-url", "ws://127.0.0.1:9002/ws"]).benchOptions()
        #expect(publisherElsewhere.publisherURL == "ws://127.0.0.1:9002/ws" && publisherElsewhere.otherURLs.isEmpty)
        #expect(throws: (any Error).self) {
            try BenchCommand.parse(["fanout", "--publisher-url", "ws://10.0.0.1:9002/ws"]).benchOptions().validate(for: .fanout)
        }
        #expect(throws: (any Error).self) {
            try BenchCommand.parse(["fanout", "--url", "ws://127.0.0.1:9001/ws", "--url", "ws://10.0.0.1:9002/ws"])
        }
    }

    @Test("fanout over two nodes on one Redis (--url twice): subscribers are spread over both, and every message reaches every one", RedisServer.availability)
    func fanoutOverTwoNodes() async throws {
        let redis = try await RedisServer.start()
        let prefix = "t\(UUID().uuidString.prefix(8)):"
        do {
            try await RedisBrokerTests.withBroker(on: redis, prefix: prefix) { brokerA in
                try await RedisBrokerTests.withBroker(on: redis, prefix: prefix) { brokerB in
                    // Each node's log says which bench users connected there.
                    let logA = CapturedLogs()
                    let logB = CapturedLogs()
                    // As the bench scripts run the nodes: without rate limits.
                    let configuration = {
                        var configuration = RedisBrokerTests.quiet
                        configuration.rateLimits = .off
                        return configuration
                    }()
                    try await TestServers.with(configuration: configuration, broker: brokerA, logger: logA.logger) { a in
                        try await TestServers.with(configuration: configuration, broker: brokerB, logger: logB.logger) { b in
                            var options = Self.options(port: a.port)
                            options.otherURLs = ["ws://127.0.0.1:\(b.port)/ws"]
                            options.subscribers = 20
                            options.rate = 20
                            options.duration = .seconds(1)
                            let report = try await BenchRunner.run(.fanout, options: options)
                            guard case .fanout(let result) = report.result else {
                                Issue.record("expected a fanout result, got \(report.result)")
                                return
                            }
                            #expect(result.connect.connected == 21 && result.connect.failed == 0)
                            #expect(result.step.sent > 0)
                            #expect(result.step.delivered == result.step.expected && result.step.expected == result.step.sent * 20)
                            #expect(result.step.errors == 0)
                            let onA = Self.connectedUsers(logA)
                            let onB = Self.connectedUsers(logB)
                            #expect(onA.count >= 10 && onB.count >= 10 && onA.isDisjoint(with: onB), "A: \(onA.sorted()), B: \(onB.sorted())")
                            #expect(report.url == "ws://127.0.0.1:\(a.port)/ws ws://127.0.0.1:\(b.port)/ws")

                            // --publisher-url: every subscriber on node B, the publisher on node A, so every
                            // delivery crosses nodes through Redis.
                            let (beforeA, beforeB) = (logA.lines.count, logB.lines.count)
                            var crossing = Self.options(port: b.port)
                            crossing.publisherURL = "ws://127.0.0.1:\(a.port)/ws"
                            crossing.subscribers = 20
                            crossing.rate = 20
                            crossing.duration = .seconds(1)
                            let crossed = try await BenchRunner.run(.fanout, options: crossing)
                            guard case .fanout(let across) = crossed.result else {
                                Issue.record("expected a fanout result, got \(crossed.result)")
                                return
                            }
                            #expect(across.step.sent > 0 && across.step.delivered == across.step.sent * 20, "\(across.step)")
                            #expect(Self.connectedUsers(logA, after: beforeA) == ["bench-20"])
                            #expect(Self.connectedUsers(logB, after: beforeB) == Set((0..<20).map { "bench-\($0)" }))
                        }
                    }
                }
            }
        } catch {
            await redis.stop()
            throw error
        }
        await redis.stop()
    }

    /// The users of a server's "connected" log lines (from line `after` on).
    static func connectedUsers(_ log: CapturedLogs, after: Int = 0) -> Set<String> {
        Set(log.lines.dropFirst(after).filter { $0.hasPrefix("info connected ") }.compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("user=") }.map { String($0.dropFirst("user=".count)) }
        })
    }

    @Test("loopback URLs are accepted; TLS and other schemes are not")
    func parsesLoopbackURLs() throws {
        let plain = try BenchTarget(url: "ws://127.0.0.1:8080/ws")
        #expect(plain.host == "127.0.0.1" && plain.port == 8080 && plain.pathAndQuery == "/ws")
        #expect(try BenchTarget(url: "ws://localhost:9000/chat?x=1").host == "127.0.0.1")
        #expect(try BenchTarget(url: "ws://localhost:9000/chat?x=1").requestTarget(token: "a.b.c") == "/chat?x=1&token=a.b.c")
        #expect(try BenchTarget(url: "ws://[::1]:8080/ws").host == "::1")
        #expect(throws: BenchError.self) { try BenchTarget(url: "wss://127.0.0.1:8443/ws") }
        #expect(throws: BenchError.self) { try BenchTarget(url: "ftp://127.0.0.1/ws") }
        #expect(throws: BenchError.self) { try BenchTarget(url: "not a url") }
    }

    @Test("frames: a masked message.send parses back; envelopes are classified without decoding")
    func framesAndScanning() throws {
        let encoder = MessageSendEncoder(room: "r1", payloadBytes: 100)
        var buffer = ByteBuffer()
        encoder.write(sentAtNanos: 1_700_000_000_123_456_789, id: 42, maskKey: 0xA1B2_C3D4, into: &buffer)
        let text = try buffer.withUnsafeReadableBytes { bytes -> String in
            let frame = try #require(try FrameParser.parse(bytes))
            #expect(frame.fin && frame.opcode == FrameParser.text && frame.totalLength == bytes.count)
            var payload = Array(bytes[frame.payloadOffset..<frame.totalLength])
            payload.withUnsafeMutableBytes { FrameWriter.mask($0, key: try! #require(frame.maskKey)) }
            return String(decoding: payload, as: UTF8.self)
        }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["event"] as? String == "message.send")
        #expect(object["id"] as? String == "m42")
        let content = try #require((object["data"] as? [String: Any])?["content"] as? String)
        #expect(content.hasPrefix("ts=1700000000123456789 "))
        #expect(content.utf8.count == 100)

        func kind(_ text: String) -> MessageScanner.Kind {
            Array(text.utf8).withUnsafeBytes { MessageScanner.classify($0) }
        }
        #expect(kind(#"{"event":"message.new","room":"r1","eid":"e:1","data":{"room":"r1","from":"u","content":"ts=123 xx","ts":5}}"#) == .delivery(sentAtNanos: 123))
        #expect(kind(#"{"room":"r1","event":"message.new","data":{"content":"ts=77 x"}}"#) == .delivery(sentAtNanos: 77))
        #expect(kind(#"{"event":"message.new","data":{"content":"hello"}}"#) == .delivery(sentAtNanos: nil))
        #expect(kind(#"{"event":"message.new","data":{"from":"a=b","content":"ts=9 x"}}"#) == .delivery(sentAtNanos: 9))
        #expect(kind(#"{"event":"ack","id":"q1"}"#) == .ack)
        #expect(kind(#"{"event":"error","id":"q1","data":{"code":"forbidden"}}"#) == .error)
        #expect(kind(#"{"event":"presence.join","room":"r1","data":{"user":"u"}}"#) == .other)
    }
}
