import Foundation
import Logging
import ServiceLifecycle

/// A node's time for what it keeps in Redis (retention, expiry), read from an injected clock and
/// sent to the scripts as Unix milliseconds: every node's scripts compare the same kind of
/// number, and tests move a clock instead of waiting.
struct NodeTime: Sendable {
    /// Unix time now, in milliseconds.
    let now: @Sendable () -> Int64
    /// Waits `duration` on the clock (refresh loops).
    let sleep: @Sendable (Duration) async throws -> Void

    init<C: Clock & Sendable>(clock: C) where C.Duration == Duration {
        let startInstant = clock.now
        let startMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        self.now = { startMilliseconds + Self.milliseconds(startInstant.duration(to: clock.now)) }
        self.sleep = { try await clock.sleep(for: $0) }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    /// A random id for this node's entries and messages, in base 36.
    static func nodeID() -> String {
        String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    /// Runs `body` every `interval` on the clock until a graceful shutdown or cancellation (the
    /// stores' refresh loops). A turn that fails is logged and the next one comes all the same.
    func everyTurn(of interval: Duration, logger: Logger, failure: String, _ body: @escaping @Sendable () async throws -> Void) async {
        let sleep = self.sleep
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await sleep(interval)
                } catch {
                    return
                }
                do {
                    try await body()
                } catch {
                    logger.warning("\(failure)", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
