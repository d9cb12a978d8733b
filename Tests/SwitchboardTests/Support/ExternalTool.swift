// Test support: finds and runs the external tools of the tests (node, python3 with Selenium,
// Chromium, chromedriver for the JavaScript client; python3 for the conformance suite), each run
// bounded in time.
//
// The tests that need them are skipped with a note when a tool is missing, unless
// SWITCHBOARD_REQUIRE_BROWSER=1 (as `.ci/run` sets it), which turns a missing tool into a failure
// that names it.

import Foundation
import Testing

/// What one run of an external command printed and how it ended.
struct ToolOutput: Sendable {
    var exitCode: Int32
    /// stdout and stderr, interleaved.
    var output: String
}

enum ExternalToolError: Error, CustomStringConvertible {
    case missing(String)
    case launchFailed(String)
    case timedOut(command: String, after: Duration, output: String)

    var description: String {
        switch self {
        case .missing(let what):
            return "\(what) (install it, or run .ci/run, which does)"
        case .launchFailed(let message):
            return "could not start: \(message)"
        case .timedOut(let command, let after, let output):
            return "\(command) did not finish within \(after) and was killed; output so far:\n\(output)"
        }
    }
}

enum ExternalTool {
    /// Whether a missing tool must fail the tests instead of skipping them.
    static var isRequired: Bool {
        ProcessInfo.processInfo.environment["SWITCHBOARD_REQUIRE_BROWSER"] == "1"
    }

    /// The first executable called `name` on PATH.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static var node: String? { which("node") }
    static var chromium: String? { which("chromium") ?? which("chromium-browser") ?? which("google-chrome") }
    static var chromedriver: String? { which("chromedriver") }

    /// Whether python3 can import selenium (checked once).
    static let hasSelenium: Bool = {
        guard let python = which("python3") else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", "import selenium"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    /// What the browser tests lack, or `nil` when everything is there.
    static var browserMissing: String? {
        var missing: [String] = []
        if chromium == nil { missing.append("chromium (apt-get install chromium)") }
        if chromedriver == nil { missing.append("chromedriver (apt-get install chromium-driver)") }
        if !hasSelenium { missing.append("python3's selenium (pip install selenium)") }
        return missing.isEmpty ? nil : "missing: " + missing.joined(separator: ", ")
    }

    /// Trait of the Node unit tests: enabled when node is there or required.
    static var nodeAvailability: ConditionTrait {
        .enabled(if: isRequired || node != nil, "node is not on PATH; set SWITCHBOARD_REQUIRE_BROWSER=1 to fail instead")
    }

    /// Trait of the browser tests: enabled when Chromium, chromedriver and Selenium are there, or required.
    static var browserAvailability: ConditionTrait {
        .enabled(if: isRequired || browserMissing == nil, "\(browserMissing ?? ""); set SWITCHBOARD_REQUIRE_BROWSER=1 to fail instead")
    }

    /// `Clients/JavaScript` of this checkout.
    /// Where tests leave files for a person to look at (screenshots): `$SWITCHBOARD_ARTIFACTS`, or
    /// `switchboard-artifacts` in the temporary directory; created when missing.
    static var artifactsDirectory: URL {
        let path = ProcessInfo.processInfo.environment["SWITCHBOARD_ARTIFACTS"].flatMap { $0.isEmpty ? nil : $0 }
        let url = path.map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-artifacts")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static var clientDirectory: URL {
        ConformanceSuite.repoRoot.appendingPathComponent("Clients/JavaScript").standardizedFileURL
    }

    /// Runs `executable arguments…` in `directory`; killed (SIGKILL) after `timeout`.
    static func run(_ executable: String, _ arguments: [String], in directory: URL? = nil, timeout: Duration) async throws -> ToolOutput {
        try await withCheckedThrowingContinuation { continuation in
            // Process and blocking pipe reads stay off the cooperative thread pool.
            let thread = Thread {
                continuation.resume(with: Result { try runBlocking(executable, arguments, in: directory, timeout: timeout) })
            }
            thread.name = "ExternalTool"
            thread.start()
        }
    }

    private static func runBlocking(_ executable: String, _ arguments: [String], in directory: URL?, timeout: Duration) throws -> ToolOutput {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let command = ([executable] + arguments).joined(separator: " ")
        do {
            try process.run()
        } catch {
            throw ExternalToolError.launchFailed("\(command): \(error)")
        }
        let pid = process.processIdentifier
        // 0: running, 1: finished, 2: killed for the timeout.
        let outcome = TestLockedBox(0)
        let watchdog = DispatchWorkItem {
            let shouldKill = outcome.withLock { state -> Bool in
                guard state == 0 else { return false }
                state = 2
                return true
            }
            if shouldKill { _ = kill(pid, SIGKILL) }
        }
        let (seconds, attoseconds) = timeout.components
        DispatchQueue.global().asyncAfter(deadline: .now() + Double(seconds) + Double(attoseconds) / 1e18, execute: watchdog)
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let fd = pipe.fileHandleForReading.fileDescriptor
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                data.append(contentsOf: chunk[0..<count])
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        try? pipe.fileHandleForReading.close()
        process.waitUntilExit()
        let killed = outcome.withLock { state -> Bool in
            if state == 0 { state = 1 }
            return state == 2
        }
        watchdog.cancel()
        let output = String(decoding: data, as: UTF8.self)
        if killed { throw ExternalToolError.timedOut(command: command, after: timeout, output: output) }
        return ToolOutput(exitCode: process.terminationStatus, output: output)
    }
}
