/// How far a drain has got on one event loop (see ``LoopHub/drainStep(_:of:)``).
struct DrainProgress {
    /// The loop's connections when the drain began: each step closes its share of them.
    var initial: Int
    /// Connections the drain has sent 1012 so far.
    var closed = 0
    /// How many should have been sent 1012 by now.
    var target = 0
    /// Whether the last step has run: every connection still open is due, also one that opens now.
    var final = false
    /// Whether a look for due connections that were busy is scheduled.
    var retryScheduled = false
}
