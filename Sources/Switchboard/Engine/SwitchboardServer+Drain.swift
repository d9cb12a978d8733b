import NIOCore

extension SwitchboardServer {
    /// Whether a drain has started (see ``drain()``): new handshakes get HTTP 503 `draining`, and
    /// a readiness check should report the node not ready.
    public var isDraining: Bool { drainState.withLockedValue { $0 != nil } }

    /// Drains the server, for a restart or a deploy: from the call on, handshakes are refused with
    /// HTTP 503 `draining`; the open connections are closed with 1012 (service restart) at times
    /// spread evenly over ``SwitchboardConfiguration/drainWindow``, each after the messages it is
    /// handling got their replies; returns once every connection has ended, or when
    /// ``SwitchboardConfiguration/drainTimeout`` has passed (the connections still open are then
    /// dropped). A second call waits for the same drain. Nothing re-opens the server: drain it
    /// only when it is about to stop.
    ///
    /// `serve` drains on SIGTERM and SIGINT; with Hummingbird, add ``SwitchboardDrainService``
    /// after the app to a `ServiceGroup`, or rely on the app's graceful shutdown, which starts a
    /// drain too (after the listening socket has closed, so new clients are refused rather than
    /// answered 503).
    public func drain() async {
        await startDrain().value
    }

    /// Starts the drain unless one has started; returns it.
    @discardableResult
    func startDrain() -> Task<Void, Never> {
        drainState.withLockedValue { state in
            if let task = state { return task }
            // Started here, not in the task: the window is counted from this call.
            let sleep = startTimer()
            let task = Task { await self.runDrain(sleep: sleep) }
            state = task
            return task
        }
    }

    /// How many times a drain closes a slice of each loop's connections over `window`: every
    /// 50 ms, at most 100 times (one step for a window of zero).
    static func drainSteps(over window: Duration) -> Int {
        guard window > .zero else { return 1 }
        return min(100, max(1, Int((window / .milliseconds(50)).rounded(.up))))
    }

    private func runDrain(sleep: @escaping @Sendable (Duration) async throws -> Void) async {
        let window = configuration.drainWindow
        let timeout = configuration.drainTimeout
        let hubs = allHubs
        let drained = hubs.map { hub in hub.eventLoop.flatSubmit { hub.beginDrain() } }
        let open = await connectionCount()
        logger.info(
            "draining",
            metadata: ["connections": "\(open)", "window_s": "\(window.seconds)", "timeout_s": "\(timeout.seconds)"]
        )
        let steps = Self.drainSteps(over: window)
        let finished = await withTaskGroup(of: DrainOutcome.self) { group in
            group.addTask {
                // A few timers for the whole server rather than one per connection: each step
                // closes the next slice of every loop's connections.
                for step in 1...steps {
                    do {
                        try await sleep(window * step / steps)
                    } catch {
                        break
                    }
                    for hub in hubs {
                        hub.eventLoop.execute { hub.drainStep(step, of: steps) }
                    }
                }
                return .stepsTaken
            }
            group.addTask {
                // Over as soon as no connection is left, even before the last step (clients that
                // left by themselves).
                for future in drained {
                    try? await future.get()
                }
                return .drained
            }
            group.addTask {
                try? await sleep(timeout)
                return .timedOut
            }
            var outcome = DrainOutcome.stepsTaken
            while outcome == .stepsTaken, let next = await group.next() {
                outcome = next
            }
            if outcome == .timedOut {
                // The connections still open are dropped, so that the wait for them ends too.
                for hub in hubs {
                    hub.eventLoop.execute { hub.dropAll() }
                }
            }
            group.cancelAll()
            return outcome == .drained
        }
        logger.info(finished ? "drained" : "drain timed out; remaining connections dropped")
    }
}

private enum DrainOutcome: Sendable {
    case stepsTaken, drained, timedOut
}

extension Duration {
    /// In seconds, for logs.
    fileprivate var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
