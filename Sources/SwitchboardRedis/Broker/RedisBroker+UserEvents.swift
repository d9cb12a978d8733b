import NIOConcurrencyHelpers
import Logging
import NIOCore
import Switchboard

/// User events across nodes: one channel, `<prefix>users`, that every node subscribes to from its
/// start. A message is `<node> <user byte count> <user><envelope>`; the node that published it
/// delivered to its own connections already and skips it. Nothing is stored: a node that is not
/// connected to Redis at that moment misses the event (user events are not replayed anyway).
extension RedisBroker: UserEventBroker {
    var usersChannel: String { "\(keyPrefix)users" }

    public func attachUserEvents(_ receiver: any UserEventReceiver) {
        userEventReceiver.withLockedValue { $0 = receiver }
    }

    public func publish(toUser user: String, envelope: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        var message = ByteBuffer()
        message.reserveCapacity(node.utf8.count + user.utf8.count + envelope.readableBytes + 16)
        message.writeString("\(node) \(user.utf8.count) ")
        message.writeString(user)
        var envelope = envelope
        message.writeBuffer(&envelope)
        return client.enqueue(RESPCommand("PUBLISH", RESPCommandArgument(usersChannel), RESPCommandArgument(message)), affinity: user, on: eventLoop).map { _ in }
    }

    /// On the pub/sub loop: a user event from some node.
    func receivedUserEvent(_ payload: ByteBuffer) {
        let view = payload.readableBytesView
        let space = UInt8(ascii: " ")
        guard let first = view.firstIndex(of: space),
            let second = view[(first + 1)...].firstIndex(of: space),
            let count = Int(String(decoding: view[(first + 1)..<second], as: UTF8.self)), count >= 0,
            second + 1 + count <= view.endIndex
        else {
            logger.error("malformed user event from Redis", metadata: ["channel": "\(usersChannel)"])
            return
        }
        let origin = String(decoding: view[view.startIndex..<first], as: UTF8.self)
        guard origin != node, let receiver = userEventReceiver.withLockedValue({ $0 }) else { return }
        let user = String(decoding: view[(second + 1)..<(second + 1 + count)], as: UTF8.self)
        receiver.deliver(toUser: user, frame: BrokerEvent.frame(envelope: view[(second + 1 + count)...]))
    }
}
