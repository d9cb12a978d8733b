import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import Switchboard
@testable import SwitchboardCLI
@testable import SwitchboardRedis

/// `switchboard redis-bench`: its publishes and redis-benchmark's run the broker's script for real.
@Suite("redis-bench: publishes through the broker's script, and redis-benchmark's same EVALSHA", RedisServer.availability)
struct RedisBenchTests {
    @Test("the pump keeps publishes in flight until every one is answered, and each took a position")
    func pumpPublishesEveryEvent() async throws {
        let redis = try await RedisServer.start()
        let broker = try RedisBroker(configuration: redis.configuration, clock: ContinuousClock())
        let service = Task { try await broker.run() }
        try await broker.waitUntilConnected(timeout: .seconds(10))
        let rooms = (0..<7).map { Publication(room: "pump-\($0)", event: "message.new", dataJSON: ByteBuffer(string: "{}")) }
        let errors = try await RedisBenchCommand.pump(broker, rooms, total: 500, inFlight: 16, on: MultiThreadedEventLoopGroup.singleton.next())
        #expect(errors == 0)
        var offsets = 0
        for room in rooms {
            offsets += try await broker.client.send("HGET", RESPCommandArgument(broker.streamKey(room.room)), "offset").int ?? 0
        }
        #expect(offsets == 500)

        // The comparison runs the same script: its rooms' positions move too.
        var command = try RedisBenchCommand.parse(["--redis", "redis://127.0.0.1:\(redis.port)", "--publishes", "200", "--rooms", "3"])
        command.inFlight = 8
        let arguments = try await command.redisBenchmarkArguments(redis.configuration, sample: rooms[0], broker: broker)
        // redis-benchmark comes with Debian's redis-server (redis-tools), which CI requires.
        if RedisServer.isRequired { #expect(arguments != nil, "redis-benchmark is not on PATH") }
        if let arguments {
            let rate = try RedisBenchCommand.runRedisBenchmark(arguments)
            #expect(rate > 0)
            // `__rand_int__` became room numbers: those rooms' streams exist now.
            let keys = try await broker.client.send("KEYS", "switchboard:{bench-rb-*}:stream")
            #expect(keys.array?.isEmpty == false, "redis-benchmark's EVALSHA ran the publish script: \(keys)")
        }
        service.cancel()
        _ = await service.result
        await redis.stop()
    }
}
