import NIOCore
import Switchboard

/// The counters and histograms of one event loop. Only that loop's thread touches it: the
/// channel handlers of the loop record into it without locks, and the orchestrator reads it by
/// submitting a task to the loop (``EventLoopStats``).
final class LoopStats {
    /// Deliveries whose embedded timestamp (unix ns) is at or after this count in the current
    /// window; `Int64.max` while no window is open.
    var windowStartNanos: Int64 = .max
    /// `message.new` frames counted in the window.
    var delivered = 0
    /// `message.new` frames from before the window, or after it closed.
    var stale = 0
    /// Delivery latencies of the window.
    var latency = LatencyRecorder()
    /// Every text or binary message received (for waiting until the server is quiet).
    var messagesReceived = 0
    /// `ack` envelopes that did not answer a pending request (publisher acks).
    var acks = 0
    /// `error` envelopes.
    var errors = 0
    /// The last `error` envelope seen, for the report.
    var lastError: String?
    /// `message.send` frames written in the window.
    var sent = 0
    /// Round trips of the closed loop (rtt).
    var roundTrips = LatencyRecorder()
    /// Connections the server closed (Close frame or TCP) while they were not closing.
    var closedByServer = 0
    /// Messages that arrived compressed (permessage-deflate) and were inflated.
    var inflated = 0
    /// Inflates the compressed messages of this loop's connections (no context takeover, so one
    /// stream serves them all, reset for each message): the server's own inflater.
    lazy var inflater = MessageDeflater(configuration: CompressionConfiguration())

    @inline(__always)
    func recordDelivery(sentAtNanos: Int64, now: Int64) {
        if sentAtNanos >= windowStartNanos {
            delivered += 1
            latency.record(nanoseconds: now - sentAtNanos)
        } else {
            stale += 1
        }
    }

    var counters: LoopCounters {
        LoopCounters(
            delivered: delivered, stale: stale, messagesReceived: messagesReceived, acks: acks, errors: errors,
            sent: sent, roundTrips: Int(roundTrips.count), closedByServer: closedByServer, lastError: lastError)
    }

    func openWindow(startNanos: Int64) {
        windowStartNanos = startNanos
        delivered = 0
        latency = LatencyRecorder()
        acks = 0
        errors = 0
        sent = 0
        roundTrips = LatencyRecorder()
    }

    func closeWindow() -> LoopMeasurement {
        windowStartNanos = .max
        return LoopMeasurement(counters: counters, latency: latency, roundTrips: roundTrips)
    }
}

/// Counter values of one loop, or their sum over all loops.
struct LoopCounters: Sendable {
    var delivered = 0
    var stale = 0
    var messagesReceived = 0
    var acks = 0
    var errors = 0
    var sent = 0
    var roundTrips = 0
    var closedByServer = 0
    var lastError: String?

    static func + (lhs: LoopCounters, rhs: LoopCounters) -> LoopCounters {
        LoopCounters(
            delivered: lhs.delivered + rhs.delivered, stale: lhs.stale + rhs.stale,
            messagesReceived: lhs.messagesReceived + rhs.messagesReceived, acks: lhs.acks + rhs.acks,
            errors: lhs.errors + rhs.errors, sent: lhs.sent + rhs.sent, roundTrips: lhs.roundTrips + rhs.roundTrips,
            closedByServer: lhs.closedByServer + rhs.closedByServer, lastError: lhs.lastError ?? rhs.lastError)
    }
}

/// Counters plus histograms of a closed window, merged over loops.
struct LoopMeasurement: Sendable {
    var counters = LoopCounters()
    var latency = LatencyRecorder()
    var roundTrips = LatencyRecorder()

    mutating func merge(_ other: LoopMeasurement) {
        counters = counters + other.counters
        latency.merge(other.latency)
        roundTrips.merge(other.roundTrips)
    }
}

/// The ``LoopStats`` of every loop of a group, and the cross-loop operations on them: each one
/// is a task submitted to every loop, never a lock taken per message.
struct EventLoopStats: Sendable {
    private let entries: [NIOLoopBound<LoopStats>]

    /// Creates one ``LoopStats`` on each loop of `group`.
    static func make(for group: any EventLoopGroup) async throws -> EventLoopStats {
        var entries: [NIOLoopBound<LoopStats>] = []
        for loop in group.makeIterator() {
            entries.append(try await loop.submit { NIOLoopBound(LoopStats(), eventLoop: loop) }.get())
        }
        return EventLoopStats(entries: entries)
    }

    private init(entries: [NIOLoopBound<LoopStats>]) {
        self.entries = entries
    }

    /// The stats of `loop`; call on that loop.
    func stats(on loop: any EventLoop) -> LoopStats {
        for entry in entries where entry.eventLoop === loop {
            return entry.value
        }
        preconditionFailure("an event loop outside the bench's group")
    }

    /// The counters summed over all loops.
    func counters() async -> LoopCounters {
        var total = LoopCounters()
        for entry in entries {
            if let counters = try? await entry.eventLoop.submit({ entry.value.counters }).get() {
                total = total + counters
            }
        }
        return total
    }

    /// Opens a measurement window: counters and histograms restart; deliveries sent before
    /// `startNanos` (unix ns) count as stale.
    func openWindow(startNanos: Int64) async {
        for entry in entries {
            try? await entry.eventLoop.submit { entry.value.openWindow(startNanos: startNanos) }.get()
        }
    }

    /// Closes the window; later deliveries count as stale. Returns what it measured, merged.
    func closeWindow() async -> LoopMeasurement {
        var total = LoopMeasurement()
        for entry in entries {
            if let measurement = try? await entry.eventLoop.submit({ entry.value.closeWindow() }).get() {
                total.merge(measurement)
            }
        }
        return total
    }

    /// The thread id of each loop, for per-thread CPU.
    func threadIDs() async -> [Int32] {
        var ids: [Int32] = []
        for entry in entries {
            if let id = try? await entry.eventLoop.submit({ ProcessStats.currentThreadID() }).get() {
                ids.append(id)
            }
        }
        return ids
    }
}
