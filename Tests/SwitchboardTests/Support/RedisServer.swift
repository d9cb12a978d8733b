// Test support: real redis-server instances on free loopback ports, each in a throw-away
// directory (removed at exit), ready when it answers PING (bounded), and never outliving the
// test process.
//
// A missing redis-server skips the tests that need one, with a note, unless
// SWITCHBOARD_REQUIRE_REDIS=1 (as `.ci/run` sets it), which turns it into a failure that names it.

import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import SwitchboardRedis

enum RedisTestError: Error, CustomStringConvertible {
    case missing(String)
    case startFailed(String)
    case timeout(String)

    var description: String {
        switch self {
        case .missing(let what): return "\(what) (install it, or run .ci/run, which does)"
        case .startFailed(let message): return "redis-server did not start: \(message)"
        case .timeout(let what): return "timed out: \(what)"
        }
    }
}

/// One redis-server process.
///
/// A small watcher shell kills it (SIGKILL) as soon as the standard input pipe from this process
/// closes: when `stop()` closes it, and when the test process exits or crashes (the kernel closes
/// the pipe), so no server outlives the run even without `atexit`.
///
/// `@unchecked Sendable`: `process` and `stdinPipe` are only touched under `lock`; the other
/// stored properties are immutable.
final class RedisServer: @unchecked Sendable {
    let port: Int
    let password: String?
    let directory: URL
    private let lock = NIOLock()
    private let process: Process
    private let stdinPipe: Pipe
    private let log: URL

    /// Whether a missing redis-server must fail the tests instead of skipping them.
    static var isRequired: Bool { ProcessInfo.processInfo.environment["SWITCHBOARD_REQUIRE_REDIS"] == "1" }

    static let executable: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    /// Trait of the tests that need redis-server.
    static var availability: ConditionTrait {
        .enabled(
            if: isRequired || executable != nil,
            "redis-server is not on PATH (apt-get install redis-server); set SWITCHBOARD_REQUIRE_REDIS=1 to fail instead")
    }

    /// The instance shared by the tests that do not stop, block or kill anything: started once,
    /// lazily. Tests keep to their own keys and channels.
    private static let sharedTask = Task { try await RedisServer.start() }

    static func shared() async throws -> RedisServer {
        try await sharedTask.value
    }

    var configuration: RedisConfiguration {
        RedisConfiguration(host: "127.0.0.1", port: port, password: password)
    }

    private init(port: Int, password: String?, directory: URL, process: Process, stdinPipe: Pipe, log: URL) {
        self.port = port
        self.password = password
        self.directory = directory
        self.process = process
        self.stdinPipe = stdinPipe
        self.log = log
    }

    /// Starts a private instance (on `port`, or a free one); returns once it answers PING.
    static func start(password: String? = nil, port fixedPort: Int? = nil, directory: URL? = nil) async throws -> RedisServer {
        guard let executable else { throw RedisTestError.missing("redis-server is not on PATH") }
        let directory = directory ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("switchboard-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        _ = directories.withLockedValue { $0.insert(directory.path) }
        var lastError = "no attempt"
        for _ in 0..<(fixedPort == nil ? 5 : 20) {
            let port = try fixedPort ?? freePort()
            let server = try launch(executable, port: port, password: password, directory: directory)
            switch await server.waitUntilReady(timeout: .seconds(10)) {
            case .ready:
                return server
            case .exited(let output):
                // A port taken between freePort() and the bind, or not ours: try another (or,
                // for a restart, the same again).
                lastError = output
                await server.stop()
                if fixedPort != nil { try await Task.sleep(for: .milliseconds(50)) }
            case .timedOut:
                await server.stop()
                throw RedisTestError.startFailed("no PONG on port \(port) within 10 s")
            }
        }
        throw RedisTestError.startFailed(lastError)
    }

    /// A new instance on this one's port, directory and password (after `stop()`).
    func restart() async throws -> RedisServer {
        try await RedisServer.start(password: password, port: port, directory: directory)
    }

    private static func launch(_ executable: String, port: Int, password: String?, directory: URL) throws -> RedisServer {
        var arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--dir", directory.path, "--save", "",
            "--appendonly", "no", "--enable-debug-command", "yes", "--daemonize", "no", "--loglevel", "warning",
            "--protected-mode", "no",
        ]
        if let password { arguments += ["--requirepass", password] }
        let log = directory.appendingPathComponent("redis-\(port).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // sh starts a watcher that kills it (SIGKILL) when our pipe on stdin reaches EOF (fd 3: a
        // background job's own stdin is /dev/null), then execs redis-server in its place, so the
        // process we started (and reap) is redis-server itself. (A `wait` in sh, tried first,
        // hung here after the kill, leaving sh and a zombie behind.)
        process.arguments = [
            "-c", "exec 3<&0; (read _ <&3; kill -9 $$ 2>/dev/null) & exec 3<&-; exec \"$0\" \"$@\" </dev/null",
            executable,
        ] + arguments
        let stdinPipe = Pipe()
        process.standardInput = stdinPipe
        let logHandle = try FileHandle(forWritingTo: log)
        process.standardOutput = logHandle
        process.standardError = logHandle
        try process.run()
        try? logHandle.close()
        return RedisServer(port: port, password: password, directory: directory, process: process, stdinPipe: stdinPipe, log: log)
    }

    private enum Readiness { case ready, exited(String), timedOut }

    /// PING until it answers (an error reply such as NOAUTH counts: the server is up), the
    /// process exits, or `timeout` passes.
    private func waitUntilReady(timeout: Duration) async -> Readiness {
        let deadline = ContinuousClock.now + timeout
        var configuration = self.configuration
        configuration.connectTimeout = .milliseconds(500)
        configuration.commandTimeout = .milliseconds(500)
        let pid = lock.withLock { process.processIdentifier }
        while ContinuousClock.now < deadline {
            if !isRunning {
                return .exited((try? String(contentsOf: log, encoding: .utf8)) ?? "exited")
            }
            if let connection = try? await RedisConnection.connect(configuration: configuration) {
                defer { Task { await connection.close() } }
                // Our server, not another process that holds the port: its pid is ours (sh
                // execs redis-server in place).
                if let info = try? await connection.send("INFO", "server").string {
                    if info.contains("process_id:\(pid)\r") { return .ready }
                    return .exited("port \(port) belongs to another process")
                }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return .timedOut
    }

    var isRunning: Bool { lock.withLock { process.isRunning } }

    /// Kills the server and waits (bounded) until its process has exited. The directory stays
    /// for `restart()`; it is removed when the test process exits.
    func stop() async {
        lock.withLock { try? stdinPipe.fileHandleForWriting.close() }
        let deadline = ContinuousClock.now + .seconds(5)
        while isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Stops the server as `SHUTDOWN SAVE` does: everything it ran is saved in its directory
    /// (`dump.rdb`, which `restart()` loads), then it exits. Waits (bounded) until it no longer
    /// accepts connections, which it does only once the save is done; then `stop()` reaps it.
    /// (`isRunning` cannot tell by itself: Foundation learns of the exit through a descriptor the
    /// watcher shell holds too, so a server that exits on its own looks alive until `stop()`.)
    func shutdownSaving() async throws {
        var configuration = self.configuration
        configuration.connectTimeout = .milliseconds(500)
        configuration.commandTimeout = .seconds(10)
        let connection = try await RedisConnection.connect(configuration: configuration)
        // The server exits without answering: the connection just closes.
        var reply = "no reply"
        do { reply = "\(try await connection.send("SHUTDOWN", "SAVE"))" } catch { reply = "\(error)" }
        await connection.close()
        let deadline = ContinuousClock.now + .seconds(10)
        while let probe = try? await RedisConnection.connect(configuration: configuration) {
            await probe.close()
            guard ContinuousClock.now < deadline else {
                throw RedisTestError.timeout("redis-server on port \(port) still accepts connections after SHUTDOWN SAVE (\(reply))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        await stop()
    }

    /// The servers' directories, removed at exit.
    private static let directories: NIOLockedValueBox<Set<String>> = {
        atexit { RedisServer.removeDirectories() }
        return NIOLockedValueBox([])
    }()

    private static func removeDirectories() {
        for path in directories.withLockedValue({ $0 }) {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// A free TCP port on 127.0.0.1 for a server, below the kernel's ephemeral range (32768 and
    /// up on Linux), so that no outgoing connection or port-0 listener of this process takes it
    /// between this check and redis-server's bind.
    static func freePort() throws -> Int {
        for _ in 0..<100 {
            let port = Int.random(in: 20000..<32768)
            if canBind(port) { return port }
        }
        throw RedisTestError.startFailed("no free port found")
    }

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return bound == 0
    }
}
