import Atomics
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import SwitchboardRedis

/// The handler alone on an `EmbeddedChannel`: virtual time for deadlines, exact bytes on the wire.
@Suite("RedisChannelHandler")
struct RedisChannelHandlerTests {
    private struct Harness {
        let channel = EmbeddedChannel()
        let handler = RedisChannelHandler(logger: Logger(label: "test"), pendingCount: ManagedAtomic(0))

        init() throws {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        }

        var loop: EmbeddedEventLoop { channel.embeddedEventLoop }

        func send(_ command: RESPCommand, timeout: TimeAmount = .seconds(1)) -> Outcome<RESPValue> {
            let promise = loop.makePromise(of: RESPValue.self)
            handler.send(command, expecting: .reply(promise), timeout: timeout)
            return Outcome(promise.futureResult)
        }

        /// Everything written since the last call, as text.
        func written() throws -> [String] {
            var writes: [String] = []
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { writes.append(String(buffer: buffer)) }
            return writes
        }

        func reply(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }
    }

    /// The result of a future of the embedded loop once it completed.
    private final class Outcome<Value> {
        var result: Result<Value, Error>?
        init(_ future: EventLoopFuture<Value>) {
            future.assumeIsolated().whenComplete { self.result = $0 }
        }
        var error: RedisError? {
            if case .failure(let error)? = result { return error as? RedisError }
            return nil
        }
        var value: Value? { try? result?.get() }
    }

    @Test("commands of one turn: one write, one flush, replies matched in order; error replies fail only their command")
    func batchingAndOrder() throws {
        let harness = try Harness()
        let first = harness.send(RESPCommand("GET", "a"))
        let second = harness.send(RESPCommand("NOPE"))
        let third = harness.send(RESPCommand("PING"))
        #expect(try harness.written().isEmpty)  // nothing before the turn ends
        harness.loop.run()
        #expect(try harness.written() == ["*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nNOPE\r\n*1\r\n$4\r\nPING\r\n"])
        #expect(harness.handler.statistics == .init(commands: 3, flushes: 1))
        try harness.reply("$1\r\n1\r\n-ERR unknown\r\n+PO")
        #expect(first.value == .bulkString(ByteBuffer(string: "1")))
        #expect(second.error == .server("ERR unknown"))
        #expect(third.result == nil)
        try harness.reply("NG\r\n")
        #expect(third.value == .simpleString("PONG"))
        #expect(harness.channel.isActive)
        #expect(harness.handler.pendingCount.load(ordering: .relaxed) == 0)
    }

    @Test("a deadline closes the connection: the expired command gets .timeout, the others .connectionClosed")
    func timeout() throws {
        let harness = try Harness()
        let slow = harness.send(RESPCommand("A"), timeout: .seconds(1))
        let behind = harness.send(RESPCommand("B"), timeout: .seconds(10))
        harness.loop.advanceTime(by: .milliseconds(999))
        #expect(slow.result == nil && harness.channel.isActive)
        harness.loop.advanceTime(by: .milliseconds(1))
        #expect(slow.error == .timeout)
        #expect(behind.error == .connectionClosed)
        #expect(!harness.channel.isActive)
        #expect(harness.send(RESPCommand("C")).error == .connectionClosed)
    }

    @Test("the timer re-arms for the next deadline after the earliest command was answered")
    func timerRearms() throws {
        let harness = try Harness()
        let quick = harness.send(RESPCommand("A"), timeout: .seconds(1))
        let long = harness.send(RESPCommand("B"), timeout: .seconds(10))
        try harness.reply("+a\r\n")
        #expect(quick.value == .simpleString("a"))
        harness.loop.advanceTime(by: .seconds(5))
        #expect(long.result == nil && harness.channel.isActive)
        // A later command with a shorter deadline than B's is honoured too.
        let short = harness.send(RESPCommand("C"), timeout: .seconds(1))
        harness.loop.advanceTime(by: .seconds(1))
        #expect(short.error == .timeout)
        #expect(long.error == .connectionClosed)
    }

    @Test("a reply nobody asked for is a protocol error that closes the connection")
    func unsolicitedReply() throws {
        let harness = try Harness()
        try harness.reply("+surprise\r\n")
        #expect(!harness.channel.isActive)
    }

    @Test("a malformed reply fails every pending command with the protocol error")
    func malformed() throws {
        let harness = try Harness()
        let first = harness.send(RESPCommand("A"))
        let second = harness.send(RESPCommand("B"))
        try harness.reply("?\r\n")  // the handler takes the decoder's error: nothing reaches the pipeline's end
        guard case .protocolError? = first.error, case .protocolError? = second.error else {
            Issue.record("expected protocol errors, got \(String(describing: first.result)), \(String(describing: second.result))")
            return
        }
        #expect(!harness.channel.isActive)
    }

    @Test("pub/sub mode: confirmations are counted per channel, messages in between are delivered")
    func pubSub() throws {
        let harness = try Harness()
        var messages: [String] = []
        harness.handler.onPubSubMessage = { channel, payload in messages.append("\(channel)=\(String(buffer: payload))") }
        let promise = harness.loop.makePromise(of: Void.self)
        let subscribed = Outcome(promise.futureResult)
        harness.handler.send(RESPCommand("SUBSCRIBE", "a", "b"), expecting: .confirmations(remaining: 2, promise), timeout: .seconds(1))
        try harness.reply("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
        #expect(subscribed.result == nil)
        try harness.reply("*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n")
        try harness.reply(">3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
        #expect(subscribed.value != nil)
        try harness.reply(">4\r\n$8\r\npmessage\r\n$2\r\nb*\r\n$1\r\nb\r\n$1\r\nx\r\n")
        #expect(messages == ["a=hi", "b=x"])
        // Past its deadline nothing fires: the confirmation ended it.
        harness.loop.advanceTime(by: .seconds(2))
        #expect(harness.channel.isActive)
    }
}
