/// A ``Broker`` whose publish completes in the caller's turn, with no I/O: the in-memory one.
///
/// The rooms layer publishes through ``publishNow(_:)`` when its broker is one, so that a message
/// handler can answer in the same loop turn, with no future or closure allocated per message. A
/// broker that needs I/O (Redis) does not conform; ``Broker/publish(_:on:)`` stays the contract
/// either way, and both must behave the same.
public protocol SynchronousBroker: Broker {
    /// ``Broker/publish(_:on:)`` without a future: the position, once the event has been delivered.
    func publishNow(_ publication: Publication) -> EventID?
}
