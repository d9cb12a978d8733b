/// A token bucket: up to `burst` at once, then `perSecond` on average. The bucket starts full and
/// refills continuously; what it refuses does not use it up.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    /// The sustained rate, per second (may be fractional, e.g. `0.5` for one every 2 s).
    public var perSecond: Double
    /// How many may come at once, after a quiet period. At least 1.
    public var burst: Int

    public init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }

    /// `20/s burst 40`.
    public var description: String {
        let rate = perSecond == perSecond.rounded() && perSecond < 1e15 ? String(Int64(perSecond)) : String(perSecond)
        return "\(rate)/s burst \(burst)"
    }

    /// Nanoseconds between two tokens, and how far ahead of now the bucket's schedule may run
    /// before it refuses (`burst - 1` intervals): the two numbers of the generic cell rate
    /// algorithm, the token bucket in one timestamp. Clamped so that no arithmetic on them can
    /// overflow (an interval of at most 10⁶ s, a tolerance of at most 10¹⁸ ns).
    var schedule: (interval: Int64, tolerance: Int64) {
        let rate = perSecond.isFinite && perSecond > 0 ? perSecond : 1e-6
        let interval = min(max(1e9 / rate, 1), 1e15)
        let tolerance = min(interval * Double(max(burst, 1) - 1), 1e18)
        return (Int64(interval), Int64(tolerance))
    }
}
