import NIOCore
import NIOPosix
import Testing

@testable import SwitchboardRedis

@Suite("RedisConnection against redis-server", RedisServer.availability, .timeLimit(.minutes(1)))
struct RedisConnectionTests {
    private func connect(_ configure: (inout RedisConfiguration) -> Void = { _ in }) async throws -> RedisConnection {
        var configuration = try await RedisServer.shared().configuration
        configure(&configuration)
        return try await RedisConnection.connect(configuration: configuration)
    }

    @Test("SET, GET, INCR, DEL round trips; error replies keep the connection usable")
    func roundTrips() async throws {
        let connection = try await connect()
        defer { Task { await connection.close() } }
        let key = uniqueName("roundtrip")
        #expect(try await connection.send("SET", RESPCommandArgument(key), "héllo\r\n") == .simpleString("OK"))
        #expect(try await connection.send("GET", RESPCommandArgument(key)).string == "héllo\r\n")
        let binary: [UInt8] = [0, 1, 13, 10, 255]
        _ = try await connection.send("SET", RESPCommandArgument(key), RESPCommandArgument(binary))
        #expect(try await connection.send("GET", RESPCommandArgument(key)).buffer.map { Array($0.readableBytesView) } == binary)
        #expect(try await connection.send("DEL", RESPCommandArgument(key)) == .integer(1))
        #expect(try await connection.send("GET", RESPCommandArgument(key)) == .bulkString(nil))
        #expect(try await connection.send("INCR", RESPCommandArgument(key)) == .integer(1))
        #expect(try await connection.send("INCRBY", RESPCommandArgument(key), 41) == .integer(42))
        let error = await #expect(throws: RedisError.self) { try await connection.send("NOSUCHCOMMAND") }
        #expect(error?.serverErrorCode == "ERR")
        #expect(try await connection.send("GET", RESPCommandArgument(key)).int == 42)
        #expect(try await connection.send("PING") == .simpleString("PONG"))
        _ = try await connection.send("DEL", RESPCommandArgument(key))
    }

    @Test("1000 pipelined commands issued at once get their replies in order")
    func pipelining() async throws {
        let connection = try await connect()
        defer { Task { await connection.close() } }
        let key = uniqueName("pipeline")
        let futures = (0..<1000).map { _ in connection.enqueue(RESPCommand("INCR", RESPCommandArgument(key))) }
        var replies: [Int] = []
        for future in futures { replies.append(try await future.get().int ?? -1) }
        #expect(replies == Array(1...1000))
        _ = try await connection.send("DEL", RESPCommandArgument(key))
    }

    @Test("commands of one event-loop turn go out in one flush")
    func automaticBatching() async throws {
        let connection = try await connect()
        defer { Task { await connection.close() } }
        let key = uniqueName("batch")
        let before = try await connection.statistics()
        // 100 commands issued within one task on the event loop: exactly one flush.
        let futures = try await connection.eventLoop.submit {
            (0..<100).map { _ in connection.enqueue(RESPCommand("INCR", RESPCommandArgument(key))) }
        }.get()
        for future in futures { _ = try await future.get() }
        let afterLoop = try await connection.statistics()
        #expect(afterLoop.commands - before.commands == 100)
        #expect(afterLoop.flushes - before.flushes == 1)

        // 1000 commands from another thread: each hops to the loop on its own, the loop drains
        // them in batches; fewer flushes than commands (typically a handful).
        let moreFutures = (0..<1000).map { _ in connection.enqueue(RESPCommand("INCR", RESPCommandArgument(key))) }
        for future in moreFutures { _ = try await future.get() }
        let after = try await connection.statistics()
        #expect(after.commands - afterLoop.commands == 1000)
        #expect(after.flushes - afterLoop.flushes < 1000)
        #expect(try await connection.send("GET", RESPCommandArgument(key)).int == 1100)
        _ = try await connection.send("DEL", RESPCommandArgument(key))
    }

    @Test("SELECT on connect: a key set in database 3 is not in database 0")
    func select() async throws {
        let key = uniqueName("select")
        let db3 = try await connect { $0.database = 3 }
        defer { Task { await db3.close() } }
        let db0 = try await connect()
        defer { Task { await db0.close() } }
        _ = try await db3.send("SET", RESPCommandArgument(key), "three")
        #expect(try await db3.send("GET", RESPCommandArgument(key)).string == "three")
        #expect(try await db0.send("GET", RESPCommandArgument(key)) == .bulkString(nil))
        _ = try await db3.send("DEL", RESPCommandArgument(key))
        await #expect(throws: RedisError.self) { _ = try await connect { $0.database = 999 } }
    }

    @Test("RESP3: HELLO 3 switches the protocol (maps, doubles, null)")
    func resp3() async throws {
        let connection = try await connect { $0.protocolVersion = .resp3 }
        defer { Task { await connection.close() } }
        let key = uniqueName("resp3")
        _ = try await connection.send("HSET", RESPCommandArgument(key), "f", "v")
        #expect(try await connection.send("HGETALL", RESPCommandArgument(key)) == .map([RESPMapEntry(key: .bulkString(ByteBuffer(string: "f")), value: .bulkString(ByteBuffer(string: "v")))]))
        #expect(try await connection.send("GET", RESPCommandArgument(uniqueName("missing"))) == .null)
        _ = try await connection.send("ZADD", RESPCommandArgument(key + "z"), RESPCommandArgument(1.5), "m")
        #expect(try await connection.send("ZSCORE", RESPCommandArgument(key + "z"), "m") == .double(1.5))
        _ = try await connection.send("DEL", RESPCommandArgument(key), RESPCommandArgument(key + "z"))
    }

    @Test("a closed connection fails later commands at once")
    func closedConnection() async throws {
        let connection = try await connect()
        await connection.close()
        #expect(!connection.isActive)
        await #expect(throws: RedisError.connectionClosed) { try await connection.send("PING") }
    }

    @Test("connecting to a port nobody listens on fails with connectFailed")
    func connectRefused() async throws {
        let port = try RedisServer.freePort()
        let error = await #expect(throws: RedisError.self) {
            _ = try await RedisConnection.connect(configuration: RedisConfiguration(port: port))
        }
        guard case .connectFailed = error else {
            Issue.record("expected connectFailed, got \(String(describing: error))")
            return
        }
    }
}

@Suite("Redis AUTH", RedisServer.availability, .timeLimit(.minutes(1)))
struct RedisAuthTests {
    @Test("requirepass: the right password (alone, or with user default, or in HELLO 3) works; a wrong or missing one is a clear error")
    func auth() async throws {
        let server = try await RedisServer.start(password: "s3cret")
        defer { Task { await server.stop() } }
        let good = try await RedisConnection.connect(configuration: server.configuration)
        #expect(try await good.send("PING") == .simpleString("PONG"))
        await good.close()

        let withUser = try await RedisConnection.connect(configuration: RedisConfiguration(url: "redis://default:s3cret@127.0.0.1:\(server.port)/1"))
        #expect(try await withUser.send("PING") == .simpleString("PONG"))
        await withUser.close()

        var resp3 = server.configuration
        resp3.protocolVersion = .resp3
        let hello = try await RedisConnection.connect(configuration: resp3)
        #expect(try await hello.send("PING") == .simpleString("PONG"))
        await hello.close()

        var wrong = server.configuration
        wrong.password = "nope"
        let error = await #expect(throws: RedisError.self) { _ = try await RedisConnection.connect(configuration: wrong) }
        #expect(error?.serverErrorCode == "WRONGPASS")

        var none = server.configuration
        none.password = nil
        let anonymous = try await RedisConnection.connect(configuration: none)
        let noAuth = await #expect(throws: RedisError.self) { try await anonymous.send("GET", "k") }
        #expect(noAuth?.serverErrorCode == "NOAUTH")
        await anonymous.close()
    }
}
