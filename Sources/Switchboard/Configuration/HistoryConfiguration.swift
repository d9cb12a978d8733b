/// How long and how much of each room's history a broker keeps, and how far back a reconnecting
/// client may resume. Every value has a production default.
public struct HistoryConfiguration: Sendable, Equatable {
    /// An event is kept this long after it was published, then dropped (each event by its own
    /// age). Default 1 hour.
    public var retention: Duration
    /// Most events kept per room; older ones are dropped first. Default 1000.
    public var maxEventsPerRoom: Int
    /// Most bytes the whole server's history may hold (the events' frames plus bookkeeping). Past
    /// it the oldest events are dropped, from the rooms whose oldest event is oldest. Default 256 MiB.
    public var maxBytes: Int
    /// Most events replayed to one connection for one room; a client further behind gets
    /// `state.refresh` instead. Default 1000. The server applies it (from its own
    /// configuration), whatever the broker; it also bounds the events a room buffers for the
    /// connections that are resuming in it.
    public var maxReplay: Int
    /// Most events a connection is sent as a room's default snapshot (the standalone server's
    /// chat rooms). Default 50.
    public var snapshotEvents: Int

    /// Creates a configuration; every parameter has the default documented on its property.
    public init(
        retention: Duration = .seconds(3600),
        maxEventsPerRoom: Int = 1000,
        maxBytes: Int = 256 << 20,
        maxReplay: Int = 1000,
        snapshotEvents: Int = 50
    ) {
        self.retention = retention
        self.maxEventsPerRoom = maxEventsPerRoom
        self.maxBytes = maxBytes
        self.maxReplay = maxReplay
        self.snapshotEvents = snapshotEvents
    }
}
