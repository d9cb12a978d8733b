import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import Switchboard
import SwitchboardRedis

/// `switchboard redis-bench`: publishes per second through ``RedisBroker``'s Lua script, against
/// what Redis's own `redis-benchmark` reaches with the same `EVALSHA` and as many commands in
/// flight, measured one after the other on the same Redis.
struct RedisBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis-bench",
        abstract: "Publishes per second through the Redis broker's Lua script, against redis-benchmark's EVALSHA (loopback only).",
        discussion: """
            Publishes --publishes events of --payload-bytes over --rooms rooms through RedisBroker.publish, \
            --in-flight at a time (the client pipelines them on its --pool connections), then runs \
            redis-benchmark (when on PATH) with the same script, keys and arguments: --pool \
            connections, in-flight/pool commands pipelined on each. Prints both rates and their ratio. \
            Writes to the Redis it is given: use a throw-away one.
            """
    )

    @Option(help: "Redis URL; only 127.0.0.1, localhost or ::1.")
    var redis: String = "redis://127.0.0.1:6379"

    @Option(help: "Events to publish.")
    var publishes: Int = 100_000

    @Option(help: "Publishes in flight at once.")
    var inFlight: Int = 64

    @Option(help: "Command connections of the broker's client.")
    var pool: Int = 2

    @Option(help: "Rooms the events are spread over.")
    var rooms: Int = 100

    @Option(help: "Bytes of each event's data.")
    var payloadBytes: Int = 100

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    func validate() throws {
        guard publishes >= 1, inFlight >= 1, pool >= 1, rooms >= 1, payloadBytes >= 0 else {
            throw ValidationError("--publishes, --in-flight, --pool and --rooms must be at least 1")
        }
        guard inFlight >= pool else { throw ValidationError("--in-flight must be at least --pool") }
        let configuration: RedisConfiguration
        do {
            configuration = try RedisConfiguration(url: redis)
        } catch {
            throw ValidationError("--redis: \(error)")
        }
        guard ["127.0.0.1", "localhost", "::1"].contains(configuration.host) else {
            throw ValidationError("--redis: only a Redis on loopback (127.0.0.1, localhost, ::1)")
        }
    }

    struct Result: Encodable {
        var publishes: Int
        var errors: Int
        var seconds: Double
        var publishesPerSecond: Double
        var inFlight: Int
        var pool: Int
        var redisBenchmarkPerSecond: Double?
        var ratio: Double?
        var redisBenchmarkCommand: String?
    }

    func run() async throws {
        var configuration = try RedisConfiguration(url: redis)
        configuration.poolSize = pool
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let broker = try RedisBroker(configuration: configuration, clock: ContinuousClock(), eventLoopGroup: group)
        let service = Task { try await broker.run() }
        defer { service.cancel() }
        try await broker.waitUntilConnected(timeout: .seconds(10))

        let payload = ByteBuffer(string: "{\"text\":\"" + String(repeating: "x", count: payloadBytes) + "\"}")
        let publications = (0..<rooms).map { Publication(room: "bench-\($0)", event: "message.new", dataJSON: payload) }
        // Warm-up: the script is loaded, the connections are up.
        for publication in publications { _ = try await broker.publish(publication, on: group.next()).get() }

        let loop = group.next()
        let started = ContinuousClock.now
        let errors = try await Self.pump(broker, publications, total: publishes, inFlight: inFlight, on: loop)
        let seconds = Self.seconds(ContinuousClock.now - started)
        var result = Result(
            publishes: publishes, errors: errors, seconds: seconds, publishesPerSecond: Double(publishes) / seconds,
            inFlight: inFlight, pool: pool)

        if let arguments = try await redisBenchmarkArguments(configuration, sample: publications[0], broker: broker) {
            result.redisBenchmarkCommand = (["redis-benchmark"] + arguments).joined(separator: " ")
            let rate = try Self.runRedisBenchmark(arguments)
            result.redisBenchmarkPerSecond = rate
            result.ratio = result.publishesPerSecond / rate
        }
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys]
            Console.line(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            Console.line("RedisBroker.publish: \(publishes) in \(String(format: "%.2f", seconds)) s = \(Int(result.publishesPerSecond)) publishes/s (\(errors) errors, \(inFlight) in flight on \(pool) connections)")
            if let rate = result.redisBenchmarkPerSecond, let ratio = result.ratio {
                Console.line("redis-benchmark EVALSHA: \(Int(rate)) /s; RedisBroker reaches \(String(format: "%.2f", ratio))× of it")
            } else {
                Console.line("redis-benchmark not found on PATH: no comparison")
            }
        }
        service.cancel()
        // The broker's connections close on the group's loop: the service ends before the group.
        _ = await service.result
        try await group.shutdownGracefully()
    }

    /// Keeps `inFlight` publishes outstanding on `loop` until `total` were answered; returns the
    /// number that failed.
    static func pump(_ broker: RedisBroker, _ publications: [Publication], total: Int, inFlight: Int, on loop: any EventLoop) async throws -> Int {
        final class Counts {
            var sent = 0
            var answered = 0
            var errors = 0
        }
        let done = loop.makePromise(of: Int.self)
        loop.execute {
            let counts = NIOLoopBound(Counts(), eventLoop: loop)
            @Sendable func next() {
                let state = counts.value
                guard state.sent < total else { return }
                let publication = publications[state.sent % publications.count]
                state.sent += 1
                broker.publish(publication, on: loop).whenComplete { outcome in
                    let state = counts.value
                    if case .failure = outcome { state.errors += 1 }
                    state.answered += 1
                    if state.answered == total { done.succeed(state.errors) } else { next() }
                }
            }
            for _ in 0..<min(inFlight, total) { next() }
        }
        return try await done.futureResult.get()
    }

    /// The `redis-benchmark` arguments that run the publish script as ``RedisBroker`` does, or
    /// `nil` when `redis-benchmark` is not on `PATH`.
    func redisBenchmarkArguments(_ configuration: RedisConfiguration, sample: Publication, broker: RedisBroker) async throws -> [String]? {
        guard Self.executable("redis-benchmark") != nil else { return nil }
        let hash = try await broker.client.send("SCRIPT", "LOAD", RESPCommandArgument(RedisBroker.publishScript.source))
        guard let sha = hash.string else { throw BenchFailure("SCRIPT LOAD answered \(hash)") }
        let (prefix, suffix) = sample.envelopeAroundPosition()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // `__rand_int__` is replaced by a number below -r in each command: the rooms of the run.
        let room = "bench-rb-__rand_int__"
        return [
            "-h", configuration.host, "-p", String(configuration.port), "-c", String(pool), "-P", String(max(inFlight / pool, 1)),
            "-n", String(publishes), "-r", String(rooms), "--csv",
            "EVALSHA", sha, "2", "\(broker.keyPrefix){\(room)}:stream", "\(broker.keyPrefix){\(room)}:history",
            String(buffer: prefix), String(buffer: suffix), String(now), String(broker.history.retention.components.seconds * 1000),
            String(broker.history.maxEventsPerRoom), "bench-epoch", "\(broker.keyPrefix)room:\(room)", "-",
        ]
    }

    /// Runs `redis-benchmark` and returns its requests per second, from its CSV output.
    static func runRedisBenchmark(_ arguments: [String]) throws -> Double {
        guard let path = executable("redis-benchmark") else { throw BenchFailure("redis-benchmark is not on PATH") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        // `"test","rps",…` then `"EVALSHA …","12345.67",…`
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("\"EVALSHA") {
            // The test's name holds the command's arguments, commas included: rps is the seventh
            // field from the end.
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            if fields.count >= 8, let rate = Double(fields[fields.count - 7].trimmingCharacters(in: CharacterSet(charactersIn: "\""))) { return rate }
        }
        throw BenchFailure("redis-benchmark exited with \(process.terminationStatus) and no rate: \(text.prefix(500))")
    }

    static func executable(_ name: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// A failed benchmark step, said as it is (without the command's usage).
struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
