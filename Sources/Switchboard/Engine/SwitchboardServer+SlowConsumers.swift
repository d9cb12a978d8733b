import Logging
import NIOCore

extension SwitchboardServer {
    /// How many connections were closed as slow consumers (close code 4008) since the server
    /// started: clients that read their events slower than they came, until more than
    /// ``SwitchboardConfiguration/outboundHighWaterMark`` bytes waited for one of them.
    public var slowConsumersClosed: Int { slowConsumers.load(ordering: .relaxed) }

    /// On the socket's loop: closes a connection whose unread events passed the high-water mark.
    /// From now on nothing more is queued for it; TCP is closed once the Close frame is written or
    /// after a short deadline, and what it had not read is freed with it.
    func closedSlowConsumer(_ socket: Socket, bufferedBytes: Int) {
        slowConsumers.wrappingIncrement(ordering: .relaxed)
        logger.warning(
            "slow consumer closed",
            metadata: [
                "socket": "\(socket.id)", "user": "\(socket.user.id)", "buffered_bytes": "\(bufferedBytes)",
                "high_water_mark": "\(configuration.outboundHighWaterMark)",
            ])
        socket.closeOnLoop(code: CloseCode.slowConsumer, reason: "slow consumer", then: .abandon)
    }
}
