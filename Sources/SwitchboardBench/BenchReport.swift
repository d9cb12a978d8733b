import Foundation

/// The outcome of one scenario.
public enum BenchResult: Sendable, Equatable {
    case fanout(FanoutResult)
    case sweep(SweepResult)
    case chat(ChatResult)
    case idle(IdleResult)
    case rtt(RTTResult)
    case connect(ConnectResult)
    case resume(ResumeResult)
    case history(HistoryResult)
    case soak(SoakResult)
}

/// A finished bench run: what ran where, and its result, as a table (``table()``) or one JSON
/// object (``json()``, snake_case keys).
public struct BenchReport: Sendable, Equatable, Encodable {
    /// The scenario that ran.
    public var scenario: BenchScenario
    /// The server URL (several, separated by spaces, when connections were spread over nodes).
    public var url: String
    /// Start time, ISO 8601 (UTC).
    public var startedAt: String
    /// Event-loop threads of the generator.
    public var generatorThreads: Int
    /// The server process, if given.
    public var serverPid: Int32?
    /// The scenario's result.
    public var result: BenchResult

    private enum CodingKeys: String, CodingKey {
        case scenario, url, startedAt, generatorThreads, serverPid
    }

    /// Encodes the common fields and the result's fields side by side, in one object.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(scenario, forKey: .scenario)
        try container.encode(url, forKey: .url)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(generatorThreads, forKey: .generatorThreads)
        try container.encodeIfPresent(serverPid, forKey: .serverPid)
        switch result {
        case .fanout(let value): try value.encode(to: encoder)
        case .sweep(let value): try value.encode(to: encoder)
        case .chat(let value): try value.encode(to: encoder)
        case .idle(let value): try value.encode(to: encoder)
        case .rtt(let value): try value.encode(to: encoder)
        case .connect(let value): try value.encode(to: encoder)
        case .resume(let value): try value.encode(to: encoder)
        case .history(let value): try value.encode(to: encoder)
        case .soak(let value): try value.encode(to: encoder)
        }
    }

    /// One JSON object, keys sorted and in snake_case.
    public func json(pretty: Bool = false) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// The result's figures, one per line, for a terminal.
    public func table() -> String {
        var rows: [(String, String)] = []
        var extra = ""
        switch result {
        case .fanout(let value):
            rows.append(("subscribers", "\(value.step.subscribers) in \(value.room)"))
            rows += Self.connectRows(value.connect)
            rows.append(("duration", "\(fixed(value.durationS, 1)) s, \(value.payloadBytes)-byte content"))
            rows += Self.stepRows(value.step)
        case .sweep(let value):
            rows.append(("subscribers", "\(value.steps.first?.subscribers ?? value.connect.connected - 1) in \(value.room)"))
            rows += Self.connectRows(value.connect)
            rows.append(("criteria", value.criteria))
            rows.append(("max sustained rate", "\(fixed(value.maxSustainedRate, 1)) msg/s"))
            rows.append(("max sustained", "\(fixed(value.maxSustainedDeliveriesPerS, 0)) deliveries/s"))
            if let failed = value.endedBy {
                rows.append(("ended by", "rate \(fixed(failed.rateTarget, 1)): \(failed.reason ?? "failed")"))
            } else {
                rows.append(("ended by", "no step failed (step or time limit reached)"))
            }
            if let skipped = value.refineSkipped { rows.append(("bisection", "stopped: \(skipped)")) }
            rows.append(("generator bound", value.generatorBound ? "YES: the generator was ≥ 90% busy; the ceiling may be its own" : "no"))
            rows.append(("sweep time", "\(fixed(value.sweepS, 0)) s, \(fixed(value.stepS, 1)) s per step"))
            extra = "\n" + Self.stepTable(value.steps)
        case .chat(let value):
            rows.append(("rooms × members", "\(value.rooms) × \(value.members), \(fixed(value.ratePerMember, 2)) msg/s per member"))
            rows += Self.connectRows(value.connect)
            rows.append(("sent", "\(value.sent) in \(fixed(value.durationS, 1)) s (\(fixed(value.rateActual, 1)) msg/s)"))
            rows.append(("delivered", "\(value.delivered) / \(value.expected) (\(fixed(value.deliveredFraction * 100, 2))%)"))
            rows.append(("deliveries/s", fixed(value.deliveriesPerS, 0)))
            rows.append(("latency", Self.latencyText(value.latency)))
            rows.append(("acks / errors", "\(value.acks) / \(value.errors)"))
            rows += Self.cpuRows(value.cpu)
            rows.append(("verdict", value.pass ? "pass" : "FAIL"))
        case .idle(let value):
            rows += Self.connectRows(value.connect)
            rows.append(("server RSS before", "\(value.rssBeforeKib) KiB"))
            rows.append(("server RSS after", "\(value.rssAfterKib) KiB (after \(fixed(value.settleS, 1)) s settle, \(value.aliveAtMeasurement) open)"))
            rows.append(("per connection", "\(fixed(value.kibPerConnection, 2)) KiB"))
            rows += Self.cpuRows(value.cpu).map { ($0.0 + " (connecting)", $0.1) }
        case .rtt(let value):
            rows.append(("clients", "\(value.clients), each alone in its room"))
            rows += Self.connectRows(value.connect)
            rows.append(("acks", "\(value.acks) in \(fixed(value.durationS, 1)) s = \(fixed(value.acksPerS, 0)) acks/s"))
            rows.append(("errors", "\(value.errors)"))
            rows.append(("round trip", Self.latencyText(value.rtt)))
            rows += Self.cpuRows(value.cpu)
        case .connect(let value):
            rows.append(("connectors", "\(value.clients)"))
            rows.append(("handshakes", "\(value.handshakes) in \(fixed(value.durationS, 1)) s = \(fixed(value.handshakesPerS, 0)) handshakes/s"))
            let failures = value.failures.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            rows.append(("failed", value.failed == 0 ? "0" : "\(value.failed): \(failures)"))
            rows.append(("connect time", Self.latencyText(value.connectTime)))
            rows += Self.cpuRows(value.cpu)
        case .resume(let value):
            rows.append(("subscribers", "\(value.storm.subscribers) in \(value.room)"))
            rows += Self.connectRows(value.connect)
            rows += Self.stormRows(value.storm)
            rows += Self.replayRows(value.replay)
        case .history(let value):
            rows.append(("published", "\(value.acked) acked in \(value.rooms) rooms × \(value.eventsPerRoom), content \(value.payloadBytes) bytes"))
            rows.append(("frame", "\(value.frameBytes) bytes per kept message.new"))
            rows.append(("server RSS", "\(value.rssBeforeKib) → \(value.rssAfterKib) KiB"))
            rows.append(("per stored event", "\(fixed(value.bytesPerEvent, 1)) bytes = \(fixed(value.ratioToFrame, 2)) × the frame (aim ≤ 1.5 × + 64 bytes = \(fixed(Double(value.frameBytes) * 1.5 + 64, 0)))"))
            rows += Self.cpuRows(value.cpu).map { ($0.0 + " (publishing)", $0.1) }
        case .soak(let value):
            rows += Self.soakRows(value)
        }
        let width = rows.map(\.0.count).max() ?? 0
        var lines = ["switchboard bench \(scenario.rawValue)  \(url)  (\(generatorThreads) generator threads, \(startedAt))"]
        for (label, value) in rows {
            lines.append("  " + label.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
        }
        return lines.joined(separator: "\n") + extra
    }

    private static func connectRows(_ connect: ConnectSummary) -> [(String, String)] {
        var text = "\(connect.connected)/\(connect.requested) in \(fixed(connect.seconds, 1)) s"
        if connect.failed > 0 { text += ", \(connect.failed) failed (\(connect.firstError ?? "?"))" }
        return [("connected", text)]
    }

    private static func stormRows(_ storm: ResumeStorm) -> [(String, String)] {
        var rows: [(String, String)] = [
            ("missed events", "\(storm.events) sent while all were away (\(storm.publisherAcks) acked, \(storm.publisherErrors) errors)"),
        ]
        rows += connectRows(storm.reconnect).map { ("reconnected", $0.1) }
        rows.append(("delivered", "\(storm.delivered) / \(storm.expected) (\(fixed(storm.deliveredFraction * 100, 2))%)"))
        rows.append(("duplicates / gaps", "\(storm.duplicates) / \(storm.gaps)"))
        rows.append(("not recovered", "\(storm.notRecovered)" + (storm.notRecovered > 0 ? " (state.refresh instead of the events)" : "")))
        if storm.notRecovered > 0 {
            // The usual cause, which the bench cannot see from outside: the server's limits.
            rows.append((
                "note",
                "each subscriber missed \(storm.events) events: compare the server's --max-replay and --history-size"
            ))
        }
        var caughtUp = "\(fixed(storm.catchUpS, 3)) s from the first reconnect to the last subscriber caught up"
        if storm.notCaughtUp > 0 { caughtUp += "; \(storm.notCaughtUp) never did" }
        rows.append(("all caught up", caughtUp))
        rows.append(("catch-up", latencyText(storm.catchUp) + ", hello → last missed event" + (storm.notRecovered > 0 ? " or state.refresh" : "")))
        if let error = storm.firstError { rows.append(("first failure", error)) }
        rows += cpuRows(storm.cpu)
        rows.append(("verdict", storm.pass ? "pass" : "FAIL"))
        return rows
    }

    private static func soakRows(_ soak: SoakResult) -> [(String, String)] {
        var rows: [(String, String)] = [
            ("users", "\(soak.users) in \(soak.rooms) rooms, \(fixed(soak.ratePerUser, 2)) msg/s each, connections living up to \(fixed(soak.maxLifetimeS, 1)) s"),
            ("churn", "\(fixed(soak.durationS, 0)) s: \(soak.connections) connections, \(soak.connectFailures) connects and \(soak.enterFailures) joins/resumes failed"
                + (soak.firstError.map { " (first: \($0))" } ?? "")),
            ("ended by", "TCP close \(soak.drops.abrupt), mid-frame \(soak.drops.midFrame), after a send \(soak.drops.afterSend), "
                + "Close 1000 \(soak.drops.graceful), the server \(soak.drops.byServer); half handshakes \(soak.drops.halfHandshakes)"),
            ("message.send", "\(soak.acked) acked, \(soak.errors) errors"),
            ("room events", "\(soak.received) received, \(soak.rawDuplicates) raw duplicates, \(soak.replayedAgain) replayed again by design"),
            ("first duplicate", soak.firstDuplicate ?? "none"),
            ("resumes", "\(soak.notRecovered) not recovered, \(soak.epochChanges) epoch changes"),
            ("verified", "\(soak.verified)/\(soak.users) users resumed at the end, \(soak.notCaughtUp) did not catch up"),
            ("lost", "\(soak.ackedLost) acked events, \(soak.missingEvents) positions"),
            ("members left", "\(soak.membersLeft)"),
        ]
        func footprint(_ value: ServerFootprint?) -> String {
            value.map { "\($0.fds) fds (\($0.sockets) sockets), \($0.threads) threads, RSS \($0.rssKib) KiB" } ?? "n/a (no --server-pid)"
        }
        rows.append(("server idle before", footprint(soak.serverBefore)))
        rows.append(("server peak", footprint(soak.serverPeak)))
        rows.append(("server after", footprint(soak.serverAfter) + " (\(fixed(soak.settleS, 1)) s after the last close)"))
        rows += cpuRows(soak.cpu)
        rows.append(("verdict", soak.pass ? "pass" : "FAIL"))
        return rows
    }

    private static func replayRows(_ replay: ReplayResult) -> [(String, String)] {
        let time = replay.replayMs.map { "\(fixed($0, 2)) ms" } ?? "did not finish (\(replay.error ?? "?"))"
        var rows: [(String, String)] = [
            ("replay", "1 client, \(replay.events) missed events in \(replay.room): \(time) from hello to the last"),
        ]
        let order = replay.complete
            ? "all \(replay.received) once, in order"
            : "INCOMPLETE: \(replay.received)/\(replay.events) received, \(replay.duplicates) duplicates, \(replay.gaps) gaps"
                + (replay.recovered ? "" : ", not recovered")
        rows.append(("replayed", order))
        return rows
    }

    private static func stepRows(_ step: FanoutStep) -> [(String, String)] {
        var rows: [(String, String)] = [
            ("rate", "\(fixed(step.rateTarget, 1)) msg/s asked, \(fixed(step.rateActual, 1)) achieved (\(step.sent) sent, \(step.publisherAcks) acked)"),
            ("delivered", "\(step.delivered) / \(step.expected) (\(fixed(step.deliveredFraction * 100, 2))%)"),
            ("deliveries/s", fixed(step.deliveriesPerS, 0)),
            ("latency", latencyText(step.latency)),
        ]
        if step.errors > 0 { rows.append(("errors", "\(step.errors)")) }
        if step.subscribersAliveAfter < step.subscribers {
            rows.append(("disconnected", "\(step.subscribers - step.subscribersAliveAfter) subscribers"))
        }
        rows += cpuRows(step.cpu)
        rows.append(("verdict", step.pass ? "pass" : "FAIL: \(step.reason ?? "")"))
        return rows
    }

    private static func latencyText(_ latency: LatencySummary) -> String {
        guard latency.count > 0 else { return "no samples" }
        return "p50 \(fixed(latency.p50Ms, 2)) ms, p90 \(fixed(latency.p90Ms, 2)) ms, p99 \(fixed(latency.p99Ms, 2)) ms, "
            + "max \(fixed(latency.maxMs, 2)) ms (\(latency.count) samples)"
    }

    private static func cpuRows(_ cpu: CPUUsage) -> [(String, String)] {
        var generator = "\(fixed(cpu.generatorCPUPct, 1))% of one core"
        if let busiest = cpu.generatorBusiestLoopPct, cpu.generatorCores > 1 {
            generator += " (busiest loop \(fixed(busiest, 1))%, \(cpu.generatorCores) loops)"
        }
        if cpu.generatorBound { generator += "  ← GENERATOR-BOUND: the result may be the generator's limit" }
        var rows = [("generator CPU", generator)]
        rows.append(("server CPU", cpu.serverCPUPct.map { "\(fixed($0, 1))% of one core" } ?? "n/a (no --server-pid)"))
        if let other = cpu.otherCPUPct { rows.append(("other CPU", "\(fixed(other, 1))% (rest of the machine)")) }
        return rows
    }

    private static func stepTable(_ steps: [FanoutStep]) -> String {
        let header = ["step", "rate", "actual", "delivered", "deliv/s", "p50 ms", "p99 ms", "max ms", "gen CPU", "srv CPU", "result"]
        var table: [[String]] = [header]
        for (index, step) in steps.enumerated() {
            table.append([
                "\(index + 1)" + (step.retry == true ? "r" : ""),
                fixed(step.rateTarget, 1), fixed(step.rateActual, 1),
                fixed(step.deliveredFraction * 100, 2) + "%", fixed(step.deliveriesPerS, 0),
                fixed(step.latency.p50Ms, 2), fixed(step.latency.p99Ms, 2), fixed(step.latency.maxMs, 1),
                fixed(step.cpu.generatorCPUPct, 0) + "%", step.cpu.serverCPUPct.map { fixed($0, 0) + "%" } ?? "-",
                step.pass ? "pass" : "FAIL " + (step.reason ?? ""),
            ])
        }
        var widths = Array(repeating: 0, count: header.count)
        for row in table {
            for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        return table.map { row in
            "  " + row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
