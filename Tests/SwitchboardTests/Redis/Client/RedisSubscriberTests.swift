import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import SwitchboardRedis

@Suite("RedisSubscriber against redis-server", RedisServer.availability, .timeLimit(.minutes(1)))
struct RedisSubscriberTests {
    @Test("subscribe, then PUBLISH from the command client: delivered on the event loop; unsubscribe stops it")
    func publishAndReceive() async throws {
        let configuration = try await RedisServer.shared().configuration
        let inbox = Inbox()
        let channel = uniqueName("chan")
        try await withClient(configuration) { client in
            try await withSubscriber(configuration, inbox: inbox) { subscriber in
                try await subscriber.subscribe([channel])
                // Confirmed: a publish issued now must be delivered.
                #expect(try await client.send("PUBLISH", RESPCommandArgument(channel), "hello") == .integer(1))
                try await inbox.waitFor(channel: channel, payload: "hello")
                let binary = ByteBuffer(bytes: [0, 13, 10, 255])
                _ = try await client.send("PUBLISH", RESPCommandArgument(channel), RESPCommandArgument(binary))
                try await waitUntil("the binary payload") { inbox.all.count == 2 }
                #expect(inbox.allOnEventLoop)
                #expect(try await subscriber.wantedChannels() == [channel])

                try await subscriber.unsubscribe([channel])
                #expect(try await client.send("PUBLISH", RESPCommandArgument(channel), "gone") == .integer(0))
                #expect(try await subscriber.wantedChannels().isEmpty)
            }
        }
    }

    @Test("600 channels are subscribed in two batches and all deliver")
    func manyChannels() async throws {
        let configuration = try await RedisServer.shared().configuration
        let inbox = Inbox()
        let prefix = uniqueName("many")
        let channels = (0..<600).map { "\(prefix):\($0)" }
        try await withClient(configuration) { client in
            try await withSubscriber(configuration, inbox: inbox) { subscriber in
                try await subscriber.subscribe(channels)
                let counted = try await client.send("PUBSUB", "CHANNELS", RESPCommandArgument(prefix + ":*"))
                #expect(counted.array?.count == 600)
                for index in [0, 511, 512, 599] {
                    #expect(try await client.send("PUBLISH", RESPCommandArgument(channels[index]), RESPCommandArgument("m\(index)")) == .integer(1))
                }
                try await waitUntil("4 messages") { inbox.all.count == 4 }
                #expect(inbox.all.map(\.payload) == ["m0", "m511", "m512", "m599"])
                try await subscriber.unsubscribe(channels)
                #expect(try await client.send("PUBSUB", "CHANNELS", RESPCommandArgument(prefix + ":*")).array?.count == 0)
            }
        }
    }

    @Test("CLIENT KILL TYPE pubsub: the subscriber reconnects, re-subscribes every channel, reports it, and receives again")
    func reconnect() async throws {
        // A private server: killing pub/sub clients would disturb the other subscriber tests.
        let server = try await RedisServer.start()
        defer { Task { await server.stop() } }
        let inbox = Inbox()
        let reconnects = NIOLockedValueBox(0)
        let prefix = uniqueName("resub")
        let channels = (0..<600).map { "\(prefix):\($0)" }
        try await withClient(server.configuration) { client in
            try await withSubscriber(server.configuration, inbox: inbox, onReconnect: { reconnects.withLockedValue { $0 += 1 } }) { subscriber in
                let shard = prefix + ":shard"
                try await subscriber.subscribe(channels)
                try await subscriber.ssubscribe([shard])
                // 600 channels: two SUBSCRIBE commands of at most 512 channels.
                #expect(try await Self.calls("subscribe", client) == 2)
                #expect(reconnects.withLockedValue { $0 } == 0)
                #expect(try await client.send("CLIENT", "KILL", "TYPE", "pubsub") == .integer(1))
                try await waitUntil("the reconnect to be reported") { reconnects.withLockedValue { $0 } == 1 }
                #expect(subscriber.reconnectCount == 1)
                #expect(subscriber.isConnected)
                // Reported only after every channel was confirmed again, in two batches again.
                #expect(try await Self.calls("subscribe", client) == 4)
                #expect(try await Self.calls("ssubscribe", client) == 2)
                #expect(try await client.send("PUBSUB", "CHANNELS", RESPCommandArgument(prefix + ":*")).array?.count == 600)
                #expect(try await client.send("PUBSUB", "SHARDCHANNELS", RESPCommandArgument(prefix + ":*")).array?.count == 1)
                #expect(try await client.send("PUBLISH", RESPCommandArgument(channels[599]), "after") == .integer(1))
                try await inbox.waitFor(channel: channels[599], payload: "after")
                #expect(try await client.send("SPUBLISH", RESPCommandArgument(shard), "sharded after") == .integer(1))
                try await inbox.waitFor(channel: shard, payload: "sharded after")
                #expect(try await subscriber.wantedChannels().count == 600)
                #expect(try await subscriber.wantedShardChannels() == [shard])
            }
        }
    }

    @Test("reconnect(): the open connection is dropped, a new one subscribes every channel again and reports it")
    func reconnectOnRequest() async throws {
        let configuration = try await RedisServer.shared().configuration
        let inbox = Inbox()
        let channel = uniqueName("again")
        try await withClient(configuration) { client in
            try await withSubscriber(configuration, inbox: inbox) { subscriber in
                try await subscriber.subscribe([channel])
                let reconnects = subscriber.reconnectCount
                await subscriber.reconnect()
                try await waitUntil("the reconnect to be reported") { subscriber.reconnectCount == reconnects + 1 && subscriber.isConnected }
                #expect(try await client.send("PUBLISH", RESPCommandArgument(channel), "after") == .integer(1))
                try await inbox.waitFor(channel: channel, payload: "after")
            }
        }
    }

    @Test("sharded channels: SSUBSCRIBE, SPUBLISH delivered, SUNSUBSCRIBE stops it")
    func sharded() async throws {
        let configuration = try await RedisServer.shared().configuration
        let inbox = Inbox()
        let channel = uniqueName("shard")
        try await withClient(configuration) { client in
            try await withSubscriber(configuration, inbox: inbox) { subscriber in
                try await subscriber.ssubscribe([channel])
                #expect(try await client.send("SPUBLISH", RESPCommandArgument(channel), "s1") == .integer(1))
                try await inbox.waitFor(channel: channel, payload: "s1")
                // A plain PUBLISH to the same name is another channel.
                #expect(try await client.send("PUBLISH", RESPCommandArgument(channel), "plain") == .integer(0))
                try await subscriber.sunsubscribe([channel])
                #expect(try await client.send("SPUBLISH", RESPCommandArgument(channel), "s2") == .integer(0))
                #expect(try await subscriber.wantedShardChannels().isEmpty)
            }
        }
    }

    /// How many times the server ran `command` (INFO commandstats).
    static func calls(_ command: String, _ client: RedisClient) async throws -> Int? {
        let stats = try await client.send("INFO", "commandstats").string ?? ""
        guard let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(command):") }),
            let calls = line.split(separator: "=").dropFirst().first?.split(separator: ",").first
        else { return nil }
        return Int(calls)
    }

    @Test("subscribing while disconnected fails with .unavailable, keeps the channel wanted, and the next connection subscribes it")
    func subscribeWhileDown() async throws {
        let server = try await RedisServer.start()
        var configuration = server.configuration
        configuration.reconnectBackoff = ReconnectBackoff(initial: .milliseconds(20), maximum: .milliseconds(100))
        let inbox = Inbox()
        let channel = uniqueName("later")
        let reconnects = NIOLockedValueBox(0)
        let restarted = try await withSubscriber(configuration, inbox: inbox, onReconnect: { reconnects.withLockedValue { $0 += 1 } }) { subscriber in
            await server.stop()
            try await waitUntil("the subscriber to notice") { !subscriber.isConnected }
            await #expect(throws: RedisError.unavailable) { try await subscriber.subscribe([channel]) }
            let restarted = try await server.restart()
            try await waitUntil("the reconnect to be reported") { reconnects.withLockedValue { $0 } == 1 }
            let publisher = try await RedisConnection.connect(configuration: restarted.configuration)
            #expect(try await publisher.send("PUBLISH", RESPCommandArgument(channel), "x") == .integer(1))
            try await inbox.waitFor(channel: channel, payload: "x")
            await publisher.close()
            return restarted
        }
        await restarted.stop()
    }

    @Test("RESP3 subscriber: pushes are delivered the same way")
    func resp3() async throws {
        var resp3 = try await RedisServer.shared().configuration
        resp3.protocolVersion = .resp3
        let configuration = resp3
        let inbox = Inbox()
        let channel = uniqueName("resp3chan")
        try await withClient(configuration) { client in
            try await withSubscriber(configuration, inbox: inbox) { subscriber in
                try await subscriber.subscribe([channel])
                #expect(try await client.send("PUBLISH", RESPCommandArgument(channel), "pushed") == .integer(1))
                try await inbox.waitFor(channel: channel, payload: "pushed")
            }
        }
    }
}
