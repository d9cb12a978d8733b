import Foundation

/// The `switchboard` executable built beside the test bundle, run as a child process.
final class CLIProcess: @unchecked Sendable {
    // @unchecked Sendable: `output` is only touched under `lock`; `process` is started once in
    // `init` and then only read or terminated.
    private let process = Process()
    /// The process's id.
    var processIdentifier: Int32 { process.processIdentifier }
    private let lock = NSLock()
    private var output = ""
    /// The child's standard input, when the test writes to it.
    private let input: Pipe?

    /// The built `switchboard` binary: a sibling of the test bundle in the build folder.
    static var executable: URL {
        get throws { try executable(named: "switchboard") }
    }

    /// Another executable of the package built beside the test bundle (`ChatExample`, say).
    static func executable(named name: String) throws -> URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        throw TestClientError.connectFailed("\(name) executable not found near \(CommandLine.arguments[0]); run `swift build` first")
    }

    /// Runs `switchboard arguments…` to completion (bounded) and returns its standard output.
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(30)) async throws -> String {
        let process = try CLIProcess(arguments, environment: environment)
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                process.terminate()
                throw TestClientError.timeout("switchboard \(arguments.joined(separator: " ")) still running after \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return process.text
    }

    /// Starts `switchboard arguments…`; with `input`, the test writes its standard input
    /// (``write(line:)``, ``closeInput()``), else it reads nothing. Its standard error (the log)
    /// goes to the file `standardError` (created or truncated) when given, else nowhere.
    init(_ arguments: [String], environment: [String: String] = [:], input: Bool = false, standardError: URL? = nil, executable: String = "switchboard") throws {
        self.input = input ? Pipe() : nil
        process.executableURL = try Self.executable(named: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        if let standardError {
            _ = FileManager.default.createFile(atPath: standardError.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: standardError)
        } else {
            process.standardError = FileHandle.nullDevice
        }
        if let input = self.input { process.standardInput = input } else { process.standardInput = FileHandle.nullDevice }
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            self.output += String(decoding: data, as: UTF8.self)
            self.lock.unlock()
        }
        try process.run()
    }

    /// The child's process id (for reading /proc/PID).
    var pid: Int32 { process.processIdentifier }

    /// Writes `line` and a newline to the child's standard input.
    func write(line: String) {
        input?.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    /// Ends the child's standard input.
    func closeInput() {
        try? input?.fileHandleForWriting.close()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return output
    }

    var isRunning: Bool { process.isRunning }

    /// The exit status once the process has exited; `nil` while it runs.
    var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    /// Waits, bounded, for the process to exit by itself; returns its exit status.
    func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { throw TestClientError.timeout("switchboard still running after \(timeout); output: \(text)") }
            try await Task.sleep(for: .milliseconds(10))
        }
        return process.terminationStatus
    }

    /// Waits, bounded, until the output contains a match of `pattern`; returns the first capture group.
    func waitForOutput(matching pattern: String, timeout: Duration = .seconds(30)) async throws -> String {
        let regex = try NSRegularExpression(pattern: pattern)
        let deadline = ContinuousClock.now + timeout
        while true {
            let text = self.text
            if let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
                let range = Range(match.range(at: match.numberOfRanges > 1 ? 1 : 0), in: text)
            {
                return String(text[range])
            }
            guard isRunning else { throw TestClientError.connectFailed("switchboard exited; output: \(text)") }
            guard ContinuousClock.now < deadline else { throw TestClientError.timeout("no \(pattern) in output: \(text)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Sends `signal` (e.g. SIGTERM) and returns at once.
    func send(signal: Int32) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, signal)
    }

    /// SIGTERM, and returns at once (for clean-up, in a `defer`): a thread outside the task pool
    /// sends SIGKILL if the process still runs after `grace`. A test that needs the exit to have
    /// happened uses ``terminateAndWait(grace:)``. (Waiting here would block one of the few
    /// threads every test's tasks run on for as long as a drain takes.)
    func terminate(grace: Duration = .seconds(5)) {
        guard process.isRunning else { return }
        process.terminate()
        let process = self.process
        Thread.detachNewThread {
            if !Self.waitForExit(process, within: grace) { kill(process.processIdentifier, SIGKILL) }
        }
    }

    /// SIGTERM, then up to `grace` for the process to exit, then SIGKILL; waits (bounded, without
    /// holding a thread) for the exit.
    func terminateAndWait(grace: Duration = .seconds(5)) async {
        guard process.isRunning else { return }
        process.terminate()
        if !(await Self.exited(process, within: grace)) {
            kill(process.processIdentifier, SIGKILL)
            _ = await Self.exited(process, within: .seconds(5))
        }
    }

    /// SIGKILL at once, as `kill -9` (a crashed node: nothing is cleaned up, its sockets are
    /// closed by the kernel); waits (bounded) for the exit. Returns whether it exited.
    @discardableResult
    func kill9() async -> Bool {
        guard process.isRunning else { return true }
        kill(process.processIdentifier, SIGKILL)
        return await Self.exited(process, within: .seconds(5))
    }

    /// Polls until `process` has exited; `false` if it is still running after `timeout`. Blocks
    /// its thread: only for threads of its own.
    private static func waitForExit(_ process: Process, within timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { return false }
            usleep(10_000)
        }
        return true
    }

    /// The same, suspending between polls.
    private static func exited(_ process: Process, within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    deinit {
        if process.isRunning { process.terminate() }
    }
}
