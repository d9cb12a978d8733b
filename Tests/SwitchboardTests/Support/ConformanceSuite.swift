// Test support: runs the shared RFC 6455 conformance suite (shared/conformance/ws_conformance.py)
// against a running server and parses its result.
//
//     let result = try await ConformanceSuite.run(url: "ws://127.0.0.1:\(port)/ws", arguments: ["--max-size", "65536"])
//     #expect(result.failed == 0, "\(result.failures.joined(separator: "\n"))")
//
// The script lives beside the repository: <repo root>/../shared/conformance/ws_conformance.py,
// where the repo root is three directories above this file. A clone of the repository alone has
// no shared/: the tests that need the script are then skipped with a note (`ConformanceSuite.
// availability`), unless SWITCHBOARD_REQUIRE_CONFORMANCE=1 (as `.ci/run` sets it), which turns a
// missing script into a failure.

import Foundation
import Testing

/// The parsed outcome of one run of the suite.
struct ConformanceResult: Sendable, CustomStringConvertible {
    /// From the summary line "N passed, N failed".
    var passed: Int
    var failed: Int
    /// The "FAIL <id>: <reason>" lines, in order.
    var failures: [String]
    /// The "SKIP <id>: <reason>" lines (cases that need an option, such as --idle-timeout).
    var skipped: [String]
    /// Everything the script printed (stdout and stderr, interleaved).
    var output: String
    /// The script's exit status (0: all passed, 1: some failed).
    var exitCode: Int32

    var description: String {
        "\(passed) passed, \(failed) failed" + (failures.isEmpty ? "" : "\n" + failures.joined(separator: "\n"))
    }
}

enum ConformanceSuiteError: Error, CustomStringConvertible {
    case scriptNotFound(path: String, repoRoot: String)
    case launchFailed(String)
    case timedOut(after: Duration, output: String)
    case usageError(output: String)
    case noSummary(exitCode: Int32, output: String)

    var description: String {
        switch self {
        case .scriptNotFound(let path, let repoRoot):
            return "conformance suite not found at \(path) (expected <repo root>/../shared/conformance/ws_conformance.py "
                + "with the repo root \(repoRoot) derived from this file's #filePath); check out shared/ beside the repository"
        case .launchFailed(let message):
            return "could not start python3 for the conformance suite: \(message)"
        case .timedOut(let after, let output):
            return "the conformance suite did not finish within \(after) and was killed; output so far:\n\(output)"
        case .usageError(let output):
            return "the conformance suite rejected its arguments (exit 2):\n\(output)"
        case .noSummary(let exitCode, let output):
            return "the conformance suite exited with \(exitCode) without a 'N passed, N failed' line:\n\(output)"
        }
    }
}

enum ConformanceSuite {
    /// This file's path at compile time (a literal here, not a default argument, so that it is
    /// this file's and not the caller's).
    private static let supportFilePath: String = #filePath

    /// The repository root: three directories above this Support file
    /// (<root>/Tests/SwitchboardTests/Support/ConformanceSuite.swift).
    static var repoRoot: URL {
        URL(fileURLWithPath: supportFilePath)
            .deletingLastPathComponent()  // Support
            .deletingLastPathComponent()  // SwitchboardTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // repo root
    }

    /// Where the script is expected.
    static var scriptURL: URL {
        repoRoot.deletingLastPathComponent()
            .appendingPathComponent("shared")
            .appendingPathComponent("conformance")
            .appendingPathComponent("ws_conformance.py")
            .standardizedFileURL
    }

    /// Whether a missing script must fail the tests instead of skipping them.
    static var isRequired: Bool {
        ProcessInfo.processInfo.environment["SWITCHBOARD_REQUIRE_CONFORMANCE"] == "1"
    }

    /// The trait of every test that runs the suite: enabled when the script is present, or when it
    /// is required (then `locateScript()` fails the test, saying where it looked).
    static var availability: ConditionTrait {
        .enabled(
            if: isRequired || FileManager.default.isReadableFile(atPath: scriptURL.path),
            "\(scriptURL.path) is absent (a clone without shared/ beside it); set SWITCHBOARD_REQUIRE_CONFORMANCE=1 to fail instead"
        )
    }

    /// Returns the script's URL, or throws `.scriptNotFound` saying where it looked.
    static func locateScript() throws -> URL {
        try locateScript(at: scriptURL)
    }

    static func locateScript(at url: URL) throws -> URL {
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw ConformanceSuiteError.scriptNotFound(path: url.path, repoRoot: repoRoot.standardizedFileURL.path)
        }
        return url
    }

    /// Runs `python3 ws_conformance.py <url> <arguments...>` (python3 from PATH) and parses its
    /// output. The process is killed (SIGKILL) if it runs longer than `timeout`, which then throws
    /// `.timedOut` with the output so far. A run that prints no summary line, or exits with 2
    /// (usage error), throws; failed cases do not throw, they are in the result.
    static func run(url: String, arguments: [String] = [], timeout: Duration = .seconds(120)) async throws -> ConformanceResult {
        let script = try locateScript()
        return try await run(script: script, url: url, arguments: arguments, timeout: timeout)
    }

    static func run(script: URL, url: String, arguments: [String], timeout: Duration) async throws -> ConformanceResult {
        let script = try locateScript(at: script)
        let commandLine = ["python3", "-u", script.path, url] + arguments
        // Process and blocking pipe reads stay off the cooperative thread pool.
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try runBlocking(commandLine, timeout: timeout) })
            }
            thread.name = "ConformanceSuite"
            thread.start()
        }
    }

    private static func runBlocking(_ commandLine: [String], timeout: Duration) throws -> ConformanceResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = commandLine
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        // One pipe for stdout and stderr: a single reader drains it, so neither can fill up.
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw ConformanceSuiteError.launchFailed("\(commandLine.joined(separator: " ")): \(error)")
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
        let delay = Double(seconds) + Double(attoseconds) / 1e18
        DispatchQueue.global().asyncAfter(deadline: .now() + delay, execute: watchdog)

        let data = readToEnd(pipe.fileHandleForReading.fileDescriptor)
        try? pipe.fileHandleForReading.close()
        process.waitUntilExit()
        let killed = outcome.withLock { state -> Bool in
            if state == 0 { state = 1 }
            return state == 2
        }
        watchdog.cancel()

        let output = String(decoding: data, as: UTF8.self)
        if killed {
            throw ConformanceSuiteError.timedOut(after: timeout, output: output)
        }
        let exitCode = process.terminationStatus
        if exitCode == 2 {
            throw ConformanceSuiteError.usageError(output: output)
        }
        let lines = output.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline).map(String.init)
        guard let (passed, failed) = lines.reversed().lazy.compactMap(parseSummary).first else {
            throw ConformanceSuiteError.noSummary(exitCode: exitCode, output: output)
        }
        let failures = lines.filter { $0.hasPrefix("FAIL ") }
        let skipped = lines.filter { $0.hasPrefix("SKIP ") }
        return ConformanceResult(
            passed: passed, failed: failed, failures: failures, skipped: skipped, output: output, exitCode: exitCode)
    }

    /// Reads a file descriptor until end of file. (FileHandle.readDataToEndOfFile traps when a
    /// signal such as SIGCHLD interrupts the read; this retries on EINTR.)
    private static func readToEnd(_ fd: Int32) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                result.append(contentsOf: chunk[0..<count])
            } else if count == 0 || errno != EINTR {
                return result
            }
        }
    }

    /// Parses "N passed, N failed" (optionally followed by ", N skipped").
    static func parseSummary(_ line: String) -> (passed: Int, failed: Int)? {
        let words = line.trimmingCharacters(in: .whitespaces).split(separator: " ")
        guard words.count >= 4,
            let passed = Int(words[0]), words[1] == "passed,",
            let failed = Int(words[2]), words[3] == "failed" || words[3] == "failed,"
        else { return nil }
        return (passed, failed)
    }
}
