import NIOCore
import Testing

@testable import SwitchboardRedis

/// Replies no real Redis sends, from a fake server: the client must fail cleanly, never crash or hang.
@Suite("Malformed replies", .timeLimit(.minutes(1)))
struct MalformedServerTests {
    private func firstReply(to reply: String, closeAfterReply: Bool, limits: RESPDecoder.Limits = .init()) async throws -> Result<RESPValue, RedisError> {
        let server = try await FakeRedisServer.start(reply: Array(reply.utf8), closeAfterReply: closeAfterReply)
        var configuration = RedisConfiguration(port: server.port)
        configuration.commandTimeout = .seconds(3)
        configuration.decoderLimits = limits
        let connection = try await RedisConnection.connect(configuration: configuration)
        let result = try await withTimeout(.seconds(5), "a reply or an error") {
            do {
                return Result<RESPValue, RedisError>.success(try await connection.send("GET", "key"))
            } catch let error as RedisError {
                return .failure(error)
            }
        }
        #expect(try await withTimeout(.seconds(5), "the connection to close") {
            // After a protocol error or EOF the connection is closed; after a good reply the test closes it.
            if case .success = result { await connection.close() }
            try await connection.closeFuture.get()
            return true
        })
        await server.stop()
        return result
    }

    @Test("garbage is a protocol error and closes the connection", arguments: ["?garbage\r\n", "hello world\r\n", ":12x\r\n", "$5\r\nabcdefg\r\n"])
    func garbage(reply: String) async throws {
        let result = try await firstReply(to: reply, closeAfterReply: false)
        guard case .failure(.protocolError) = result else {
            Issue.record("expected a protocol error, got \(result)")
            return
        }
    }

    @Test("a truncated reply followed by close is connectionClosed", arguments: ["$10\r\nabc", "*3\r\n:1\r\n", "+OK"])
    func truncated(reply: String) async throws {
        let result = try await firstReply(to: reply, closeAfterReply: true)
        #expect(result == .failure(.connectionClosed))
    }

    @Test("a hostile bulk length is refused before any payload")
    func hostileLength() async throws {
        let result = try await firstReply(to: "$99999999999\r\n", closeAfterReply: false)
        guard case .failure(.protocolError(let message)) = result else {
            Issue.record("expected a protocol error, got \(result)")
            return
        }
        #expect(message.contains("exceeds"))
    }

    @Test("a complete reply then close: the reply arrives, the next command fails with connectionClosed")
    func replyThenClose() async throws {
        let server = try await FakeRedisServer.start(reply: Array("+OK\r\n".utf8), closeAfterReply: true)
        let connection = try await RedisConnection.connect(configuration: RedisConfiguration(port: server.port))
        #expect(try await connection.send("PING") == .simpleString("OK"))
        try await withTimeout(.seconds(5), "close") { try await connection.closeFuture.get() }
        await #expect(throws: RedisError.connectionClosed) { try await connection.send("PING") }
        await server.stop()
    }

    @Test("a server that never answers: the command times out, the connection closes")
    func silentServer() async throws {
        let server = try await FakeRedisServer.start(reply: [], closeAfterReply: false)
        var configuration = RedisConfiguration(port: server.port)
        configuration.commandTimeout = .milliseconds(100)
        let connection = try await RedisConnection.connect(configuration: configuration)
        await #expect(throws: RedisError.timeout) { try await connection.send("PING") }
        try await withTimeout(.seconds(5), "close") { try await connection.closeFuture.get() }
        await server.stop()
    }
}
