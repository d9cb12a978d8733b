import Switchboard

/// What the operations page shows, sent once a second as `ops.stats` in the operations room:
/// gauges as they are, counters as totals and as rates over the last interval.
struct OpsStats: Encodable, Sendable {
    var node: String
    var uptimeSeconds: Double
    var ready: Bool
    var notReadyReason: String?
    var draining: Bool
    var connections: Int
    var rooms: Int
    var messagesIn: Int
    var messagesOut: Int
    var deliveries: Int
    var bytesOut: Int
    var messagesInPerSecond: Double
    var messagesOutPerSecond: Double
    var deliveriesPerSecond: Double
    var bytesOutPerSecond: Double
    var replayedEvents: Int
    var refreshes: Int
    var closeCodes: [String: Int]
    var handshakes: [String: Int]
    var slowConsumerCloses: Int
    var rateLimitedEvents: Int
    var rateLimitCloses: Int
    var rateLimitedHandshakes: Int

    init(node: String, uptime: Double, notReady: String?, now: SwitchboardMetricsSnapshot, before: SwitchboardMetricsSnapshot?, seconds: Double) {
        self.node = node
        uptimeSeconds = uptime
        ready = notReady == nil
        notReadyReason = notReady
        draining = now.draining
        connections = now.connections
        rooms = now.rooms
        messagesIn = now.loops.messagesIn
        messagesOut = now.loops.messagesOut
        deliveries = now.loops.deliveries
        bytesOut = now.loops.bytesOut
        let rate = { (current: Int, previous: Int?) -> Double in
            guard let previous, seconds > 0 else { return 0 }
            return Double(max(0, current - previous)) / seconds
        }
        messagesInPerSecond = rate(now.loops.messagesIn, before?.loops.messagesIn)
        messagesOutPerSecond = rate(now.loops.messagesOut, before?.loops.messagesOut)
        deliveriesPerSecond = rate(now.loops.deliveries, before?.loops.deliveries)
        bytesOutPerSecond = rate(now.loops.bytesOut, before?.loops.bytesOut)
        replayedEvents = now.loops.replayedEvents
        refreshes = now.loops.refreshes
        closeCodes = Dictionary(uniqueKeysWithValues: now.loops.closes.map { (String($0.key), $0.value) })
        handshakes = now.handshakes
        slowConsumerCloses = now.slowConsumerCloses
        rateLimitedEvents = now.rateLimits.eventsLimited
        rateLimitCloses = now.rateLimits.connectionsClosed
        rateLimitedHandshakes = now.rateLimits.handshakesLimited
    }
}
